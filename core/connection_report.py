"""What an admin sees of one PSA connection (`deskbridge connection show`): its settings (never a secret),
which credentials it holds (names only), how its recent sync runs went, and the connector's own notes
about what the MSP must configure in the PSA (e.g. Autotask sends no e-mails through its API)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import col, select

from core import ticket_refs
from core.connections import ConnectionService
from store.db import Database, Scope
from store.tables import PicklistItem, SyncRun

SECRET_WORDS = ("secret", "password", "token", "key", "private")


@dataclass(frozen=True, slots=True)
class RunLine:
    kind: str
    status: str
    started_at: datetime
    finished_at: datetime | None
    error: str | None


@dataclass(frozen=True, slots=True)
class ConnectionReport:
    id: int
    name: str
    kind: str
    enabled: bool
    default: bool
    ticket_prefix: str
    settings: dict[str, Any]
    credential_names: tuple[str, ...]
    runs: tuple[RunLine, ...]  # the last run of each kind
    notes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class PicklistLine:
    """One kind of cached PSA picklist (boards, statuses, priorities …): how many values and when they came."""

    kind: str
    values: int
    active: int
    refreshed_at: datetime | None  # the newest fetch of any of its values


async def picklists(db: Database, workspace_id: int, connection_id: int) -> list[PicklistLine]:
    """The connection's cached picklists by kind (one grouped query)."""
    async with db.read(Scope.workspace(workspace_id)) as session:
        rows = (await session.execute(
            sa.select(col(PicklistItem.kind), sa.func.count(), sa.func.sum(sa.case((col(PicklistItem.active), 1),
                                                                                   else_=0)),
                      sa.func.max(col(PicklistItem.fetched_at)))
            .where(col(PicklistItem.connection_id) == connection_id)
            .group_by(col(PicklistItem.kind)).order_by(col(PicklistItem.kind)))).all()
    return [PicklistLine(kind, int(n), int(active or 0), _aware(at)) for kind, n, active, at in rows]


def _aware(value: Any) -> datetime | None:
    """max() over a UTC column comes back as the dialect's raw value (a string or naive datetime on SQLite)."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


async def describe(db: Database, connections: ConnectionService, workspace_id: int, name: str,
                   notes: tuple[str, ...] = ()) -> ConnectionReport:
    conn = await connections.by_name(workspace_id, name)
    cfg = connections.config_for(conn)
    settings = {k: v for k, v in sorted((conn.settings or {}).items())
                if not any(w in k.lower() for w in SECRET_WORDS)}
    async with db.read(Scope.workspace(workspace_id)) as session:
        rows = (await session.exec(select(SyncRun).where(SyncRun.connection_id == conn.id)
                                   .order_by(SyncRun.started_at.desc()).limit(200))).all()  # type: ignore[attr-defined]
        prefix = (await ticket_refs.prefixes(session, workspace_id)).get(conn.id, "")  # type: ignore[arg-type]
    last: dict[str, RunLine] = {}
    for r in rows:
        last.setdefault(r.kind, RunLine(r.kind, r.status, r.started_at, r.finished_at, r.error))
    return ConnectionReport(id=conn.id, name=conn.name, kind=conn.kind, enabled=conn.enabled,  # type: ignore[arg-type]
                            default=conn.is_default, ticket_prefix=prefix, settings=settings,
                            credential_names=tuple(sorted(cfg.credentials)), runs=tuple(last.values()),
                            notes=notes)
