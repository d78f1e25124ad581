"""Every `deskbridge ...` command a hint, error or doc string in bot/ and core/ names exists in the CLI (a hint
that names a command nobody can run is worse than none)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import typer.main

from bot.cli import app

ROOT = Path(__file__).resolve().parents[1]
NAMED = re.compile(r"`deskbridge ([^`\"']*)")


def _named() -> list[tuple[str, str]]:
    out = []
    for folder in ("bot", "core"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            for m in NAMED.finditer(path.read_text()):
                out.append((f"{path.relative_to(ROOT)}:{m.group(0)}", m.group(1)))
    return out


def _resolves(words: str, root: Any) -> bool:
    """The words lead through the command groups to a command (or a group named on its own)."""
    parts = words.split()
    for i, word in enumerate(parts):  # `deskbridge serve|background`: each one must exist
        if "|" in word and re.fullmatch(r"[a-z][a-z0-9_|-]*", word):
            return all(_resolves(" ".join([*parts[:i], alt, *parts[i + 1:]]), root) for alt in word.split("|"))
    cmd = root
    for word in parts:
        if not isinstance(getattr(cmd, "commands", None), dict) or not re.fullmatch(r"[a-z][a-z0-9_-]*", word):
            break  # a command's arguments and options, or a placeholder
        if word not in cmd.commands:
            return False
        cmd = cmd.commands[word]
    return cmd is not root


def test_every_named_command_exists():
    root = typer.main.get_command(app)
    named = _named()
    assert len(named) > 50  # the scan finds the hints
    missing = sorted({where for where, words in named if not _resolves(words, root)})
    assert missing == [], "hints name commands the CLI does not have"


def test_the_check_would_catch_a_wrong_command():
    root = typer.main.get_command(app)
    assert _resolves("connection reauth cw", root) and _resolves("outbox", root)
    assert _resolves("connection map-status|map-priority", root)
    assert not _resolves("connection reauthenticate cw", root) and not _resolves("tickets purge", root)
    assert not _resolves("connection map-status|map-prio", root)


CHAT_NAMED = re.compile(r"(?<![\w/.:-])/deskbridge(?: +([a-z][a-z0-9_-]*(?: [a-z][a-z0-9_-]*)?))?")
PROSE = {"and", "or", "command", "commands"}  # "/tickets, /ticket, /deskbridge and ...": the command itself


def _chat_named() -> list[tuple[str, str]]:
    out = []
    for folder in ("bot", "core"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            for m in CHAT_NAMED.finditer(path.read_text()):
                if m.group(1) and m.group(1).split()[0] not in PROSE:
                    out.append((f"{path.relative_to(ROOT)}:{m.group(0)}", m.group(1)))
    return out


def _chat_command_exists(word: str) -> bool:
    """`/deskbridge WORD ...` is a chat command the grammar knows (its arguments may still be missing)."""
    from core.chat import grammar
    from core.errors import InvalidInput

    try:
        grammar.parse("deskbridge", word)
    except InvalidInput as exc:
        return "is not a /deskbridge command" not in exc.message
    return True


def test_every_named_chat_command_exists():
    named = _chat_named()
    assert len(named) > 20
    missing = sorted({where for where, word in named if not _chat_command_exists(word)})
    assert missing == [], "hints name /deskbridge commands chat does not have"


def test_the_chat_check_would_catch_a_wrong_command():
    assert _chat_command_exists("link") and _chat_command_exists("outbox") and _chat_command_exists("m365")
    assert not _chat_command_exists("customers") and not _chat_command_exists("purge")
