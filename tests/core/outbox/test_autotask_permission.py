"""Autotask answers a permission refusal as HTTP 500 with an `errors` body ("The logged in Resource does not have
the adequate permissions", psa-apis.md 3.10), not 403. Through the outbox worker and the real connector on the
fake Autotask (in-process transport), that write must take the permission path: dead with cause `permission`, the
other ticket's write delivered, no breaker, no "credentials rejected" on the connection, and the dead-letter
explanation an operator reads (`deskbridge outbox show`, the Dead letters page) names the right next step."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from sqlmodel import select

from connectors.autotask.connector import AutotaskConnector
from connectors.base import ConnectionConfig
from core.connections import ConnectionService
from core.notify import RecordingNotifier, WriteDead
from core.outbox.admin import OutboxAdmin
from core.outbox.ops import AddNote, AddTimeEntry, enqueue
from store.crypto import CredentialCipher, generate_key
from store.db import Database, Scope
from store.tables import AuditLog, OutboxOp, PsaConnection, Ticket
from tests.core.outbox.conftest import TEST_CONFIG, make_worker
from tests.fakes.autotask import FakeAutotask, FakeClock
from tests.fakes.outbox_psa import FakeClock as WorkerClock


@dataclass
class AtRig:
    fake: FakeAutotask
    db: Database
    workspace_id: int
    connection_id: int
    tickets: list[int]
    notifier: RecordingNotifier
    worker: object


@pytest.fixture
async def at(db: Database, workspace_id: int) -> AsyncIterator[AtRig]:
    fake = FakeAutotask(clock=FakeClock(datetime.now(UTC)))
    cipher = CredentialCipher.from_keys([generate_key()])
    async with db.write(Scope.workspace(workspace_id)) as s:
        conn = PsaConnection(workspace_id=workspace_id, kind="autotask", name="autotask", is_default=True,
                             settings=fake.settings(default_board_id="29682833"),
                             credentials_ciphertext=cipher.encrypt(fake.credentials(), workspace_id=workspace_id,
                                                                   kind="autotask"))
        s.add(conn)
        await s.flush()
        ids = []
        for subject in ("Server down", "Printer jam"):
            ext = fake.add_ticket(subject)["id"]
            t = Ticket(workspace_id=workspace_id, connection_id=conn.id, external_id=str(ext), number=ext,
                       subject=subject, priority="medium", stage="new")
            s.add(t)
            await s.flush()
            ids.append(t.id)

    def factory(config: ConnectionConfig) -> AutotaskConnector:
        return AutotaskConnector(config, transport=fake.transport(), timeout=2.0)

    connections = ConnectionService(db, cipher=cipher, checker=None, factory=factory,  # type: ignore[arg-type]
                                    known_kinds=frozenset({"autotask"}))
    notifier = RecordingNotifier()
    worker = make_worker(db, connections, notifier, WorkerClock(), TEST_CONFIG)
    try:
        yield AtRig(fake, db, workspace_id, conn.id, ids, notifier, worker)  # type: ignore[arg-type]
    finally:
        await worker.aclose()


async def test_autotask_permission_500_is_a_permission_refusal_not_bad_credentials(at: AtRig):
    at.fake.deny("POST /TimeEntries")
    async with at.db.write(Scope.workspace(at.workspace_id)) as s:
        enqueue(s, workspace_id=at.workspace_id, connection_id=at.connection_id, ticket_id=at.tickets[0],
                actor="tech", payload=AddTimeEntry(minutes=30, started_at=datetime(2026, 12, 7, 15, tzinfo=UTC),
                                                   notes="Swapped the PSU"))
        enqueue(s, workspace_id=at.workspace_id, connection_id=at.connection_id, ticket_id=at.tickets[1],
                actor="tech", payload=AddNote(text="On it", visibility="internal"))
    await at.worker.drain()  # type: ignore[attr-defined]

    async with at.db.read(Scope.system_wide()) as s:
        ops = list((await s.exec(select(OutboxOp).order_by(OutboxOp.id))).all())  # type: ignore[arg-type]
        conn = await s.get(PsaConnection, at.connection_id)
        breaker = list((await s.exec(select(AuditLog).where(AuditLog.op_id.is_(None)))).all())  # type: ignore[union-attr]
    assert [(o.kind, o.status) for o in ops] == [("add_time_entry", "dead"), ("add_note", "done")]
    assert ops[0].attempts == 1 and ops[0].last_status_code == 500  # what Autotask really answered
    assert "adequate permissions" in (ops[0].last_error or "")
    assert breaker == [] and conn is not None and not conn.last_error
    assert [n["description"] for n in at.fake.tables["TicketNotes"].values()] == ["On it"]
    assert at.fake.tables["TimeEntries"] == {}
    [dead] = at.notifier.of(WriteDead)
    assert dead.cause == "permission"
    why = (await OutboxAdmin(at.db).get_op(at.workspace_id, ops[0].id)).op.why or ""  # type: ignore[arg-type]
    assert "security role" in why and "Grant it in the PSA" in why, why
    assert "Gave up" not in why and "credentials" not in why


async def _dead_why(at: AtRig, payload: AddNote | AddTimeEntry) -> tuple[OutboxOp, str]:
    async with at.db.write(Scope.workspace(at.workspace_id)) as s:
        enqueue(s, workspace_id=at.workspace_id, connection_id=at.connection_id, ticket_id=at.tickets[1],
                actor="tech", payload=payload)
    await at.worker.drain()  # type: ignore[attr-defined]
    async with at.db.read(Scope.system_wide()) as s:
        [op] = list((await s.exec(select(OutboxOp))).all())
    assert op.status == "dead", (op.status, op.last_error)
    return op, (await OutboxAdmin(at.db).get_op(at.workspace_id, op.id)).op.why or ""  # type: ignore[arg-type]


async def test_autotask_bad_login_500_points_at_the_credentials(at: AtRig):
    """Another 500 that is not an outage: a login Autotask refuses (3.10). The explanation says to re-enter them."""
    at.fake.fail_next(500, match="POST /Tickets", message="Unable to authenticate the user.")
    op, why = await _dead_why(at, AddNote(text="On it", visibility="internal"))
    assert op.last_status_code == 500
    assert "Re-enter" in why and "deskbridge connection reauth autotask" in why, why
    [dead] = at.notifier.of(WriteDead)
    assert dead.cause == "credentials"


async def test_autotask_refusal_500_says_what_to_fix_not_gave_up(at: AtRig):
    """A locked timesheet is refused as 500 with a message (3.5): retrying unchanged cannot work, so the operator is
    told to fix what Autotask names, with Autotask's words; the chat event carries cause `refused`."""
    at.fake.fail_next(500, match="POST /TimeEntries",
                      message="The timesheet for this date is already submitted and cannot be changed.")
    op, why = await _dead_why(at, AddTimeEntry(minutes=30, started_at=datetime(2026, 12, 7, 15, tzinfo=UTC)))
    assert "refused this write" in why and "Gave up" not in why, why
    [dead] = at.notifier.of(WriteDead)
    assert dead.cause == "refused" and "timesheet" in dead.error


