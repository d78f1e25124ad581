"""The sync engine against the fake Autotask: first and incremental sync with the conversation (a contact's
note, internal notes, time, files) as the timeline in a handful of requests, deletions reconciled by ids, and
a signed webhook that refreshes the ticket it names."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import select

from connectors.registry import Registry
from core.connections import ConnectionService
from core.notify import NoteAdded, RecordingNotifier
from core.sync.engine import SyncEngine
from core.sync.runs import RunStatus
from core.sync.service import SyncService
from store.crypto import CredentialCipher, generate_key
from store.db import Database, Scope
from store.enums import EntryKind
from store.tables import Ticket, TimelineEntry
from tests.fakes.autotask import FakeAutotask, FakeClock
from tests.fakes.autotask_hooks import delivery

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
SECRET = "webhook-secret-for-sync"
ACME = 175


async def _no_sleep(_: float) -> None:
    return None


@dataclass
class AtEnv:
    db: Database
    fake: FakeAutotask
    workspace_id: int
    connection_id: int
    sync: SyncService
    notifier: RecordingNotifier

    async def tickets(self) -> dict[str, Ticket]:
        async with self.db.read(Scope.workspace(self.workspace_id)) as s:
            rows = (await s.exec(select(Ticket).where(Ticket.connection_id == self.connection_id))).all()
        return {t.external_id: t for t in rows}  # type: ignore[misc]

    async def timeline(self, ticket_id: int) -> list[TimelineEntry]:
        async with self.db.read(Scope.workspace(self.workspace_id)) as s:
            return list((await s.exec(select(TimelineEntry).where(TimelineEntry.ticket_id == ticket_id)
                                      .order_by(TimelineEntry.id))).all())


@pytest.fixture
async def env(db: Database, workspace_id: int) -> AsyncIterator[AtEnv]:
    fake = FakeAutotask(clock=FakeClock(T0, step=timedelta(seconds=30)))  # a change every 30 s
    registry = Registry(transport=fake.transport(), options={"autotask": {"sleep": _no_sleep, "page_size": 10}})
    connections = ConnectionService(db, cipher=CredentialCipher.from_keys([generate_key()]), checker=registry.check,
                                    factory=registry.build, known_kinds=registry.kinds())
    conn, _ = await connections.add(workspace_id, kind="autotask", name="autotask",
                                    settings=fake.settings(webhook_token="tok123"),
                                    credentials={**fake.credentials(), "webhook_secret": SECRET})
    notifier = RecordingNotifier()
    engine = SyncEngine(db, connections, notifier, instance_id="test", clock=lambda: fake.clock.now, sleep=_no_sleep)
    yield AtEnv(db, fake, workspace_id, conn.id, SyncService(engine), notifier)  # type: ignore[arg-type]
    await connections.aclose()


def seed(fake: FakeAutotask, n: int = 24) -> list[int]:
    """n tickets over four statuses, each with a contact's note, an internal note and time; one in six has a file."""
    contact = next(c["id"] for c in fake.tables["Contacts"].values() if c["companyID"] == ACME)
    statuses = [1, 8, 7, 5]
    ids = []
    for i in range(n):
        t = fake.add_ticket(f"Ticket {i}", companyID=ACME, contactID=contact, status=statuses[i % 4])
        fake.add_note(t["id"], f"customer says {i}", publish=1, contact_id=contact)
        fake.add_note(t["id"], f"tech thinks {i}", publish=2)
        fake.insert("TimeEntries", fake.blank("TimeEntries") | {
            "ticketID": t["id"], "resourceID": fake.tech_id, "roleID": 29683461, "hoursWorked": 0.5,
            "startDateTime": fake.stamp(), "summaryNotes": "work", "createDateTime": fake.stamp()})
        if i % 6 == 0:
            fake.insert("TicketAttachments", fake.blank("TicketAttachments") | {
                "parentID": t["id"], "title": f"f{i}.png", "fullPath": f"f{i}.png", "fileSize": 3.0, "publish": 2,
                "attachDate": fake.stamp(), "attachmentType": "FILE_ATTACHMENT"})
        ids.append(t["id"])
    return ids


