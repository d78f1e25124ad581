"""Fixtures for outbox tests: a PSA-backed workspace, the in-process fake PSA, a worker on a fake clock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
import sqlalchemy as sa
from sqlmodel import select

from connectors.base import ConnectionConfig
from core.connections import ConnectionService
from core.context import Actor
from core.notify import RecordingNotifier
from core.outbox.backoff import BackoffPolicy
from core.outbox.worker import OutboxWorker, WorkerConfig
from core.tickets import TicketService
from store.crypto import CredentialCipher, generate_key
from store.db import Database, Scope
from store.enums import OutboxStatus
from store.tables import AuditLog, OutboxOp, Ticket
from tests.factories import PsaSetup, psa_backed
from tests.fakes.outbox_psa import FakeClock, FakeConnector, FakePsa

TEST_CONFIG = WorkerConfig(concurrency=2, lease_seconds=10, settle_seconds=2, client_timeout=1, poll_seconds=0.05,
                           backoff=BackoffPolicy(base=1, cap=8, max_retry_after=60), breaker_fail_max=3,
                           breaker_reset_seconds=20, reauth_park_seconds=120, grace_seconds=2,
                           connection_refresh_seconds=0)


@dataclass
class Rig:
    db: Database
    psa: FakePsa
    clock: FakeClock
    notifier: RecordingNotifier
    worker: OutboxWorker
    connections: ConnectionService
    setup: PsaSetup
    tickets: TicketService
    tech: Actor

    async def ops(self) -> list[OutboxOp]:
        async with self.db.read(Scope.system_wide()) as s:
            return list((await s.exec(select(OutboxOp).order_by(OutboxOp.id))).all())

    async def op(self, op_id: int) -> OutboxOp:
        async with self.db.read(Scope.system_wide()) as s:
            op = await s.get(OutboxOp, op_id)
            assert op is not None
            return op

    async def audit(self, op_id: int | None = None) -> list[AuditLog]:
        async with self.db.read(Scope.system_wide()) as s:
            stmt = select(AuditLog).order_by(AuditLog.id)
            if op_id is not None:
                stmt = stmt.where(AuditLog.op_id == op_id)
            return list((await s.exec(stmt)).all())

    async def ticket(self, ticket_id: int) -> Ticket:
        async with self.db.read(Scope.system_wide()) as s:
            t = await s.get(Ticket, ticket_id)
            assert t is not None
            return t

    async def synced_ticket(self, external_id: str, number: int | None = None) -> int:
        """A ticket that came from the PSA (it has its PSA id already)."""
        async with self.db.write(Scope.workspace(self.tech.workspace_id)) as s:
            t = Ticket(workspace_id=self.tech.workspace_id, connection_id=self.setup.connection_id,
                       external_id=external_id, number=number or int(external_id), subject=f"PSA {external_id}",
                       priority="medium", stage="new", board_external_id="1", psa_status_name="New")
            s.add(t)
            await s.flush()
            return t.id  # type: ignore[return-value]

    async def run(self, max_rounds: int = 60) -> None:
        """Deliver until nothing is pending: drain what is due, then jump the clock to the next due op."""
        for _ in range(max_rounds):
            await self.worker.drain()
            async with self.db.read(Scope.system_wide()) as s:
                nxt = (await s.exec(select(sa.func.min(OutboxOp.next_attempt_at)).where(
                    OutboxOp.status == OutboxStatus.PENDING.value))).first()
            if nxt is None:
                return
            if nxt > self.clock.now:
                self.clock.now = nxt
        raise AssertionError("outbox did not settle")


def make_worker(db: Database, connections: ConnectionService, notifier: RecordingNotifier, clock: FakeClock,
                config: WorkerConfig = TEST_CONFIG) -> OutboxWorker:
    import random

    # One fake time for everything: backoff, breaker, and the rate budget's pauses (Retry-After).
    return OutboxWorker(db, connections, notifier, config=config, clock=clock,
                        monotonic=lambda: clock().timestamp(), rng=random.Random(7))


@pytest.fixture
async def rig(db: Database, workspace_id: int, tech: Actor) -> AsyncIterator[Rig]:
    setup = await psa_backed(db, workspace_id)
    psa, clock, notifier = FakePsa(), FakeClock(), RecordingNotifier()

    def factory(config: ConnectionConfig) -> FakeConnector:
        return FakeConnector(psa, config)

    connections = ConnectionService(db, cipher=CredentialCipher.from_keys([generate_key()]),
                                    checker=None, factory=factory, known_kinds=frozenset({"sandbox"}))  # type: ignore[arg-type]
    worker = make_worker(db, connections, notifier, clock)
    tickets = TicketService(db, clock=clock)
    try:
        yield Rig(db, psa, clock, notifier, worker, connections, setup, tickets, tech)
    finally:
        await worker.aclose()