# ---------------------------------------------------------------- dateWorked: the technician's day, not UTC's


async def test_autotask_date_worked_is_the_day_in_the_zone_the_start_was_given(at: AtRig):
    """17:30 in California on 7 December is 01:30 UTC on the 8th: the entry is filed under the 7th (dateWorked)
    and startDateTime/endDateTime are the UTC instants (psa-apis.md: all times UTC)."""
    from zoneinfo import ZoneInfo

    start = datetime(2026, 12, 7, 17, 30, tzinfo=ZoneInfo("America/Los_Angeles"))
    async with at.db.write(Scope.workspace(at.workspace_id)) as s:
        enqueue(s, workspace_id=at.workspace_id, connection_id=at.connection_id, ticket_id=at.tickets[0],
                actor="tech", payload=AddTimeEntry(minutes=30, started_at=start, notes="Late call"))
    await at.worker.drain()  # type: ignore[attr-defined]
    import json

    [sent] = [json.loads(r.body) for r in at.fake.requests if r.method == "POST" and r.path.endswith("/TimeEntries")]
    assert sent["dateWorked"] == "2026-12-07T00:00:00Z"
    assert sent["startDateTime"] == "2026-12-08T01:30:00.000Z" and sent["endDateTime"] == "2026-12-08T02:00:00.000Z"
    assert len(at.fake.tables["TimeEntries"]) == 1
