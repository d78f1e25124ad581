"""The sync engine against the fake HaloPSA: first and incremental sync, statuses mapped per ticket type, the
conversation (end-user replies, internal notes, time) as the timeline, requests kept to the minimum, and a
signed webhook that refreshes the ticket it names."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import select

from connectors.halopsa import webhooks as wh
from connectors.registry import Registry
from connectors.tokens import InMemoryTokenCache
from core.connections import ConnectionService
from core.notify import NoteAdded, RecordingNotifier
from core.sync.engine import SyncEngine
from core.sync.runs import RunStatus, get_cursor, parse_cursor
from core.sync.service import SyncService
from store.crypto import CredentialCipher, generate_key
from store.db import Database, Scope
from store.enums import EntryKind
from store.tables import StatusMapping, Ticket, TimelineEntry
from tests.fakes.halopsa import FakeHalo
from tests.fakes.halopsa_http import HaloClock

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
SECRET = "webhook-secret-for-sync"


async def _no_sleep(_: float) -> None:
    return None


@dataclass
class HaloEnv:
    db: Database
    fake: FakeHalo
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
async def env(db: Database, workspace_id: int) -> AsyncIterator[HaloEnv]:
    fake = FakeHalo(clock=HaloClock(T0, step=timedelta(seconds=30)))  # a change every 30 s
    registry = Registry(transport=fake.transport(), options={"halopsa": {
        "clock": fake.clock.epoch, "token_cache": InMemoryTokenCache(clock=fake.clock.epoch)}})
    connections = ConnectionService(db, cipher=CredentialCipher.from_keys([generate_key()]), checker=registry.check,
                                    factory=registry.build, known_kinds=registry.kinds())
    conn, info = await connections.add(workspace_id, kind="halopsa", name="halo",
                                       settings=fake.settings(page_size=10, webhook_token="tok123"),
                                       credentials=fake.credentials(webhook_secret=SECRET))
    assert "Deskbridge API" in info.display_name
    notifier = RecordingNotifier()
    engine = SyncEngine(db, connections, notifier, instance_id="test", clock=lambda: fake.clock.now, sleep=_no_sleep)
    yield HaloEnv(db, fake, workspace_id, conn.id, SyncService(engine), notifier)  # type: ignore[arg-type]
    await connections.aclose()


def seed(fake: FakeHalo, n: int = 24) -> list[int]:
    """n tickets over two ticket types and four statuses, each with an end-user reply, an internal note and
    time; every sixth ticket has an attachment."""
    ids = []
    for i in range(n):
        status = [1, 2, 3, 8, 1, 2, 3, 9][i % 8]
        tt = 2 if i % 8 in (1, 5, 7) else 1  # Service Request has no "Resolved" (8)
        t = fake.add_ticket(f"Ticket {i}", client_id=12, user_id=501, tickettype_id=tt, status_id=status)
        fake.add_reply(t["id"], f"customer says {i}")
        fake.add_note(t["id"], f"tech thinks {i}", agent_id=3)
        fake.add_note(t["id"], "", agent_id=3, timetaken=0.5)
        if i % 6 == 0:
            fake.attachments[7000 + i] = {"id": 7000 + i, "ticket_id": t["id"], "action_id": 0, "filename": f"f{i}.png",
                                          "filesize": 3, "content_type": "image/png", "isimage": True,
                                          "showforusers": False, "third_party_id": None, "note": "", "type": 0,
                                          "unique_id": 7000 + i, "datecreated": fake.clock.now}
        ids.append(t["id"])
    return ids


async def test_first_sync_maps_statuses_per_type_and_keeps_requests_to_the_minimum(env: HaloEnv) -> None:
    ids = seed(env.fake)
    env.fake.reset_counts()
    outcome = await env.sync.run(env.connection_id)
    assert outcome.status == RunStatus.OK, outcome.error
    tickets = await env.tickets()
    assert set(tickets) == {str(i) for i in ids}
    stages = [tickets[str(i)].stage for i in ids[:4]]
    assert stages == ["new", "in_progress", "waiting", "resolved"]
    assert tickets[str(ids[3])].closed_at is not None and tickets[str(ids[7])].stage == "closed"
    assert tickets[str(ids[7])].board_external_id == "2" and tickets[str(ids[7])].closed_at is not None
    async with env.db.read(Scope.workspace(env.workspace_id)) as s:
        smaps = (await s.exec(select(StatusMapping))).all()
    by_type = {(m.board_external_id, m.psa_status_id) for m in smaps}
    assert ("3", "1") in by_type and ("3", "3") not in by_type  # Change allows New, In Progress, Closed only
    assert ("2", "8") not in by_type and ("1", "8") in by_type  # Service Request has no "Resolved"
    t0 = tickets[str(ids[0])]
    entries = await env.timeline(t0.id)
    kinds = sorted((e.kind, e.body) for e in entries if e.kind != EntryKind.TIME_ENTRY)
    assert kinds == [(EntryKind.ATTACHMENT, "f0.png"), (EntryKind.NOTE_INTERNAL, "tech thinks 0"),
                     (EntryKind.NOTE_PUBLIC, "customer says 0")]
    assert next(e for e in entries if e.kind == EntryKind.NOTE_PUBLIC).author_is_contact
    assert [e.data["minutes"] for e in entries if e.kind == EntryKind.TIME_ENTRY] == [30]
    # Requests: 3 pages of tickets, then ONE GET Actions per open ticket (notes and time together) and GET
    # Attachment only for the open tickets whose list row counts attachments; closed ones wait to be opened.
    open_at = [k for k, i in enumerate(ids) if tickets[str(i)].is_open]
    assert 0 < len(open_at) < len(ids)
    assert env.fake.count("GET /api/Tickets") == 3
    assert env.fake.count("GET /api/Actions") == len(open_at)
    assert env.fake.count("GET /api/Attachment") == len([k for k in open_at if k % 6 == 0])
    cursor = parse_cursor(await get_cursor(env.db, env.workspace_id, env.connection_id))
    assert cursor == max(t.psa_updated_at for t in tickets.values())  # Halo's time, not ours


async def test_incremental_reads_only_what_changed(env: HaloEnv) -> None:
    ids = seed(env.fake)
    await env.sync.run(env.connection_id)
    env.fake.clock.advance(3600)
    env.fake.edit_ticket(ids[5], summary="Renamed in Halo")
    env.fake.add_reply(ids[9], "any news?")
    env.fake.reset_counts()
    outcome = await env.sync.run(env.connection_id)
    assert outcome.status == RunStatus.OK and outcome.counts["updated"] == 2
    # one page: the two changes plus the few tickets inside the 3-minute overlap (unchanged: skipped by hash)
    assert env.fake.count("GET /api/Tickets") == 1 and env.fake.count("GET /api/Actions") == 2
    tickets = await env.tickets()
    assert tickets[str(ids[5])].subject == "Renamed in Halo"
    [added] = [e for e in env.notifier.events if isinstance(e, NoteAdded)]
    assert added.ticket_id == tickets[str(ids[9])].id
    sent = [dict(r.query) for r in env.fake.requests if r.route == "/api/Tickets"][0]
    since = datetime.fromisoformat(sent["lastupdatefromdate"].replace("Z", "+00:00"))
    cursor = max(t.psa_updated_at for t in tickets.values() if t.external_id not in (str(ids[5]), str(ids[9])))
    assert since < cursor  # the watermark is read back with an overlap


async def test_a_signed_webhook_refreshes_the_ticket_it_names(env: HaloEnv) -> None:
    ids = seed(env.fake, 3)
    await env.sync.run(env.connection_id)
    hook = "0d6f3c1e-0000-4000-8000-00000000beef"
    env.fake.webhooks[hook] = {"id": hook, "name": wh.hook_name("https://db.example/h"), "active": True,
                               "authentication_type": wh.AUTH_API_KEY, "authentication_header": "Token",
                               "basic_password": SECRET}
    env.fake.edit_ticket(ids[1], summary="Changed, then pushed")
    headers, body = env.fake.signed_delivery(hook, ids[1])
    result = await env.sync.ingest_webhook(env.connection_id, "tok123", headers, body)
    assert result.status == "accepted" and result.ticket_external_id == str(ids[1])
    await env.sync.webhooks.settled()  # re-read right after the answer
    assert (await env.tickets())[str(ids[1])].subject == "Changed, then pushed"
    forged = {**headers, "token": "x" + headers["token"][1:]}
    with pytest.raises(Exception, match="rejected"):
        await env.sync.ingest_webhook(env.connection_id, "tok123", forged, body.replace(b"Changed", b"Hacked!"))
    assert timedelta(0) <= env.fake.clock.now - T0


async def test_a_ticket_types_required_fields_are_asked_for_before_a_create_is_queued(env: HaloEnv, tech) -> None:  # type: ignore[no-untyped-def]
    from connectors.halopsa.connector import HaloPsaConnector
    from core.errors import InvalidInput
    from core.tickets import TicketService
    from store.tables import Contact, Customer, OutboxOp

    seed(env.fake, 2)
    await env.sync.run(env.connection_id)  # picklists first: ticket types and what each requires
    async with env.db.read(Scope.workspace(env.workspace_id)) as s:
        acme = (await s.exec(select(Customer).where(Customer.external_id == "12"))).one()
        pat = (await s.exec(select(Contact).where(Contact.external_id == "501"))).one()
    tickets = TicketService(env.db, capabilities=lambda kind: HaloPsaConnector.CAPABILITIES)
    with pytest.raises(InvalidInput) as no_contact:  # Service Request makes the end user mandatory
        await tickets.create(tech, subject="New starter", customer_id=acme.id, board_external_id="2")
    assert no_contact.value.field == "contact" and "Service Request" in str(no_contact.value)
    with pytest.raises(InvalidInput) as no_category:  # Change needs category_1: the ticket's category field
        await tickets.create(tech, subject="Firewall change", customer_id=acme.id, contact_id=pat.id,
                             board_external_id="3")
    assert "Change" in str(no_category.value) and no_category.value.field == "category"
    with pytest.raises(InvalidInput) as unlisted:  # a category Halo does not list is refused, naming the valid ones
        await tickets.create(tech, subject="Firewall change", customer_id=acme.id, contact_id=pat.id,
                             board_external_id="3", category="Network")
    assert unlisted.value.field == "category" and "Hardware" in (unlisted.value.hint or "")
    async with env.db.read(Scope.workspace(env.workspace_id)) as s:
        assert (await s.exec(select(OutboxOp))).all() == []  # nothing was queued to go dead
    made = await tickets.create(tech, subject="New starter", customer_id=acme.id, contact_id=pat.id,
                                board_external_id="2")
    assert made.summary.subject == "New starter"
