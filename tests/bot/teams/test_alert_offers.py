""""Create ticket" from Teams for an alert that made no ticket, through the real Teams SDK app and the fake Bot
Connector (core/intake/offers.py; bot/teams/alerts.py): offered once in the technicians' dispatch channel with
a customer choice; the Action.Execute button creates one ticket whatever the clicks, linked to the alert, and
its card goes in the offer's reply chain; end users cannot."""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa

from bot.teams import cards
from store.db import Scope
from store.tables import Alert, ChatLink, Customer, Ticket
from tests.bot.teams.conftest import CHANNEL, STRANGER, text_of
from tests.bot.teams.test_commands import assert_valid_card
from tests.bot.teams.test_threads import make_admin


async def _trigger(h, at: str) -> None:
    key, secret = h.key_secret
    body = {"event_action": "trigger", "dedup_key": "nas-backup",
            "payload": {"summary": "Backup failed on NAS", "source": "nas-01", "severity": "critical",
                        "timestamp": f"2026-12-07T{at}:00Z"}}
    result = await h.c.alert_intake.ingest(key, {"x-deskbridge-secret": secret}, json.dumps(body).encode())
    assert result.events[0].outcome == "triage"
    await h.c.teams.notifier.drain()
    await h.settle()


async def _invoke(h, data: dict[str, Any], *, user: str, conversation: str) -> dict:
    body = h.activity(kind="invoke", user=user, conversation=conversation, name="adaptiveCard/action",
                      value={"action": {"type": "Action.Execute", "verb": cards.VERB, "data": data},
                             "trigger": "manual"})
    resp = await h.send(body)
    assert resp.status_code == 200
    return resp.json()


async def test_an_alert_offer_creates_one_linked_ticket_and_its_card_goes_in_the_offers_chain(teams):
    await make_admin(teams)
    await teams.say("bind dispatch")
    info, secret = await teams.c.alert_sources.add(teams.ws, name="pd", kind="events_v2")
    teams.key_secret = (info.key, secret)
    teams.fake.clear()
    await _trigger(teams, "10:00")
    await _trigger(teams, "10:05")  # a real repeat of the same alert: offered once
    offers = [c for c in teams.fake.of("create") if "Backup failed on NAS" in text_of(c.body)]
    assert len(offers) == 1 and offers[0].conversation_id == CHANNEL
    card = offers[0].body["attachments"][0]["content"]
    assert_valid_card(card)
    [choice] = [b for b in card["body"] if b["type"] == "Input.ChoiceSet"]
    async with teams.c.db.read(Scope.workspace(teams.ws)) as s:
        acme = (await s.exec(sa.select(Customer.id).where(Customer.identifier == "ACME"))).scalar_one()
    assert str(acme) in {c["value"] for c in choice["choices"]}
    offer_id = next(aid for aid, body in teams.fake.conversations[CHANNEL].items() if body is offers[0].body
                    or text_of(body) == text_of(offers[0].body))
    chain = f"{CHANNEL};messageid={offer_id}"
    data = {**card["actions"][0]["data"], "customer": str(acme)}  # Teams merges the card's inputs into the data

    refused = await _invoke(teams, data, user=STRANGER, conversation=chain)
    assert "technician" in json.dumps(refused).lower()
    first = await _invoke(teams, data, user="aad-bob", conversation=chain)
    again = await _invoke(teams, data, user="aad-bob", conversation=chain)  # a double click
    assert "was created from this alert" in text_of(first) and "already on ticket" in json.dumps(again)
    async with teams.c.db.read(Scope.workspace(teams.ws)) as s:
        [ticket] = (await s.exec(sa.select(Ticket).where(Ticket.subject == "Backup failed on NAS"))).scalars().all()
        [alert] = (await s.exec(sa.select(Alert))).scalars().all()
        [link] = (await s.exec(sa.select(ChatLink).where(ChatLink.ticket_id == ticket.id))).scalars().all()
    assert ticket.customer_id == acme and alert.ticket_id == ticket.id
    in_chain = [c for c in teams.fake.of("create") if c.conversation_id == chain]
    assert len(in_chain) == 1 and "Backup failed on NAS" in text_of(in_chain[0].body)
    assert link.message_ts == offer_id and link.conversation_ref["card_ts"] != offer_id