async def test_first_sync_reads_the_conversation_in_a_few_requests(env: AtEnv) -> None:
    ids = seed(env.fake)
    env.fake.reset_counts()
    outcome = await env.sync.run(env.connection_id)
    assert outcome.status == RunStatus.OK, outcome.error
    tickets = await env.tickets()
    assert set(tickets) == {str(i) for i in ids}
    assert [tickets[str(i)].stage for i in ids[:4]][3] == "closed" and tickets[str(ids[3])].closed_at is not None
    entries = await env.timeline(tickets[str(ids[0])].id)
    kinds = sorted((e.kind, e.body) for e in entries if e.kind != EntryKind.TIME_ENTRY)
    assert kinds == [(EntryKind.ATTACHMENT, "f0.png"), (EntryKind.NOTE_INTERNAL, "tech thinks 0"),
                     (EntryKind.NOTE_PUBLIC, "customer says 0")]
    assert next(e for e in entries if e.kind == EntryKind.NOTE_PUBLIC).author_is_contact
    assert [e.data["minutes"] for e in entries if e.kind == EntryKind.TIME_ENTRY] == [30]
    # one scan for 24 tickets (pages of 10 served from it); then the histories of the 18 open tickets, one
    # query per child kind for all of them (ChildPrefetch); the 6 complete ones wait until someone opens one
    assert len([t for t in tickets.values() if t.is_open]) == 18
    assert env.fake.count("POST /Tickets/query") == 1
    assert env.fake.count("POST /TicketNotes/query") == 1 and env.fake.count("POST /TimeEntries/query") == 1
    assert env.fake.count("POST /TicketAttachments/query") == 1
    assert all((t.history_at is not None) == bool(t.is_open) for t in tickets.values())


async def test_incremental_reads_only_what_changed(env: AtEnv) -> None:
    ids = seed(env.fake)
    await env.sync.run(env.connection_id)
    env.fake.clock.advance(3600)
    env.fake.edit_ticket(ids[5], title="Renamed in Autotask")
    contact = env.fake.tables["Tickets"][ids[9]]["contactID"]
    env.fake.add_note(ids[9], "any news?", publish=1, contact_id=contact)
    env.fake.reset_counts()
    outcome = await env.sync.run(env.connection_id)
    assert outcome.status == RunStatus.OK and outcome.counts["updated"] == 2
    assert env.fake.count("POST /Tickets/query") == 1 and env.fake.count("POST /TicketNotes/query") == 1
    assert (await env.tickets())[str(ids[5])].subject == "Renamed in Autotask"
    [added] = [e for e in env.notifier.events if isinstance(e, NoteAdded)]
    assert added.ticket_id == (await env.tickets())[str(ids[9])].id


async def test_a_ticket_deleted_in_autotask_leaves_with_the_reconcile(env: AtEnv) -> None:
    ids = seed(env.fake, 6)
    await env.sync.run(env.connection_id)
    env.fake.delete_ticket(ids[2])
    env.fake.clock.advance(6 * 3600)  # older than the reconcile's "recently changed" grace
    env.fake.reset_counts()
    outcome = await env.sync.reconcile(env.connection_id)
    assert outcome.status == RunStatus.OK, outcome.error
    assert env.fake.count("POST /Tickets/query") == 1  # ids only, 500 a call
    tickets = await env.tickets()
    assert tickets[str(ids[2])].deleted_at is not None
    assert all(tickets[str(i)].deleted_at is None for i in ids if i != ids[2])


async def test_a_signed_webhook_refreshes_the_ticket_it_names(env: AtEnv) -> None:
    ids = seed(env.fake, 3)
    await env.sync.run(env.connection_id)
    env.fake.edit_ticket(ids[1], title="Changed & pushed <now>")
    headers, body = delivery(SECRET, "Ticket", "Update", {"id": ids[1], "title": "Changed & pushed <now>"},
                             guid="g-1", sequence=7)
    result = await env.sync.ingest_webhook(env.connection_id, "tok123", headers, body)
    assert result.status == "accepted" and result.ticket_external_id == str(ids[1])
    await env.sync.webhooks.settled()  # re-read right after the answer
    assert (await env.tickets())[str(ids[1])].subject == "Changed & pushed <now>"
    again = await env.sync.ingest_webhook(env.connection_id, "tok123", headers, body)
    assert again.status == "duplicate"  # Autotask's retry of the same callout (Guid + SequenceNumber)
    with pytest.raises(Exception, match="rejected|does not match"):
        await env.sync.ingest_webhook(env.connection_id, "tok123", headers, body.replace(b"Changed", b"Hacked!"))
