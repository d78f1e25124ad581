"""Callbacks' re-reads in a worker process (core/sync/worker.py, bot/refresh_worker.py), end to end.

The app is built as `serve` builds it (`refresh_worker="process"`): a real `python -m bot.refresh_worker` child with
its own database engine and connectors, the fake ConnectWise over real HTTP on loopback, the real slack-bolt app's
notifier against the fake Slack Web API, the test database (SQLite file, or PostgreSQL with
DESKBRIDGE_TEST_DATABASE_URL)."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pytest
import sqlalchemy as sa

from bot.main import Deskbridge, build
from bot.settings import Settings
from core.chat import ChatUser
from core.context import Actor
from core.sync.worker import WorkerClient
from store.crypto import generate_key
from store.db import Scope
from tests.core.sync.test_engine import seed
from tests.fakes.connectwise import FakeConnectWise
from tests.fakes.slack_api import FakeSlackApi

TEAM = "T0001"
CHANNEL = "C_DISPATCH"


@dataclass
class Rig:
    c: Deskbridge
    fake: FakeConnectWise
    slack: FakeSlackApi
    conn_id: int
    ws: int

    @property
    def worker(self) -> WorkerClient:
        assert self.c.sync.webhooks.worker is not None
        return self.c.sync.webhooks.worker

    async def callback(self, ticket: int) -> str:
        headers, body = self.fake.signed_callback("ticket", "updated", ticket)
        return (await self.c.sync.ingest_webhook(self.conn_id, "connectwise", headers, body)).status

    def posts(self) -> list[dict[str, Any]]:
        return [c.args for c in self.slack.of("chat.postMessage") if c.args.get("channel") == CHANNEL]

    def replies(self, thread_ts: str) -> list[str]:
        return [str(p.get("text", "")) for p in self.posts() if p.get("thread_ts") == thread_ts]

    async def settled(self) -> None:
        await self.c.sync.webhooks.settled()
        assert self.c.slack is not None
        await asyncio.wait_for(self.c.slack.drain(), 30)

    async def scalar(self, sql: str, **params: Any) -> Any:
        async with self.c.db.read(Scope.system_wide()) as s:
            return (await s.execute(sa.text(sql), params)).scalar()


async def until(cond: Callable[[], bool], within_s: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + within_s
    while not cond():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.02)


@asynccontextmanager
async def open_rig(db_url: str, workspace_id: int, tmp_path: Any) -> AsyncIterator[Rig]:
    """The app as `serve` builds it, its worker started, with a ConnectWise connection (tests of the journal too)."""
    fake = FakeConnectWise()
    slack = await FakeSlackApi(team_id=TEAM).start()
    with fake.serve() as root:
        settings = Settings(database_url=db_url, secret_key=generate_key(), sandbox="off", auto_migrate=False,
                            secret_key_file=tmp_path / "k", run_scheduler=False, run_outbox_worker=False,
                            refresh_worker="process", slack_bot_token="xoxb-test-token",  # noqa: S106 - the fake's
                            slack_signing_secret="secret", slack_api_url=slack.api_url, log_level="WARNING")
        c = build(settings)
        c.default_workspace_id = workspace_id
        assert c.slack is not None and c.sync.webhooks.worker is not None
        await c.slack.start()
        conn, _ = await c.connections.add(workspace_id, kind="connectwise", name="cw",
                                          settings=fake.settings(root=root, page_size=100),
                                          credentials=fake.credentials())
        assert conn.id is not None
        r = Rig(c, fake, slack, conn.id, workspace_id)
        try:
            await c.sync.webhooks.start()
            yield r
        finally:
            await c.sync.webhooks.stop()
            await c.aclose()
            await slack.stop()


@pytest.fixture
async def rig(db_url: str, workspace_id: int, tmp_path: Any) -> AsyncIterator[Rig]:
    async with open_rig(db_url, workspace_id, tmp_path) as r:
        yield r


async def dispatch_card(r: Rig, summary: str) -> tuple[int, str]:
    """A ticket opened in the PSA after the first sync: its callback makes the dispatch card; (id, thread ts)."""
    await r.c.chat.bind(Actor.system(r.ws), ChatUser(platform="slack", team_id=TEAM, user_id="U_ADMIN",
                                                      channel_id=CHANNEL), "dispatch")
    r.fake.clock.advance(60)
    ticket = r.fake.add_ticket(summary, board={"id": min(r.fake.boards)})
    assert await r.callback(ticket["id"]) == "accepted"
    await r.settled()
    cards = [p for p in r.posts() if not p.get("thread_ts") and summary in str(p)]
    assert len(cards) == 1, cards  # announced once, by the parent's Slack notifier
    card_ts = next(ts for (ch, ts), m in r.slack.messages.items()
                   if ch == CHANNEL and summary in str(m) and not m.get("thread_ts"))
    return int(ticket["id"]), card_ts


async def test_events_of_re_reads_in_the_worker_reach_slack_once_and_in_order(rig: Rig):
    r = rig
    seed(r.fake, 3)
    assert (await r.c.sync.run(r.conn_id)).ok  # the first import (silent), by the app's own engine
    tid, thread = await dispatch_card(r, "Worker card W1")
    assert r.worker.pid is not None and r.worker.pid != os.getpid()
    for i in range(5):  # five notes, a callback each, while earlier re-reads may still run
        r.fake.clock.advance(5)
        r.fake.add_note(tid, f"customer reply {i}", contact_id=min(r.fake.contacts))
        assert await r.callback(tid) in ("accepted", "duplicate")
    await r.settled()
    got = [t for t in r.replies(thread) if "customer reply" in t]
    assert [next(f"customer reply {i}" for i in range(5) if f"customer reply {i}" in t) for t in got] == [
        f"customer reply {i}" for i in range(5)]  # each once, in the PSA's order
    assert r.worker.starts == 1 and r.worker.events >= 6  # TicketCreated + five NoteAdded, through the journal
    assert await r.scalar("select count(*) from event_journal") == 0  # delivered, then deleted
    assert await r.scalar("select count(*) from pending_refresh") == 0
    stored = await r.scalar("select count(*) from timeline_entry e join ticket t on t.id = e.ticket_id "
                            "where t.external_id = :ext and e.body like 'customer reply %'", ext=str(tid))
    assert stored == 5


async def test_a_worker_killed_mid_batch_is_replaced_and_its_batch_re_read_once(rig: Rig):
    r = rig
    seed(r.fake, 2)
    assert (await r.c.sync.run(r.conn_id)).ok
    tid, thread = await dispatch_card(r, "Worker card K1")
    first = r.worker.pid
    r.fake.clock.advance(5)
    r.fake.add_note(tid, "written before the crash", contact_id=min(r.fake.contacts))
    r.fake.slow(3, match="GET /service/tickets/{id}")  # the worker's re-read is in flight when it dies
    reads = len(r.fake.requests)
    assert await r.callback(tid) == "accepted"
    await until(lambda: any(q.path.endswith(f"/service/tickets/{tid}") for q in r.fake.requests[reads:]))
    assert first is not None
    os.kill(first, signal.SIGKILL)
    r.fake.clear_faults()
    await until(lambda: r.worker.starts == 2 and r.worker.pid not in (None, first))  # started again at once
    await until(lambda: r.c.sync.webhooks.pool.refreshed >= 2, within_s=30)  # the retry (2 s) in the new one
    await r.settled()
    assert r.replies(thread).count(next(t for t in r.replies(thread) if "written before the crash" in t)) == 1
    assert await r.scalar("select count(*) from pending_refresh") == 0
    assert await r.scalar("select count(*) from timeline_entry where body = 'written before the crash'") == 1


async def test_a_batch_written_but_not_cleared_is_re_read_without_a_second_announcement(rig: Rig):
    """The worker died after its write committed and before its pending rows were deleted (simulated: the delete
    is refused by a trigger, then the worker is killed): the next start re-reads the ticket, writes and posts
    nothing twice."""
    r = rig
    seed(r.fake, 2)
    assert (await r.c.sync.run(r.conn_id)).ok
    tid, thread = await dispatch_card(r, "Worker card T1")
    pg = not r.c.db.is_sqlite
    async with r.c.db.engine.begin() as conn:
        if pg:
            await conn.execute(sa.text("create function held() returns trigger language plpgsql as "
                                       "$$ begin raise exception 'held'; end $$"))
            await conn.execute(sa.text("create trigger hold before delete on pending_refresh "
                                       "for each row execute function held()"))
        else:
            await conn.execute(sa.text("create trigger hold before delete on pending_refresh "
                                       "begin select raise(abort, 'held'); end"))
    try:
        r.fake.clock.advance(5)
        r.fake.add_note(tid, "announced once", contact_id=min(r.fake.contacts))
        assert await r.callback(tid) == "accepted"
        await r.settled()
        assert await r.scalar("select count(*) from pending_refresh") == 1  # written, announced, not cleared
        assert sum("announced once" in t for t in r.replies(thread)) == 1
        pid = r.worker.pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        await until(lambda: r.worker.starts == 2)
    finally:
        async with r.c.db.engine.begin() as conn:
            await conn.execute(sa.text("drop trigger hold on pending_refresh" if pg else "drop trigger hold"))
            if pg:
                await conn.execute(sa.text("drop function held()"))
    assert await r.c.sync.webhooks.pool.start() == 1  # what the next start does: the row is re-read
    await r.settled()
    assert await r.scalar("select count(*) from pending_refresh") == 0
    assert sum("announced once" in t for t in r.replies(thread)) == 1
    assert await r.scalar("select count(*) from timeline_entry where body = 'announced once'") == 1


async def test_stop_ends_the_worker_and_leaves_unread_callbacks_recorded(rig: Rig):
    r = rig
    seed(r.fake, 1)
    assert (await r.c.sync.run(r.conn_id)).ok
    [tid] = list(r.fake.tickets)[:1]
    r.fake.slow(30, match="GET /service/tickets/{id}")
    assert await r.callback(tid) == "accepted"
    await until(lambda: any(q.path.endswith(f"/service/tickets/{tid}") for q in r.fake.requests))
    proc = r.worker._proc
    assert proc is not None
    await r.c.sync.webhooks.pool.stop(grace_s=0.2)
    await r.worker.stop(grace_s=1)
    assert proc.returncode is not None  # gone (asked, then killed past the grace)
    r.fake.clear_faults()
    assert await r.scalar("select count(*) from pending_refresh") == 1  # re-read on the next start


async def test_callbacks_recorded_here_while_the_worker_writes_never_meet_a_locked_database(rig: Rig):
    """Two processes write at once (this one records callbacks and chat posts, the worker its batches): on SQLite
    both queue on its lock (WAL, BEGIN IMMEDIATE, busy_timeout), so no callback is refused and no batch fails."""
    r = rig
    ids = seed(r.fake, 12)
    assert (await r.c.sync.run(r.conn_id)).ok
    answers: list[str] = []
    for rnd in range(4):
        r.fake.clock.advance(5)
        for tid in ids:
            r.fake.edit_ticket(tid, summary=f"round {rnd} of {tid}")
        answers += await asyncio.gather(*(r.callback(tid) for tid in ids))  # at once, while batches are written
        await asyncio.sleep(0.05)
    await r.settled()
    assert set(answers) == {"accepted"}
    pool = r.c.sync.webhooks.pool
    assert pool.failed == 0 and r.worker.starts == 1
    stored = {str(ext): subj for ext, subj in (await _rows(r, "select external_id, subject from ticket"))}
    assert all(stored[str(tid)] == f"round 3 of {tid}" for tid in ids)
    assert await r.scalar("select count(*) from pending_refresh") == 0


async def _rows(r: Rig, sql: str) -> list[Any]:
    async with r.c.db.read(Scope.system_wide()) as s:
        return list((await s.execute(sa.text(sql))).all())


def test_re_reads_stay_in_the_process_where_a_worker_could_not_follow(tmp_path: Any):
    import httpx

    def settings(url: str, mode: str = "process") -> Settings:
        return Settings(database_url=url, secret_key=generate_key(), secret_key_file=tmp_path / "k",
                        refresh_worker=mode)  # type: ignore[arg-type]

    file_db = f"sqlite:///{tmp_path / 'x.db'}"
    assert build(settings(file_db)).sync.webhooks.worker is not None  # what `serve` builds
    assert build(settings(file_db, "inline")).sync.webhooks.worker is None  # the setting
    transport = httpx.MockTransport(lambda _: httpx.Response(500))
    assert build(settings(file_db), transport=transport).sync.webhooks.worker is None  # a transport stays here
