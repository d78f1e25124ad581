"""The "Get help" welcome card in Teams (bot/teams/get_help.py), through the real Teams SDK app, activities signed
as the Bot Framework signs them, and the fake Bot Connector: one card per customer conversation (posted on bind,
updated on re-bind, posted again if deleted, deleted or marked on unbind, back on reinstall into a bound team or
chat), and its dialog: the customer's people (known contacts or not) open one ticket per form, scoped to the
channel's customer; everyone else is told what to do instead, and refused words come back."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from bot.teams import get_help
from core.intake import help_post as h
from store.db import Scope
from store.enums import Stage
from store.tables import Ticket, TimelineEntry
from tests.bot.teams.conftest import CHANNEL, STRANGER, TEAM, TECH, TENANT, text_of
from tests.bot.teams.test_commands import assert_valid_card
from tests.bot.teams.test_end_users import _contact
from tests.bot.teams.test_threads import make_admin

NEWCOMER = "aad-newcomer"  # someone in the customer's channel who is no known contact
CHANNEL2 = "19:acme-second@thread.tacv2"
CHAT = "19:chat-acme@thread.v2"


def _welcomes(h_, conversation: str = CHANNEL) -> dict[str, dict[str, Any]]:
    """The welcome cards now in a conversation (the fake keeps what is there: updates replace, deletes remove)."""
    return {aid: body for aid, body in h_.fake.conversations.get(conversation, {}).items()
            if get_help.TITLE in text_of(body) or get_help.CLOSED in text_of(body)}


def _button(body: dict[str, Any]) -> dict[str, Any]:
    (att,) = body["attachments"]
    card = att["content"]
    assert_valid_card(card)
    (action,) = card["actions"]
    return action


async def _dialog(h_, name: str, data: dict[str, Any], *, user: str, conversation: str,
                  ctype: str = "channel") -> dict[str, Any]:
    body = h_.activity(kind="invoke", user=user, conversation=conversation, ctype=ctype, name=name,
                       value={"data": data, "context": {"theme": "default"}})
    resp = await h_.send(body)
    assert resp.status_code == 200, resp.text
    return resp.json()


def _form_of(answer: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The dialog's form card, and its Send button's data."""
    task = answer["task"]
    assert task["type"] == "continue"
    card = task["value"]["card"]["content"]
    assert task["value"]["card"]["contentType"] == "application/vnd.microsoft.card.adaptive"
    assert_valid_card(card)
    (send,) = card["actions"]
    return card, send["data"]


async def _tickets(h_, like: str) -> list[Ticket]:
    async with h_.c.db.read(Scope.workspace(h_.ws)) as s:
        return list((await s.exec(sa.select(Ticket).where(Ticket.subject.like(f"%{like}%")))).scalars())


async def _bound(h_, conversation: str = CHANNEL, customer: str = "ACME", **kw: Any) -> None:
    """Bound to the customer, whose people read it (`shared`: their replies in a ticket's chain are theirs)."""
    before = len(h_.posted())
    await h_.say(f"bind customer {customer} shared", conversation=conversation, **kw)
    assert any("limited to that customer" in text_of(p) for p in h_.posted()[before:])


async def test_a_bound_channel_gets_one_card_updated_on_rebind_reposted_if_deleted_and_gone_on_unbind(teams):
    await make_admin(teams)
    await _bound(teams)
    (first_id, first), = _welcomes(teams).items()
    action = _button(first)
    assert action["type"] == "Action.Submit" and action["title"] == h.BUTTON
    assert action["data"] == {"msteams": {"type": "task/fetch"}, "dialog_id": get_help.DIALOG}
    assert "Requests here are opened for Acme Corp." in text_of(first)
    assert (await teams.c.teams.listeners.help.posts.current(teams.ws, "teams", TENANT,
                                                             CHANNEL)).message_ts == first_id

    teams.fake.clear()
    await _bound(teams, customer="GLOBEX")  # a re-bind to another customer: the same card, now Globex's
    assert teams.fake.of("create") == [c for c in teams.fake.of("create") if get_help.TITLE not in text_of(c.body)]
    assert [(u.conversation_id, u.activity_id) for u in teams.fake.of("update")] == [(CHANNEL, first_id)]
    (only_id, now), = _welcomes(teams).items()
    assert only_id == first_id and "opened for Globex" in text_of(now) and "Acme" not in text_of(now)
    current = await teams.c.teams.listeners.help.posts.current(teams.ws, "teams", TENANT,
                                                               CHANNEL)
    assert current.customer_id != teams.setup.customer_id  # recorded as Globex's now

    teams.fake.conversations[CHANNEL].pop(first_id)  # someone deleted it
    await _bound(teams)
    (again_id, _), = _welcomes(teams).items()
    assert again_id != first_id

    teams.fake.clear()
    await teams.say("unbind customer")
    assert [(d.conversation_id, d.activity_id) for d in teams.fake.of("delete")] == [(CHANNEL, again_id)]
    assert _welcomes(teams) == {}
    assert await teams.c.teams.listeners.help.posts.current(teams.ws, "teams", TENANT,
                                                            CHANNEL) is None


