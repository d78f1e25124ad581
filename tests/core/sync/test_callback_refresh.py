"""Callbacks re-read after the answer (core/sync/callbacks.py): coalesced per ticket, replayed after a stop.

The PSA is the fake ConnectWise over real HTTP on loopback; the database is the test database (SQLite, or
PostgreSQL with DESKBRIDGE_TEST_DATABASE_URL)."""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import AsyncIterator
from types import SimpleNamespace

import httpx
import pytest
from fastapi import FastAPI
from sqlmodel import select

from bot.api import webhooks
from connectors.registry import Registry
from core.connections import ConnectionService
from core.notify import NoteAdded, RecordingNotifier
from core.sync.engine import SyncEngine
from core.sync.service import SyncService
from store.crypto import CredentialCipher, generate_key
from store.db import Database, Scope
from store.tables import PendingRefresh
from tests.core.sync.conftest import SyncEnv
from tests.core.sync.test_engine import seed
from tests.fakes.connectwise import FakeConnectWise


def _sync(db: Database, connections: ConnectionService, fake: FakeConnectWise) -> tuple[SyncService, RecordingNotifier]:
    """A SyncService as one process has it (its own engine, notifier and refresh pool)."""
    notifier = RecordingNotifier()

    async def no_sleep(_: float) -> None:
        return None

    engine = SyncEngine(db, connections, notifier, clock=lambda: fake.clock.now, sleep=no_sleep)
    return SyncService(engine), notifier


@pytest.fixture
async def loop_env(db: Database, workspace_id: int) -> AsyncIterator[SyncEnv]:
    fake = FakeConnectWise()
    with fake.serve() as root:
        registry = Registry()  # real HTTP to the fake on 127.0.0.1
        connections = ConnectionService(db, cipher=CredentialCipher.from_keys([generate_key()]),
                                        checker=registry.check, factory=registry.build, known_kinds=registry.kinds())
        conn, _ = await connections.add(workspace_id, kind="connectwise", name="cw",
                                        settings=fake.settings(root=root, page_size=100),
                                        credentials=fake.credentials())
        sync, notifier = _sync(db, connections, fake)
        yield SyncEnv(db, fake, workspace_id, conn.id, connections, sync.engine, sync, notifier)  # type: ignore[arg-type]
        await sync.webhooks.stop()
        await connections.aclose()


async def _client(sync: SyncService) -> httpx.AsyncClient:
    app = FastAPI()
    app.state.container = SimpleNamespace(sync=sync)
    webhooks.install(app)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://deskbridge.test")


async def _pending(env: SyncEnv) -> list[tuple[int, str]]:
    async with env.db.read(Scope.system_wide()) as s:
        return [(p.connection_id, p.external_id) for p in (await s.exec(select(PendingRefresh))).all()]


def _reads_of(fake: FakeConnectWise, ticket: int) -> int:
    """Reads of one ticket: by its own URL, or within an `id in (...)` list read."""
    n = 0
    for r in fake.requests:
        if r.method != "GET":
            continue
        if r.path.endswith(f"/service/tickets/{ticket}"):
            n += 1
        elif r.path.endswith("/service/tickets"):
            found = re.search(r"\bid in \(([^)]*)\)", r.query.get("conditions", ""))
            n += bool(found and str(ticket) in found.group(1).split(","))
    return n


async def _until(cond, within_s: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + within_s
    while not cond():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.01)


async def test_callbacks_of_one_ticket_while_its_refresh_runs_make_one_more_refresh_not_n(loop_env: SyncEnv):
    env = loop_env
    a, b = seed(env.fake, 2)
    await env.sync.run(env.connection_id)
    env.fake.clock.advance(60)
    pool = env.sync.webhooks.pool
    pool.workers = 1  # one refresh at a time: B waits in the queue while A's refresh runs
    handle = env.fake.handle
    gate = threading.Event()

    def slow_a(req):  # type: ignore[no-untyped-def]  # runs on the loopback server's thread
        resp = handle(req)
        if req.method == "GET" and req.path.endswith(f"/service/tickets/{a}") and _reads_of(env.fake, a) == 1:
            # A's first re-read answers once the ten callbacks below are in (was a 0.5 s delay: on a loaded
            # machine the callbacks took longer, A's read finished first and a third read followed)
            gate.wait(30)
        return resp

    env.fake.handle = slow_a
    async with await _client(env.sync) as client:
        async def push(ticket: int, summary: str) -> str:
            env.fake.edit_ticket(ticket, summary=summary)
            headers, body = env.fake.signed_callback("ticket", "updated", ticket)
            r = await client.post(f"/webhooks/{env.connection_id}/cw", content=body, headers=headers)
            return str(r.json()["status"])

        assert await push(a, "A edit 0") == "accepted"
        await _until(lambda: _reads_of(env.fake, a) == 1)  # A's refresh is running
        answers = [await push(a, f"A edit {i}") for i in range(1, 6)]  # five more of A while it runs
        answers += [await push(b, f"B edit {i}") for i in range(5)]  # five of B while B is queued
        gate.set()
        assert answers == ["accepted"] * 10
        await env.sync.webhooks.settled()
    assert _reads_of(env.fake, a) == 2  # the running one, then exactly one more
    assert _reads_of(env.fake, b) == 1  # queued once, however many callbacks named it
    assert pool.batches_run == 2  # A alone, then A and B together
    stored = await env.tickets()
    assert (stored[str(a)].subject, stored[str(b)].subject) == ("A edit 5", "B edit 4")  # the newest of each
    assert await _pending(env) == []


