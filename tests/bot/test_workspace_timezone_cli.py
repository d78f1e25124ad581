"""The workspace's time zone can be set where a single-workspace install gets its workspace (created at start-up
from DESKBRIDGE_WORKSPACE_TIMEZONE) and changed later (`deskbridge workspace timezone ZONE`); a name that is not
a zone is refused with what to type, and nothing changes."""

from __future__ import annotations

from typer.testing import CliRunner

from bot.cli import app

runner = CliRunner()


def test_set_at_start_up_shown_changed_and_refused(env, monkeypatch):
    monkeypatch.setenv("DESKBRIDGE_WORKSPACE_TIMEZONE", "America/Los_Angeles")
    shown = runner.invoke(app, ["workspace", "timezone"])
    assert shown.exit_code == 0 and shown.stdout.strip() == "America/Los_Angeles", shown.output
    changed = runner.invoke(app, ["workspace", "timezone", " Europe/Berlin "])
    assert changed.exit_code == 0 and changed.stdout.strip() == "Europe/Berlin", changed.output
    bad = runner.invoke(app, ["workspace", "timezone", "Berlin"])
    assert bad.exit_code != 0 and "'Berlin' is not a time zone" in bad.output and "Europe/Berlin" in bad.output
    assert runner.invoke(app, ["workspace", "timezone"]).stdout.strip() == "Europe/Berlin"
