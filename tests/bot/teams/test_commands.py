"""Commands by mention and card buttons, through the same grammar and runner as Slack; every card sent is a
valid Adaptive Card 1.5 within Teams' host limits."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import sqlalchemy as sa

from bot.teams import cards
from store.db import Scope
from store.tables import ChannelBinding, Member, OutboxOp, Ticket
from tests.bot.teams.conftest import ADMIN, CHANNEL, STRANGER, TENANT, text_of

SCHEMA = json.loads((Path(__file__).parent / "adaptive-card-1.5.schema.json").read_text())
VALIDATOR = jsonschema.Draft6Validator(SCHEMA)


def assert_valid_card(card: dict[str, Any]) -> None:
    errors = sorted(VALIDATOR.iter_errors({k: v for k, v in card.items() if k != "msteams"}), key=str)
    assert errors == [], errors[:3]
    assert card["version"] == "1.5"

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("actions"), list):
                assert len(node["actions"]) <= 6  # Teams' host config: maxActions 6
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(card)


def cards_in(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [a["content"] for a in body.get("attachments") or [] if a.get("contentType") == cards.CARD]


async def invoke(h, data: dict[str, Any], *, user: str = "aad-bob", conversation: str = CHANNEL):
    body = h.activity(kind="invoke", user=user, conversation=conversation, name="adaptiveCard/action",
                      value={"action": {"type": "Action.Execute", "verb": cards.VERB, "data": data},
                             "trigger": "manual"})
    resp = await h.send(body)
    return body, resp


async def outbox_ops(h) -> list[OutboxOp]:
    async with h.c.db.read(Scope.workspace(h.ws)) as s:
        return list((await s.exec(sa.select(OutboxOp).order_by(OutboxOp.id))).scalars().all())


async def test_tickets_mine_is_a_queue_card(teams):
    await teams.say("tickets mine")
    posted = teams.posted()[-1]
    (card,) = cards_in(posted)
    assert_valid_card(card)
    text = text_of(posted)
    assert "Filters: mine" in text and "#5001 VPN down" in text
    assert "5002" not in text and "5003" not in text  # not Bob's


async def test_ticket_in_a_channel_is_a_new_post_whose_reply_chain_is_its_thread(teams):
    await teams.say("ticket 5001")
    call = teams.fake.of("create")[-1]
    assert call.conversation_id == CHANNEL  # a new channel post, not a reply in the command's chain
    (card,) = cards_in(call.body)
    assert_valid_card(card)
    assert "#5001 VPN down" in text_of(call.body)
    root = next(iter(teams.fake.conversations[CHANNEL]))
    async with teams.c.db.read(Scope.workspace(teams.ws)) as s:
        ticket_id = (await s.exec(sa.select(Ticket.id).where(Ticket.number == 5001))).scalar_one()
    assert await teams.c.chat.ticket_for_thread(teams.ws, "teams", CHANNEL, root) == ticket_id
    verbs = [a for a in card["actions"] if a["type"] == "Action.Execute"]
    assert {a["data"]["action"] for a in verbs} >= {"reply", "note", "status", "time"}


async def test_unknown_ticket_and_bad_words_say_what_to_do(teams):
    await teams.say("ticket banana")
    assert "not a ticket number" in teams.last_text() and "ticket 1042" in teams.last_text()
    await teams.say("tickets priority:urgentish")
    assert cards_in(teams.posted()[-1])  # an error card, not silence


async def test_help_for_everyone_who_is_known(teams):
    await teams.say("help")
    text = teams.last_text()
    assert "Deskbridge commands" in text and "`@Deskbridge tickets mine`" in text
    assert "`@Deskbridge ticket 1042`" in text and "`@Deskbridge bind customer ACME`" in text
    assert "`@Deskbridge my queue`" in text and "@Deskbridge link" in text  # the hint too
    assert "/tickets" not in text and "/deskbridge" not in text and "/ticket " not in text  # no Slack forms


async def test_hints_under_errors_use_the_teams_form(teams):
    await teams.say("frobnicate")  # not a command: the hint names one the user can type here
    text = teams.last_text()
    assert "@Deskbridge" in text and "/deskbridge" not in text


async def test_a_stranger_in_an_unbound_channel_is_told_how_to_get_in(teams):
    await teams.say("tickets", user=STRANGER)
    assert "does not know you yet" in teams.last_text()


async def test_link_uses_the_email_teams_reports(teams):
    async with teams.c.db.write(Scope.workspace(teams.ws)) as s:
        s.add(Member(workspace_id=teams.ws, connection_id=teams.setup.connection_id, external_id="178",
                     identifier="ada", name="Ada Admin", email="admin@acme-msp.example", is_admin=True))
    await teams.say("link", user=ADMIN, ctype="personal", conversation="a:personal-ada")
    assert "linked to technician Ada Admin" in teams.last_text()
    member = await teams.c.directory.member_for_chat_user(teams.ws, platform="teams", team_id=TENANT, user_id=ADMIN)
    assert member is not None and member.name == "Ada Admin"


async def test_bind_customer_scopes_the_channel(teams):
    async with teams.c.db.write(Scope.workspace(teams.ws)) as s:
        bob = await s.get(Member, teams.setup.member_id)
        bob.is_admin = True
    teams.c.chat.invalidate()
    await teams.say("bind customer ACME")
    assert "bound to customer Acme Corp" in teams.last_text()
    async with teams.c.db.read(Scope.workspace(teams.ws)) as s:
        rows = (await s.exec(sa.select(ChannelBinding))).scalars().all()
    assert [(r.platform, r.team_id, r.channel_id) for r in rows] == [("teams", TENANT, CHANNEL)]
    await teams.say("tickets")
    text = teams.last_text()
    assert "VPN down" in text and "Printer jammed" not in text  # GLOBEX's ticket is out of this channel


async def test_only_admins_bind(teams):
    await teams.say("bind customer ACME")
    assert "Only Deskbridge admins" in teams.last_text()


async def test_assign_to_me_answers_with_the_refreshed_card(teams):
    _, resp = await invoke(teams, {"action": "assign_me", "ref": "5002"})
    assert resp.status_code == 200
    out = resp.json()
    assert out["statusCode"] == 200 and out["type"] == cards.CARD
    assert_valid_card(out["value"])
    assert "Assignee: Bob Tech" in text_of({"value": out["value"]})
    assert [op.kind for op in await outbox_ops(teams)] == ["update_ticket"]


async def test_reply_and_status_in_one_submission_written_once(teams):
    _, form = await invoke(teams, {"action": "reply", "ref": "5001"})
    card = form.json()["value"]
    assert_valid_card(card)
    ids = {el.get("id") for el in card["body"]}
    assert {"text", "visibility", "status"} <= ids
    choices = next(el for el in card["body"] if el.get("id") == "status")["choices"]
    new_status = next(c["value"] for c in choices if c["value"] != "__no_change__" and "Progress" in c["title"])
    data = {"action": "reply", "ref": "5001", "submit": True, "text": "Rebooted the VPN box; try now.",
            "visibility": "public", "status": new_status}
    body, resp = await invoke(teams, data)
    assert resp.status_code == 200
    assert "queued" in text_of({"value": resp.json()["value"]})
    ops = await outbox_ops(teams)
    assert sorted(op.kind for op in ops) == ["add_note", "update_ticket"]  # one transaction, as in Slack
    assert "Rebooted the VPN box; try now." in json.dumps([op.payload for op in ops])
    again = await teams.send(body)  # Teams redelivers the same invoke
    assert again.status_code == 200
    assert len(await outbox_ops(teams)) == len(ops)  # processed once


async def test_a_refused_submission_gives_the_form_back_filled_in(teams):
    _, resp = await invoke(teams, {"action": "reply", "ref": "5001", "submit": True, "text": "   ",
                                   "visibility": "internal", "status": "__no_change__"})
    assert resp.status_code == 200
    out = resp.json()
    assert out["type"] == cards.CARD
    card = out["value"]
    assert_valid_card(card)
    errors = [b["text"] for b in card["body"] if b.get("type") == "TextBlock" and b.get("color") == "Attention"]
    assert errors == ["The note is empty. Write a note and try again."]
    fields = {b["id"]: b.get("value") for b in card["body"] if "id" in b}
    assert fields["visibility"] == "internal"  # what was chosen, not the form's default
    assert await outbox_ops(teams) == []


async def test_an_unknown_user_clicking_gets_told_not_a_crash(teams):
    _, resp = await invoke(teams, {"action": "assign_me", "ref": "5001"}, user=STRANGER)
    assert resp.status_code == 200
    assert resp.json()["type"] == "application/vnd.microsoft.activity.message"
    assert "does not know you yet" in resp.json()["value"]
    assert await outbox_ops(teams) == []


@pytest.mark.parametrize("kind", ["message", "queue", "ticket", "form"])
async def test_every_card_kind_is_valid(teams, kind):
    if kind == "message":
        await teams.say("help")
    elif kind == "queue":
        await teams.say("tickets")
    elif kind == "ticket":
        await teams.say("ticket 5003")
    else:
        await teams.say("ticket new Printer on fire")
    (card,) = cards_in(teams.posted()[-1])
    assert_valid_card(card)


async def test_queue_pages_in_place(teams):
    async with teams.c.db.write(Scope.workspace(teams.ws)) as s:
        for n in range(6000, 6020):
            s.add(Ticket(workspace_id=teams.ws, number=n, external_id=str(n), connection_id=teams.setup.connection_id,
                         customer_id=teams.setup.customer_id, subject=f"Ticket {n}", priority="low", priority_rank=3,
                         stage="new", psa_status_id="10", psa_status_name="New", source="psa"))
    await teams.say("tickets customer:ACME")
    (card,) = cards_in(teams.posted()[-1])
    nxt = next(a for a in card.get("actions", []) if a["data"].get("action") == "page")
    first_page = text_of(teams.posted()[-1])
    _, resp = await invoke(teams, nxt["data"])
    page2 = resp.json()["value"]
    assert_valid_card(page2)
    second = text_of({"value": page2})
    shown1 = {line.split()[0] for line in first_page.splitlines() if line.startswith("#")}
    shown2 = {line.split()[0] for line in second.splitlines() if line.startswith("#")}
    assert shown1 and shown2 and not shown1 & shown2  # the next rows, none repeated


async def test_ticket_new_form_creates_one_ticket(teams):
    await teams.say("ticket new Printer on fire")
    (form,) = cards_in(teams.posted()[-1])
    fields = {b["id"]: b for b in form["body"] if "id" in b}
    assert fields["subject"]["value"] == "Printer on fire"
    submit = form["actions"][0]["data"]
    customer = next(c["value"] for c in fields["customer"]["choices"] if c["title"].startswith("Acme"))
    data = {**submit, "subject": "Printer on fire", "customer": customer, "priority": "high",
            "description": "Smoke from tray 2"}
    body, resp = await invoke(teams, data)
    assert resp.status_code == 200 and "Printer on fire" in text_of({"value": resp.json()["value"]})
    await teams.send(body)  # redelivered
    assert [op.kind for op in await outbox_ops(teams)] == ["create_ticket"]
