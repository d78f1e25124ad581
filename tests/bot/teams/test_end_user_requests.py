"""End users asking for help in Teams, through the real Teams SDK app and the fake Bot Connector
(bot/teams/requests.py; the rules are core/intake/requests.py, as for Slack): an offer in their message's reply
chain that only they may accept, one ticket per message whatever the clicks, the card in the chain that then
is the ticket's thread both ways; a contact's own chat with the bot; the hourly limit; technicians unchanged."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from bot.teams import cards, requests
from core.notify import NoteAdded
from store.db import Scope
from store.tables import Ticket, TimelineEntry
from tests.bot.teams.conftest import CHANNEL, STRANGER, TECH, text_of
from tests.bot.teams.test_commands import assert_valid_card
from tests.bot.teams.test_end_users import _contact
from tests.bot.teams.test_threads import make_admin

COLLEAGUE = "aad-colleague"
PERSONAL = "a:personal-stranger"


async def _customer_channel(h) -> None:
    await make_admin(h)
    await h.say("bind customer ACME shared")
    assert "customer's people read this channel" in h.last_text()
    h.fake.add_user(COLLEAGUE, name="Colleague", email="colleague@customer.example")


async def _invoke(h, data: dict[str, Any], *, user: str, conversation: str, ctype: str = "channel") -> dict:
    body = h.activity(kind="invoke", user=user, conversation=conversation, ctype=ctype, name="adaptiveCard/action",
                      value={"action": {"type": "Action.Execute", "verb": cards.VERB, "data": data},
                             "trigger": "manual"})
    resp = await h.send(body)
    assert resp.status_code == 200
    return resp.json()


def _offer_data(post: dict[str, Any]) -> dict[str, dict[str, Any]]:
    (att,) = post["attachments"]
    assert_valid_card(att["content"])
    return {a["data"]["action"]: a["data"] for a in att["content"]["actions"]}


async def _tickets(h, subject_like: str) -> list[Ticket]:
    async with h.c.db.read(Scope.workspace(h.ws)) as s:
        return list((await s.exec(sa.select(Ticket).where(Ticket.subject.like(f"%{subject_like}%")))).scalars())


async def _public_notes(h, ticket_id: int) -> list[str]:
    async with h.c.db.read(Scope.workspace(h.ws)) as s:
        return list((await s.exec(sa.select(TimelineEntry.body).where(
            TimelineEntry.ticket_id == ticket_id, TimelineEntry.kind == "note_public"))).scalars())


async def test_an_offer_in_the_chain_only_the_asker_accepts_once_and_the_chain_is_the_tickets_thread(teams):
    contact_id = await _contact(teams)
    await _customer_channel(teams)
    ask = teams.activity("The printer on floor 2 is jammed again", user=STRANGER)
    await teams.send(ask)
    chain = f"{CHANNEL};messageid={ask['id']}"
    offer = teams.posted()[-1]
    assert [c.conversation_id for c in teams.fake.calls if c.op == "create"][-1] == chain  # in their chain
    assert requests.OFFER in text_of(offer)
    data = _offer_data(offer)
    assert data[requests.OPEN]["text"] == "The printer on floor 2 is jammed again"
    assert await _tickets(teams, "floor 2") == []  # an offer opens nothing

    refused = await _invoke(teams, data[requests.OPEN], user=COLLEAGUE, conversation=chain)
    assert requests.NOT_YOURS in str(refused) and await _tickets(teams, "floor 2") == []

    first = await _invoke(teams, data[requests.OPEN], user=STRANGER, conversation=chain)
    again = await _invoke(teams, data[requests.OPEN], user=STRANGER, conversation=chain)  # double click
    (ticket,) = await _tickets(teams, "floor 2")
    assert "Your ticket opened: The printer on floor 2" in text_of(first)  # its number comes from the PSA
    assert requests.ALREADY in text_of(again)
    assert ticket.contact_id == contact_id and ticket.customer_id == teams.setup.customer_id
    card = [c for c in teams.fake.calls if c.op == "create" and c.conversation_id == chain][-1]
    assert "The printer on floor 2 is jammed again" in text_of(card.body) and "Internal" not in text_of(card.body)

    # the chain is the ticket's thread: their reply is their public reply ...
    await teams.say("Still jammed, and now it beeps", user=STRANGER, conversation=chain)
    assert await _public_notes(teams, int(ticket.id)) == ["Still jammed, and now it beeps"]
    # ... and a technician's public reply shows there, an internal note never does
    async with teams.c.db.write(Scope.workspace(teams.ws)) as s:  # the PSA has taken it (number and id)
        (await s.get(Ticket, ticket.id)).number = 7001
    teams.fake.clear()
    for visibility, body in (("internal", "Customer keeps overloading tray 2"), ("public", "Tray 2 replaced.")):
        await teams.c.notifier.notify(NoteAdded(workspace_id=teams.ws, ticket_id=ticket.id, ticket_number=ticket.number,
                                                origin="psa", occurred_at=datetime.now(UTC), entry_id=1,
                                                visibility=visibility, author_name="Pat PSA", body=body, source=None))
    await teams.settle()
    shown = [text_of(c.body) for c in teams.fake.calls if c.conversation_id == chain]
    assert any("Tray 2 replaced." in t for t in shown)
    assert not any("overloading" in t for t in shown)
    # the card (a reply in the chain, not the chain's root) is redrawn in the chain
    updates = teams.fake.of("update")
    assert updates and {(u.conversation_id, u.activity_id) for u in updates} == {(chain, card_id(teams, chain))}
    assert "Still jammed" in text_of(updates[-1].body) and "overloading" not in text_of(updates[-1].body)
    assert "teams:" not in text_of(updates[-1].body)  # their note's author is their name, not their chat id


def card_id(h, chain: str) -> str:
    ids = [aid for aid, body in h.fake.conversations[chain].items() if "attachments" in body
           and "Would you like" not in text_of(body)]
    return ids[0]


async def test_no_thanks_opens_nothing(teams):
    await _contact(teams)
    await _customer_channel(teams)
    ask = teams.activity("Is the VPN down for everyone?", user=STRANGER)
    await teams.send(ask)
    data = _offer_data(teams.posted()[-1])
    answer = await _invoke(teams, data[requests.DISMISS], user=STRANGER, conversation=f"{CHANNEL};messageid={ask['id']}")
    assert requests.DISMISSED in text_of(answer)
    assert await _tickets(teams, "VPN down for everyone") == []


async def test_a_redelivered_message_is_offered_once(teams):
    await _contact(teams)
    await _customer_channel(teams)
    ask = teams.activity("Outlook keeps asking for my password", user=STRANGER)
    await teams.send(ask)
    await teams.send(ask)
    offers = [p for p in teams.posted() if requests.OFFER in text_of(p)]
    assert len(offers) == 1


async def test_ticket_new_from_an_end_user_is_their_request_and_technicians_are_unchanged(teams):
    await _contact(teams)
    await _customer_channel(teams)
    await teams.c.workspaces.set_option(teams.ws, "end_user_requests", "create")
    ask = teams.activity("ticket new Scanner offline", user=STRANGER)
    await teams.send(ask)
    (ticket,) = await _tickets(teams, "Scanner offline")
    assert ticket.description.startswith("Scanner offline")
    chain = f"{CHANNEL};messageid={ask['id']}"
    assert any("Scanner offline" in text_of(c.body) for c in teams.fake.calls if c.conversation_id == chain)
    await teams.say("My printer is broken", user=TECH)  # a technician's chatter is no request
    assert "is not a /deskbridge command" in teams.last_text() or "not a @Deskbridge command" in teams.last_text()
    assert await _tickets(teams, "printer is broken") == []


async def test_a_contacts_own_chat_opens_tickets_within_the_hourly_limit(teams):
    await _contact(teams)
    await teams.c.workspaces.set_option(teams.ws, "end_user_requests", "create")
    await teams.c.workspaces.set_option(teams.ws, "end_user_requests_per_hour", "1")
    await teams.say("My laptop will not boot", user=STRANGER, ctype="personal", conversation=PERSONAL)
    (ticket,) = await _tickets(teams, "laptop will not boot")
    posted = [c for c in teams.fake.calls if c.op == "create" and c.conversation_id == PERSONAL]
    assert "My laptop will not boot" in text_of(posted[-1].body)
    assert "Internal" not in text_of(posted[-1].body)  # the customer's card
    await teams.say("Also the dock flickers", user=STRANGER, ctype="personal", conversation=PERSONAL)
    assert "Your message was added to" in teams.last_text()
    assert await _tickets(teams, "dock flickers") == []
    assert await _public_notes(teams, int(ticket.id)) == ["Also the dock flickers"]
    assert not any("dock flickers" in text_of(p) for p in teams.posted())  # their words are not echoed back
    teams.fake.clear()
    for visibility, body in (("internal", "Warranty expired, bill it"), ("public", "A courier brings a new one.")):
        await teams.c.notifier.notify(NoteAdded(workspace_id=teams.ws, ticket_id=ticket.id, ticket_number=None,
                                                origin="psa", occurred_at=datetime.now(UTC), entry_id=1,
                                                visibility=visibility, author_name="Pat PSA", body=body, source=None))
    await teams.settle()
    in_chat = [text_of(c.body) for c in teams.fake.calls if c.op == "create" and c.conversation_id == PERSONAL]
    assert any("A courier brings a new one." in t for t in in_chat)  # in the chat itself (chats have no chains)
    assert not any("Warranty" in t for t in in_chat)


async def test_someone_who_is_no_contact_is_told_whom_to_ask_in_their_chat(teams):
    await teams.c.workspaces.set_option(teams.ws, "end_user_requests", "create")
    await teams.say("My laptop will not boot", user=STRANGER, ctype="personal", conversation=PERSONAL)
    assert "does not know you yet" in teams.last_text()
    assert await _tickets(teams, "laptop will not boot") == []


def _reply_action(body: dict[str, Any]) -> dict[str, Any]:
    """The Send action of the Reply box under a note in a chat (validated as a card)."""
    (att,) = body["attachments"]
    assert_valid_card(att["content"])
    (show,) = att["content"]["actions"]
    assert show["type"] == "Action.ShowCard" and show["title"] == requests.REPLY_BUTTON
    (send,) = show["card"]["actions"]
    assert send["type"] == "Action.Execute" and show["card"]["body"][0]["id"] == "reply"
    return send["data"]


async def test_a_note_in_a_contacts_chat_has_a_reply_button_that_lands_on_that_ticket(teams):
    await _contact(teams)
    await teams.c.workspaces.set_option(teams.ws, "end_user_requests", "create")
    await teams.say("My laptop will not boot", user=STRANGER, ctype="personal", conversation=PERSONAL)
    (ticket,) = await _tickets(teams, "laptop will not boot")
    teams.fake.clear()
    for visibility, body in (("internal", "Warranty expired, bill it"), ("public", "Is it plugged in?")):
        await teams.c.notifier.notify(NoteAdded(workspace_id=teams.ws, ticket_id=ticket.id, ticket_number=ticket.number,
                                                origin="psa", occurred_at=datetime.now(UTC), entry_id=1,
                                                visibility=visibility, author_name="Pat PSA", body=body, source=None))
    await teams.settle()
    [note] = [c.body for c in teams.fake.calls if c.op == "create" and c.conversation_id == PERSONAL
              and "Is it plugged in?" in text_of(c.body)]
    assert not any("Warranty" in text_of(c.body) for c in teams.fake.calls)  # internal stays internal
    data = _reply_action(note)
    assert data == {"action": requests.REPLY, "ticket": ticket.id}
    assert str(ticket.id) not in json.dumps(note["attachments"][0]["content"]["body"])  # no ids to read

    empty = await _invoke(teams, {**data, "reply": "  "}, user=STRANGER, conversation=PERSONAL, ctype="personal")
    assert requests.REPLY_EMPTY in json.dumps(empty)
    teams.fake.clear()
    done = await _invoke(teams, {**data, "reply": "Yes, it is plugged in."}, user=STRANGER, conversation=PERSONAL,
                         ctype="personal")
    assert "Your reply was added" in json.dumps(done)
    async with teams.c.db.read(Scope.workspace(teams.ws)) as s:
        [reply] = (await s.exec(sa.select(TimelineEntry).where(TimelineEntry.ticket_id == ticket.id,
                                                               TimelineEntry.body == "Yes, it is plugged in."))).scalars()
    assert reply.kind == "note_public" and str(reply.author_name).startswith(f"teams:{STRANGER}")  # theirs, there
    await teams.settle()
    assert not any("Yes, it is plugged in." in text_of(c.body) for c in teams.fake.calls
                   if c.op == "create" and c.conversation_id == PERSONAL)  # their own words are not echoed back
    assert await _tickets(teams, "plugged in") == []  # a reply, not a new request


async def test_a_reply_to_a_ticket_that_is_not_theirs_is_refused_and_their_words_come_back(teams):
    await _contact(teams)
    async with teams.c.db.read(Scope.workspace(teams.ws)) as s:
        other = (await s.exec(sa.select(Ticket).where(Ticket.customer_id == teams.setup.other_customer_id))).scalars().first()
    assert other is not None
    forged = {"action": requests.REPLY, "ticket": other.id, "reply": "Please close this"}
    answer = json.dumps(await _invoke(teams, forged, user=STRANGER, conversation=PERSONAL, ctype="personal"))
    assert requests.REPLY_NOT_YOURS in answer and "What you wrote: Please close this" in answer
    assert "Please close this" not in await _public_notes(teams, int(other.id))
