"""Alert intake end to end in core: formats, idempotency, flap suppression, out-of-order events, customer
mapping rules, triage, storms, and the PSA outbox (real SQLite/PostgreSQL, real parsers)."""

from __future__ import annotations

import asyncio
import json

import pytest
from sqlmodel import select

from core.errors import InvalidInput
from core.intake.alerts import AlertRefused
from store.db import Scope
from store.tables import AlertSource, OutboxOp
from tests.core.intake.conftest import events_v2, ninja
from tests.factories import psa_backed


async def test_ninja_trigger_creates_one_ticket_and_a_replay_changes_nothing(intake):
    await intake.source("ninja")
    body = ninja()
    first = await intake.send("ninja", body)
    assert first.status == "accepted" and [e.outcome for e in first.events] == ["created"]
    [ticket] = await intake.tickets_()
    assert ticket.subject == "Disk C: 95% full" and ticket.priority == "high" and ticket.source == "alert"
    assert ticket.alert_ref.endswith(":s-1") and ticket.device_ref == "srv-42"
    assert ticket.number == first.events[0].ticket_number and ticket.customer_id is not None
    assert ticket.description == "Disk C: 95% full"  # what the customer reads: no device, site or RMM link
    [details] = await intake.notes(ticket.id, with_details=True)  # those are the MSP's: an internal note
    assert "Organization: Acme Corp" in details and "Device: srv-42" in details
    again = await intake.send("ninja", body)  # the sender retries the same delivery
    assert again.status == "duplicate" and again.events[0].outcome == "duplicate"
    assert len(await intake.tickets_()) == 1 and len(await intake.receipts()) == 1
    assert await intake.notes(ticket.id) == []  # a replay adds nothing after the details note


async def test_flapping_alert_updates_one_ticket_with_a_note_per_event(intake):
    await intake.source("ninja")
    await intake.send("ninja", ninja(activity=1, at=1000))
    await intake.send("ninja", ninja("RESET", activity=2, at=1060))
    await intake.send("ninja", ninja(activity=3, at=1120))
    r = await intake.send("ninja", ninja("RESET", activity=4, at=1180))
    [ticket] = await intake.tickets_()
    assert ticket.stage == "new"  # on_resolve=note (default): a note, the ticket stays open
    notes = await intake.notes(ticket.id)
    assert [n.split(":")[0] for n in notes] == ["Alert resolved in ninja", "Alert triggered again (2 times)",
                                                "Alert resolved in ninja"]
    assert r.events[0].outcome == "noted"
    [alert] = await intake.alerts()
    assert alert.status == "resolved" and alert.triggers == 2


async def test_resolve_closes_when_the_workspace_chooses_and_a_new_trigger_opens_a_new_ticket(intake):
    await intake.source("ninja", on_resolve="resolve")
    await intake.send("ninja", ninja(activity=1, at=1000))
    r = await intake.send("ninja", ninja("RESET", activity=2, at=1060))
    assert r.events[0].outcome == "resolved"
    [ticket] = await intake.tickets_()
    assert ticket.stage == "resolved"
    await intake.send("ninja", ninja(activity=3, at=2000))
    tickets = await intake.tickets_()
    assert len(tickets) == 2 and tickets[1].stage == "new"


async def test_out_of_order_resolve_before_its_trigger_opens_no_ticket(intake):
    await intake.source("ninja")
    r1 = await intake.send("ninja", ninja("RESET", activity=2, at=1060))
    r2 = await intake.send("ninja", ninja(activity=1, at=1000))  # the older trigger arrives late
    assert r1.events[0].outcome == "recorded" and r2.events[0].outcome == "stale"
    assert await intake.tickets_() == []
    r3 = await intake.send("ninja", ninja(activity=3, at=1200))  # a real new trigger later
    assert r3.events[0].outcome == "created"


async def test_late_resolve_of_an_earlier_flap_does_not_end_the_current_trigger(intake):
    await intake.source("ninja", on_resolve="resolve")
    await intake.send("ninja", ninja(activity=1, at=1000))
    await intake.send("ninja", ninja(activity=3, at=1120))
    late = await intake.send("ninja", ninja("RESET", activity=2, at=1060))
    assert late.events[0].outcome == "stale"
    [ticket] = await intake.tickets_()
    assert ticket.stage == "new"


