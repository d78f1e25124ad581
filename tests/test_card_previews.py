"""docs/cards/: every kind of Teams card as the official Adaptive Cards renderer draws it (scripts/card_previews.py).

Without a browser: each kind is kept, is a valid Adaptive Card 1.5 for Teams, and the README links its picture.
With node, npm and Chromium (CI installs Chromium; the renderer comes from npm into a cache directory): the
kept cards are drawn again and checked (nothing past the card's edge, no text cut short, nothing empty), and a
card with those faults is refused, so the check can fail.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from scripts.card_previews import KINDS, OUT, draw, kept_cards
from tests.bot.teams.test_commands import assert_valid_card

ROOT = Path(__file__).resolve().parents[1]


def test_every_kind_is_kept_valid_and_linked_from_the_readme():
    readme = (ROOT / "README.md").read_text()
    for kind in KINDS:
        card = json.loads((OUT / f"{kind}.json").read_text())
        assert_valid_card(card)
        assert (OUT / f"{kind}.png").stat().st_size > 10_000, kind
        assert f"(docs/cards/{kind}.png)" in readme, kind
    ticket = json.loads((OUT / "ticket.json").read_text())
    shown = [a["title"] for a in ticket["actions"] if a.get("mode") != "secondary"]
    assert shown == ["Reply", "Internal note", "Change status"]  # the rest are in the "…" menu


def _browser_or_skip() -> None:
    missing = [name for name in ("node", "npm") if shutil.which(name) is None]
    if shutil.which("chromium") is None and shutil.which("chromium-browser") is None:
        missing.append("chromium")
    if missing:
        pytest.skip(f"drawing the cards needs {', '.join(missing)} (apt-get install -y nodejs npm chromium)")


def test_the_kept_cards_draw_without_overflow_or_empty_elements(tmp_path):
    _browser_or_skip()
    done = draw(kept_cards(), tmp_path)
    assert done.returncode == 0, done.stderr
    assert sorted(p.stem for p in tmp_path.glob("*.png")) == sorted(KINDS)


def test_a_card_that_overflows_or_has_empty_parts_is_refused(tmp_path):
    _browser_or_skip()
    buttons = [{"type": "Action.Execute", "title": f"A rather long button title {i}", "verb": "x"} for i in range(6)]
    bad = {"type": "AdaptiveCard", "version": "1.5", "body": [{"type": "TextBlock", "text": " "}], "actions": buttons}
    done = draw({"bad": bad}, tmp_path)
    assert done.returncode == 1
    assert "empty .ac-textBlock" in done.stderr and "text cut short" in done.stderr
    assert not (tmp_path / "bad.png").exists()
