"""Ticket cards' RMM links and alert buttons in Slack: settings from `/deskbridge settings`, URL buttons with
filled-in, encoded URLs, and Acknowledge/Resolve only when an alert webhook exists (then delivered, signed)."""

from __future__ import annotations

import json

import pytest
from sqlmodel import select

from core.context import Actor
from store.db import Scope
from store.tables import Alert, ChatLink, OutboxOp, Ticket
from tests.bot.slack.conftest import ADMIN, TECH
from tests.bot.slack.test_slack_app import assert_valid_blocks
from tests.fakes.alert_receiver import FakeAlertReceiver

SECRET = "dbwhsec_" + "card-test-secret-0123456789abcdef"


@pytest.fixture
async def receiver():
    r = await FakeAlertReceiver(SECRET).start()
    yield r
    await r.stop()


async def _alert_ticket(h) -> None:
    async with h.c.db.write(Scope.workspace(h.ws)) as s:
        t = (await s.exec(select(Ticket).where(Ticket.number == 5001))).one()
        t.device_ref, t.alert_ref, t.type_name = "WS 01/a", "AL-9#x", "Backup Failure"
        s.add(t)


async def _ops(h):
    async with h.c.db.read(Scope.workspace(h.ws)) as s:
        return list((await s.exec(select(OutboxOp).order_by(OutboxOp.id))).all())


async def _card_buttons(h) -> dict[str, dict]:
    await h.slash("/ticket", "5001")
    blocks = h.fake.of("chat.postMessage")[-1].args["blocks"]
    assert_valid_blocks(blocks)
    return {e["action_id"]: e for b in blocks if b["type"] == "actions" for e in b["elements"]}


async def _say(h, text: str, user: str = ADMIN) -> str:
    await h.slash("/deskbridge", text, user=user)
    return json.dumps(h.fake.webhooks[-1], ensure_ascii=False)


async def test_settings_from_chat_are_validated_shown_and_cleared(slack):
    # Slack wraps a pasted URL in <...> and escapes & as &amp;: stored as the admin meant it
    said = await _say(slack, "settings rmm_device_url <https://rmm.example.com/devices/{ref}?site=1&amp;copy=2>")
    assert "rmm_device_url is now https://rmm.example.com/devices/{ref}?site=1&amp;copy=2" in said
    assert (await slack.c.workspaces.settings(slack.ws))["rmm_device_url"] == \
        "https://rmm.example.com/devices/{ref}?site=1&copy=2"

    said = await _say(slack, "settings rmm_alert_url http://rmm.example.com/alerts/{ref}")
    assert "must use https://" in said and "e.g. https://rmm.example.com/alerts/{ref}" in said
    said = await _say(slack, "settings runbook_url https://wiki.example.com/{client}/{ref}")
    assert "unknown placeholder {client}" in said and "{customer} and {ref}" in said
    assert (await slack.c.workspaces.settings(slack.ws))["runbook_url"] is None

    said = await _say(slack, "settings rmm_device_url https://other.example.com/{ref}", user=TECH)
    assert "admin" in said.lower()  # technicians cannot change settings
    assert (await slack.c.workspaces.settings(slack.ws))["rmm_device_url"] == \
        "https://rmm.example.com/devices/{ref}?site=1&copy=2"

    listing = await _say(slack, "settings", user=TECH)
    assert "rmm_device_url = https://rmm.example.com/devices/{ref}?site=1&copy=2" in listing
    assert "runbook_url = (not set)" in listing and "alert action webhook = (not set" in listing

    said = await _say(slack, "settings rmm_device_url off")
    assert "rmm_device_url is now off" in said
    assert (await slack.c.workspaces.settings(slack.ws))["rmm_device_url"] is None


async def test_card_links_are_filled_and_encoded_and_no_alert_buttons_without_a_webhook(slack):
    await _alert_ticket(slack)
    before = await _card_buttons(slack)
    assert "db_open_rmm" not in before and "db_open_runbook" not in before  # no templates: no dead buttons
    assert "db_alert_ack" not in before and "db_alert_resolve" not in before

    await _say(slack, "settings rmm_device_url https://rmm.example.com/devices/{ref}")
    await _say(slack, "settings rmm_alert_url https://rmm.example.com/alerts/{ref}")
    await _say(slack, "settings runbook_url https://wiki.example.com/runbooks/{customer}/{ref}")
    buttons = await _card_buttons(slack)
    assert buttons["db_open_rmm"]["url"] == "https://rmm.example.com/devices/WS%2001%2Fa"
    assert buttons["db_open_runbook"]["url"] == "https://wiki.example.com/runbooks/Acme%20Corp/Backup%20Failure"
    assert "db_alert_ack" not in buttons and "db_alert_resolve" not in buttons  # still no webhook
    card = json.dumps(slack.fake.of("chat.postMessage")[-1].args["blocks"])
    assert "https://rmm.example.com/alerts/AL-9%23x" in card  # the alert is a link on the card


