"""Alert receipts applied in chunks, one transaction each (issue 21, the alert storm): what a lease holder
finds is applied in order, a crash in a chunk leaves nothing half-done and repeats nothing, and a PSA gets
a ticket's writes in the order they were made (real SQLite/PostgreSQL, real parsers)."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlmodel import select

from core.context import Actor
from core.errors import Conflict, InvalidInput, PermissionDenied
from core.intake.alerts import AlertRefused
from core.notify import AlertNeedsTicket, DomainEvent, NoteAdded, TicketCreated
from core.tickets import TicketService
from store.db import Scope
from store.tables import AlertSource, Customer, OutboxOp, TimelineEntry
from tests.core.intake.conftest import ninja
from tests.factories import psa_backed


async def _hold_lease(intake, name: str, token: str = "someone-else") -> None:
    """Another processor holds the source's lease (as while it applies a chunk)."""
    key = intake.keys[name][0]
    async with intake.db.write(Scope.workspace(intake.ws)) as s:
        await s.execute(sa.update(AlertSource).where(AlertSource.key == key).values(  # type: ignore[arg-type]
            claimed_by=token, claimed_until=intake.clock.now + timedelta(seconds=60)))


async def test_what_arrives_while_the_lease_is_held_is_queued_then_applied_in_order_in_one_chunk(intake):
    await intake.source("ninja")
    await _hold_lease(intake, "ninja")
    bodies = [ninja(activity=1, at=1000), ninja("RESET", activity=2, at=1060), ninja(activity=3, at=1120),
              ninja(series="s-2", activity=4, at=1130, subject="CPU 99%"), ninja("RESET", activity=5, at=1180)]
    results = [await intake.send("ninja", b) for b in bodies]
    assert [r.events[0].outcome for r in results] == ["queued"] * 5
    assert await intake.tickets_() == []
    intake.clock.advance(seconds=61)  # the holder crashed; its lease expires and the sweep takes over
    assert await intake.intake.sweep() == 5
    [ticket] = await intake.tickets_()
    assert await intake.notes(ticket.id) == [
        "Alert resolved in ninja: Disk C: 95% full", "Alert triggered again (2 times): Disk C: 95% full",
        "Another alert on srv-42 (ninja, error): CPU 99%", "Alert resolved in ninja: Disk C: 95% full"]
    receipts = await intake.receipts()
    assert [r.outcome for r in receipts] == ["created", "noted", "noted", "grouped", "noted"]
    async with intake.db.read(Scope.workspace(intake.ws)) as s:
        source = (await s.exec(select(AlertSource))).one()
    assert source.claimed_by is None  # the draining chunk released the lease in its own commit


class _FailingClock:
    """The test clock, raising once at a chosen call (a crash in the middle of a chunk)."""

    def __init__(self, clock, fail_at: int) -> None:
        self.clock, self.fail_at, self.calls = clock, fail_at, 0

    def __call__(self):
        self.calls += 1
        if self.calls == self.fail_at:
            raise RuntimeError("power cut")
        return self.clock()


async def test_a_crash_in_a_chunk_leaves_nothing_half_done_and_the_retry_repeats_nothing(intake):
    await intake.source("ninja")
    await intake.send("ninja", ninja(activity=1, at=1000))  # the ticket
    await _hold_lease(intake, "ninja")
    for i in range(2, 6):  # four flaps queued behind the lease
        await intake.send("ninja", ninja("RESET" if i % 2 == 0 else "TRIGGERED", activity=i, at=1000 + 60 * i))
    intake.clock.advance(seconds=61)
    failing = _FailingClock(intake.clock, fail_at=4)  # the lease renewal, then the third event of the chunk
    intake.intake.correlator._clock = failing
    with pytest.raises(RuntimeError, match="power cut"):
        await intake.intake.sweep()
    [ticket] = await intake.tickets_()
    assert await intake.notes(ticket.id) == []  # the chunk's notes rolled back with it
    assert sum(r.applied_at is None for r in await intake.receipts()) == 4
    async with intake.db.read(Scope.workspace(intake.ws)) as s:
        assert (await s.exec(select(AlertSource))).one().claimed_by is None  # released: no 60 s wait
    intake.intake.correlator._clock = intake.clock
    assert await intake.intake.sweep() == 4
    notes = await intake.notes(ticket.id)
    assert [n.split(":")[0] for n in notes] == ["Alert resolved in ninja", "Alert triggered again (2 times)",
                                                "Alert resolved in ninja", "Alert triggered again (3 times)"]


