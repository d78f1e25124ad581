"""Fault matrix against the fake ConnectWise (in-process transport): for each fault, the op's final state,
its attempts, its audit rows, and exactly one copy (or none) of the write at the PSA.

Faults: 429 with Retry-After, 500, timeout (applied, answered too late), a write applied whose response
was lost, a validation error, credentials revoked mid-run; and a ticket create whose response was lost.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from sqlmodel import select

from connectors.base import ConnectionConfig
from connectors.connectwise.connector import ConnectWiseConnector
from core.connections import ConnectionService
from core.context import Actor
from core.notify import RecordingNotifier, WriteDead
from core.outbox.admin import OutboxAdmin
from core.tickets import TicketService
from store.crypto import CredentialCipher, generate_key
from store.db import Database, Scope
from store.tables import Customer, OutboxOp, PsaConnection
from tests.core.outbox.conftest import TEST_CONFIG, Rig, make_worker
from tests.factories import PsaSetup
from tests.fakes.connectwise import FakeClock as CwClock
from tests.fakes.connectwise import FakeConnectWise
from tests.fakes.outbox_psa import FakeClock

CLIENT_TIMEOUT = 0.2  # the connector's read timeout; "slow" answers take longer than this
NOTES = "POST /service/tickets/{id}/notes"


@dataclass
class CwRig(Rig):
    cw: FakeConnectWise = None  # type: ignore[assignment]
    cw_ticket: int = 0
    cipher: CredentialCipher = None  # type: ignore[assignment]

    def notes_with(self, op: OutboxOp) -> int:
        """Copies of the op's note at the PSA: its text, exactly as written (there is no tag to count)."""
        return sum(1 for n in self.cw.notes.values() if n["text"] == op.payload["text"])


@pytest.fixture
async def cw(db: Database, workspace_id: int, tech: Actor) -> AsyncIterator[CwRig]:
    fake = FakeConnectWise(clock=CwClock(datetime.now(UTC)))  # a vendor's clock tells the real time
    cipher = CredentialCipher.from_keys([generate_key()])
    board = next(iter(fake.boards))
    company = next(iter(fake.companies))
    async with db.write(Scope.workspace(workspace_id)) as s:
        conn = PsaConnection(workspace_id=workspace_id, kind="connectwise", name="cw", is_default=True,
                             settings=fake.settings(default_board_id=board),
                             credentials_ciphertext=cipher.encrypt(fake.credentials(), workspace_id=workspace_id,
                                                                   kind="connectwise"))
        s.add(conn)
        await s.flush()
        cust = Customer(workspace_id=workspace_id, connection_id=conn.id, external_id=str(company),
                        identifier="ACME", name="Acme")
        s.add(cust)
        await s.flush()
        setup = PsaSetup(conn.id, cust.id, cust.id, 0)  # type: ignore[arg-type]

    def factory(config: ConnectionConfig) -> ConnectWiseConnector:
        return ConnectWiseConnector(config, transport=fake.transport(), timeout=CLIENT_TIMEOUT)

    connections = ConnectionService(db, cipher=cipher, checker=None, factory=factory,  # type: ignore[arg-type]
                                    known_kinds=frozenset({"connectwise"}))
    clock, notifier = FakeClock(), RecordingNotifier()
    worker = make_worker(db, connections, notifier, clock, TEST_CONFIG)
    rig = CwRig(db, None, clock, notifier, worker, connections, setup, TicketService(db, clock=clock), tech,  # type: ignore[arg-type]
                cw=fake, cipher=cipher)
    t = fake.add_ticket("Server down", company={"id": company}, board={"id": board})
    rig.cw_ticket = int(t["id"])
    await rig.synced_ticket(str(t["id"]))
    try:
        yield rig
    finally:
        await worker.aclose()