async def test_an_old_cards_alert_button_is_refused_and_nothing_is_queued(slack):
    await _alert_ticket(slack)
    await slack.interactive(slack.action_payload("alert_ack", "5001"))
    reply = json.dumps(slack.fake.webhooks[-1])
    assert "Alert actions are not set up here" in reply and "deskbridge rmm set-webhook" in reply
    assert await _ops(slack) == []


async def test_acknowledge_goes_through_the_outbox_to_the_signed_webhook(slack, receiver):
    await _alert_ticket(slack)
    await slack.c.alert_webhooks.configure(slack.ws, url=receiver.url, secret=SECRET)
    listing = await _say(slack, "settings", user=TECH)
    assert f"alert action webhook = http://127.0.0.1:{receiver.port}/hooks/deskbridge?\u2026" in listing
    assert SECRET not in listing and "part-of-the-url" not in listing
    buttons = await _card_buttons(slack)
    assert buttons["db_alert_ack"]["value"] == "5001" and buttons["db_alert_resolve"]["style"] == "danger"

    async with slack.c.db.read(Scope.workspace(slack.ws)) as s:
        card_ts = (await s.exec(select(ChatLink.message_ts).order_by(ChatLink.id.desc()))).first()
    await slack.interactive(slack.action_payload("alert_ack", "5001", message_ts=card_ts))
    said = slack.fake.of("chat.postMessage")[-1].args
    assert "Alert acknowledge queued" in said["text"] and said["thread_ts"] == card_ts
    [op] = await _ops(slack)
    assert op.kind == "alert_action" and op.status == "pending"
    assert await slack.c.outbox_worker.drain() == 1
    [op] = await _ops(slack)
    assert op.status == "done"
    [req] = receiver.received
    assert req.signature_ok and req.headers["Idempotency-Key"] == op.marker
    assert req.body == {"action": "acknowledge", "alert_ref": "AL-9#x", "device_ref": "WS 01/a", "ticket_number": 5001,
                        "customer": "ACME", "actor": op.actor, "idempotency_key": op.marker}


async def test_linked_alerts_show_as_chips_to_technicians_and_never_in_the_customers_channel(slack):
    info, secret = await slack.c.alert_sources.add(slack.ws, name="pd", kind="events_v2")
    for key, summary, severity in (("k-disk", "Disk C: 97% full", "critical"), ("k-cpu", "CPU pegged", "warning")):
        body = {"event_action": "trigger", "dedup_key": key, "links": [
            {"href": f"https://rmm.example/alerts/{key}", "text": "Open in RMM"}],
            "payload": {"summary": summary, "source": "srv-01", "severity": severity}}
        await slack.c.alert_intake.ingest(info.key, {"x-deskbridge-secret": secret}, json.dumps(body).encode())
    [disk, cpu] = await slack.c.alert_sources.triage(slack.ws)
    ticket_id, _ = await slack.c.alert_intake.create_ticket(Actor.system(slack.ws), disk.alert_id,
                                                            slack.setup.customer_id)
    async with slack.c.db.write(Scope.workspace(slack.ws)) as s:  # the second alert grouped onto the ticket
        (await s.get(Alert, cpu.alert_id)).ticket_id = ticket_id
        t = await s.get(Ticket, ticket_id)
        t.number, t.external_id = 7001, "7001"  # the PSA numbered it
    tech = await slack.c.chat_views.ticket(Actor.system(slack.ws), "7001")
    assert [(a.source, a.severity, a.state) for a in tech.alerts] == [("pd", "warning", "triage"),
                                                                       ("pd", "critical", "triggered")]
    assert tech.alerts[1].url == "https://rmm.example/alerts/k-disk"
    await slack.slash("/ticket", "7001")
    card = json.dumps(slack.fake.of("chat.postMessage")[-1].args["blocks"], ensure_ascii=False)
    assert "<https://rmm.example/alerts/k-disk|Disk C: 97% full>" in card and "critical · triggered" in card
    slack.fake.shared_channels.add("C_ACME")  # Slack Connect: the customer's people read it
    await slack.slash("/deskbridge", "bind customer ACME", user=ADMIN, channel="C_ACME")
    await slack.settle()
    await slack.slash("/ticket", "7001", channel="C_ACME")
    await slack.settle()
    posted = [c for c in slack.fake.of("chat.postMessage") if c.args["channel"] == "C_ACME"]
    customer_card = json.dumps(posted[-1].args["blocks"], ensure_ascii=False)
    assert "Disk C: 97% full" in customer_card  # the ticket's subject, as the customer knows it
    assert "rmm.example" not in customer_card and "critical · triggered" not in customer_card
    assert "srv-01" not in customer_card  # the RMM's details are an internal note, not the description
    assert "CPU pegged" not in customer_card  # the other alert on the ticket: a chip, technicians only