async def test_a_callback_answered_but_not_re_read_before_the_process_stops_is_re_read_on_the_next_start(
        loop_env: SyncEnv):
    env = loop_env
    ids = seed(env.fake, 3)
    await env.sync.run(env.connection_id)
    env.fake.clock.advance(60)
    env.fake.edit_ticket(ids[1], summary="changed just before the crash")
    env.fake.add_note(ids[1], "customer reply", contact_id=min(env.fake.contacts))
    headers, body = env.fake.signed_callback("ticket", "updated", ids[1])
    env.fake.slow(3, match="GET /service/tickets/{id}")  # the re-read is in flight when the process goes
    async with await _client(env.sync) as client:
        resp = await client.post(f"/webhooks/{env.connection_id}/cw", content=body, headers=headers)
    assert resp.status_code == 200 and resp.json()["status"] == "accepted"
    await _until(lambda: _reads_of(env.fake, ids[1]) == 1)
    await env.sync.webhooks.pool.stop(grace_s=0)  # the process dies: its refresh never completes
    assert (await env.tickets())[str(ids[1])].subject == "Ticket 1"
    assert await _pending(env) == [(env.connection_id, str(ids[1]))]
    env.fake.clear_faults()

    # The next process (its own engine, notifier and pool; the same database) starts.
    after, notifier = _sync(env.db, env.connections, env.fake)
    try:
        assert await after.webhooks.start() == 1
        await after.webhooks.settled()
    finally:
        await after.webhooks.stop()
    assert (await env.tickets())[str(ids[1])].subject == "changed just before the crash"
    assert [n.body for n in notifier.of(NoteAdded)] == ["customer reply"]  # the thread still gets the reply
    assert await _pending(env) == []
    # A retry of the same delivery by the PSA is still a duplicate: nothing is read twice.
    async with await _client(after) as client:
        again = await client.post(f"/webhooks/{env.connection_id}/cw", content=body, headers=headers)
    assert again.json()["status"] == "duplicate"


async def test_a_callback_landing_while_its_ticket_is_re_read_is_kept_for_the_next_refresh(loop_env: SyncEnv):
    """The refresh that began before a callback was recorded does not clear that callback's row."""
    env = loop_env
    [tid] = seed(env.fake, 1)
    await env.sync.run(env.connection_id)
    env.fake.clock.advance(60)
    handle = env.fake.handle
    pool = env.sync.webhooks.pool

    def slow_first(req):  # type: ignore[no-untyped-def]
        resp = handle(req)
        if req.method == "GET" and req.path.endswith(f"/service/tickets/{tid}") and _reads_of(env.fake, tid) == 1:
            resp.delay = 0.5
        return resp

    env.fake.handle = slow_first
    async with await _client(env.sync) as client:
        h1, b1 = env.fake.signed_callback("ticket", "updated", tid)
        await client.post(f"/webhooks/{env.connection_id}/cw", content=b1, headers=h1)
        await _until(lambda: _reads_of(env.fake, tid) == 1)
        env.fake.edit_ticket(tid, summary="edited during the first re-read")
        h2, b2 = env.fake.signed_callback("ticket", "updated", tid)
        await client.post(f"/webhooks/{env.connection_id}/cw", content=b2, headers=h2)
        await pool.stop(grace_s=5)  # the first refresh completes; the second never starts (the process stops)
    assert _reads_of(env.fake, tid) == 1
    assert await _pending(env) == [(env.connection_id, str(tid))]  # the second callback is still recorded
    after, _ = _sync(env.db, env.connections, env.fake)
    try:
        assert await after.webhooks.start() == 1
        await after.webhooks.settled()
    finally:
        await after.webhooks.stop()
    assert (await env.tickets())[str(tid)].subject == "edited during the first re-read"
    assert await _pending(env) == []


async def test_tickets_refreshed_together_are_read_in_one_request_and_a_missing_one_is_marked_deleted(
        loop_env: SyncEnv):
    env = loop_env
    ids = seed(env.fake, 6)
    await env.sync.run(env.connection_id)
    env.fake.clock.advance(60)
    for i in ids:
        env.fake.edit_ticket(i, summary=f"edited {i}")
    env.fake.delete_ticket(ids[5])
    env.fake.reset_counts()
    failed = await env.engine.refresh_tickets(env.connection_id, [str(i) for i in ids])
    assert failed == {}
    assert env.fake.count("GET /service/tickets") == 1  # one `id in (...)` read for all six
    assert env.fake.count("GET /service/tickets/{id}") == 0
    stored = await env.tickets()
    assert [stored[str(i)].subject for i in ids[:5]] == [f"edited {i}" for i in ids[:5]]
    assert stored[str(ids[5])].deleted_at is not None  # absent from the list: gone from the PSA


async def test_the_scheduled_sync_takes_over_callbacks_an_instance_recorded_and_never_re_read(loop_env: SyncEnv):
    """Another instance recorded two callbacks and stopped: the one older than STALE_AFTER is re-read by the
    instance running the connection's sync; the recent one is left to the instance that may still hold it."""
    from datetime import timedelta

    from core.sync.callbacks import STALE_AFTER
    from store.types import utcnow

    env = loop_env
    old, recent = seed(env.fake, 2)
    await env.sync.run(env.connection_id)
    async with env.db.write(Scope.system_wide()) as s:
        s.add(PendingRefresh(connection_id=env.connection_id, external_id=str(old),
                             received_at=utcnow() - STALE_AFTER - timedelta(seconds=5)))
        s.add(PendingRefresh(connection_id=env.connection_id, external_id=str(recent), received_at=utcnow()))
    env.fake.reset_counts()
    assert (await env.sync.run(env.connection_id)).ok
    await env.sync.webhooks.settled()
    assert _reads_of(env.fake, old) == 1 and _reads_of(env.fake, recent) == 0
    assert await _pending(env) == [(env.connection_id, str(recent))]