@dataclass(frozen=True)
class Case:
    arm: Callable[[FakeConnectWise], None]
    status: str
    attempts: int
    outcomes: list[str]
    copies: int
    calls_last: list[str]  # connector calls of the last attempt (from its audit row)
    first_wait_at_least: float = 0.0  # seconds between attempt 1 and attempt 2


CASES = {
    "429_retry_after": Case(lambda f: f.fail_next(429, match=NOTES, retry_after=7), "done", 2, ["retry", "ok"], 1,
                            ["add_note"], first_wait_at_least=7),
    # A 5xx after sending says nothing about whether the note landed: settle, look, then write.
    "500": Case(lambda f: f.fail_next(500, match=NOTES), "done", 2, ["retry", "ok"], 1, ["find_write", "add_note"],
                first_wait_at_least=TEST_CONFIG.settle_seconds),
    "timeout_applied": Case(lambda f: f.slow(1.0, times=1, match=NOTES), "done", 2, ["retry", "reconciled"], 1,
                            ["find_write"], first_wait_at_least=TEST_CONFIG.settle_seconds),
    "applied_response_lost": Case(lambda f: f.lose_next_response(match=NOTES), "done", 2, ["retry", "reconciled"], 1,
                                  ["find_write"], first_wait_at_least=TEST_CONFIG.settle_seconds),
    "validation_400": Case(lambda f: f.fail_next(400, match=NOTES), "dead", 1, ["dead"], 0, ["add_note"]),
    "four_500s_then_ok": Case(lambda f: f.fail_next(500, times=2, match=NOTES), "done", 3, ["retry", "retry", "ok"], 1,
                              ["find_write", "add_note"]),
}


@pytest.mark.parametrize("name", list(CASES))
async def test_fault_matrix_note(cw: CwRig, name: str):
    case = CASES[name]
    case.arm(cw.cw)
    await cw.tickets.comment(cw.tech, cw.cw_ticket, f"case {name}", visibility="internal")
    [op] = await cw.ops()
    t0 = cw.clock.now
    await cw.worker.drain()
    first = await cw.op(op.id)
    if case.attempts > 1:
        assert (first.next_attempt_at - t0).total_seconds() >= case.first_wait_at_least
    await cw.run()
    final = await cw.op(op.id)
    audit = await cw.audit(op.id)
    assert (final.status, final.attempts) == (case.status, case.attempts)
    assert [a.outcome for a in audit] == case.outcomes
    assert audit[-1].request["calls"] == case.calls_last
    assert all(a.actor == cw.tech.display and a.duration_ms is not None for a in audit)
    assert cw.notes_with(op) == case.copies  # never a duplicate
    if case.status == "dead":
        [dead] = cw.notifier.of(WriteDead)
        assert dead.op_id == op.id and audit[0].response_status == 400 and final.last_error
    if case.outcomes[0] == "retry" and name.startswith("429"):
        assert audit[0].response_status == 429


async def test_create_with_lost_response_is_reconciled_by_external_xref(cw: CwRig):
    cw.cw.lose_next_response(match="POST /service/tickets")
    d = await cw.tickets.create(cw.tech, subject="New laptop", customer_id=cw.setup.customer_id)
    await cw.run()
    [op] = await cw.ops()
    t = await cw.ticket(d.summary.id)
    matches = [x for x in cw.cw.tickets.values() if x.get("externalXRef") == t.marker]
    assert len(matches) == 1 and t.external_id == str(matches[0]["id"]) and t.number == matches[0]["id"]
    assert [a.outcome for a in await cw.audit(op.id)] == ["retry", "reconciled"]


