""""Create ticket" from chat for an alert that made no ticket, through the real bolt app and the fake Slack
API (core/intake/offers.py; bot/slack/listeners/alerts.py): the alert is offered once in technicians'
dispatch channels only, with a customer picker; the button creates one ticket (double clicks and retries
included), linked to the alert, and its card goes in the offer's thread; end users cannot."""

from __future__ import annotations

import json
from typing import Any

from sqlmodel import select

from store.db import Scope
from store.tables import Alert, ChatLink, Customer, Ticket
from tests.bot.slack.conftest import ADMIN, STRANGER, TECH
from tests.bot.slack.test_slack_app import assert_valid_blocks

DISPATCH, CUSTOMER_CH = "C_DISP", "C_CUST"


async def _setup(h) -> str:
    await h.slash("/deskbridge", "bind dispatch", user=ADMIN, channel=DISPATCH)
    await h.slash("/deskbridge", "bind customer ACME", user=ADMIN, channel=CUSTOMER_CH)
    await h.slash("/deskbridge", "bind dispatch", user=ADMIN, channel=CUSTOMER_CH)  # ACME's: no triage alerts
    info, secret = await h.c.alert_sources.add(h.ws, name="pd", kind="events_v2")
    h.fake.clear()
    h.key_secret = (info.key, secret)
    return info.key


async def _trigger(h, summary: str = "Backup failed on NAS", dedup: str = "nas-backup", at: str = "10:00") -> None:
    key, secret = h.key_secret
    body = {"event_action": "trigger", "dedup_key": dedup,
            "payload": {"summary": summary, "source": "nas-01", "severity": "critical",
                        "timestamp": f"2026-12-07T{at}:00Z"}}
    result = await h.c.alert_intake.ingest(key, {"x-deskbridge-secret": secret}, json.dumps(body).encode())
    assert result.events[0].outcome == "triage"
    await h.settle()


def _offers(h) -> list[Any]:
    return [c for c in h.fake.of("chat.postMessage") if "Backup failed" in str(c.args.get("text"))]


def _blocks(call: Any) -> list[dict[str, Any]]:
    b = call.args["blocks"]
    return b if isinstance(b, list) else json.loads(b)


def _click(h, offer: Any, ts: str, customer: str | None, user: str = TECH) -> dict[str, Any]:
    button = next(e for b in _blocks(offer) if b["type"] == "actions" for e in b["elements"] if e["type"] == "button")
    payload = h.action_payload("x", button["value"], user=user, channel=DISPATCH, message_ts=ts)
    payload["actions"][0].update(action_id=button["action_id"], block_id="dbalert")
    payload["message"]["blocks"] = _blocks(offer)
    chosen = {"type": "static_select", "selected_option": {"text": {"type": "plain_text", "text": "x"},
                                                           "value": customer}} if customer else {}
    payload["state"] = {"values": {"dbalert": {"dbalert:customer": chosen}}}
    return payload


async def _acme(h) -> int:
    async with h.c.db.read(Scope.workspace(h.ws)) as s:
        return int((await s.exec(select(Customer.id).where(Customer.identifier == "ACME"))).one())


async def test_an_alert_without_a_ticket_is_offered_once_in_technicians_dispatch_channels(slack):
    await _setup(slack)
    await _trigger(slack)
    await _trigger(slack, at="10:05")  # the same alert again (a real repeat): no second offer
    [offer] = _offers(slack)
    assert offer.args["channel"] == DISPATCH  # not ACME's channel: an alert with no customer is nobody's
    blocks = _blocks(offer)
    assert_valid_blocks(blocks)
    text = json.dumps(blocks, ensure_ascii=False)
    assert "Alert · pd · critical · Backup failed on NAS" in text and "Device: nas-01" in text
    picker = next(e for b in blocks if b["type"] == "actions" for e in b["elements"] if e["type"] == "static_select")
    assert {o["value"] for o in picker["options"]} >= {str(await _acme(slack))}


async def test_create_ticket_makes_one_linked_ticket_whatever_the_clicks_and_posts_its_card_in_the_thread(slack):
    await _setup(slack)
    await _trigger(slack)
    [offer] = _offers(slack)
    ts = next(ts for (ch, ts), args in slack.fake.messages.items() if ch == DISPATCH and args is offer.args)
    acme = await _acme(slack)

    await slack.interactive(_click(slack, offer, ts, None))  # no customer picked: told what to do
    await slack.settle()
    assert "no customer yet" in json.dumps(slack.fake.webhooks[-1]) and "intake map" in json.dumps(slack.fake.webhooks[-1])

    await slack.interactive(_click(slack, offer, ts, str(acme), user=STRANGER))  # not a technician
    await slack.settle()
    assert "technician" in json.dumps(slack.fake.webhooks[-1]).lower()

    click = _click(slack, offer, ts, str(acme))
    await slack.interactive(click)
    await slack.interactive(_click(slack, offer, ts, str(acme)))  # a double click
    await slack.interactive(click)  # and a retry of the first
    await slack.settle()
    async with slack.c.db.read(Scope.workspace(slack.ws)) as s:
        tickets = (await s.exec(select(Ticket).where(Ticket.subject == "Backup failed on NAS"))).all()
        [alert] = (await s.exec(select(Alert))).all()
        links = (await s.exec(select(ChatLink).where(ChatLink.channel_id == DISPATCH))).all()
    [ticket] = tickets
    assert ticket.customer_id == acme and alert.ticket_id == ticket.id and alert.status == "triggered"
    answers = [json.dumps(w) for w in slack.fake.webhooks[-3:]]
    assert sum("was created from this alert" in a and '"replace_original": true' in a for a in answers) == 1
    assert sum("already on ticket" in a for a in answers) == 2
    card = [c for c in slack.fake.of("chat.postMessage") if c.args.get("thread_ts") == ts]
    assert len(card) == 1 and "Backup failed on NAS" in json.dumps(card[0].args)
    assert [(link.ticket_id, link.message_ts) for link in links] == [(ticket.id, ts)]  # the thread is the ticket's
