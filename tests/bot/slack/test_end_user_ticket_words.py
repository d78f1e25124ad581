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


async def test_words_the_psa_cannot_take_as_a_ticket_are_kept_for_a_technician_and_the_person_is_told(slack):
    """The board needs a contact and the person is not one: no ticket can be opened for them, but their words are
    kept (`deskbridge intake held`, with the reason) and they are told so, in words meant for them."""
    from store.tables import PicklistItem
    from tests.factories import BOARD
    async with slack.c.db.write(Scope.workspace(slack.ws)) as s:
        board = (await s.exec(select(PicklistItem).where(PicklistItem.kind == "board",
                                                         PicklistItem.external_id == BOARD))).one()
        board.data = {"requires": ["contact_external_id"]}
    await slack.slash("/deskbridge", "bind customer ACME", user=ADMIN, channel="C_ACME")
    await slack.c.workspaces.set_option(slack.ws, "end_user_requests", "create")
    await slack.settle()
    slack.fake.clear()
    await slack.event({"type": "message", "channel": "C_ACME", "channel_type": "channel", "user": STRANGER,
                       "text": WORDS, "ts": TS}, event_id="EvK1")
    await slack.settle()
    async with slack.c.db.read(Scope.workspace(slack.ws)) as s:
        assert (await s.exec(select(Ticket).where(Ticket.source == "slack"))).all() == []
    [held] = await slack.c.end_user_requests.held(slack.ws)
    assert held.text.startswith(WORDS) and "need a contact" in held.text  # the technician learns why
    [told] = [c.args["text"] for c in slack.fake.of("chat.postEphemeral") if c.args.get("user") == STRANGER]
    assert "kept for a technician" in told
    for not_for_them in ("/ticket", "Something went wrong", "Service Desk", "sandbox-test", "tickets in the last hour"):
        assert not_for_them not in told, not_for_them
