"""Fault matrix against the fake Autotask (in-process transport): for each fault, the op's final state, its
attempts, its audit rows, and exactly one copy (or none) of the write in Autotask. The ConnectWise and Halo
faults, plus Autotask's own: refusals that arrive as HTTP 500 (a thread-limit `Itgenatr005` is rate limiting,
a permission problem is an auth error, a refusal naming a field is a validation error), a lost ticket create
found again by `externalID`, and an API user whose access is revoked mid-run (the connection stops, it does
not keep knocking).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from connectors.autotask.connector import AutotaskConnector
from connectors.autotask.limits import Throttles
from connectors.base import ConnectionConfig
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
from tests.fakes.autotask import FakeAutotask
from tests.fakes.autotask import FakeClock as AtClock
from tests.fakes.outbox_psa import FakeClock

CLIENT_TIMEOUT = 0.2  # the connector's read timeout; "slow" answers take longer than this
NOTES = "POST /Tickets/{id}/Notes"
ACME = 175


@dataclass
class AtRig(Rig):
    at: FakeAutotask = None  # type: ignore[assignment]
    at_ticket: int = 0
    cipher: CredentialCipher = None  # type: ignore[assignment]

    def notes_with(self, op: OutboxOp) -> int:
        """Copies of the op's note in Autotask: its text, exactly as written (there is no tag to count)."""
        return sum(1 for n in self.at.tables["TicketNotes"].values() if n["description"] == op.payload["text"])


@pytest.fixture
async def at(db: Database, workspace_id: int, tech: Actor) -> AsyncIterator[AtRig]:
    fake = FakeAutotask(clock=AtClock(datetime.now(UTC).replace(microsecond=0), step=timedelta(milliseconds=1)))
    cipher = CredentialCipher.from_keys([generate_key()])
    async with db.write(Scope.workspace(workspace_id)) as s:
        conn = PsaConnection(workspace_id=workspace_id, kind="autotask", name="autotask", is_default=True,
                             settings=fake.settings(default_board_id="29682833", rate_limit_per_second=100),
                             credentials_ciphertext=cipher.encrypt(fake.credentials(), workspace_id=workspace_id,
                                                                   kind="autotask"))
        s.add(conn)
        await s.flush()
        cust = Customer(workspace_id=workspace_id, connection_id=conn.id, external_id=str(ACME), identifier="ACME",
                        name="Acme Corp")
        s.add(cust)
        await s.flush()
        setup = PsaSetup(conn.id, cust.id, cust.id, 0)  # type: ignore[arg-type]
    clock, notifier = FakeClock(), RecordingNotifier()
    throttles = Throttles(clock=lambda: clock().timestamp())  # the worker's time: cool-downs pass as it jumps

    async def no_sleep(_: float) -> None:
        return None

    def factory(config: ConnectionConfig) -> AutotaskConnector:
        return AutotaskConnector(config, transport=fake.transport(), timeout=CLIENT_TIMEOUT, throttles=throttles,
                                 clock=lambda: clock().timestamp(), sleep=no_sleep)

    connections = ConnectionService(db, cipher=cipher, checker=None, factory=factory,  # type: ignore[arg-type]
                                    known_kinds=frozenset({"autotask"}))
    worker = make_worker(db, connections, notifier, clock, TEST_CONFIG)
    rig = AtRig(db, None, clock, notifier, worker, connections, setup, TicketService(db, clock=clock), tech,  # type: ignore[arg-type]
                at=fake, cipher=cipher)
    t = fake.add_ticket("Server down", companyID=ACME, contactID=next(
        c["id"] for c in fake.tables["Contacts"].values() if c["companyID"] == ACME))
    rig.at_ticket = int(t["id"])
    await rig.synced_ticket(str(t["id"]))
    try:
        yield rig
    finally:
        await worker.aclose()
        await connections.aclose()


@dataclass(frozen=True)
class Case:
    arm: Callable[[FakeAutotask], None]
    status: str
    attempts: int
    outcomes: list[str]
    copies: int
    calls_last: list[str]
    first_wait_at_least: float = 0.0


THREAD = "Itgenatr005: thread threshold of 3 concurrent requests per endpoint exceeded for TicketNotes."
CASES = {
    "429_retry_after": Case(lambda f: f.fail_next(429, match=NOTES, retry_after=7), "done", 2, ["retry", "ok"], 1,
                            ["add_note"], first_wait_at_least=7),
    "500": Case(lambda f: f.fail_next(500, match=NOTES), "done", 2, ["retry", "ok"], 1, ["find_write", "add_note"],
                first_wait_at_least=TEST_CONFIG.settle_seconds),
    "thread_limit_as_500": Case(lambda f: f.fail_next(500, match=NOTES, message=THREAD), "done", 2, ["retry", "ok"],
                                1, ["add_note"]),
    "timeout_applied": Case(lambda f: f.slow(1.0, times=1, match=NOTES), "done", 2, ["retry", "reconciled"], 1,
                            ["find_write"], first_wait_at_least=TEST_CONFIG.settle_seconds),
    "applied_response_lost": Case(lambda f: f.lose_next_response(match=NOTES), "done", 2, ["retry", "reconciled"],
                                  1, ["find_write"], first_wait_at_least=TEST_CONFIG.settle_seconds),
    "refusal_as_500": Case(lambda f: f.fail_next(500, match=NOTES, message="Missing required field: title."),
                           "dead", 1, ["dead"], 0, ["add_note"]),
    "two_500s_then_ok": Case(lambda f: f.fail_next(500, times=2, match=NOTES), "done", 3, ["retry", "retry", "ok"],
                             1, ["find_write", "add_note"]),
}