async def test_rmm_ids_decide_before_names_and_device_before_org(intake):
    await intake.source("ninja")
    await intake.sources.map(intake.ws, scope="org", by="id", value="7", customer="GLOBEX")
    r = await intake.send("ninja", ninja(series="a"))  # org name says Acme, org id 7 is mapped to Globex
    [t] = await intake.tickets_()
    assert (await intake.sources.mappings(intake.ws))[0].customer == "Globex"
    globex = t.customer_id
    await intake.sources.map(intake.ws, scope="device", by="id", value="43", customer="Acme Corp")
    await intake.send("ninja", ninja(series="b", device=43, activity=2))
    tickets = await intake.tickets_()
    assert len(tickets) == 2 and tickets[1].customer_id != globex
    assert r.events[0].outcome == "created"


async def test_unknown_customer_waits_in_triage_until_mapped(intake):
    await intake.source("pd", kind="events_v2")
    r = await intake.send("pd", events_v2(org_name="Initech", device_id="d-9"))
    assert r.events[0].outcome == "triage" and await intake.tickets_() == []
    [item] = await intake.sources.triage(intake.ws)
    assert item.summary == "Backup failed" and item.device == "nas-01"
    await intake.sources.map(intake.ws, scope="org", by="name", value="Initech", customer="ACME")
    assert await intake.intake.retry_triage(intake.ws) == 1
    [ticket] = await intake.tickets_()
    assert ticket.priority == "critical" and await intake.sources.triage(intake.ws) == []


async def test_a_storm_from_one_device_updates_one_ticket(intake):
    await intake.source("ninja")
    for i in range(5):
        await intake.send("ninja", ninja(series=f"s-{i}", activity=i, subject=f"Check {i} failed"))
    [ticket] = await intake.tickets_()
    notes = await intake.notes(ticket.id)
    assert len(notes) == 4 and all(n.startswith("Another alert on srv-42") for n in notes)


async def test_a_storm_across_devices_of_one_customer_is_grouped(intake):
    await intake.source("ninja")
    for d in range(6):
        await intake.send("ninja", ninja(series=f"s-{d}", activity=d, device=100 + d))
    tickets = await intake.tickets_()
    assert len(tickets) == 3  # storm_threshold 3: later devices join the newest open alert ticket
    assert len(await intake.notes(tickets[-1].id)) == 3
    intake.clock.advance(minutes=16)  # outside the window, a new device gets its own ticket again
    await intake.send("ninja", ninja(series="s-x", activity=99, device=200))
    assert len(await intake.tickets_()) == 4


async def test_secrets_are_checked_and_stored_encrypted(intake):
    key = await intake.source("ninja")
    secret = intake.keys["ninja"][1]
    raw = b'{"id": 1}'
    for headers in ({}, {"x-deskbridge-secret": secret + "x"}, {"authorization": "Bearer wrong"}):
        with pytest.raises(AlertRefused):
            await intake.intake.ingest(key, headers, raw)
    with pytest.raises(AlertRefused):
        await intake.intake.ingest("ninjaone-unknown", {"x-deskbridge-secret": secret}, raw)
    ok = await intake.intake.ingest(key, {"authorization": f"Bearer {secret}"}, raw)
    assert ok.status == "ignored"  # not a CONDITION activity
    async with intake.db.read(Scope.workspace(intake.ws)) as s:
        row = (await s.exec(select(AlertSource))).one()
    assert secret.encode() not in row.secret_ciphertext and secret[8:].encode() not in row.secret_ciphertext
    new = await intake.sources.rotate_secret(intake.ws, "ninja")
    with pytest.raises(AlertRefused):
        await intake.intake.ingest(key, {"x-deskbridge-secret": secret}, raw)
    assert (await intake.intake.ingest(key, {"x-deskbridge-secret": new}, raw)).status == "ignored"
    await intake.sources.set_option(intake.ws, "ninja", "enabled", "off")
    with pytest.raises(AlertRefused, match="disabled"):
        await intake.intake.ingest(key, {"x-deskbridge-secret": new}, raw)


