"""Queue queries: filters, keyset pagination, workspace and customer scoping.

The workspace scope is applied by the session (store/db.py); the customer scope comes from the actor
(a channel binding resolved on the server) and cannot be widened by a filter.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import unicodedata
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlmodel import Session, col

from core import ticket_refs
from core.context import Actor
from core.errors import InvalidFilter
from core.ticket_lookup import MAX_ID, summary_from
from core.views import QueuePage
from store.db import Database, scoped_execute
from store.enums import Priority, Stage
from store.sql import plain, unicode_lower
from store.tables import Customer, Member, Ticket
from store.types import utcnow

T = TypeVar("T")

MAX_PAGE_SIZE = 100
MAX_TEXT_CHARS = 200
UNASSIGNED = "unassigned"


class QueueSort(StrEnum):
    OLDEST = "oldest"  # created, oldest first (a queue works front to back)
    NEWEST = "newest"
    PRIORITY = "priority"  # most urgent first, then oldest
    UPDATED = "updated"  # most recently changed first


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueFilter:
    """What to show. Empty stages means the open stages."""

    stages: tuple[Stage, ...] = ()
    statuses: tuple[str, ...] = ()  # PSA status names, case-insensitive
    customer_id: int | None = None
    assignee: int | str | None = None  # member id, or "unassigned"
    priorities: tuple[Priority, ...] = ()
    min_age: timedelta | None = None  # older than
    max_age: timedelta | None = None  # newer than
    text: str | None = None
    ticket_ids: tuple[int, ...] | None = None  # e.g. "breaching" resolved by the SLA engine
    sort: QueueSort = QueueSort.OLDEST
    include_closed: bool = False

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k in ("stages", "statuses", "customer_id", "assignee", "priorities", "text", "sort"):
            v = getattr(self, k)
            if v not in ((), None, QueueSort.OLDEST):
                out[k] = [str(x) for x in v] if isinstance(v, tuple) else str(v)
        if self.min_age:
            out["min_age_s"] = int(self.min_age.total_seconds())
        if self.max_age:
            out["max_age_s"] = int(self.max_age.total_seconds())
        return out


def _sort_columns(sort: QueueSort) -> list[tuple[Any, bool]]:
    """(column, descending) pairs; the id is always last so the order is total."""
    if sort == QueueSort.OLDEST:
        return [(Ticket.created_at, False), (Ticket.id, False)]
    if sort == QueueSort.NEWEST:
        return [(Ticket.created_at, True), (Ticket.id, True)]
    if sort == QueueSort.PRIORITY:
        return [(Ticket.priority_rank, False), (Ticket.created_at, False), (Ticket.id, False)]
    return [(Ticket.updated_at, True), (Ticket.id, True)]


# The columns a queue row needs (rows, not ORM objects: a page is read-only and this halves its cost).
_ROW_COLUMNS = tuple(col(c) for c in (
    Ticket.id, Ticket.number, Ticket.subject, Ticket.customer_id, Ticket.priority, Ticket.priority_rank,
    Ticket.stage, Ticket.psa_status_name, Ticket.assignee_member_id, Ticket.created_at, Ticket.updated_at,
    Ticket.connection_id, Ticket.external_id))
# And what the SLA engine derives a page's clocks from, read with the page when `list_with` has an `also` (it gets
# the rows, so a page's SLA read does not read its tickets again).
_ALSO_COLUMNS = tuple(col(c) for c in (
    Ticket.version, Ticket.first_response_at, Ticket.psa_respond_by, Ticket.psa_resolve_by))


def _encode_cursor(sort: QueueSort, values: Sequence[Any]) -> str:
    raw = [sort.value] + [v.isoformat() if isinstance(v, datetime) else v for v in values]
    return base64.urlsafe_b64encode(json.dumps(raw, separators=(",", ":")).encode()).decode().rstrip("=")


def _decode_cursor(cursor: str, sort: QueueSort) -> list[Any]:
    try:
        raw = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(raw, list) or raw[0] != sort.value:
            raise ValueError
        cols = _sort_columns(sort)
        if len(raw) != len(cols) + 1:
            raise ValueError
        values: list[Any] = []
        for (col, _), v in zip(cols, raw[1:], strict=True):
            if col.key in ("created_at", "updated_at"):
                when = datetime.fromisoformat(v)
                if when.tzinfo is None:  # we only ever write aware instants: this one was made by hand
                    raise ValueError
                values.append(when.astimezone(UTC))  # OverflowError at the calendar's edges: refused too
            elif isinstance(v, int) and not isinstance(v, bool) and -MAX_ID <= v <= MAX_ID:
                values.append(v)
            else:  # ids and ranks are 32-bit integers; anything else was not written by us
                raise ValueError
        return values
    except (ValueError, TypeError, IndexError, KeyError, OverflowError, binascii.Error, json.JSONDecodeError) as exc:
        raise InvalidFilter("That page link is invalid or from a different sort order.",
                            hint="Start again from the first page.") from exc


def _ago(now: datetime, age: timedelta) -> datetime:
    """`now - age`, held at the earliest representable instant for ages longer than the calendar (999999w)."""
    try:
        return now - age
    except OverflowError:
        return datetime(1, 1, 2, tzinfo=UTC)


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _keyset(cols: list[tuple[Any, bool]], values: list[Any]) -> Any:
    """Rows strictly after `values` in the sort order (a OR-chain that indexes well on both databases)."""
    clauses = []
    for i, (column, desc) in enumerate(cols):
        eqs = [c == v for (c, _), v in zip(cols[:i], values[:i], strict=True)]
        cmp = column < values[i] if desc else column > values[i]
        clauses.append(sa.and_(*eqs, cmp))
    return sa.or_(*clauses)


@functools.lru_cache(maxsize=512)
def _shaped_statement(shape: tuple[Any, ...]) -> Any:
    """Build the statement for one filter shape; every value is a bind parameter (see QueueService)."""
    denied, names, unassigned, stage_given, sort, keyset, also, fold = shape
    stmt = (
        sa.select(*_ROW_COLUMNS, *(_ALSO_COLUMNS if also else ()), col(Customer.name).label("customer_name"), col(Member.name).label("member_name"))
        .outerjoin(Customer, Customer.id == Ticket.customer_id)  # type: ignore[arg-type]
        .outerjoin(Member, Member.id == Ticket.assignee_member_id)  # type: ignore[arg-type]
    )
    stmt = _filtered(stmt, shape)
    cols = _sort_columns(sort)
    if keyset:
        stmt = stmt.where(_keyset(cols, [sa.bindparam(f"k{i}") for i in range(len(cols))]))
    return stmt.order_by(*[c.desc() if d else c.asc() for c, d in cols]).limit(sa.bindparam("page_limit"))


@functools.lru_cache(maxsize=512)
def _counted(shape: tuple[Any, ...]) -> Any:
    """The count of a shape's rows, built once per shape (a statement built per call pays its cache keys and the
    workspace criteria again, issue 20 item 4). Without the page's joins: they are LEFT joins on primary keys that
    no filter reads, so they match at most one row each and the count is the same (SQLite spent ~1/3 of the count
    on them, and each joined table adds its workspace criterion)."""
    return _filtered(sa.select(sa.func.count(col(Ticket.id))), shape)


def _filtered(stmt: Any, shape: tuple[Any, ...]) -> Any:
    """The shape's filters (on ticket columns only) on `stmt`."""
    denied, names, unassigned, stage_given, sort, keyset, also, fold = shape
    bp = sa.bindparam
    stmt = stmt.where(Ticket.deleted_at.is_(None))  # type: ignore[union-attr]
    if denied:
        stmt = stmt.where(sa.false())
    if "customer_id" in names:
        stmt = stmt.where(col(Ticket.customer_id) == bp("customer_id"))
    if "stages" in names:
        stmt = stmt.where(Ticket.stage.in_(bp("stages", expanding=True)))  # type: ignore[attr-defined]
    elif not stage_given:
        # The database derives is_open from stage; the open-queue indexes are ordered on it.
        stmt = stmt.where(col(Ticket.is_open) == sa.true())
    if "statuses" in names:
        stmt = stmt.where(sa.func.lower(Ticket.psa_status_name).in_(bp("statuses", expanding=True)))
    if unassigned:
        stmt = stmt.where(Ticket.assignee_member_id.is_(None))  # type: ignore[union-attr]
    if "assignee" in names:
        stmt = stmt.where(col(Ticket.assignee_member_id) == bp("assignee"))
    if "priorities" in names:
        stmt = stmt.where(Ticket.priority.in_(bp("priorities", expanding=True)))  # type: ignore[attr-defined]
    if "created_max" in names:
        stmt = stmt.where(Ticket.created_at <= bp("created_max"))
    if "created_min" in names:
        stmt = stmt.where(Ticket.created_at >= bp("created_min"))
    if "ticket_ids" in names:
        stmt = stmt.where(Ticket.id.in_(bp("ticket_ids", expanding=True)))  # type: ignore[union-attr]
    if "pattern" in names:
        # words beyond ASCII are matched with a lower() that folds them on SQLite too (ÉCOLE finds école); A-Z alone
        # keep SQLite's own lower(), which folds those the same and costs no Python call per row
        lower = unicode_lower if fold else sa.func.lower
        cond: sa.ColumnElement[bool] = lower(Ticket.subject).like(bp("pattern"), escape="\\")
        if "pattern_alt" in names:  # the other Unicode form of the words (é as one character, or e + accent)
            cond = sa.or_(cond, lower(Ticket.subject).like(bp("pattern_alt"), escape="\\"))
        if "number" in names:
            cond = sa.or_(cond, col(Ticket.number) == bp("number"))
        stmt = stmt.where(cond)
    return stmt


