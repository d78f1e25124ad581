"""Sync cursors and the audit row every sync run leaves behind (started, finished, counts, error).

A cursor is advanced only by `set_cursor`, which callers invoke after the data it covers committed.
Every kind of run (full, incremental, webhook refresh, picklists, reconcile) keeps its row with
`RecordedRun`, so a row is opened and closed the same way everywhere and never stays `running`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import Any

import sqlalchemy as sa
from sqlmodel import col, select

from core.redact import redact_text
from store.db import Database, Scope
from store.tables import PsaConnection, SyncCursor, SyncRun

TICKETS = "tickets"  # cursor entity of the incremental ticket sync


class RunKind:
    INCREMENTAL = "incremental"
    FULL = "full"
    WEBHOOK = "webhook"
    PICKLISTS = "picklists"
    RECONCILE = "reconcile"


class RunStatus:
    RUNNING = "running"
    OK = "ok"
    PARTIAL = "partial"  # finished, but some records were bad (counted in `counts["bad"]`)
    FAILED = "failed"
    SKIPPED = "skipped"  # e.g. the mass-delete guard refused a prune


def parse_cursor(value: str | None) -> datetime | None:
    """The watermark stored in a cursor row (ISO-8601, UTC), or None."""
    if not value:
        return None
    return datetime.fromisoformat(value)


def format_cursor(when: datetime) -> str:
    return when.isoformat()


async def get_cursor(db: Database, workspace_id: int, connection_id: int, entity: str = TICKETS) -> str | None:
    async with db.read(Scope.workspace(workspace_id)) as s:
        row = (await s.exec(select(SyncCursor).where(SyncCursor.connection_id == connection_id,
                                                     SyncCursor.entity == entity))).first()
        return row.value if row else None


async def set_cursor(db: Database, workspace_id: int, connection_id: int, value: str, now: datetime,
                     entity: str = TICKETS) -> None:
    """Store a cursor (call only after the data it covers has committed)."""
    async with db.write(Scope.workspace(workspace_id)) as s:
        row = (await s.exec(select(SyncCursor).where(SyncCursor.connection_id == connection_id,
                                                     SyncCursor.entity == entity))).first()
        if row is None:
            s.add(SyncCursor(workspace_id=workspace_id, connection_id=connection_id, entity=entity, value=value,
                             updated_at=now))
        else:
            row.value, row.updated_at = value, now


async def start_run(db: Database, workspace_id: int, connection_id: int, kind: str, now: datetime,
                    cursor_before: str | None = None) -> int:
    """Insert a `running` SyncRun row; its id."""
    async with db.write(Scope.workspace(workspace_id)) as s:
        run = SyncRun(workspace_id=workspace_id, connection_id=connection_id, kind=kind, started_at=now,
                      cursor_before=cursor_before)
        s.add(run)
        await s.flush()
        assert run.id is not None  # flushed
        return run.id


async def finish_run(db: Database, workspace_id: int, run_id: int, *, status: str, now: datetime,
                     counts: dict[str, Any], cursor_after: str | None = None, error: str | None = None) -> None:
    async with db.write(Scope.workspace(workspace_id)) as s:
        await s.execute(sa.update(SyncRun).where(col(SyncRun.id) == run_id).values(
            status=status, finished_at=now, counts=counts, cursor_after=cursor_after,
            error=redact_text(error, limit=4000) if error else None))


@dataclass
class SyncOutcome:
    """What a run (or a refused one) came to, for the caller: CLI, scheduler, webhook receiver."""

    status: str  # RunStatus
    run_id: int | None = None
    counts: dict[str, int] = field(default_factory=dict)
    error: str | None = None
    cursor_after: str | None = None

    @property
    def ok(self) -> bool:
        return self.status in (RunStatus.OK, RunStatus.PARTIAL)


def describe(exc: BaseException) -> str:
    """How a failure is written into a run's `error`: the exception's type and message."""
    return f"{type(exc).__name__}: {exc}"


class RecordedRun:
    """The SyncRun row of one run, kept for the length of an `async with` block.

        async with RecordedRun(db, ws, connection_id, RunKind.PICKLISTS, clock=clock) as run:
            run.counts["items"] = ...
            return await run.finish(RunStatus.OK)

    Entering inserts a `running` row. `finish(status)` closes it with the run's counts; `fail(exc)` closes it
    as failed and returns the outcome, for failures the caller absorbs. Any exception that leaves the block
    unclosed (a bug, a crash, a cancellation) closes it as failed and propagates. A failed run keeps the cursor
    it started with (`cursor_after = cursor_before`).
    """

    id: int  # the row, once entered
    started_at: datetime  # the clock reading the row started with

    def __init__(self, db: Database, workspace_id: int, connection_id: int, kind: str, *,
                 clock: Callable[[], datetime], cursor_before: str | None = None,
                 counts: dict[str, int] | None = None) -> None:
        self.db = db
        self.workspace_id = workspace_id
        self.connection_id = connection_id
        self.kind = kind
        self.clock = clock
        self.cursor_before = cursor_before
        self.counts: dict[str, int] = {} if counts is None else counts
        self.closed = False

    async def __aenter__(self) -> RecordedRun:
        self.started_at = self.clock()
        self.id = await start_run(self.db, self.workspace_id, self.connection_id, self.kind, self.started_at,
                                  self.cursor_before)
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        if self.closed:
            return
        if exc is None:
            await self._close(RunStatus.FAILED, error="the run ended without an outcome",
                              cursor_after=self.cursor_before)
            raise RuntimeError(f"sync run {self.id} ended without finish() or fail()")
        await self._close(RunStatus.FAILED, error=describe(exc), cursor_after=self.cursor_before)

    async def finish(self, status: str, *, error: str | None = None, cursor_after: str | None = None) -> SyncOutcome:
        """Close the row with `status` (and the run's counts); the outcome to return."""
        await self._close(status, error=error, cursor_after=cursor_after)
        return SyncOutcome(status=status, run_id=self.id, counts=self.counts, error=error, cursor_after=cursor_after)

    async def fail(self, exc: BaseException) -> SyncOutcome:
        """Close the row as failed because of `exc`, which the caller absorbs; the failed outcome to return."""
        await self._close(RunStatus.FAILED, error=describe(exc), cursor_after=self.cursor_before)
        return SyncOutcome(status=RunStatus.FAILED, run_id=self.id, counts=self.counts, error=str(exc),
                           cursor_after=self.cursor_before)

    async def _close(self, status: str, *, error: str | None, cursor_after: str | None) -> None:
        await finish_run(self.db, self.workspace_id, self.id, status=status, now=self.clock(), counts=self.counts,
                         cursor_after=cursor_after, error=error)
        self.closed = True


@dataclass(frozen=True, slots=True, kw_only=True)
class RunView:
    id: int
    kind: str
    status: str
    started_at: datetime
    finished_at: datetime | None
    counts: dict[str, Any]
    error: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectionSyncStatus:
    """What `deskbridge sync status` shows for one connection."""

    connection_id: int
    connection_name: str
    kind: str
    enabled: bool
    watermark: datetime | None  # max PSA change time synced
    last_ok_at: datetime | None  # end of the last successful incremental/full run
    lag_s: float | None  # now - last_ok_at
    last_error: str | None
    runs: list[RunView] = field(default_factory=list)


async def sync_status(db: Database, workspace_id: int, now: datetime, *, runs: int = 5) -> list[ConnectionSyncStatus]:
    """Per connection of a workspace: watermark, last successful sync, lag, last error, recent runs."""
    out: list[ConnectionSyncStatus] = []
    async with db.read(Scope.workspace(workspace_id)) as s:
        conns = (await s.exec(select(PsaConnection).order_by(col(PsaConnection.id)))).all()
        for conn in conns:
            cursor = (await s.exec(select(SyncCursor).where(SyncCursor.connection_id == conn.id,
                                                            SyncCursor.entity == TICKETS))).first()
            recent = (await s.exec(select(SyncRun).where(SyncRun.connection_id == conn.id)
                                   .order_by(col(SyncRun.started_at).desc(), col(SyncRun.id).desc())
                                   .limit(runs))).all()
            last_ok = (await s.exec(select(SyncRun).where(
                SyncRun.connection_id == conn.id, col(SyncRun.kind).in_([RunKind.INCREMENTAL, RunKind.FULL]),
                col(SyncRun.status).in_([RunStatus.OK, RunStatus.PARTIAL]))
                .order_by(col(SyncRun.finished_at).desc()).limit(1))).first()
            last_err = next((r.error for r in recent if r.error), None)
            ok_at = last_ok.finished_at if last_ok else None
            assert conn.id is not None  # a stored row
            out.append(ConnectionSyncStatus(
                connection_id=conn.id, connection_name=conn.name, kind=conn.kind,
                enabled=conn.enabled, watermark=parse_cursor(cursor.value if cursor else None), last_ok_at=ok_at,
                lag_s=(now - ok_at).total_seconds() if ok_at else None, last_error=last_err,
                runs=[_view(r) for r in recent],
            ))
    return out


def _view(r: SyncRun) -> RunView:
    assert r.id is not None  # a stored row
    return RunView(id=r.id, kind=r.kind, status=r.status, started_at=r.started_at, finished_at=r.finished_at,
                   counts=dict(r.counts or {}), error=r.error)
