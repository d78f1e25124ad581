"""SQLite connections are aiosqlite threads: the pool keeps the ones it opens (a moment with many sessions open
must not start and stop threads each time), and a new one's thread is started off the event loop (Thread.start
waits until the new thread runs: on a busy machine that held the loop for tens of ms)."""

from __future__ import annotations

import asyncio
import threading

import sqlalchemy as sa

from store.db import SQLITE_POOL_SIZE, Database, Scope


async def test_sessions_over_five_keep_their_connections_and_start_threads_off_the_loop(tmp_path, monkeypatch):
    starts: list[bool] = []  # per aiosqlite connection thread started: on the event loop's thread?
    loop_thread = threading.current_thread()
    real_start = threading.Thread.start

    def start(self: threading.Thread) -> None:
        if getattr(getattr(self, "_target", None), "__name__", "") == "_connection_worker_thread":
            starts.append(threading.current_thread() is loop_thread)
        real_start(self)

    monkeypatch.setattr(threading.Thread, "start", start)
    db = Database(f"sqlite:///{tmp_path / 'pool.db'}")
    hold, all_open, open_now = asyncio.Event(), asyncio.Event(), [0]

    async def session() -> None:
        async with db.read(Scope.system_wide()) as s:
            assert (await s.execute(sa.text("SELECT 1"))).scalar_one() == 1
            open_now[0] += 1
            if open_now[0] == 12:
                all_open.set()
            await hold.wait()  # all open at once

    try:
        for _ in range(3):  # three moments with 12 sessions open
            hold.clear()
            all_open.clear()
            open_now[0] = 0
            tasks = [asyncio.create_task(session()) for _ in range(12)]
            await asyncio.wait_for(all_open.wait(), 30)
            assert db._read_engine.sync_engine.pool.checkedout() == 12  # type: ignore[attr-defined]
            hold.set()
            await asyncio.gather(*tasks)
        assert len(starts) == 12  # opened once, kept: not 12 more threads per moment
        assert not any(starts)  # every thread started off the event loop
        assert db._read_engine.sync_engine.pool.checkedin() == 12  # type: ignore[attr-defined]
        assert SQLITE_POOL_SIZE >= 12
    finally:
        await db.dispose()
