"""A sync engine wired to the fake ConnectWise server (in-process httpx transport) and a migrated database."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime

import httpx
import pytest
from sqlmodel import select

from connectors.registry import Registry
from core.connections import ConnectionService
from core.notify import RecordingNotifier
from core.sync.engine import SyncEngine
from core.sync.service import SyncService
from store.crypto import CredentialCipher, generate_key
from store.db import Database, Scope
from store.tables import Ticket, TimelineEntry
from tests.fakes.connectwise import FakeConnectWise


async def _no_sleep(_: float) -> None:
    return None


@dataclass
class SyncEnv:
    db: Database
    fake: FakeConnectWise
    workspace_id: int
    connection_id: int
    connections: ConnectionService
    engine: SyncEngine
    sync: SyncService
    notifier: RecordingNotifier

    def now(self) -> datetime:
        return self.fake.clock.now

    async def tickets(self) -> dict[str, Ticket]:
        async with self.db.read(Scope.workspace(self.workspace_id)) as s:
            rows = (await s.exec(select(Ticket).where(Ticket.connection_id == self.connection_id))).all()
        return {t.external_id: t for t in rows}  # type: ignore[misc]

    async def timeline(self, ticket_id: int | None = None) -> list[TimelineEntry]:
        async with self.db.read(Scope.workspace(self.workspace_id)) as s:
            stmt = select(TimelineEntry).order_by(TimelineEntry.id)
            if ticket_id is not None:
                stmt = stmt.where(TimelineEntry.ticket_id == ticket_id)
            return list((await s.exec(stmt)).all())


async def make_env(db: Database, workspace_id: int, fake: FakeConnectWise, *,
                   transport: httpx.AsyncBaseTransport | None = None, page_size: int = 10,
                   instance_id: str = "test", settings: dict | None = None, name: str = "cw") -> SyncEnv:
    registry = Registry(transport=transport or fake.transport())
    cipher = CredentialCipher.from_keys([generate_key()])
    connections = ConnectionService(db, cipher=cipher, checker=registry.check, factory=registry.build,
                                    known_kinds=registry.kinds())
    conn, _ = await connections.add(workspace_id, kind="connectwise", name=name,
                                    settings=fake.settings(page_size=page_size, **(settings or {})),
                                    credentials=fake.credentials())
    notifier = RecordingNotifier()
    engine = SyncEngine(db, connections, notifier, instance_id=instance_id, clock=lambda: fake.clock.now,
                        sleep=_no_sleep)
    return SyncEnv(db, fake, workspace_id, conn.id, connections, engine, SyncService(engine), notifier)  # type: ignore[arg-type]


@pytest.fixture
def fake() -> FakeConnectWise:
    return FakeConnectWise()


@pytest.fixture
async def env(db: Database, workspace_id: int, fake: FakeConnectWise) -> AsyncIterator[SyncEnv]:
    yield await make_env(db, workspace_id, fake)
