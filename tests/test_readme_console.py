"""The README's console picture comes from the real views (scripts/readme_console.py) and the script still works."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from scripts.readme_console import END, START, splice, transcript

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def test_the_readme_shows_a_console_transcript_on_its_first_screen() -> None:
    block = README.split(START, 1)[1].split(END, 1)[0]
    assert README.index(START) < README.index("## Quick start")
    lines = block.strip().removeprefix("```text").removesuffix("```").strip().splitlines()
    assert lines[0] == "deskbridge> /tickets" and re.match(r"Tickets \(\d+\)", lines[1])
    assert "deskbridge> /ticket 1300" in lines and any(line.startswith("#1300 ") for line in lines)
    assert any("[1] Reply" in line for line in lines)


def test_splice_replaces_only_the_marked_block() -> None:
    readme = f"intro\n{START}\nold\n{END}\nrest\n"
    assert splice(readme, "new") == f"intro\n{START}\n```text\nnew\n```\n{END}\nrest\n"
    with pytest.raises(SystemExit, match="console:start"):
        splice("no markers", "x")


@pytest.mark.slow
async def test_the_script_renders_the_desk_through_the_console() -> None:
    text = await transcript()
    lines = text.splitlines()
    assert lines[0] == "deskbridge> /tickets" and re.match(r"Tickets \([4-6]\d\)", lines[1]), lines[:2]
    assert any(line.startswith("#1300 ") for line in lines)
    assert sum(" left" in line or "exceeded" in line for line in lines) >= 10  # SLA figures in the queue
