"""A ticket an end user opens in chat carries their words and nothing else where they (and the PSA's portal and
e-mails) read it: who asked, and the technician's to-do "confirm the contact", go in an internal note."""

from __future__ import annotations

import json

from sqlmodel import select

from store.db import Scope
from store.enums import EntryKind
from store.tables import Ticket, TimelineEntry
from tests.bot.slack.conftest import ADMIN, STRANGER

TS = "1800000000.000100"
WORDS = "Printer on floor 2 is offline"


async def test_an_end_users_ticket_shows_their_words_only_and_the_provenance_is_internal(slack):
    await slack.slash("/deskbridge", "bind customer ACME", user=ADMIN, channel="C_ACME")
    await slack.c.workspaces.set_option(slack.ws, "end_user_requests", "create")
    await slack.settle()
    slack.fake.clear()
    await slack.event({"type": "message", "channel": "C_ACME", "channel_type": "channel", "user": STRANGER,
                       "text": WORDS, "ts": TS}, event_id="EvW1")
    await slack.settle()
    async with slack.c.db.read(Scope.workspace(slack.ws)) as s:
        [ticket] = (await s.exec(select(Ticket).where(Ticket.source == "slack"))).all()
        notes = (await s.exec(select(TimelineEntry).where(TimelineEntry.ticket_id == ticket.id))).all()
    assert ticket.description == WORDS  # what the customer wrote, word for word
    [internal] = [n for n in notes if n.kind == EntryKind.NOTE_INTERNAL]
    assert "confirm the contact" in internal.body and "someone@customer.example" in internal.body
    [card] = [c for c in slack.fake.of("chat.postMessage") if c.args.get("thread_ts") == TS]
    shown = json.dumps(card.args.get("blocks")) + str(card.args.get("text"))
    assert WORDS in shown
    for internal_text in ("confirm the contact", "Asked in chat", "not a known contact"):
        assert internal_text not in shown, internal_text
