"""The sync engine: per connection, pull what changed since the cursor and apply it (DESIGN.md §4).

(Just over 400 lines: the run loop, targeted refreshes and child reads share one retry and lease plumbing;
reading histories apart from tickets lives in core/sync/history.py.)

    run(connection)          incremental (or full) ticket sync under a per-connection lease
    refresh_ticket(conn, id) targeted re-fetch of one ticket (webhooks), no cursor involved
    refresh_picklists(conn)  core/sync/picklists.py
    reconcile(conn)          core/sync/reconcile.py
    deletions.read_log(…)    each run, where the PSA logs deletions: core/sync/deletions.py

A run lists tickets changed since `cursor - overlap` (so nothing on the boundary is missed), skips rows
whose content hash is unchanged, fetches the notes, time entries and attachments of changed tickets,
writes each page in one transaction, and records a SyncRun row. The cursor (the max PSA change time
seen, i.e. server time) moves only after every page committed: a PSA outage mid-run leaves it where it
was, and the next run repeats the work (idempotently). It never passes a record the run could not
write (bad, or fenced too often): it stops just below the oldest such change, so the next run retries it. Reads retry on 429 (honouring Retry-After) and on
5xx a few times; connectors themselves never retry.
"""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping, Sequence
from contextlib import aclosing, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import sqlalchemy as sa

from connectors.base import Feature, Page, PsaConnector, PsaTicket, TicketBatchRead, TimeEntryBatchRead
from connectors.errors import PsaError, PsaNotFound, PsaRateLimited, PsaUnavailable
from core import scheduling, ticket_gone
from core.connections import ConnectionService
from core.errors import NotFound
from core.notify import DomainEvent, Notifier, NullNotifier
from core.sync import deletions, history, runs
from core.sync.apply import (
    BadRecord,
    BatchResult,
    Children,
    Journal,
    SyncTarget,
    apply_batch,
    content_hash,
    validate,
)
from core.sync.runs import RecordedRun, RunKind, RunStatus, SyncOutcome
from store.db import Database, Scope
from store.sql import table_of
from store.tables import PsaConnection, Ticket
from store.types import utcnow

log = logging.getLogger(__name__)
T = TypeVar("T")

DEFAULT_OVERLAP = timedelta(minutes=3)
DEFAULT_LEASE_TTL = timedelta(minutes=5)
READ_ATTEMPTS = 4
MAX_RETRY_AFTER_S = 60.0
HOLD_MARGIN = timedelta(microseconds=1)
EMIT_CHUNK = 20  # changed tickets per write in an announced run: the oldest changes reach chat first, in steps  # the cursor stops just below the oldest unwritten change


class LeaseLost(RuntimeError):
    """Another instance took this connection's lease (ours expired): stop without moving the cursor."""


@dataclass(frozen=True, slots=True)
class Progress:
    """Where a run is: phase "tickets" (pages listed, tickets read and written), then phase "history"
    (histories of open tickets read so far, of how many; core/sync/history.py)."""

    pages: int
    seen: int
    changed: int
    phase: str = history.PHASE_TICKETS
    histories_done: int = 0
    histories_total: int = 0


ProgressFn = Callable[[Progress], None]


