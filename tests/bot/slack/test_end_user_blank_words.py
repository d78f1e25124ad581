"""An end user's message that shows nothing (zero-width or control characters only: a sticker's text, a paste
gone wrong) in a customer channel with `create` on: no blank ticket, no crash, nothing held that holds nothing;
a message with words around such characters is a ticket with the words."""

from __future__ import annotations

import pytest
from sqlmodel import select

from store.db import Scope
from store.tables import Ticket
from tests.bot.slack.conftest import ADMIN, STRANGER


async def _say(slack, text: str, n: int) -> None:
    await slack.event({"type": "message", "channel": "C_ACME", "channel_type": "channel", "user": STRANGER,
                       "text": text, "ts": f"1800000000.00010{n}"}, event_id=f"EvB{n}")
    await slack.settle()


@pytest.mark.parametrize("text", ["\u200b", "\u200b\u2060\ufeff", "\x07\x1b"])
async def test_a_message_that_shows_nothing_makes_no_ticket(slack, text: str):
    await slack.slash("/deskbridge", "bind customer ACME", user=ADMIN, channel="C_ACME")
    await slack.c.workspaces.set_option(slack.ws, "end_user_requests", "create")
    await slack.settle()
    slack.fake.clear()
    await _say(slack, text, 1)
    async with slack.c.db.read(Scope.workspace(slack.ws)) as s:
        assert (await s.exec(select(Ticket).where(Ticket.source == "slack"))).all() == []
    assert await slack.c.end_user_requests.held(slack.ws) == []
    told = " ".join(str(c.args.get("text")) for c in slack.fake.of("chat.postEphemeral"))
    assert "went wrong" not in told.lower()
    await _say(slack, f"{text}Printer\x07 offline{text}", 2)
    async with slack.c.db.read(Scope.workspace(slack.ws)) as s:
        [ticket] = (await s.exec(select(Ticket).where(Ticket.source == "slack"))).all()
    assert "Printer offline" in ticket.subject


def test_the_subject_is_the_first_line_that_shows_something():
    from core.intake.requests import subject_of

    assert subject_of("\u200b\n\x07\x1b\n  Toner low on floor 3\nmore") == "Toner low on floor 3"
