"""Sync cursors and the audit row every sync run leaves behind (started, finished, counts, error).

A cursor is advanced only by `set_cursor`, which callers invoke after the data it covers committed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import select

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
        return run.id  # type: ignore[return-value]


async def finish_run(db: Database, workspace_id: int, run_id: int, *, status: str, now: datetime,
                     counts: dict[str, Any], cursor_after: str | None = None, error: str | None = None) -> None:
    async with db.write(Scope.workspace(workspace_id)) as s:
        await s.execute(sa.update(SyncRun).where(SyncRun.id == run_id).values(  # type: ignore[arg-type]
            status=status, finished_at=now, counts=counts, cursor_after=cursor_after,
            error=redact_text(error, limit=4000) if error else None))


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
        conns = (await s.exec(select(PsaConnection).order_by(PsaConnection.id))).all()
        for conn in conns:
            cursor = (await s.exec(select(SyncCursor).where(SyncCursor.connection_id == conn.id,
                                                            SyncCursor.entity == TICKETS))).first()
            recent = (await s.exec(select(SyncRun).where(SyncRun.connection_id == conn.id)
                                   .order_by(SyncRun.started_at.desc(), SyncRun.id.desc())  # type: ignore[attr-defined]
                                   .limit(runs))).all()
            last_ok = (await s.exec(select(SyncRun).where(
                SyncRun.connection_id == conn.id, SyncRun.kind.in_([RunKind.INCREMENTAL, RunKind.FULL]),  # type: ignore[attr-defined]
                SyncRun.status.in_([RunStatus.OK, RunStatus.PARTIAL]))  # type: ignore[attr-defined]
                .order_by(SyncRun.finished_at.desc()).limit(1))).first()  # type: ignore[union-attr]
            last_err = next((r.error for r in recent if r.error), None)
            ok_at = last_ok.finished_at if last_ok else None
            out.append(ConnectionSyncStatus(
                connection_id=conn.id, connection_name=conn.name, kind=conn.kind,  # type: ignore[arg-type]
                enabled=conn.enabled, watermark=parse_cursor(cursor.value if cursor else None), last_ok_at=ok_at,
                lag_s=(now - ok_at).total_seconds() if ok_at else None, last_error=last_err,
                runs=[RunView(id=r.id, kind=r.kind, status=r.status, started_at=r.started_at,  # type: ignore[arg-type]
                              finished_at=r.finished_at, counts=dict(r.counts or {}), error=r.error) for r in recent],
            ))
    return out
