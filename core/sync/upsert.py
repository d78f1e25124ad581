"""Bulk writes for the sync engine: dialect-specific INSERT … ON CONFLICT DO UPDATE, changed rows only.

One statement writes a chunk of rows (SQLite and PostgreSQL both speak `ON CONFLICT`); a row is only
rewritten when its content hash differs, it is not older than what is stored, and nobody changed it
since we read it (`version` is the fence). Rows the fence refused are returned so the caller can re-plan
them. A chunk that fails (a constraint, a bad value) is retried row by row inside savepoints, so one bad
record is counted and the rest still land.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlmodel.ext.asyncio.session import AsyncSession

from store.db import TABLE_TOPIC, mark_commit
from store.sql import table_of
from store.tables import Contact, Customer, Member, Ticket, TimelineEntry

log = logging.getLogger(__name__)

# SQLite allows 32766 bound parameters per statement, PostgreSQL 65535; stay well under both.
MAX_PARAMS = 30_000

# Ticket columns the sync writes (never `is_open`, which the database computes).
TICKET_COLUMNS = (
    "workspace_id", "number", "connection_id", "external_id", "customer_id", "contact_id", "subject",
    "description", "priority", "priority_rank", "stage", "psa_status_id", "psa_status_name", "psa_priority_id",
    "psa_priority_name", "board_external_id", "board_name", "type_name", "category_external_id",
    "category_name", "subcategory_external_id", "subcategory_name", "custom_fields", "assignee_member_id", "source",
    "alert_ref", "device_ref", "psa_respond_by", "psa_resolve_by", "first_response_at", "created_at",
    "updated_at", "closed_at", "psa_updated_at", "psa_hash", "deleted_at", "marker", "version",
)
_TICKET_KEEP = {"workspace_id", "connection_id", "external_id", "source", "marker", "first_response_at"}
TIMELINE_COLUMNS = (
    "workspace_id", "ticket_id", "kind", "origin", "external_id", "marker", "author_member_id", "author_name",
    "author_is_contact", "body", "data", "occurred_at", "recorded_at",
)


def dialect_insert(session: AsyncSession, table: Any) -> Any:
    """`INSERT` for the session's dialect (both have on_conflict_do_update/do_nothing)."""
    return postgresql.insert(table) if dialect_of(session) == "postgresql" else sqlite.insert(table)


def dialect_of(session: AsyncSession) -> str:
    return session.bind.dialect.name if session.bind is not None else "sqlite"


_BUILT: dict[tuple[Any, ...], Any] = {}  # prebuilt statements (immutable): see `built`


def built(key: tuple[Any, ...], build: Callable[[], Any]) -> Any:
    """The statement `build()` makes, built once per `key` (which names everything it depends on: the dialect,
    column sets). A statement object executed again skips building and most of SQLAlchemy's cache-key work;
    lists go in expanding bind parameters. A webhook refresh's apply ran ~20 statements, each built afresh."""
    stmt = _BUILT.get(key)
    if stmt is None:
        stmt = _BUILT[key] = build()
    return stmt


async def core_execute(session: AsyncSession, stmt: Any, params: Any = None, *, writes: str | None = None) -> Any:
    """Run a Core statement on the session's connection, inside its transaction (and savepoints), without the
    ORM's execute path (ORMExecuteState, the scope listener, ORM result setup: about 40% of a statement's CPU
    in the sync apply, bench/sync_apply.py). Such statements are not scoped by the session: every caller
    filters workspace_id (or its connection, which belongs to one workspace) itself. `writes` names the table
    written, marked for `Database.on_table_change` listeners exactly as the session's listener marks it."""
    if writes is not None:
        mark_commit(session, TABLE_TOPIC + writes)
    conn = await session.connection()
    return await (conn.execute(stmt) if params is None else conn.execute(stmt, params))