class QueueService:
    def __init__(self, db: Database, *, clock: Callable[[], datetime] = utcnow) -> None:
        self.db = db
        self._clock = clock

    def _statement(self, actor: Actor, f: QueueFilter, *, keyset: bool = False, also: bool = False,
                   count: bool = False) -> tuple[Any, dict[str, Any]]:
        """The page query for this filter: one cached statement per filter *shape* (which filters are set),
        values passed as bind parameters, so a queue page builds no SQL expression per call."""
        params: dict[str, Any] = {}
        customer_id = f.customer_id
        denied = False
        if actor.customer_scope_id is not None:
            # Another customer inside a customer channel: an empty result, not an error that would confirm
            # the other customer exists.
            denied = customer_id is not None and customer_id != actor.customer_scope_id
            customer_id = actor.customer_scope_id
        if customer_id is not None:
            params["customer_id"] = customer_id
        if f.stages:
            params["stages"] = [s.value for s in f.stages]
        if f.statuses:
            params["statuses"] = [s.lower() for s in f.statuses]
        if f.assignee is not None and f.assignee != UNASSIGNED:
            params["assignee"] = int(f.assignee)
        if f.priorities:
            params["priorities"] = [p.value for p in f.priorities]
        now = self._clock()
        if f.min_age is not None:
            params["created_max"] = _ago(now, f.min_age)
        if f.max_age is not None:
            params["created_min"] = _ago(now, f.max_age)
        if f.ticket_ids is not None:
            params["ticket_ids"] = list(f.ticket_ids) or [-1]
        text = f.text.replace("\x00", "").strip()[:MAX_TEXT_CHARS] if f.text else ""
        if text:
            params["pattern"] = f"%{_escape_like(text.lower())}%"
            # a subject is stored as written (composed or decomposed accents alike): search both forms
            nfc, nfd = unicodedata.normalize("NFC", text.lower()), unicodedata.normalize("NFD", text.lower())
            alt = nfd if nfc == text.lower() else nfc
            if alt != text.lower():
                params["pattern_alt"] = f"%{_escape_like(alt)}%"
            digits = text.lstrip("#")
            if digits.isascii() and digits.isdigit() and 0 < int(digits) <= MAX_ID:  # '²'.isdigit() but int() refuses
                params["number"] = int(digits)
        shape = (denied, frozenset(params), f.assignee == UNASSIGNED, bool(f.stages) or f.include_closed,
                 f.sort, keyset, also, not text.isascii())
        return (_counted if count else _shaped_statement)(shape), params

    def _count_statement(self, actor: Actor, f: QueueFilter) -> tuple[Any, dict[str, Any]]:
        """The count of the filter's rows, one cached statement per shape like the page's."""
        return self._statement(actor, f, count=True)

    async def list(self, actor: Actor, f: QueueFilter | None = None, *, limit: int = 25,
                   cursor: str | None = None, with_total: bool = False) -> QueuePage:
        """One page of the queue, in the filter's sort order."""
        return (await self.list_with(actor, f, None, limit=limit, cursor=cursor, with_total=with_total))[0]

    async def list_with(self, actor: Actor, f: QueueFilter | None, also: Callable[[Session, Sequence[Any]], T] | None,
                        *, limit: int = 25, cursor: str | None = None, with_total: bool = False,
                        remaining: Callable[[T | None], Awaitable[dict[int, float]]] | None = None
                        ) -> tuple[QueuePage, T | None]:
        """`list`, and `also(session, the page's rows)` read in the same read (one hop, one snapshot): e.g. the
        page's SLA data (core/chat/runner.py). A row has `_ROW_COLUMNS` and `_ALSO_COLUMNS` by name. `also` is not called for an empty
        page (None instead). `remaining(what also gave)`: each row's `sla_remaining_s` by ticket id, set as the
        page's summaries are made (not copied into new ones after)."""
        f = f or QueueFilter()
        if not 1 <= limit <= MAX_PAGE_SIZE:
            raise InvalidFilter(f"Page size {limit} is out of range.", hint=f"Use 1 to {MAX_PAGE_SIZE}.")
        cols = _sort_columns(f.sort)
        stmt, params = self._statement(actor, f, keyset=bool(cursor), also=also is not None)
        if cursor:
            params.update({f"k{i}": v for i, v in enumerate(_decode_cursor(cursor, f.sort))})
        page_params = {**params, "page_limit": limit + 1}
        total, extra = None, None
        if with_total or also is not None:  # the page, its count and `also` in one read (one snapshot), one hop
            count, base_params = self._count_statement(actor, f) if with_total else (None, {})

            def read(session: Session) -> tuple[list[Any], int | None, T | None]:
                # Core on the session's connection: the same scoping and snapshot, no ORM layer (store/db.py)
                got = plain(scoped_execute(session, stmt, page_params).all())  # read by name below and in `also`
                n = scoped_execute(session, count, base_params).scalar_one() if count is not None else None
                page = got[:limit]
                return got, n, also(session, page) if also is not None and page else None

            rows, total, extra = await self.db.read_sync(actor.scope, read)
        else:  # the common case: one statement, read in one hop (store/db.py Database.rows)
            rows = plain(await self.db.rows(actor.scope, stmt, page_params))
        prefixes = await ticket_refs.prefixes_of(self.db, actor.workspace_id)
        page, more = rows[:limit], len(rows) > limit
        sla = await remaining(extra) if remaining is not None else {}
        items = tuple(summary_from(r, r.customer_name, r.member_name, prefixes, sla.get(r.id)) for r in page)
        next_cursor = None
        if more and page:
            last = page[-1]
            next_cursor = _encode_cursor(f.sort, [getattr(last, c.key) for c, _ in cols])
        return QueuePage(items=items, next_cursor=next_cursor, total=total, filters=f.describe()), extra

    async def mine(self, actor: Actor, *, limit: int = 25, cursor: str | None = None) -> QueuePage:
        """The acting technician's open tickets."""
        if actor.member_id is None:
            raise InvalidFilter("You are not linked to a technician, so 'mine' is empty.",
                                hint="Ask an admin to link your chat account (/deskbridge link).")
        return await self.list(actor, QueueFilter(assignee=actor.member_id), limit=limit, cursor=cursor)