class SyncEngine:
    """Pulls PSA changes into the local store and tells surfaces what changed."""

    def __init__(self, db: Database, connections: ConnectionService, notifier: Notifier | None = None, *,
                 instance_id: str = "local", clock: Callable[[], datetime] = utcnow,
                 sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep, overlap: timedelta = DEFAULT_OVERLAP,
                 lease_ttl: timedelta = DEFAULT_LEASE_TTL, child_concurrency: int = 8,
                 eager_history: bool = False) -> None:
        self.db = db
        self.connections = connections
        self.notifier = notifier or NullNotifier()
        self.instance_id = instance_id
        self.clock = clock
        self.sleep = sleep
        self.overlap = overlap
        self.lease_ttl = lease_ttl
        self.child_concurrency = child_concurrency
        # Read every changed ticket's history inline, closed ones too, as before phases existed
        # (core/sync/history.py): bench/first_sync.py's baseline.
        self.eager_history = eager_history
        # Where the events of each write are also committed, in its transaction (the refresh worker's engine:
        # core/sync/journal.py); None: events only go to the notifier after the commit.
        self.journal: Journal | None = None

    # ------------------------------------------------------------ plumbing

    async def connection(self, connection_id: int) -> PsaConnection:
        """A connection by id in any workspace (system scope: the scheduler and webhook URLs name only the id)."""
        async with self.db.read(Scope.system_wide()) as s:
            conn = await s.get(PsaConnection, connection_id)
        if conn is None:
            raise NotFound(f"Connection {connection_id} was not found.",
                           hint="See them on the admin overview (/admin) or with `deskbridge connection list`.")
        return conn

    @staticmethod
    def target(conn: PsaConnection, connector: PsaConnector) -> SyncTarget:
        assert conn.id is not None  # a stored row
        return SyncTarget(workspace_id=conn.workspace_id, connection_id=conn.id,
                          board_scoped_statuses=connector.capabilities.has(Feature.BOARD_SCOPED_STATUSES))

    async def call(self, counts: dict[str, int], fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        """One PSA read, retried on 429 (Retry-After honoured, capped) and 5xx with jittered backoff."""
        for attempt in range(1, READ_ATTEMPTS + 1):
            counts["api_calls"] = counts.get("api_calls", 0) + 1
            try:
                return await fn(*args)
            except PsaRateLimited as exc:
                if attempt == READ_ATTEMPTS:
                    raise
                counts["rate_limited"] = counts.get("rate_limited", 0) + 1
                await self.sleep(min(exc.retry_after if exc.retry_after is not None else 2.0 ** attempt,
                                     MAX_RETRY_AFTER_S))
            except PsaUnavailable:
                if attempt == READ_ATTEMPTS:
                    raise
                counts["retries"] = counts.get("retries", 0) + 1
                await self.sleep(random.uniform(0, 0.5 * 2 ** attempt))  # noqa: S311 - jitter, not crypto
        raise AssertionError("unreachable")

    def recorded(self, conn: PsaConnection, kind: str, *, cursor_before: str | None = None,
                 counts: dict[str, int] | None = None) -> RecordedRun:
        """The SyncRun row of a run of this connection, for `async with` (core/sync/runs.py)."""
        assert conn.id is not None  # a stored row
        return RecordedRun(self.db, conn.workspace_id, conn.id, kind, clock=self.clock, cursor_before=cursor_before,
                           counts=counts)

    async def emit(self, events: Sequence[DomainEvent]) -> None:
        for event in events:
            await self.notifier.notify(event)

    @asynccontextmanager
    async def lease(self, connection_id: int) -> Any:
        """Hold the connection's sync lease for the block (renewed in the background); None if busy."""
        name, holder = f"sync:{connection_id}", f"{self.instance_id}/{uuid.uuid4().hex[:8]}"
        if not await scheduling.acquire_lease(self.db, name, holder, self.lease_ttl, self.clock()):
            yield None
            return
        lost = asyncio.Event()

        async def renew() -> None:
            while True:
                await asyncio.sleep(self.lease_ttl.total_seconds() / 3)
                try:
                    if not await scheduling.acquire_lease(self.db, name, holder, self.lease_ttl, self.clock()):
                        lost.set()
                        return
                except Exception:  # noqa: BLE001 - a failed renewal is retried next beat
                    log.warning("sync lease renewal failed", exc_info=True)

        task = asyncio.create_task(renew())
        try:
            yield lost
        finally:
            task.cancel()
            await scheduling.release_lease(self.db, name, holder)

    # ------------------------------------------------------------ incremental / full run

    async def run(self, connection_id: int, *, full: bool = False, progress: ProgressFn | None = None) -> SyncOutcome:
        """One sync run of a connection; SKIPPED when another instance holds its lease."""
        conn = await self.connection(connection_id)
        async with self.lease(connection_id) as lost:
            if lost is None:
                return SyncOutcome(status=RunStatus.SKIPPED, error="another instance is syncing this connection")
            return await self._run(conn, full=full, progress=progress, lost=lost)

    async def _run(self, conn: PsaConnection, *, full: bool, progress: ProgressFn | None,
                   lost: asyncio.Event) -> SyncOutcome:
        ws, cid = conn.workspace_id, conn.id
        assert cid is not None
        cursor_before = await runs.get_cursor(self.db, ws, cid)
        kind = RunKind.FULL if full or cursor_before is None else RunKind.INCREMENTAL
        async with self.recorded(conn, kind, cursor_before=cursor_before, counts={"pages": 0, "seen": 0}) as run:
            try:
                connector = self.connections.shared(conn)
            except Exception as exc:
                await run.finish(RunStatus.FAILED, error=str(exc))
                raise
            try:
                return await self._pages(conn, connector, run, progress=progress, lost=lost)
            finally:
                await connector.aclose()

    async def _pages(self, conn: PsaConnection, connector: PsaConnector, run: RecordedRun, *,
                     progress: ProgressFn | None, lost: asyncio.Event) -> SyncOutcome:
        """Read every page changed since the cursor (minus the overlap), write it, then move the cursor."""
        ws, cid, counts, cursor_before = run.workspace_id, run.connection_id, run.counts, run.cursor_before
        watermark = runs.parse_cursor(cursor_before)
        since = None if run.kind == RunKind.FULL or watermark is None else watermark - self.overlap
        emit = cursor_before is not None  # the very first import is silent (no flood of chat messages)
        bad: dict[str, str] = {}
        hold: datetime | None = None  # the oldest change time of a record this run could not write
        target = self.target(conn, connector)
        try:
            async with aclosing(self._listed(connector, since, counts, ahead=not emit)) as pages:
                async for page in pages:
                    counts["pages"] += 1
                    counts["seen"] += len(page.items)
                    result = await self.process(connector, target, page.items, counts, emit=emit,
                                                chunk=EMIT_CHUNK if emit else None)
                    bad.update(result.bad)
                    unwritten = set(result.bad) | result.retry
                    for t in page.items:
                        stamp = t.updated_at if isinstance(t.updated_at, datetime) and t.updated_at.tzinfo else None
                        if stamp is None:
                            continue
                        if str(getattr(t, "external_id", "?")) in unwritten:
                            hold = stamp if hold is None else min(hold, stamp)
                        elif watermark is None or stamp > watermark:
                            watermark = stamp
                    if progress:
                        progress(Progress(counts["pages"], counts["seen"], counts.get("created", 0)
                                          + counts.get("updated", 0)))
                    if lost.is_set():
                        raise LeaseLost("the sync lease was lost (another instance took over); stopping")
        except (PsaError, LeaseLost) as exc:
            counts["bad"] = len(bad)
            failed = await run.fail(exc)
            log.warning("sync run failed; cursor left where it was",
                        extra={"connection_id": cid, "error": str(exc), "counts": dict(counts)})
            return failed
        if hold is not None and watermark is not None and watermark >= hold:
            # Never step past a change we did not write: the next run reads it again (and retries it).
            watermark = hold - HOLD_MARGIN
            counts["cursor_held"] = 1
        cursor_after = runs.format_cursor(watermark) if watermark else cursor_before
        if cursor_after and cursor_after != cursor_before:
            await runs.set_cursor(self.db, ws, cid, cursor_after, self.clock())
        deletions_error = await deletions.read_log(self, conn, connector, counts,
                                                   before=runs.parse_cursor(cursor_before), after=watermark)
        # Phase 2: the histories of open tickets not read yet (the queue is already whole and current).
        try:
            bad.update(await history.read_open(self, conn, connector, target, counts, progress=progress, lost=lost))
        except (PsaError, LeaseLost) as exc:
            counts["history_interrupted"] = 1  # what is written stays written; the next run resumes
            log.warning("sync: reading histories stopped", extra={"connection_id": cid, "error": str(exc)})
            deletions_error = "; ".join(filter(None, [f"histories: {exc}", deletions_error]))
        counts["bad"] = len(bad)
        status = RunStatus.PARTIAL if bad or deletions_error else RunStatus.OK
        error = "; ".join([*(f"{k}: {v}" for k, v in list(bad.items())[:10]),
                           *([deletions_error] if deletions_error else [])]) or None
        outcome = await run.finish(status, error=error, cursor_after=cursor_after)
        log.info("sync run finished", extra={"connection_id": cid, "kind": run.kind, "status": status,
                                             "counts": dict(counts)})
        return outcome

    async def _listed(self, connector: PsaConnector, since: datetime | None, counts: dict[str, int], *,
                      ahead: bool) -> AsyncGenerator[Page[PsaTicket], None]:
        """The pages changed since `since`. With `ahead` (a first sync: its pages need no child reads) the next
        page is read while the caller writes this one."""
        cursor: str | None = None
        pending: asyncio.Future[Page[PsaTicket]] | None = None
        try:
            while True:
                page = await (pending or self.call(counts, connector.list_changed_tickets, since, cursor))
                pending, cursor = None, page.next_cursor
                if cursor and ahead:
                    pending = asyncio.ensure_future(self.call(counts, connector.list_changed_tickets, since, cursor))
                yield page
                if not cursor:
                    return
        finally:
            if pending is not None:
                pending.cancel()
                if pending.done() and not pending.cancelled():
                    pending.exception()  # retrieved: the run already stopped for its own reason

    async def process(self, connector: PsaConnector, target: SyncTarget, items: Sequence[PsaTicket],
                      counts: dict[str, int], *, emit: bool, force: bool = False, chunk: int | None = None
                      ) -> BatchResult:
        """Apply one page: skip unchanged rows, fetch children of the rest, write, then notify. With `chunk`, the
        changed tickets go in groups of that many, oldest change first, each group written and announced before
        the next group's children are read (a scheduled run's first notes reach chat without waiting for the
        whole page)."""
        good: list[PsaTicket] = []
        bad: dict[str, str] = {}
        for t in items:
            try:
                validate(t)
                good.append(t)
            except BadRecord as exc:
                bad[str(getattr(t, "external_id", "?"))] = str(exc)
                log.warning("sync: bad ticket record skipped", extra={"error": str(exc)})
        # A forced re-read (callbacks) takes every ticket and all their children: nothing to read first; which
        # of them never had their history read (their notes announce nothing) the write finds (quiet=None).
        quiet: frozenset[str] | None = None
        if force:
            changed, later = list(good), set()
        else:
            changed, read, unread = await self._changed(target, good)
            quiet = frozenset(unread)
            # Children now for tickets whose history is read (or, after the first sync, new to us); the rest
            # wait for phase 2 (open) or for someone to open them (closed).
            ids = {t.external_id for t in changed}
            later = set() if self.eager_history else (ids - read if not emit else unread & ids)
        counts["history_deferred"] = counts.get("history_deferred", 0) + len(later)
        if chunk:
            changed.sort(key=_change_time)
        step = chunk or max(len(changed), 1)
        result = BatchResult()
        for start in range(0, max(len(changed), 1), step):
            part = changed[start : start + step]
            got = await self._apply_part(connector, target, part, later, counts, emit=emit, force=force,
                                         quiet=quiet)
            for k, v in got.counts.items():
                result.add(k, v)
            result.events += got.events
            result.bad.update(got.bad)
            result.retry |= got.retry
        for ext in bad:
            result.bad.setdefault(ext, bad[ext])
        counts["unchanged"] = counts.get("unchanged", 0) + (len(good) - len(changed))
        return result

    async def _apply_part(self, connector: PsaConnector, target: SyncTarget, part: Sequence[PsaTicket],
                          later: set[str], counts: dict[str, int], *, emit: bool, force: bool,
                          quiet: frozenset[str] | None) -> BatchResult:
        """Read the children of `part` (those not left for later), write it in one transaction, then notify."""
        if not part:
            return BatchResult()  # nothing to read or write (every ticket bad, gone or unchanged)
        children, vanished = await self.fetch_children(
            connector, [t.external_id for t in part if t.external_id not in later], counts)
        counts["vanished"] = counts.get("vanished", 0) + len(vanished)
        result = await apply_batch(self.db, target, [t for t in part if t.external_id not in vanished], children,
                                   now=self.clock(), emit=emit, force=force, quiet=quiet, journal=self.journal)
        for k, v in result.counts.items():
            counts[k] = counts.get(k, 0) + v
        await self.emit(result.events)
        return result

    async def _changed(self, target: SyncTarget, items: Sequence[PsaTicket]
                       ) -> tuple[list[PsaTicket], set[str], set[str]]:
        """Tickets whose content hash differs from the stored one (or that are new, or marked deleted), and
        which stored ones have their history read and which not."""
        if not items:
            return [], set(), set()
        t = table_of(Ticket)
        async with self.db.read(Scope.workspace(target.workspace_id)) as s:
            res = await s.execute(sa.select(t.c.external_id, t.c.psa_hash, t.c.deleted_at, t.c.history_at).where(
                t.c.workspace_id == target.workspace_id, t.c.connection_id == target.connection_id,
                t.c.external_id.in_([i.external_id for i in items])))
            stored = {ext: (h, d, seen) for ext, h, d, seen in res.all()}
        out = []
        for item in items:
            got = stored.get(item.external_id)
            if got is None or got[1] is not None or got[0] != content_hash(item):
                out.append(item)
        return (out, {ext for ext, v in stored.items() if v[2] is not None},
                {ext for ext, v in stored.items() if v[2] is None})

    async def fetch_children(self, connector: PsaConnector, external_ids: Sequence[str], counts: dict[str, int]
                             ) -> tuple[dict[str, Children], set[str]]:
        """Notes, time entries and attachments of each ticket (bounded concurrency); ids gone at the PSA."""
        caps = connector.capabilities
        gate = asyncio.Semaphore(self.child_concurrency)
        vanished: set[str] = set()
        batched: Mapping[str, Sequence[Any]] | None = None  # every ticket's time entries in one read, where possible
        if caps.has(Feature.TIME_ENTRIES) and len(external_ids) > 1 and isinstance(connector, TimeEntryBatchRead):
            batched = await self.call(counts, connector.list_time_entries_of, list(external_ids))

        async def one(ext: str) -> tuple[str, Children] | None:
            async def get(fn: Callable[[str], Awaitable[Sequence[Any]]]) -> Sequence[Any]:
                async with gate:
                    return await self.call(counts, fn, ext)

            try:
                calls = [get(connector.list_notes)]
                if batched is not None:
                    calls.append(_given(batched.get(ext, ())))
                else:
                    calls.append(get(connector.list_time_entries) if caps.has(Feature.TIME_ENTRIES) else _empty())
                calls.append(get(connector.list_attachments) if caps.has(Feature.ATTACHMENTS) else _empty())
                notes, times, files = await asyncio.gather(*calls)
            except PsaNotFound:
                vanished.add(ext)
                return None
            return ext, Children(tuple(notes), tuple(times), tuple(files))

        got = await asyncio.gather(*(one(ext) for ext in external_ids))
        return dict(x for x in got if x is not None), vanished

    # ------------------------------------------------------------ targeted refresh (webhooks)

    async def refresh_ticket(self, connection_id: int, external_id: str, *, kind: str = RunKind.WEBHOOK,
                             connector: PsaConnector | None = None) -> SyncOutcome:
        """Re-read one ticket (and its children) from the PSA now; a ticket gone at the PSA is marked deleted."""
        conn = await self.connection(connection_id)
        async with self.recorded(conn, kind) as run:
            own = connector is None
            psa = connector or self.connections.shared(conn)
            try:
                try:
                    ticket = await self.call(run.counts, psa.get_ticket, external_id)
                except PsaNotFound:
                    run.counts["deleted"] = await self.mark_deleted(conn, [external_id])
                    return await run.finish(RunStatus.OK)
                result = await self.process(psa, self.target(conn, psa), [ticket], run.counts, emit=True, force=True)
                run.counts["bad"] = len(result.bad)
                return await run.finish(RunStatus.PARTIAL if result.bad else RunStatus.OK)
            finally:
                if own:
                    await psa.aclose()

    async def refresh_tickets(self, connection_id: int, external_ids: Sequence[str], *,
                              connector: PsaConnector | None = None) -> dict[str, Exception]:
        """Re-read several tickets now and write them in one transaction (one SyncRun), as callbacks that
        arrive together are; returns the ids that could not be refreshed, with why. Gone ones are marked deleted."""
        conn = await self.connection(connection_id)
        failed: dict[str, Exception] = {}
        async with self.recorded(conn, RunKind.WEBHOOK) as run:
            own = connector is None
            psa = connector or self.connections.shared(conn)
            gate = asyncio.Semaphore(self.child_concurrency)
            gone: list[str] = []

            async def read(ext: str) -> PsaTicket | None:
                try:
                    async with gate:
                        return await self.call(run.counts, psa.get_ticket, ext)
                except PsaNotFound:
                    gone.append(ext)
                except PsaError as exc:
                    failed[ext] = exc
                return None

            try:
                wanted = list(dict.fromkeys(external_ids))
                together = None
                if len(wanted) > 1 and isinstance(psa, TicketBatchRead):
                    together = await self._read_together(psa, wanted, run.counts, gone)
                if together is not None:
                    tickets = together
                else:
                    got = await asyncio.gather(*(read(ext) for ext in wanted))
                    tickets = [t for t in got if t is not None]
                if gone:
                    run.counts["deleted"] = await self.mark_deleted(conn, gone)
                result = await self.process(psa, self.target(conn, psa), tickets, run.counts, emit=True, force=True)
                run.counts["bad"] = len(result.bad)
                run.counts["failed"] = len(failed)
                await run.finish(RunStatus.PARTIAL if result.bad or failed else RunStatus.OK)
            finally:
                if own:
                    await psa.aclose()
        return failed

    async def _read_together(self, psa: TicketBatchRead, wanted: list[str], counts: dict[str, int],
                             gone: list[str]) -> list[PsaTicket] | None:
        """Several tickets in one read (TicketBatchRead); absent ones are gone. None when the read failed (the
        caller reads them one by one, so one ticket the PSA cannot serve never holds back the others)."""
        try:
            tickets = list(await self.call(counts, psa.get_tickets, wanted))
        except PsaError:
            counts["batch_read_failed"] = counts.get("batch_read_failed", 0) + 1
            return None
        asked = set(wanted)
        found = {t.external_id for t in tickets}
        gone.extend(ext for ext in wanted if ext not in found)
        return [t for t in tickets if t.external_id in asked]

    async def mark_deleted(self, conn: PsaConnection, external_ids: Sequence[str]) -> int:
        """Set deleted_at on tickets gone from the PSA; emits TicketChanged(deleted) for each."""
        assert conn.id is not None
        events = await ticket_gone.mark_deleted(self.db, conn.workspace_id, conn.id, external_ids, self.clock(),
                                                journal=self.journal)
        await self.emit(events)
        return len(events)


def _change_time(t: PsaTicket) -> tuple[bool, datetime]:
    """Oldest change first; a ticket without a change time last."""
    return (t.updated_at is None, t.updated_at or datetime.max.replace(tzinfo=UTC))


async def _empty() -> Sequence[Any]:
    return ()


async def _given(value: Sequence[Any]) -> Sequence[Any]:
    return value