@pytest.mark.parametrize(("body", "says"), [
    (b"not json", "not JSON"),
    (b"[1, 2]", "JSON object"),
    (b'{"event_action": "explode"}', "event_action"),
    (b'{"event_action": "resolve"}', "dedup_key"),
    (b'{"event_action": "trigger", "payload": {"source": "x"}}', "summary"),
    (b'{"event_action": "trigger", "payload": {"summary": "s", "severity": "urgent"}}', "severity"),
])
async def test_bad_events_v2_bodies_are_refused_with_what_to_change(intake, body, says):
    await intake.source("pd", kind="events_v2")
    with pytest.raises(InvalidInput, match=says) as err:
        await intake.send("pd", body)
    assert err.value.hint
    assert await intake.receipts() == []


async def test_events_v2_without_dedup_key_still_correlates_repeats(intake):
    await intake.source("pd", kind="events_v2")
    await intake.sources.map(intake.ws, scope="device", by="name", value="NAS-01", customer="ACME")
    a = await intake.send("pd", events_v2(dedup=None, ts="2026-12-07T09:00:00Z"))
    b = await intake.send("pd", events_v2(dedup=None, ts="2026-12-07T09:05:00Z"))
    assert [a.events[0].outcome, b.events[0].outcome] == ["created", "noted"]
    assert a.events[0].dedup_key == b.events[0].dedup_key and a.events[0].dedup_key.startswith("auto:")


async def test_psa_backed_alert_tickets_and_notes_go_through_the_outbox(intake):
    psa = await psa_backed(intake.db, intake.ws)  # default connection; its Globex is external id 251
    await intake.source("ninja")
    r = await intake.send("ninja", ninja(org_name="Globex", activity=1, at=1000))
    assert r.events[0].outcome == "triage"  # two customers are named Globex: a name never guesses
    await intake.sources.map(intake.ws, scope="org", by="id", value="7", customer=str(psa.other_customer_id))
    assert await intake.intake.retry_triage(intake.ws) == 1
    await intake.send("ninja", ninja("RESET", org_name="Globex", activity=2, at=1100))
    async with intake.db.read(Scope.workspace(intake.ws)) as s:
        ops = (await s.exec(select(OutboxOp).order_by(OutboxOp.id))).all()
    assert [op.kind for op in ops] == ["create_ticket", "add_note", "add_note"]  # details, then the resolve
    assert ops[1].payload["visibility"] == "internal" and "Source: ninja" in ops[1].payload["text"]
    assert ops[0].payload["company_external_id"] == "251" and ops[0].payload["priority_external_id"] == "2"


async def test_simultaneous_deliveries_of_one_alert_make_one_ticket(intake):
    await intake.source("ninja")
    results = await asyncio.gather(*(intake.send("ninja", ninja(activity=i, at=1000 + i)) for i in range(12)))
    assert len(await intake.tickets_()) == 1
    await intake.intake.sweep()  # anything a lease holder left is applied
    receipts = await intake.receipts()
    assert len(receipts) == 12 and all(r.applied_at is not None for r in receipts)
    assert sorted(r.outcome for r in receipts).count("created") == 1
    assert sum(e.outcome in ("created", "noted", "queued") for r in results for e in r.events) == 12


async def test_a_source_disabled_or_rotated_after_first_use_records_nothing(intake):
    key = await intake.source("ninja")
    secret = intake.keys["ninja"][1]
    assert (await intake.send("ninja", ninja(activity=1))).status == "accepted"
    new = await intake.sources.rotate_secret(intake.ws, "ninja")
    with pytest.raises(AlertRefused):  # the old secret: refused before anything is written
        await intake.intake.ingest(key, {"x-deskbridge-secret": secret}, json.dumps(ninja(activity=2)).encode())
    assert len(await intake.receipts()) == 1
    assert (await intake.intake.ingest(key, {"x-deskbridge-secret": new},
                                       json.dumps(ninja(activity=3)).encode())).status == "accepted"
    await intake.sources.set_option(intake.ws, "ninja", "enabled", "off")
    with pytest.raises(AlertRefused, match="disabled"):
        await intake.intake.ingest(key, {"x-deskbridge-secret": new}, json.dumps(ninja(activity=4)).encode())
    assert len(await intake.receipts()) == 2
