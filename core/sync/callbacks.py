"""PSA callbacks after the answer: recorded durably first, then the named tickets re-read by a small pool.

A callback is answered as soon as two rows are committed: its event id (`processed_event`, so a retried
delivery is a no-op) and the ticket it names (`pending_refresh`, one row per ticket, its `received_at` moved
to the newest callback). Callbacks arriving while a record transaction is being written wait for it and go
together in the next one (group commit): under a burst the database sees one write per batch, not one per
callback.

Then `RefreshPool` re-reads the tickets: a few workers (`workers`), each taking up to `batch` queued tickets
of one connection, oldest first, and refreshing them together (SyncEngine.refresh_tickets: one read per
ticket and its children, one write transaction). Callbacks of one ticket coalesce: while its refresh is
queued nothing is added; while it runs, N more callbacks make one more refresh after it, never N. Only the
named tickets are read, never a full sync.

After a refresh its rows are deleted, but only those not touched by a callback since the refresh began
(`received_at <=` the refresh's start), so a callback that lands mid-refresh is never lost, whichever
instance took it. A refresh the PSA fails (5xx, 429 past the engine's retries) or that fails on our side is
tried again later (`RETRY_S`); its row stays. Rows left by a process that stopped between the answer and the
refresh (a crash, a deploy) are re-read when the next one starts (`start`), and rows older than two minutes
by the instance running the connection's scheduled sync (`sweep`, after each run): with several instances,
one that died is taken over without waiting for a restart. The scheduled sync itself, reading everything
changed since its cursor minus an overlap, catches up as well.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from core.errors import NotFound
from core.sync.engine import SyncEngine
from store.db import Database, Scope
from store.sql import dialect_insert, table_of
from store.tables import PendingRefresh, ProcessedEvent
from store.types import utcnow

log = logging.getLogger(__name__)

RECORDS_PER_TRANSACTION = 200
RETRY_S = (2.0, 5.0, 15.0, 60.0)  # then left to the scheduled sync and the next start
STALE_AFTER = timedelta(minutes=2)  # a row this old was left by an instance that stopped (or gave up): take it
MAX_EXTERNAL_ID = 64  # the ticket column's width; a longer id names no ticket we could store

Key = tuple[int, str]  # (connection id, ticket external id)
# Re-reads one batch (connection id, ticket ids) and forgets its pending rows; returns the ids it could not
# refresh, with why. `refresh_batch` in this process, or core/sync/worker.py's client of a worker process.
Refresher = Callable[[int, list[str]], Awaitable[dict[str, str]]]


@dataclass(frozen=True, slots=True)
class Callback:
    """What one verified callback asks for: remember its event id, re-read `external_id` (if any)."""

    source: str
    event_id: str
    workspace_id: int | None
    connection_id: int
    external_id: str | None


class CallbackLog:
    """The durable record of callbacks answered but not yet re-read (group commit of concurrent records)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._waiting: list[tuple[Callback, asyncio.Future[bool]]] = []
        self._runner: asyncio.Task[None] | None = None
        self.transactions = 0  # record transactions written (tests and benches look at it)

    async def record(self, cb: Callback) -> bool:
        """Commit the callback's event id and pending ticket; False when the event id was recorded before."""
        fut: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._waiting.append((cb, fut))
        if self._runner is None or self._runner.done():
            self._runner = asyncio.create_task(self._run())
        return await asyncio.shield(fut)

    async def _run(self) -> None:
        while self._waiting:
            taken, self._waiting = (self._waiting[:RECORDS_PER_TRANSACTION],
                                    self._waiting[RECORDS_PER_TRANSACTION:])
            try:
                new = await self._write([cb for cb, _ in taken])
            except Exception as exc:  # noqa: BLE001 - handed to every waiting callback (answered 503)
                for _, fut in taken:
                    if not fut.done():
                        fut.set_exception(exc)
                continue
            for i, (_, fut) in enumerate(taken):
                if not fut.done():
                    fut.set_result(i in new)

    async def _write(self, cbs: Sequence[Callback]) -> set[int]:
        """One transaction: the event ids (first of each), then the pending tickets of the new ones."""
        first: dict[tuple[str, str], int] = {}
        for i, cb in enumerate(cbs):
            first.setdefault((cb.source[:64], cb.event_id[:200]), i)
        now = utcnow()
        pe = table_of(ProcessedEvent)
        events = dialect_insert(self.db.dialect, ProcessedEvent).values([
            {"source": src, "event_id": eid, "workspace_id": cbs[i].workspace_id, "received_at": now}
            for (src, eid), i in first.items()])
        events = events.on_conflict_do_nothing(index_elements=["source", "event_id"]).returning(
            pe.c.source, pe.c.event_id)
        async with self.db.write(Scope.system_wide()) as s:  # neither table is workspace-owned
            inserted = {(src, eid) for src, eid in (await s.execute(events)).all()}
            new = {i for key, i in first.items() if key in inserted}
            tickets = {(cbs[i].connection_id, str(cbs[i].external_id)) for i in new if cbs[i].external_id}
            if tickets:
                stmt = dialect_insert(self.db.dialect, PendingRefresh).values([
                    {"connection_id": cid, "external_id": ext, "received_at": now} for cid, ext in sorted(tickets)])
                stmt = stmt.on_conflict_do_update(index_elements=["connection_id", "external_id"],
                                                  set_={"received_at": stmt.excluded.received_at})
                await s.execute(stmt)
        self.transactions += 1
        return new

    async def done(self, connection_id: int, external_ids: Sequence[str], started: datetime) -> None:
        """Forget tickets re-read by a refresh that began at `started` (not those a callback named since)."""
        p = table_of(PendingRefresh)
        async with self.db.write(Scope.system_wide()) as s:
            await s.execute(sa.delete(p).where(p.c.connection_id == connection_id,
                                               p.c.external_id.in_(list(external_ids)),
                                               p.c.received_at <= started))

    async def drop_connection(self, connection_id: int) -> None:
        p = table_of(PendingRefresh)
        async with self.db.write(Scope.system_wide()) as s:
            await s.execute(sa.delete(p).where(p.c.connection_id == connection_id))

    async def pending(self, connection_id: int | None = None, before: datetime | None = None) -> list[Key]:
        """Tickets still to re-read (of one connection, recorded before a time), oldest callback first."""
        p = table_of(PendingRefresh)
        stmt = sa.select(p.c.connection_id, p.c.external_id).order_by(p.c.received_at, p.c.id)
        if connection_id is not None:
            stmt = stmt.where(p.c.connection_id == connection_id)
        if before is not None:
            stmt = stmt.where(p.c.received_at < before)
        async with self.db.read(Scope.system_wide()) as s:
            rows = (await s.execute(stmt)).all()
        return [(int(cid), str(ext)) for cid, ext in rows]