async def test_a_psa_gets_note_then_resolve_in_the_order_they_were_made(intake):
    psa = await psa_backed(intake.db, intake.ws)
    await intake.source("ninja", on_resolve="resolve")
    await intake.sources.map(intake.ws, scope="org", by="id", value="7", customer=str(psa.customer_id))
    await _hold_lease(intake, "ninja")
    await intake.send("ninja", ninja(activity=1, at=1000))
    await intake.send("ninja", ninja("RESET", activity=2, at=1060))
    await intake.send("ninja", ninja(activity=3, at=1120))  # after the resolve: a new ticket
    intake.clock.advance(seconds=61)
    assert await intake.intake.sweep() == 3
    async with intake.db.read(Scope.workspace(intake.ws)) as s:
        ops = (await s.exec(select(OutboxOp).order_by(OutboxOp.id))).all()
        entries = (await s.exec(select(TimelineEntry).order_by(TimelineEntry.id))).all()
    assert [op.kind for op in ops] == ["create_ticket", "add_note", "add_note", "update_ticket", "create_ticket",
                                       "add_note"]  # each create is followed by its details note
    assert ops[2].payload["visibility"] == "internal" and ops[2].payload["email_contact"] is False
    assert ops[2].timeline_entry_id == entries[1].id and ops[2].ticket_id == ops[0].ticket_id
    assert ops[2].payload["text"].startswith("Alert resolved in ninja")
    first, second = await intake.tickets_()
    assert first.stage == "resolved" and second.stage == "new" and first.version > 1


@dataclass
class _Recorder:
    events: list[DomainEvent]

    async def notify(self, event: DomainEvent) -> None:
        self.events.append(event)


async def test_surfaces_hear_of_each_note_and_standalone_ticket_after_the_commit(intake):
    recorder = _Recorder([])
    intake.intake.correlator.tickets = TicketService(intake.db, clock=intake.clock, notifier=recorder)
    await intake.source("ninja")
    await _hold_lease(intake, "ninja")
    await intake.send("ninja", ninja(activity=1, at=1000))
    await intake.send("ninja", ninja("RESET", activity=2, at=1060))
    assert recorder.events == []
    intake.clock.advance(seconds=61)
    await intake.intake.sweep()
    created, details, note = recorder.events
    assert isinstance(created, TicketCreated) and isinstance(note, NoteAdded)
    assert isinstance(details, NoteAdded) and details.visibility == "internal" and "Source: ninja" in details.body
    assert note.visibility == "internal" and note.body.startswith("Alert resolved in ninja")
    assert note.ticket_id == created.ticket_id and note.origin == "alert" and note.author_name == "alert:ninja"


async def test_create_ticket_from_an_alert_in_triage_prefilled_linked_and_once(intake):
    await intake.source("pd", kind="events_v2")
    r = await intake.send("pd", {"event_action": "trigger", "dedup_key": "nas-backup", "links": [
        {"href": "https://rmm.example/a/9", "text": "Open in RMM"}], "payload": {
        "summary": "Backup failed on NAS", "source": "nas-01", "severity": "critical"}})
    assert r.events[0].outcome == "triage"
    [alert] = await intake.alerts()
    tech = Actor.system(intake.ws)
    with pytest.raises(InvalidInput, match="no customer") as err:
        await intake.intake.create_ticket(tech, alert.id)
    assert "intake map" in (err.value.hint or "")
    end_user = Actor(workspace_id=intake.ws, origin=tech.origin, is_member=False, customer_scope_id=None)
    with pytest.raises(PermissionDenied):
        await intake.intake.create_ticket(end_user, alert.id)
    async with intake.db.read(Scope.workspace(intake.ws)) as s:
        acme = (await s.exec(select(Customer).where(Customer.identifier == "ACME"))).one()
    ticket_id, number = await intake.intake.create_ticket(tech, alert.id, acme.id)
    [ticket] = await intake.tickets_()
    assert ticket.id == ticket_id and ticket.number == number and ticket.customer_id == acme.id
    assert ticket.subject == "Backup failed on NAS" and ticket.priority == "critical"
    assert ticket.description == "Backup failed on NAS" and ticket.alert_ref.endswith(":nas-backup")
    [details] = await intake.notes(ticket.id, with_details=True)  # the RMM's details: internal
    assert "Link: Open in RMM https://rmm.example/a/9" in details
    [alert] = await intake.alerts()
    assert alert.ticket_id == ticket_id and alert.customer_id == acme.id and alert.status == "triggered"
    assert await intake.sources.triage(intake.ws) == []
    with pytest.raises(Conflict, match="already on ticket"):  # a second click: nothing twice
        await intake.intake.create_ticket(tech, alert.id, acme.id)
    assert len(await intake.tickets_()) == 1
    assert await intake.intake.retry_triage(intake.ws) == 0  # no longer triage: a mapping adds nothing later
    again = await intake.send("pd", {"event_action": "trigger", "dedup_key": "nas-backup", "payload": {
        "summary": "Backup failed on NAS", "source": "nas-01", "severity": "critical",
        "timestamp": "2026-12-07T10:00:00Z"}})
    assert again.events[0].outcome == "noted" and again.events[0].ticket_id == ticket_id


