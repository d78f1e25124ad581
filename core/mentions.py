"""Commands typed to the bot by mention (Teams, and any surface without slash commands).

`@Deskbridge tickets mine`, `@Deskbridge ticket 1042`, `@Deskbridge help`, `@Deskbridge bind customer ACME`:
the first word picks the command the Slack surface gets from its slash command name, the rest is parsed by
the same grammar (core/commands.py), so every surface understands the same words.
"""

from __future__ import annotations

import re

from core.chat import grammar

QUEUE_WORDS = ("tickets", "queue", "q")
TICKET_WORDS = ("ticket",)
_MENTION = re.compile(r"<at>[^<]*</at>", re.IGNORECASE)


def strip_mentions(text: str) -> str:
    """The text without `<at>…</at>` mentions (Teams marks them so), whitespace collapsed."""
    return " ".join(_MENTION.sub(" ", text or "").replace("&nbsp;", " ").split())


def parse_mention(text: str) -> grammar.Command:
    """One command from what followed the bot's mention; an empty mention is `help`."""
    body = strip_mentions(text).lstrip("/")
    first, _, rest = body.partition(" ")
    word = first.lower()
    if word in QUEUE_WORDS:
        return grammar.parse("tickets", rest)
    if word in TICKET_WORDS:
        return grammar.parse("ticket", rest)
    if word == "deskbridge":  # "@Deskbridge deskbridge bind …" works too
        return grammar.parse("deskbridge", rest)
    return grammar.parse("deskbridge", body)
