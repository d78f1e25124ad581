"""Fault matrix against the fake HaloPSA (in-process transport): for each fault, the op's final state, its
attempts, its audit rows, and exactly one copy (or none) of the write in Halo. The same faults as the
ConnectWise matrix, plus what is Halo's own: a public reply that e-mails the end user whose response is lost
(found again, not sent twice), a lost ticket create (found by `third_party_id_string`), keys refused at the
token endpoint, and an outcome the API agent may not use.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from connectors.base import ConnectionConfig
from connectors.halopsa.connector import HaloPsaConnector
from connectors.tokens import InMemoryTokenCache
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
from tests.fakes.halopsa import FakeHalo
from tests.fakes.halopsa_http import HaloClock
from tests.fakes.outbox_psa import FakeClock

CLIENT_TIMEOUT = 0.2  # the connector's read timeout; "slow" answers take longer than this
ACTIONS = "POST /api/Actions"


@dataclass
class HaloRig(Rig):
    halo: FakeHalo = None  # type: ignore[assignment]
    halo_ticket: int = 0
    cipher: CredentialCipher = None  # type: ignore[assignment]

    def notes_with(self, op: OutboxOp) -> int:
        """Copies of the op's note in Halo: its text, exactly as written (there is no tag to count)."""
        return sum(1 for acts in self.halo.actions.values() for a in acts.values() if a["note"] == op.payload["text"])


@pytest.fixture
async def halo(db: Database, workspace_id: int, tech: Actor) -> AsyncIterator[HaloRig]:
    fake = FakeHalo(clock=HaloClock(datetime.now(UTC).replace(microsecond=0), step=timedelta(milliseconds=1)))
    cipher = CredentialCipher.from_keys([generate_key()])
    async with db.write(Scope.workspace(workspace_id)) as s:
        conn = PsaConnection(workspace_id=workspace_id, kind="halopsa", name="halo", is_default=True,
                             settings=fake.settings(default_board_id="1", rate_limit_per_second=100),
                             credentials_ciphertext=cipher.encrypt(fake.credentials(), workspace_id=workspace_id,
                                                                   kind="halopsa"))
        s.add(conn)
        await s.flush()
        cust = Customer(workspace_id=workspace_id, connection_id=conn.id, external_id="12", identifier="ACME",
                        name="Acme Corp")
        s.add(cust)
        await s.flush()
        setup = PsaSetup(conn.id, cust.id, cust.id, 0)  # type: ignore[arg-type]
    tokens = InMemoryTokenCache(clock=fake.clock.epoch)  # one cache for every connector the worker builds

    def factory(config: ConnectionConfig) -> HaloPsaConnector:
        return HaloPsaConnector(config, transport=fake.transport(), timeout=CLIENT_TIMEOUT, clock=fake.clock.epoch,
                                token_cache=tokens)

    connections = ConnectionService(db, cipher=cipher, checker=None, factory=factory,  # type: ignore[arg-type]
                                    known_kinds=frozenset({"halopsa"}))
    clock, notifier = FakeClock(), RecordingNotifier()
    worker = make_worker(db, connections, notifier, clock, TEST_CONFIG)
    rig = HaloRig(db, None, clock, notifier, worker, connections, setup, TicketService(db, clock=clock), tech,  # type: ignore[arg-type]
                  halo=fake, cipher=cipher)
    t = fake.add_ticket("Server down", client_id=12, user_id=501)
    rig.halo_ticket = int(t["id"])
    await rig.synced_ticket(str(t["id"]))
    try:
        yield rig
    finally:
        await worker.aclose()
        await connections.aclose()


@dataclass(frozen=True)
class Case:
    arm: Callable[[FakeHalo], None]
    status: str
    attempts: int
    outcomes: list[str]
    copies: int
    calls_last: list[str]
    first_wait_at_least: float = 0.0


CASES = {
    "429_retry_after": Case(lambda f: f.fail_next(429, match=ACTIONS, retry_after=7), "done", 2, ["retry", "ok"], 1,
                            ["add_note"], first_wait_at_least=7),
    "500": Case(lambda f: f.fail_next(500, match=ACTIONS), "done", 2, ["retry", "ok"], 1, ["find_write", "add_note"],
                first_wait_at_least=TEST_CONFIG.settle_seconds),
    "timeout_applied": Case(lambda f: f.slow(1.0, times=1, match=ACTIONS), "done", 2, ["retry", "reconciled"], 1,
                            ["find_write"], first_wait_at_least=TEST_CONFIG.settle_seconds),
    "applied_response_lost": Case(lambda f: f.lose_next_response(match=ACTIONS), "done", 2, ["retry", "reconciled"],
                                  1, ["find_write"], first_wait_at_least=TEST_CONFIG.settle_seconds),
    "validation_400": Case(lambda f: f.fail_next(400, match=ACTIONS), "dead", 1, ["dead"], 0, ["add_note"]),
    "two_500s_then_ok": Case(lambda f: f.fail_next(500, times=2, match=ACTIONS), "done", 3, ["retry", "retry", "ok"],
                             1, ["find_write", "add_note"]),
    "outcome_not_allowed": Case(lambda f: f.api_outcomes.discard(7), "dead", 1, ["dead"], 0, ["add_note"]),
}


