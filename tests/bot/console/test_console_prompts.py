"""The console's form prompts say "optional" once, also for fields whose label already says so."""

from __future__ import annotations

from bot.console.render import render_field_prompt
from core.views import FormField, FormOption


def test_optional_is_said_once():
    said_by_label = FormField(name="status", label="Change status (optional)", kind="select",
                              options=(FormOption(value="__same__", label="(keep: New)"),), initial="__same__")
    plain = FormField(name="notes", label="Notes", kind="text")
    assert render_field_prompt(said_by_label).count("optional") == 1
    assert "Enter to skip" in render_field_prompt(said_by_label)
    assert render_field_prompt(plain).count("optional") == 1 and "Enter to skip" in render_field_prompt(plain)