async def test_a_card_teams_will_not_delete_is_marked_closed_and_forgotten(teams):
    await make_admin(teams)
    await _bound(teams)
    (card_id, _), = _welcomes(teams).items()
    teams.fake.fail("delete", status=403, retry_after=None)
    await teams.say("unbind")
    (marked_id, marked), = _welcomes(teams).items()
    assert marked_id == card_id and get_help.CLOSED in text_of(marked)
    assert "actions" not in marked["attachments"][0]["content"]  # nothing left to press
    assert await teams.c.teams.listeners.help.posts.current(teams.ws, "teams", TENANT,
                                                            CHANNEL) is None


async def test_no_card_while_requests_from_chat_are_off_and_none_for_a_dispatch_binding(teams):
    await make_admin(teams)
    await teams.say("bind dispatch")
    assert _welcomes(teams) == {}
    await teams.c.workspaces.set_option(teams.ws, "end_user_requests", "off")
    await _bound(teams)
    assert _welcomes(teams) == {}


async def test_the_dialog_opens_one_ticket_per_form_for_the_channels_customer_and_its_card_is_the_thread(teams):
    contact_id = await _contact(teams)
    await make_admin(teams)
    await _bound(teams)
    (card_id, _), = _welcomes(teams).items()
    on_card = f"{CHANNEL};messageid={card_id}"
    opened = await _dialog(teams, "task/fetch", {"dialog_id": get_help.DIALOG}, user=STRANGER, conversation=on_card)
    form, send = _form_of(opened)
    assert opened["task"]["value"]["title"] == h.FORM_TITLE
    assert [b["id"] for b in form["body"] if b["type"] == "Input.Text"] == ["text"]

    empty = await _dialog(teams, "task/submit", {**send, "text": "   "}, user=STRANGER, conversation=on_card)
    again_form, _ = _form_of(empty)  # the form again, with the reason
    assert h.EMPTY in text_of({"attachments": [{"content": again_form}]})

    teams.fake.clear()
    words = "My laptop will not connect to the office Wi-Fi\nIt says the password is wrong"
    # whatever the data says, the ticket is the channel's customer's
    sent = await _dialog(teams, "task/submit", {**send, "text": words, "customer": "GLOBEX"}, user=STRANGER,
                         conversation=on_card)
    twice = await _dialog(teams, "task/submit", {**send, "text": words}, user=STRANGER, conversation=on_card)
    (ticket,) = await _tickets(teams, "office Wi-Fi")
    assert sent["task"]["type"] == "message" and "opened: My laptop will not connect" in sent["task"]["value"]
    assert twice["task"]["value"] == get_help.ALREADY
    assert ticket.customer_id == teams.setup.customer_id and ticket.contact_id == contact_id
    assert ticket.description == words
    # its card is a new post in the channel; its reply chain is the ticket's thread
    (card_post,) = [c for c in teams.fake.of("create") if "office Wi-Fi" in text_of(c.body)]
    assert card_post.conversation_id == CHANNEL and "Internal" not in text_of(card_post.body)
    root = [aid for aid, body in teams.fake.conversations[CHANNEL].items() if "office Wi-Fi" in text_of(body)][0]
    assert await teams.c.chat.ticket_for_thread(teams.ws, "teams", CHANNEL, root) == ticket.id
    async with teams.c.db.write(Scope.workspace(teams.ws)) as s:  # a technician asked them something
        (await s.get(Ticket, ticket.id)).stage = Stage.WAITING.value
    await teams.say("It works on my phone though", user=STRANGER, conversation=f"{CHANNEL};messageid={root}")
    async with teams.c.db.read(Scope.workspace(teams.ws)) as s:
        public = list((await s.exec(sa.select(TimelineEntry.body).where(
            TimelineEntry.ticket_id == ticket.id, TimelineEntry.kind == "note_public"))).scalars())
        stage = (await s.get(Ticket, ticket.id)).stage
    assert public == ["It works on my phone though"]
    assert stage == Stage.IN_PROGRESS.value  # their answer moves it back, as the PSA would