@pytest.mark.parametrize("name", list(CASES))
async def test_fault_matrix_note(halo: HaloRig, name: str) -> None:
    case = CASES[name]
    case.arm(halo.halo)
    await halo.tickets.comment(halo.tech, halo.halo_ticket, f"case {name}", visibility="internal")
    [op] = await halo.ops()
    t0 = halo.clock.now
    await halo.worker.drain()
    first = await halo.op(op.id)  # type: ignore[arg-type]
    if case.attempts > 1:
        assert (first.next_attempt_at - t0).total_seconds() >= case.first_wait_at_least
    await halo.run()
    final = await halo.op(op.id)  # type: ignore[arg-type]
    audit = await halo.audit(op.id)
    assert (final.status, final.attempts) == (case.status, case.attempts)
    assert [a.outcome for a in audit] == case.outcomes
    assert audit[-1].request["calls"] == case.calls_last
    assert halo.notes_with(op) == case.copies  # never a duplicate
    assert halo.halo.emails == []  # an internal note is never e-mailed, whatever happened
    if case.status == "dead":
        [dead] = halo.notifier.of(WriteDead)
        assert dead.op_id == op.id and audit[0].response_status == 400 and final.last_error
    if name == "outcome_not_allowed":
        assert "internal_outcome_id" in (final.last_error or "")


async def test_a_lost_public_reply_is_found_and_the_end_user_mailed_once(halo: HaloRig) -> None:
    halo.halo.lose_next_response(match=ACTIONS)
    await halo.tickets.comment(halo.tech, halo.halo_ticket, "We replaced the switch.", visibility="public",
                               email_contact=True)
    await halo.run()
    [op] = await halo.ops()
    assert (op.status, [a.outcome for a in await halo.audit(op.id)]) == ("done", ["retry", "reconciled"])
    assert halo.notes_with(op) == 1
    assert [(e["to"], e["body"]) for e in halo.halo.emails] == [("pat@acme.example", "We replaced the switch.")]
    ticket = halo.halo.tickets[halo.halo_ticket]
    assert ticket["status_id"] == 1  # the write changed nothing else on the ticket


async def test_create_with_lost_response_is_reconciled_by_third_party_id(halo: HaloRig) -> None:
    halo.halo.lose_next_response(match="POST /api/Tickets")
    d = await halo.tickets.create(halo.tech, subject="New laptop", customer_id=halo.setup.customer_id)
    await halo.run()
    [op] = await halo.ops()
    t = await halo.ticket(d.summary.id)
    matches = [x for x in halo.halo.tickets.values() if x.get("third_party_id_string") == f"db:{t.marker}"]
    assert len(matches) == 1 and t.external_id == str(matches[0]["id"]) and t.number == matches[0]["id"]
    assert [a.outcome for a in await halo.audit(op.id)] == ["retry", "reconciled"]


async def test_keys_refused_mid_run(halo: HaloRig) -> None:
    for i in range(3):
        await halo.tickets.comment(halo.tech, halo.halo_ticket, f"note {i}", visibility="internal")
    first, second, third = await halo.ops()
    await halo.worker.step()  # the first note goes through
    good_secret = halo.halo.client_secret
    halo.halo.client_secret = "rotated-in-halo"  # an admin regenerated the API application's secret
    halo.halo.revoke_tokens()
    await halo.run()
    ops = await halo.ops()
    assert [o.status for o in ops] == ["done", "dead", "blocked"]
    assert ops[1].attempts == 1 and ops[2].attempts == 0
    # The admin enters the new secret (`connection reauth`): a new credentials row.
    assert good_secret != halo.halo.client_secret
    async with halo.db.write(Scope.workspace(halo.tech.workspace_id)) as s:
        row = await s.get(PsaConnection, halo.setup.connection_id)
        assert row is not None
        row.credentials_ciphertext = halo.cipher.encrypt(halo.halo.credentials(), workspace_id=halo.tech.workspace_id,
                                                         kind="halopsa")
    await OutboxAdmin(halo.db, clock=halo.clock).redrive(halo.tech.workspace_id, second.id, "cli")  # type: ignore[arg-type]
    await halo.run()
    assert [o.status for o in await halo.ops()] == ["done"] * 3
    assert [halo.notes_with(o) for o in (first, second, third)] == [1, 1, 1]