def chunks(rows: Sequence[Mapping[str, Any]], ncols: int, *, limit: int | None = None
           ) -> Iterable[Sequence[Mapping[str, Any]]]:
    size = max(1, MAX_PARAMS // max(1, ncols))
    if limit:
        size = min(size, limit)
    for i in range(0, len(rows), size):
        yield rows[i : i + size]


CHUNK_ROWS = 1000  # rows per executemany (and per savepoint, so a bad row costs one chunk's retry)


@dataclass
class TicketWriteResult:
    written: dict[str, int] = field(default_factory=dict)  # external_id -> ticket id (inserted or updated)
    fenced: list[str] = field(default_factory=list)  # changed locally since read: re-plan these
    bad: dict[str, str] = field(default_factory=dict)  # external_id -> error


def _ticket_stmt(session: AsyncSession) -> Any:
    """One compiled statement, executed with many parameter sets (SQLAlchemy batches them as
    multi-row VALUES with RETURNING: "insertmanyvalues"), far cheaper than compiling a giant VALUES.
    Built once per dialect: building its 40-column SET clause was most of a webhook refresh's upsert time
    (py-spy, bench/e2e_latency.py --spy-psa)."""
    return built(("ticket_upsert", dialect_of(session)), lambda: _build_ticket_stmt(session))


def _build_ticket_stmt(session: AsyncSession) -> Any:
    t = table_of(Ticket)
    ins = dialect_insert(session, t)
    ex = ins.excluded
    set_: dict[str, Any] = {c: ex[c] for c in TICKET_COLUMNS if c not in _TICKET_KEEP}
    set_["marker"] = sa.func.coalesce(t.c.marker, ex.marker)
    set_["first_response_at"] = sa.func.coalesce(ex.first_response_at, t.c.first_response_at)
    # `version` in the VALUES is the version we read + 1: the fence against concurrent local writes.
    where = sa.and_(
        t.c.version == ex.version - 1,
        sa.or_(t.c.psa_hash.is_distinct_from(ex.psa_hash), t.c.deleted_at.is_not(None)),
        sa.or_(t.c.psa_updated_at.is_(None), ex.psa_updated_at.is_(None), ex.psa_updated_at >= t.c.psa_updated_at),
    )
    return ins.on_conflict_do_update(index_elements=["connection_id", "external_id"], set_=set_, where=where) \
        .returning(t.c.id, t.c.external_id)


async def upsert_tickets(session: AsyncSession, rows: Sequence[Mapping[str, Any]]) -> TicketWriteResult:
    """Insert new and rewrite changed tickets in bulk; rows the fence refused come back in `fenced`."""
    result = TicketWriteResult()
    stmt = _ticket_stmt(session)
    for chunk in chunks(rows, 1, limit=CHUNK_ROWS):
        try:
            async with session.begin_nested():
                got = (await core_execute(session, stmt, list(chunk), writes="ticket")).all()
            result.written.update({ext: tid for tid, ext in got})
        except (IntegrityError, DBAPIError, ValueError, TypeError) as exc:
            log.warning("bulk ticket upsert failed; retrying row by row", extra={"error": str(exc)[:300]})
            for row in chunk:
                try:
                    result.written.update(await _one_ticket(session, stmt, row))
                except (IntegrityError, DBAPIError, ValueError, TypeError) as row_exc:
                    result.bad[row["external_id"]] = _short(row_exc)
                    log.warning("sync: bad ticket record skipped",
                                extra={"external_id": row["external_id"], "error": _short(row_exc)})
    for row in rows:
        ext = row["external_id"]
        if ext not in result.written and ext not in result.bad:
            result.fenced.append(ext)
    return result


async def _one_ticket(session: AsyncSession, stmt: Any, row: Mapping[str, Any]) -> dict[str, int]:
    """Write one row in its own savepoint; a number taken meanwhile (a concurrent writer) is dropped."""
    try:
        async with session.begin_nested():
            got = (await core_execute(session, stmt, [dict(row)], writes="ticket")).all()
    except IntegrityError:
        if row.get("number") is None:
            raise
        async with session.begin_nested():
            got = (await core_execute(session, stmt, [{**row, "number": None}], writes="ticket")).all()
    return {ext: tid for tid, ext in got}


def _short(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc)
    return text.splitlines()[0][:300] if text else type(exc).__name__


async def insert_timeline(session: AsyncSession, rows: Sequence[Mapping[str, Any]]) -> list[tuple[int, int, str, str]]:
    """Insert new timeline entries, skipping (ticket, kind, external_id) already present.

    Returns (id, ticket_id, kind, external_id) of the rows actually inserted.
    """
    out: list[tuple[int, int, str, str]] = []
    t = table_of(TimelineEntry)
    stmt = built(("timeline_insert", dialect_of(session)), lambda: dialect_insert(session, t).on_conflict_do_nothing(
        index_elements=["ticket_id", "kind", "external_id"]).returning(t.c.id, t.c.ticket_id, t.c.kind,
                                                                      t.c.external_id))
    for chunk in chunks(rows, 1, limit=CHUNK_ROWS * 5):
        got = await core_execute(session, stmt, list(chunk), writes="timeline_entry")
        out.extend(tuple(r) for r in got.all())
    return out


async def update_timeline(session: AsyncSession, updates: Sequence[Mapping[str, Any]]) -> None:
    """Apply per-entry updates ({"id": …, column: value…}) with one executemany per column set."""
    by_cols: dict[tuple[str, ...], list[Mapping[str, Any]]] = {}
    for u in updates:
        by_cols.setdefault(tuple(sorted(k for k in u if k != "id")), []).append(u)
    t = table_of(TimelineEntry)
    for cols, group in by_cols.items():
        stmt = built(("timeline_update", cols), lambda: sa.update(t).where(t.c.id == sa.bindparam("_id")).values(
            {c: sa.bindparam(f"v_{c}") for c in cols}))  # noqa: B023 - built at once, in this iteration
        await core_execute(session, stmt, [{"_id": g["id"], **{f"v_{c}": g[c] for c in cols}} for g in group],
                           writes="timeline_entry")


# ------------------------------------------------------------------ directory rows (customers, members, contacts)


async def ensure_directory(session: AsyncSession, table: Any, workspace_id: int, connection_id: int,
                           rows: Mapping[str, Mapping[str, Any]], *, update: Sequence[str] = (),
                           known: Mapping[str, int] | None = None) -> dict[str, int]:
    """Make sure a row exists per external id (creating missing ones); external id -> local id.

    `update` names the columns refreshed on existing rows (picklist refresh); ticket sync passes none, so
    a name seen on a ticket reference never overwrites the directory's own data, and then the rows are
    looked up first and only missing ones inserted (a sync batch names rows it has seen before: one read
    instead of an insert that does nothing and the same read). `known`: that lookup, made by the caller
    (`directory_lookup`, several tables in one read).
    """
    if not rows:
        return {}
    tbl = table_of(table)
    have: dict[str, int] = {}
    if not update:
        if known is None:
            known = await directory_ids(session, table, connection_id, list(rows))
        have = {ext: known[ext] for ext in rows if ext in known}
        rows = {ext: vals for ext, vals in rows.items() if ext not in have}
        if not rows:
            return have
    values = [{"workspace_id": workspace_id, "connection_id": connection_id, "external_id": ext, **vals}
              for ext, vals in rows.items()]
    ins = dialect_insert(session, tbl)
    if update:
        stmt = ins.on_conflict_do_update(index_elements=["connection_id", "external_id"],
                                         set_={c: ins.excluded[c] for c in update})
    else:
        stmt = built(("directory_insert", tbl.name, dialect_of(session)),
                     lambda: ins.on_conflict_do_nothing(index_elements=["connection_id", "external_id"]))
    for chunk in chunks(values, 1, limit=CHUNK_ROWS * 5):
        await core_execute(session, stmt, list(chunk), writes=tbl.name)
    return have | await directory_ids(session, table, connection_id, list(rows))


async def directory_ids(session: AsyncSession, table: Any, connection_id: int, external_ids: Sequence[str]
                        ) -> dict[str, int]:
    tbl = table_of(table)
    stmt = built(("directory_ids", tbl.name), lambda: sa.select(tbl.c.external_id, tbl.c.id).where(
        tbl.c.connection_id == sa.bindparam("cid"), tbl.c.external_id.in_(sa.bindparam("exts", expanding=True))))
    out: dict[str, int] = {}
    for i in range(0, len(external_ids), 5000):
        res = await core_execute(session, stmt, {"cid": connection_id, "exts": list(external_ids[i : i + 5000])})
        out.update({ext: rid for ext, rid in res.all()})
    return out


async def directory_lookup(session: AsyncSession, connection_id: int, wanted: Mapping[Any, Sequence[str]]
                           ) -> dict[Any, dict[str, int]]:
    """`directory_ids` of several directory tables (class -> external ids) in one read (UNION ALL)."""
    classes = [cls for cls, exts in wanted.items() if exts]
    out: dict[Any, dict[str, int]] = {cls: {} for cls in wanted}
    if not classes:
        return out
    if len(classes) == 1 or any(len(wanted[cls]) > 5000 for cls in classes):
        for cls in classes:
            out[cls] = await directory_ids(session, cls, connection_id, list(wanted[cls]))
        return out
    names = tuple(table_of(cls).name for cls in classes)

    def build() -> Any:
        parts = []
        for i, cls in enumerate(classes):
            tbl = table_of(cls)
            parts.append(sa.select(sa.literal(i).label("k"), tbl.c.external_id, tbl.c.id).where(
                tbl.c.connection_id == sa.bindparam("cid"),
                tbl.c.external_id.in_(sa.bindparam(f"exts{i}", expanding=True))))
        return sa.union_all(*parts)

    params: dict[str, Any] = {"cid": connection_id}
    params.update({f"exts{i}": list(wanted[cls]) for i, cls in enumerate(classes)})
    for k, ext, rid in (await core_execute(session, built(("directory_lookup", names), build), params)).all():
        out[classes[k]][ext] = rid
    return out


DIRECTORY_TABLES = {"company": Customer, "member": Member, "contact": Contact}