async def test_auth_revoked_mid_run(cw: CwRig):
    for i in range(3):
        await cw.tickets.comment(cw.tech, cw.cw_ticket, f"note {i}", visibility="internal")
    first, second, third = await cw.ops()
    await cw.worker.step()  # the first note goes through
    cw.cw.revoke_auth()
    await cw.run()
    ops = await cw.ops()
    # The 401 is not retried: that op is dead with ConnectWise's reason, the ticket's later op is held
    # behind it (blocked), and the connection is paused (one breaker row) rather than failing every op.
    assert [o.status for o in ops] == ["done", "dead", "blocked"]
    assert ops[1].attempts == 1 and ops[1].last_status_code == 401 and ops[2].attempts == 0
    assert [a.outcome for a in await cw.audit() if a.op_id is None] == ["breaker"]
    async with cw.db.read(Scope.system_wide()) as s:
        conn = await s.get(PsaConnection, cw.setup.connection_id)
    assert conn is not None and conn.last_error and "Credentials rejected" in conn.last_error
    # An admin fixes the keys (new credentials row), then retries the dead write.
    cw.cw.restore_auth()
    async with cw.db.write(Scope.workspace(cw.tech.workspace_id)) as s:
        row = await s.get(PsaConnection, cw.setup.connection_id)
        row.credentials_ciphertext = cw.cipher.encrypt(cw.cw.credentials(), workspace_id=cw.tech.workspace_id,
                                                       kind="connectwise")
    await OutboxAdmin(cw.db, clock=cw.clock).redrive(cw.tech.workspace_id, second.id, "cli")
    await cw.run()
    assert [o.status for o in await cw.ops()] == ["done"] * 3
    assert [cw.notes_with(o) for o in (first, second, third)] == [1, 1, 1]


async def test_a_write_to_a_ticket_deleted_in_the_psa_says_so_and_the_ticket_leaves(cw: CwRig):
    await cw.tickets.comment(cw.tech, cw.cw_ticket, "Still there?", visibility="internal")
    cw.cw.delete_ticket(cw.cw_ticket)  # someone deletes it in ConnectWise meanwhile
    await cw.run()
    [op] = await cw.ops()
    assert op.status == "dead" and "deleted in the PSA" in (op.last_error or "")
    [dead] = cw.notifier.of(WriteDead)
    assert dead.cause == "deleted"
    async with cw.db.read(Scope.system_wide()) as s:
        from store.tables import Ticket

        t = (await s.exec(select(Ticket).where(Ticket.external_id == str(cw.cw_ticket)))).one()
    assert t.deleted_at is not None  # out of the queue now, not at the next reconcile


async def test_a_403_refuses_one_write_and_the_connection_goes_on(cw: CwRig):
    """ConnectWise answers 403 when the API member's security role may not do something (psa-apis.md 2.10): the
    keys work. That write is dead with the reason and the step that can work (grant the right); the connection is
    not paused, not marked as having bad credentials, and other tickets' writes go on at once."""
    board, company = next(iter(cw.cw.boards)), next(iter(cw.cw.companies))
    other = cw.cw.add_ticket("Printer", company={"id": company}, board={"id": board})
    await cw.synced_ticket(str(other["id"]))
    cw.cw.fail_next(403, match="POST /time/entries")
    await cw.tickets.log_time(cw.tech, cw.cw_ticket, 30, notes="Swapped the PSU")
    await cw.tickets.comment(cw.tech, int(other["id"]), "On it", visibility="internal")
    await cw.run()
    ops = await cw.ops()
    assert [(o.kind, o.status) for o in ops] == [("add_time_entry", "dead"), ("add_note", "done")]
    assert ops[0].attempts == 1 and ops[0].last_status_code == 403
    assert [a.outcome for a in await cw.audit() if a.op_id is None] == []  # no breaker
    async with cw.db.read(Scope.system_wide()) as s:
        conn = await s.get(PsaConnection, cw.setup.connection_id)
    assert conn is not None and not conn.last_error
    [dead] = cw.notifier.of(WriteDead)
    assert dead.cause == "permission"
    why = (await OutboxAdmin(cw.db, clock=cw.clock).get_op(cw.tech.workspace_id, ops[0].id)).op.why or ""
    assert "security role" in why and "credentials" not in why