async def test_an_alert_that_goes_to_triage_is_told_once_after_the_commit(intake):
    recorder = _Recorder([])
    intake.intake.correlator.tickets = TicketService(intake.db, clock=intake.clock, notifier=recorder)
    await intake.source("pd", kind="events_v2")
    for minute in (0, 5):  # the alert, then a real repeat of it (still no customer)
        r = await intake.send("pd", {"event_action": "trigger", "dedup_key": "nas-backup", "payload": {
            "summary": "Backup failed on NAS", "source": "nas-01", "severity": "critical",
            "timestamp": f"2026-12-07T10:0{minute}:00Z"}})
        assert r.events[0].outcome == "triage"
    [told] = [e for e in recorder.events if isinstance(e, AlertNeedsTicket)]
    [alert] = await intake.alerts()
    assert (told.alert_id, told.source_name, told.severity, told.device) == (alert.id, "pd", "critical", "nas-01")
    assert told.summary == "Backup failed on NAS" and told.ticket_id is None


async def _queued_together(intake, sends):
    """Start the deliveries while another recording holds the turn, so they wait and are recorded as one group."""
    await intake.intake.recorder._group_turn.acquire()
    tasks = [asyncio.ensure_future(s) for s in sends]
    for _ in range(200):
        if len(intake.intake.recorder._waiting) == len(tasks):
            break
        await asyncio.sleep(0.01)
    assert len(intake.intake.recorder._waiting) == len(tasks)
    intake.intake.recorder._group_turn.release()
    return await asyncio.gather(*tasks, return_exceptions=True)


def _commits(intake) -> list[int]:
    seen: list[int] = []
    sa.event.listen(intake.db.engine.sync_engine, "commit", lambda _conn: seen.append(1))
    return seen


async def test_deliveries_arriving_together_are_recorded_in_one_transaction_each_with_its_own_answer(intake):
    await intake.source("ninja")
    other = await intake.source("other")
    await intake.send("other", ninja(series="o-1", activity=50))  # "other" is now known (kept in memory)
    await _hold_lease(intake, "ninja")  # nothing is applied: only the recording is counted
    await intake.sources.set_option(intake.ws, "other", "enabled", "off")  # disabled after it was kept
    commits = _commits(intake)
    dup = ninja(series="s-9", activity=9)
    results = await _queued_together(intake, [
        intake.send("ninja", ninja(series=f"s-{i}", activity=i)) for i in range(1, 5)] + [
        intake.send("ninja", dup), intake.send("ninja", dup),  # a sender's retry, in the same group
        intake.intake.ingest(other, {"x-deskbridge-secret": intake.keys["other"][1]},
                             json.dumps(ninja(series="o-2", activity=51)).encode())])
    assert len(commits) == 1  # one transaction for the whole group
    assert [r.status for r in results[:4]] == ["accepted"] * 4
    assert sorted(r.status for r in results[4:6]) == ["accepted", "duplicate"]  # whichever was recorded first
    assert all(r.events[0].outcome == "queued" for r in results[:6] if r.status == "accepted")
    assert isinstance(results[6], AlertRefused) and "disabled" in results[6].message  # checked in the transaction
    receipts = await intake.receipts()
    assert sorted(r.dedup_key for r in receipts if r.dedup_key.startswith("s-")) == [f"s-{i}" for i in (1, 2, 3, 4, 9)]
    assert not [r for r in receipts if r.dedup_key == "o-2"]  # the disabled source recorded nothing


async def test_a_group_whose_transaction_fails_records_each_delivery_alone(intake, monkeypatch):
    await intake.source("ninja")
    real = intake.intake.recorder._record_in

    async def record_in(session, source, events):
        if any(ev.dedup_key.endswith("bad") for ev in events):
            raise RuntimeError("a row the database refuses")
        return await real(session, source, events)

    monkeypatch.setattr(intake.intake.recorder, "_record_in", record_in)
    results = await _queued_together(intake, [intake.send("ninja", ninja(series=s, activity=i))
                                              for i, s in enumerate(["s-1", "bad", "s-2"], start=1)])
    assert isinstance(results[1], RuntimeError)  # only the bad delivery fails (its sender gets a 500, retries)
    assert [results[0].status, results[2].status] == ["accepted", "accepted"]
    assert sorted(r.dedup_key for r in await intake.receipts()) == ["s-1", "s-2"]
    assert intake.intake.recorder._waiting == []