async def test_someone_who_is_no_contact_still_gets_a_ticket_for_a_technician_to_confirm(teams):
    await make_admin(teams)
    await _bound(teams)
    teams.fake.add_user(NEWCOMER, name="New Person", email="new.person@acme.example")
    (card_id, _), = _welcomes(teams).items()
    on_card = f"{CHANNEL};messageid={card_id}"
    _, send = _form_of(await _dialog(teams, "task/fetch", {"dialog_id": get_help.DIALOG}, user=NEWCOMER,
                                     conversation=on_card))
    sent = await _dialog(teams, "task/submit", {**send, "text": "Printer says toner low"}, user=NEWCOMER,
                         conversation=on_card)
    assert "opened" in sent["task"]["value"]
    (ticket,) = await _tickets(teams, "toner low")
    assert ticket.customer_id == teams.setup.customer_id and ticket.contact_id is None
    async with teams.c.db.read(Scope.workspace(teams.ws)) as s:
        internal = list((await s.exec(sa.select(TimelineEntry.body).where(
            TimelineEntry.ticket_id == ticket.id, TimelineEntry.kind == "note_internal"))).scalars())
    assert any("<new.person@acme.example>" in n and "confirm the contact" in n for n in internal)


async def test_technicians_unbound_conversations_and_requests_off_are_told_what_to_do_and_words_come_back(teams):
    await make_admin(teams)
    await _bound(teams)
    (card_id, _), = _welcomes(teams).items()
    on_card = f"{CHANNEL};messageid={card_id}"
    tech = await _dialog(teams, "task/fetch", {"dialog_id": get_help.DIALOG}, user=TECH, conversation=on_card)
    assert tech["task"]["type"] == "message" and h.ONLY_END_USERS in tech["task"]["value"]
    assert "@Deskbridge ticket new" in tech["task"]["value"]  # the hint in Teams' own form

    await _contact(teams)
    _, send = _form_of(await _dialog(teams, "task/fetch", {"dialog_id": get_help.DIALOG}, user=STRANGER,
                                     conversation=on_card))
    await teams.c.workspaces.set_option(teams.ws, "end_user_requests", "off")
    off = await _dialog(teams, "task/submit", {**send, "text": "Need a new mouse"}, user=STRANGER,
                        conversation=on_card)
    assert h.REQUESTS_OFF in off["task"]["value"] and "> Need a new mouse" in off["task"]["value"]
    await teams.c.workspaces.set_option(teams.ws, "end_user_requests", "offer")

    await teams.say("unbind")  # an old card's button in a conversation that is no customer's any more
    gone = await _dialog(teams, "task/submit", {**send, "text": "Need a new mouse"}, user=STRANGER,
                         conversation=on_card)
    assert h.NOT_BOUND in gone["task"]["value"] and "> Need a new mouse" in gone["task"]["value"]
    assert await _tickets(teams, "new mouse") == []


async def test_installing_into_a_bound_team_brings_back_the_card_of_each_bound_channel(teams):
    await make_admin(teams)
    await _bound(teams)
    await _bound(teams, conversation=CHANNEL2, customer="GLOBEX")
    (one, _), = _welcomes(teams).items()
    (two, _), = _welcomes(teams, CHANNEL2).items()
    removed = teams.activity(kind="installationUpdate", action="remove", conversation=TEAM)
    assert (await teams.send(removed)).status_code == 200
    for channel in (CHANNEL, CHANNEL2):  # removed from the team: none of its channels is posted in
        assert await teams.c.teams.refs.get(teams.ws, tenant_id=TENANT,
                                            conversation_id=channel) is None
    teams.fake.conversations[CHANNEL2].pop(two)  # deleted while the app was away

    teams.fake.clear()
    added = teams.activity(kind="installationUpdate", action="add", conversation=TEAM)
    assert (await teams.send(added)).status_code == 200
    assert [(u.conversation_id, u.activity_id) for u in teams.fake.of("update")] == [(CHANNEL, one)]
    assert list(_welcomes(teams)) == [one]
    (new_two, body), = _welcomes(teams, CHANNEL2).items()
    assert new_two != two and "opened for Globex" in text_of(body)
    # the team's General channel is no customer's: the technicians' greeting goes there
    assert any("link your account" in text_of(c.body) for c in teams.fake.calls if c.conversation_id == TEAM)


async def test_a_bound_group_chat_gets_the_card_and_gets_it_back_on_reinstall(teams):
    await make_admin(teams)
    await _bound(teams, conversation=CHAT, ctype="groupChat")
    (card_id, _), = _welcomes(teams, CHAT).items()
    removed = teams.activity(kind="installationUpdate", action="remove", conversation=CHAT, ctype="groupChat")
    await teams.send(removed)
    teams.fake.conversations[CHAT].pop(card_id)
    teams.fake.clear()
    added = teams.activity(kind="installationUpdate", action="add", conversation=CHAT, ctype="groupChat")
    await teams.send(added)
    (new_id, _), = _welcomes(teams, CHAT).items()
    assert new_id != card_id
    # the technicians' greeting is not posted into a customer's chat: the card is
    assert not any("link your account" in text_of(c.body) for c in teams.fake.calls)