@pytest.mark.parametrize("name", list(CASES))
async def test_fault_matrix_note(at: AtRig, name: str) -> None:
    case = CASES[name]
    case.arm(at.at)
    await at.tickets.comment(at.tech, at.at_ticket, f"case {name}", visibility="internal")
    [op] = await at.ops()
    t0 = at.clock.now
    await at.worker.drain()
    first = await at.op(op.id)  # type: ignore[arg-type]
    if case.attempts > 1:
        assert (first.next_attempt_at - t0).total_seconds() >= case.first_wait_at_least
    await at.run()
    final = await at.op(op.id)  # type: ignore[arg-type]
    audit = await at.audit(op.id)
    assert (final.status, final.attempts) == (case.status, case.attempts)
    assert [a.outcome for a in audit] == case.outcomes
    assert audit[-1].request["calls"] == case.calls_last
    assert at.notes_with(op) == case.copies  # never a duplicate
    internal = at.at.pick("TicketNotes", "publish", "Internal Users Only")
    assert all(n["publish"] == internal for n in at.at.tables["TicketNotes"].values())  # never published
    if case.status == "dead":
        [dead] = at.notifier.of(WriteDead)
        assert dead.op_id == op.id and final.last_error and "title" in final.last_error


async def test_a_public_reply_is_published_to_all_and_changes_nothing_else(at: AtRig) -> None:
    before = dict(at.at.tables["Tickets"][at.at_ticket])
    at.at.lose_next_response(match=NOTES)
    await at.tickets.comment(at.tech, at.at_ticket, "We replaced the switch & the <PSU>.", visibility="public",
                             email_contact=True)
    await at.run()
    [op] = await at.ops()
    assert (op.status, [a.outcome for a in await at.audit(op.id)]) == ("done", ["retry", "reconciled"])
    [note] = [n for n in at.at.tables["TicketNotes"].values() if n["ticketID"] == at.at_ticket]
    assert note["description"] == "We replaced the switch & the <PSU>."  # exactly as typed
    assert note["publish"] == at.at.publish_to_all("TicketNotes")
    after = at.at.tables["Tickets"][at.at_ticket]
    moved = {k for k in after if after[k] != before[k]}
    assert moved <= {"lastActivityDate", "lastCustomerVisibleActivityDateTime"}  # Autotask's own stamps only
    assert [r.key for r in at.at.requests if r.method == "PATCH"] == []


async def test_create_with_lost_response_is_reconciled_by_external_id(at: AtRig) -> None:
    at.at.lose_next_response(match="POST /Tickets")
    d = await at.tickets.create(at.tech, subject="New laptop", customer_id=at.setup.customer_id)
    await at.run()
    [op] = await at.ops()
    t = await at.ticket(d.summary.id)
    matches = [x for x in at.at.tables["Tickets"].values() if x.get("externalID") == t.marker]
    assert len(matches) == 1 and t.external_id == str(matches[0]["id"])
    assert matches[0]["queueID"] == 29682833 and matches[0]["companyID"] == ACME
    assert [a.outcome for a in await at.audit(op.id)] == ["retry", "reconciled"]


async def test_access_revoked_mid_run_stops_the_connection_until_redriven(at: AtRig) -> None:
    for i in range(3):
        await at.tickets.comment(at.tech, at.at_ticket, f"note {i}", visibility="internal")
    first, second, third = await at.ops()
    await at.worker.step()  # the first note goes through
    at.at.revoke_auth()  # an admin locked the API user
    at.at.reset_counts()
    await at.run()
    ops = await at.ops()
    assert [o.status for o in ops] == ["done", "dead", "blocked"]
    assert ops[1].attempts == 1 and ops[2].attempts == 0
    refused = [r.key for r in at.at.requests if r.zone is not None]
    assert len(refused) <= 2, f"a refused API user must not be hammered: {refused}"
    assert "connection reauth" in (ops[1].last_error or "") or "credentials" in (ops[1].last_error or "")
    at.at.restore_auth()
    async with at.db.write(Scope.workspace(at.tech.workspace_id)) as s:  # `connection reauth`: keys saved again
        row = await s.get(PsaConnection, at.setup.connection_id)
        assert row is not None
        row.credentials_ciphertext = at.cipher.encrypt(at.at.credentials(), workspace_id=at.tech.workspace_id,
                                                       kind="autotask")
    await OutboxAdmin(at.db, clock=at.clock).redrive(at.tech.workspace_id, second.id, "cli")  # type: ignore[arg-type]
    await at.run()
    assert [o.status for o in await at.ops()] == ["done"] * 3
    assert [at.notes_with(o) for o in (first, second, third)] == [1, 1, 1]