async def refresh_batch(engine: SyncEngine, callbacks: CallbackLog, cid: int, exts: list[str]) -> dict[str, str]:
    """One batch: re-read and write the tickets (SyncEngine.refresh_tickets, which hands its events to the engine's
    notifier), then forget their pending rows; the ids that failed, with why (their rows stay)."""
    started = utcnow()
    try:
        failed: dict[str, Exception] = await engine.refresh_tickets(cid, exts)
    except NotFound:  # the connection was deleted: nothing of it to re-read any more
        await callbacks.drop_connection(cid)
        return {}
    except Exception as exc:  # noqa: BLE001 - our side failed (database, notifier): retried later
        log.warning("callback refresh failed; retrying later", exc_info=True,
                    extra={"connection_id": cid, "tickets": len(exts)})
        return dict.fromkeys(exts, f"{type(exc).__name__}: {exc}")
    ok = [ext for ext in exts if ext not in failed]
    if ok:
        try:
            await callbacks.done(cid, ok, started)
        except Exception:  # noqa: BLE001 - the rows stay: re-read once more on the next start
            log.warning("could not clear refreshed callbacks", exc_info=True, extra={"connection_id": cid})
    return {ext: str(exc) for ext, exc in failed.items()}


class RefreshPool:
    """A few workers re-reading the tickets callbacks named; one more refresh per ticket at most (see module)."""

    def __init__(self, engine: SyncEngine, callbacks: CallbackLog, *, workers: int = 3, batch: int = 25,
                 retry_s: Sequence[float] = RETRY_S, refresher: Refresher | None = None) -> None:
        self.engine = engine
        # Who runs a batch: this process (refresh_batch), or a worker process (core/sync/worker.py, `use`).
        self.refresher: Refresher = refresher or self._inline
        self.retry_s = tuple(retry_s)
        self.callbacks = callbacks
        self.workers = workers
        self.batch = batch
        self._queued: dict[Key, None] = {}  # insertion order = oldest first
        self._running: set[Key] = set()
        self._again: set[Key] = set()  # named again while running: one more refresh after this one
        self._failures: dict[Key, int] = {}
        self._retries: dict[Key, asyncio.TimerHandle] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._wake: asyncio.Event | None = None
        self._idle: asyncio.Event | None = None
        self._stopping = False
        self.batches_run = 0  # refreshes made (each covers one or more tickets)
        self.refreshed = 0  # tickets re-read
        self.failed = 0  # ticket refreshes that failed (each retried later or given up)

    # ------------------------------------------------------------ queue

    def submit(self, connection_id: int, external_id: str) -> None:
        """Ask for a refresh of one ticket (coalesced with one queued or running)."""
        key = (connection_id, external_id)
        if self._stopping:
            return  # recorded: the next start re-reads it
        self._ensure_workers()
        if key in self._running:
            self._again.add(key)
            return
        timer = self._retries.pop(key, None)
        if timer is not None:
            timer.cancel()  # a new callback: no need to wait for the retry
        self._queued.setdefault(key, None)
        self._kick()

    def _kick(self) -> None:
        assert self._wake is not None and self._idle is not None
        self._idle.clear()
        self._wake.set()

    def _ensure_workers(self) -> None:
        if self._tasks and all(not t.done() for t in self._tasks):
            return
        if self._wake is None:
            self._wake, self._idle = asyncio.Event(), asyncio.Event()
            self._idle.set()
        self._tasks = [t for t in self._tasks if not t.done()]
        while len(self._tasks) < self.workers:
            self._tasks.append(asyncio.create_task(self._work(), name=f"callback-refresh-{len(self._tasks)}"))

    def _take(self) -> tuple[int, list[str]] | None:
        """Up to `batch` queued tickets of the connection of the oldest one."""
        if not self._queued or self._stopping:
            return None
        cid = next(iter(self._queued))[0]
        keys = [k for k in self._queued if k[0] == cid][: self.batch]
        for k in keys:
            del self._queued[k]
            self._running.add(k)
        return cid, [ext for _, ext in keys]

    async def _work(self) -> None:
        assert self._wake is not None
        while True:
            taken = self._take()
            if taken is None:
                self._settle()
                self._wake.clear()
                await self._wake.wait()
                continue
            cid, exts = taken
            try:
                await self._refresh(cid, exts)
            except Exception:  # noqa: BLE001 - a worker never dies: its tickets stay recorded for the next start
                log.warning("callback refresh worker error", exc_info=True, extra={"connection_id": cid})
            finally:
                for ext in exts:
                    self._running.discard((cid, ext))
                for ext in exts:
                    if (cid, ext) in self._again:
                        self._again.discard((cid, ext))
                        self._queued.setdefault((cid, ext), None)
                if self._queued:
                    self._wake.set()

    async def _inline(self, cid: int, exts: list[str]) -> dict[str, str]:
        return await refresh_batch(self.engine, self.callbacks, cid, exts)

    def use(self, refresher: Refresher) -> None:
        """Run batches through `refresher` from now on (the app hands batches to a worker process this way)."""
        self.refresher = refresher

    async def _refresh(self, cid: int, exts: list[str]) -> None:
        self.batches_run += 1
        try:
            failed = await self.refresher(cid, exts)
        except Exception as exc:  # noqa: BLE001 - the refresher's own failure: its tickets are retried later
            log.warning("callback refresh failed; retrying later", exc_info=True, extra={"connection_id": cid})
            failed = dict.fromkeys(exts, f"{type(exc).__name__}: {exc}")
        ok = [ext for ext in exts if ext not in failed]
        self.refreshed += len(ok)
        for ext in ok:
            self._failures.pop((cid, ext), None)
        for ext, why in failed.items():
            self._retry_later((cid, ext), why)

    def _retry_later(self, key: Key, why: str) -> None:
        self.failed += 1
        n = self._failures[key] = self._failures.get(key, 0) + 1
        if n > len(self.retry_s):
            self._failures.pop(key, None)
            log.warning("callback refresh gave up; the scheduled sync and the next start catch up",
                        extra={"connection_id": key[0], "ticket": key[1], "error": why[:300]})
            return
        loop = asyncio.get_running_loop()
        self._retries[key] = loop.call_later(self.retry_s[n - 1], self._retry_due, key)

    def _retry_due(self, key: Key) -> None:
        self._retries.pop(key, None)
        self.submit(*key)

    def _settle(self) -> None:
        if not self._running and (not self._queued or self._stopping) and self._idle is not None:
            self._idle.set()

    # ------------------------------------------------------------ life cycle

    async def start(self) -> int:
        """Queue every ticket a callback named that no refresh has covered yet (left by a stopped process)."""
        keys = await self.callbacks.pending()
        for cid, ext in keys:
            self.submit(cid, ext)
        if keys:
            log.info("re-reading tickets named by callbacks before the last stop", extra={"tickets": len(keys)})
        return len(keys)

    async def sweep(self, connection_id: int, older_than: timedelta = STALE_AFTER) -> int:
        """Queue this connection's tickets recorded more than `older_than` ago and still not re-read: rows of
        an instance that stopped, taken over by whichever instance runs the connection's scheduled sync."""
        keys = [k for k in await self.callbacks.pending(connection_id, utcnow() - older_than)
                if k not in self._queued and k not in self._running and k not in self._retries]
        for cid, ext in keys:
            self.submit(cid, ext)
        return len(keys)

    async def settled(self) -> None:
        """Wait until nothing is queued or running (retries waiting on a timer do not count)."""
        while self._idle is not None and not self._idle.is_set():
            await self._idle.wait()
            await asyncio.sleep(0)  # a worker may queue a ticket named again right after setting idle

    async def stop(self, grace_s: float = 5.0) -> None:
        """Let running refreshes finish (up to `grace_s`), then stop; what is left stays recorded."""
        self._stopping = True
        self._queued.clear()
        for timer in self._retries.values():
            timer.cancel()
        self._retries.clear()
        tasks, self._tasks = self._tasks, []
        if self._running and self._idle is not None:
            self._idle.clear()
            try:
                await asyncio.wait_for(self._idle.wait(), grace_s)  # set once no refresh runs (see _settle)
            except TimeoutError:
                pass
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._running.clear()
        self._again.clear()
        self._queued.clear()
        self._stopping = False  # a later submit (tests, a restart in-process) starts workers again
        if self._idle is not None:
            self._idle.set()
