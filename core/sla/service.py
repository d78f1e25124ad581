"""SlaService: per-ticket clock state, SLA figures for views and queues, and the breaching query.

How clock state is kept (the design choice): each `sla_clock` row remembers what it has seen of its
ticket (`seen_entry_id`, `seen_version`, `seen_updated_at`). `refresh` (run by the monitor every
minute, and callable by the ticket service or sync right after a change) replays the ticket's
STATUS_CHANGE / PRIORITY_CHANGE timeline entries it has not seen, in time order, then lines the clock
up with the ticket's current stage and priority (core/sla/state.py). So a pause that starts and ends
between two passes is still counted, with the entries' own times; a change a PSA sync made without a
timeline entry is dated at the ticket's `updated_at`. Read paths (`views`, `remaining`,
`breaching_ids`) derive the same state in memory without writing.

(Over 400 lines: loading, the pass and the read/write entry points share the loaded state and stay together;
the view builders (`view_of`, `views`) are the part to split out next.)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, NamedTuple

import numpy as np
import sqlalchemy as sa
from sqlmodel import Session, select

from core.cache import ConfigCache
from core.sla.clock import IntervalTable, evaluate, remaining_one
from core.sla.config import TableCache, WorkspaceSla, ensure_default_calendar, load_config
from core.sla.memo import STATE_COLUMNS, DerivedMemo
from core.sla.policies import Metric, Policy, RunState
from core.sla.risk import at_risk_count, clear_deleted, risk_instants, ticket_risk_instants
from core.sla.state import Change, ClockState, TicketFacts, advance
from core.views import QueuePage, SlaMetricView, SlaView
from store.db import Database, Scope, scoped_execute
from store.enums import OPEN_STAGES, EntryKind, Priority, Stage
from store.sql import dialect_insert, plain
from store.tables import SlaClock, Ticket, TimelineEntry
from store.types import utcnow

CONFIG_TABLES, CONFIG_TTL_S = ("workspace", "sla_policy", "sla_calendar"), 10.0  # what `load_config` reads
PSA_TOLERANCE_S = 300.0  # our due date and the PSA's "agree" within 5 minutes
CHUNK = 500
Key = tuple[int, str]

_TICKET_COLS = (Ticket.id, Ticket.number, Ticket.subject, Ticket.customer_id, Ticket.priority, Ticket.stage,
                Ticket.psa_status_name, Ticket.created_at, Ticket.updated_at, Ticket.version,
                Ticket.first_response_at, Ticket.psa_respond_by, Ticket.psa_resolve_by)


# The loading statements, built once: a statement built per call paid its SQL expression, two cache keys and the
# workspace criteria again every time (~0.4 ms of a queue page's SLA read, issue 20 item 4); reused, the session's
# scoping and SQLAlchemy's compiled cache find them memoised. Values are bind parameters.
_IDS: Any = sa.bindparam("ids", expanding=True)
_TICKETS_BY_ID = select(*_TICKET_COLS).where(  # type: ignore[call-overload]
    Ticket.deleted_at.is_(None), Ticket.id.in_(_IDS))  # type: ignore[union-attr]
_OPEN_TICKETS = select(*_TICKET_COLS).where(  # type: ignore[call-overload]
    Ticket.deleted_at.is_(None), sa.or_(  # type: ignore[union-attr]
        Ticket.stage.in_([s.value for s in OPEN_STAGES]),  # type: ignore[attr-defined]
        Ticket.id.in_(select(SlaClock.ticket_id).where(SlaClock.stopped_at.is_(None)))))  # type: ignore[union-attr]
_CLOCKS_OF = select(SlaClock).where(SlaClock.ticket_id.in_(_IDS))  # type: ignore[attr-defined]
# The read paths' clocks: plain rows of the state's columns (cheaper than ORM objects; their values are the memo's key)
_CLOCK_ROWS_OF = sa.select(*(getattr(SlaClock, c) for c in STATE_COLUMNS)).where(
    SlaClock.ticket_id.in_(_IDS))  # type: ignore[attr-defined]
METRICS = tuple(Metric)
METRIC_VALUES = tuple(m.value for m in METRICS)
NO_ROWS: tuple[Any, ...] = (None,) * len(METRICS)
_CHANGES_OF = select(TimelineEntry.id, TimelineEntry.ticket_id, TimelineEntry.kind,  # type: ignore[call-overload]
                     TimelineEntry.data, TimelineEntry.occurred_at).where(
    TimelineEntry.ticket_id.in_(_IDS),  # type: ignore[attr-defined]
    TimelineEntry.kind.in_([EntryKind.STATUS_CHANGE.value, EntryKind.PRIORITY_CHANGE.value]))  # type: ignore[attr-defined]


def ts(value: datetime | None) -> float | None:
    return value.timestamp() if value is not None else None


def dt(value: float | None) -> datetime | None:
    if value is None or value != value:  # None or NaN
        return None
    return datetime.fromtimestamp(value, UTC)


def _by_metric(results: Sequence[ClockResult]) -> dict[int, dict[str, float]]:
    out: dict[int, dict[str, float]] = {}
    for r in results:
        if r.state.stopped_at is None:
            out.setdefault(r.ticket.id, {})[r.metric.value] = r.figures.remaining
    return out


class _Loaded(NamedTuple):
    tickets: list[TicketRow]
    clocks: dict[Key, Any]  # SlaClock objects (the write path) or rows of STATE_COLUMNS (the read paths)
    changes: dict[int, list[Change]]
    stale: set[int]


@dataclass(frozen=True, slots=True)
class TicketRow:
    id: int
    number: int | None
    subject: str
    customer_id: int | None
    priority: str
    stage: str
    status_name: str | None
    created_at: datetime
    updated_at: datetime
    version: int
    first_response_at: datetime | None
    psa_respond_by: datetime | None
    psa_resolve_by: datetime | None

    def facts(self) -> TicketFacts:
        return TicketFacts(ticket_id=self.id, stage=Stage(self.stage), status_name=self.status_name,
                           priority=Priority(self.priority), created_at=self.created_at.timestamp(),
                           updated_at=(self.updated_at or self.created_at).timestamp(), version=self.version,
                           first_response_at=ts(self.first_response_at))


@dataclass(frozen=True, slots=True)
class Figures:
    used: float
    remaining: float
    due: float  # NaN past the horizon
    breached_at: float | None


NO_FIGURES = Figures(0.0, 0.0, float("nan"), None)  # until the pass evaluates (frozen: shared)


@dataclass(slots=True)
class ClockResult:
    """One ticket metric after a pass: its state, figures and the policy that applies."""

    ticket: TicketRow
    metric: Metric
    state: ClockState
    figures: Figures
    policy: Policy


def state_from_row(row: Any) -> ClockState:
    """A clock state from its sla_clock row (an SlaClock, or a row of core/sla/memo.py STATE_COLUMNS)."""
    return ClockState(
        metric=Metric(row.metric), priority=row.priority, start=row.start_at.timestamp(), target_s=row.target_s,
        last_at=row.last_at.timestamp(), calendar_id=row.calendar_id, cycle=row.cycle, paused_acc_s=row.paused_acc_s,
        paused_since=ts(row.paused_since), stopped_at=ts(row.stopped_at), stop_reason=row.stop_reason,
        breached_at=ts(row.breached_at), seen_entry_id=row.seen_entry_id, seen_version=row.seen_version,
        seen_updated_at=ts(row.seen_updated_at), log=list(row.log or []))


def row_values(c: ClockState) -> dict[str, Any]:
    return dict(metric=c.metric.value, priority=c.priority, start_at=dt(c.start), target_s=c.target_s,
                last_at=dt(c.last_at), calendar_id=c.calendar_id, cycle=c.cycle, paused_acc_s=c.paused_acc_s,
                paused_since=dt(c.paused_since), stopped_at=dt(c.stopped_at), stop_reason=c.stop_reason,
                breached_at=dt(c.breached_at), seen_entry_id=c.seen_entry_id, seen_version=c.seen_version,
                seen_updated_at=dt(c.seen_updated_at), log=list(c.log))


def paused_used(r: ClockResult) -> float | None:
    """What a paused clock has used (it does not change while paused), stored so risk is a query; else None."""
    return round(r.figures.used, 3) if r.state.state is RunState.PAUSED else None


def _parse_change(entry_id: int, kind: str, data: dict[str, Any], at: datetime) -> Change | None:
    def stage_of(part: Any) -> tuple[Stage | None, str | None]:
        if isinstance(part, dict):
            raw, name = part.get("stage"), part.get("status")
        else:
            raw, name = part, None
        try:
            return (Stage(raw) if raw else None), name
        except ValueError:
            return None, name

    def prio_of(raw: Any) -> Priority | None:
        try:
            return Priority(raw) if raw else None
        except ValueError:
            return None

    if kind == EntryKind.STATUS_CHANGE:
        to_stage, to_name = stage_of((data or {}).get("to"))
        from_stage, from_name = stage_of((data or {}).get("from"))
        if to_stage is None:
            return None
        return Change(entry_id=entry_id, at=at.timestamp(), kind="status", stage=to_stage, status_name=to_name,
                      from_stage=from_stage, from_status_name=from_name)
    to_p, from_p = prio_of((data or {}).get("to")), prio_of((data or {}).get("from"))
    if to_p is None:
        return None
    return Change(entry_id=entry_id, at=at.timestamp(), kind="priority", priority=to_p, from_priority=from_p)


class SlaService:
    """Clock state and SLA figures; implements the chat views' SlaInfo (remaining, breaching_ids)."""

    def __init__(self, db: Database, *, clock: Callable[[], datetime] = utcnow, tables: TableCache | None = None,
                 psa_tolerance_s: float = PSA_TOLERANCE_S) -> None:
        self.db = db
        self._clock = clock
        self.tables = tables or TableCache()
        self.configs: ConfigCache[WorkspaceSla] = ConfigCache(db, CONFIG_TABLES, ttl=CONFIG_TTL_S)  # read paths
        self.psa_tolerance_s = psa_tolerance_s
        self.memo = DerivedMemo()  # derived clock states kept between reads (core/sla/memo.py)

    def now(self) -> datetime:
        return self._clock()

    # ------------------------------------------------------------ loading

    # Loading is synchronous (a sync session): the read paths run all of it in one reader-thread call
    # (Database.read_sync), the write path through its async session's run_sync. Same statements both ways.
    @staticmethod
    def _tickets(session: Session, ticket_ids: Sequence[int] | None) -> list[TicketRow]:
        rows: list[Any] = []
        if ticket_ids is None:
            rows = list(session.execute(_OPEN_TICKETS).all())
        else:
            ids = list(dict.fromkeys(ticket_ids))
            for i in range(0, len(ids), CHUNK):
                rows.extend(session.execute(_TICKETS_BY_ID, {"ids": ids[i:i + CHUNK]}).all())
        return [TicketRow(*r) for r in rows]

    @staticmethod
    def _clocks(session: Session, ticket_ids: list[int], *, objects: bool = True) -> dict[Key, Any]:
        """Stored clocks by (ticket, metric): SlaClock objects to write to, or plain rows to read."""
        out: dict[Key, Any] = {}
        for i in range(0, len(ticket_ids), CHUNK):
            params = {"ids": ticket_ids[i:i + CHUNK]}
            for row in (session.execute(_CLOCKS_OF, params).scalars() if objects
                        else plain(scoped_execute(session, _CLOCK_ROWS_OF, params))):  # state_from_row reads ~15 columns
                out[(row.ticket_id, row.metric)] = row
        return out

    @staticmethod
    def _changes(session: Session, ticket_ids: list[int]) -> dict[int, list[Change]]:
        out: dict[int, list[Change]] = {}
        for i in range(0, len(ticket_ids), CHUNK):
            for entry_id, ticket_id, kind, data, at in session.execute(_CHANGES_OF, {"ids": ticket_ids[i:i + CHUNK]}):
                ch = _parse_change(entry_id, kind, data, at)
                if ch is not None:
                    out.setdefault(ticket_id, []).append(ch)
        return out

    @classmethod
    def _load(cls, session: Session, ticket_ids: Sequence[int] | None, memo: DerivedMemo | None = None) -> _Loaded:
        """The tickets, their stored clocks, and the timeline changes of those whose clocks are stale. With a memo
        (the read paths): clocks as plain rows, and the changes it kept for a ticket that has not changed since."""
        return cls._load_of(session, cls._tickets(session, ticket_ids), memo)

    @classmethod
    def _load_of(cls, session: Session, tickets: list[TicketRow], memo: DerivedMemo | None) -> _Loaded:
        clocks = cls._clocks(session, [t.id for t in tickets], objects=memo is None)
        stale = [t for t in tickets if cls._stale(t, clocks)]
        changes: dict[int, list[Change]] = {}
        unread = []
        for t in stale:
            kept = memo.changes_of(t) if memo is not None else None
            if kept is None:
                unread.append(t.id)
            elif kept:
                changes[t.id] = list(kept)
        if unread:
            changes.update(cls._changes(session, unread))
        return _Loaded(tickets, clocks, changes, {t.id for t in stale})

    # ------------------------------------------------------------ the pass

    @staticmethod
    def _stale(t: TicketRow, clocks: dict[Key, Any]) -> bool:
        for m in Metric:
            row = clocks.get((t.id, m.value))
            if row is None or row.seen_version != t.version or row.seen_updated_at != t.updated_at:
                return True
            if m is Metric.FIRST_RESPONSE and t.first_response_at is not None and row.stop_reason != "first_response":
                return True
        return False

    def _pass(self, cfg: WorkspaceSla, loaded: _Loaded, now: datetime, memo: DerivedMemo | None = None
              ) -> list[ClockResult]:
        tickets, clocks, changes, stale_ids = loaded
        now_ts = now.timestamp()
        results: list[ClockResult] = []
        table_of = self._table_memo(cfg, now)
        new_calendar: dict[int, int | None] = {}  # a new clock's calendar, per policy object
        for t in tickets:
            policy = cfg.policy_for(t.customer_id)
            rows = tuple(clocks.get((t.id, m)) for m in METRIC_VALUES) if clocks else NO_ROWS
            if t.id in stale_ids:
                key = id(policy)
                if key not in new_calendar:
                    new_calendar[key] = _calendar_id(cfg, policy)
                states = _derive(t, rows, changes.get(t.id, ()), policy, new_calendar[key], table_of, now_ts, memo)
            else:
                states = [state_from_row(row) for row in rows]
            for m, state in zip(METRICS, states, strict=True):
                results.append(ClockResult(ticket=t, metric=m, state=state, figures=NO_FIGURES, policy=policy))
        self._evaluate(cfg, results, now)
        return results

    def _table_memo(self, cfg: WorkspaceSla, now: datetime) -> Callable[[int | None], IntervalTable]:
        """The interval table of a calendar id, looked up once per pass (not once per ticket and metric)."""
        memo: dict[int | None, IntervalTable] = {}

        def table_of(cal_id: int | None) -> IntervalTable:
            table = memo.get(cal_id)
            if table is None:
                table = memo[cal_id] = self.tables.get(cfg.calendar_by_id(cal_id) if cal_id is not None else None,
                                                       now)
            return table

        return table_of

    def _evaluate(self, cfg: WorkspaceSla, results: list[ClockResult], now: datetime) -> None:
        """One vectorised pass per calendar; records breach instants into the states."""
        groups: dict[int | None, list[int]] = {}
        for i, r in enumerate(results):
            groups.setdefault(r.state.calendar_id, []).append(i)
        for cal_id, idx in groups.items():
            table = self.tables.get(cfg.calendar_by_id(cal_id) if cal_id is not None else None, now)
            ev = evaluate(table, **_columns([results[i].state for i in idx]), now=now.timestamp())
            # Plain floats once per array (indexing numpy arrays element by element costs more than the maths)
            used, remaining, due, breached = (ev.used.tolist(), ev.remaining.tolist(), ev.due.tolist(),
                                              ev.breached_at.tolist())
            for j, i in enumerate(idx):
                s = results[i].state
                if s.breached_at is None and breached[j] == breached[j]:  # not NaN
                    s.breached_at = breached[j]
                results[i].figures = Figures(used[j], remaining[j], due[j], s.breached_at)

    # ------------------------------------------------------------ writes

    async def refresh(self, workspace_id: int, ticket_ids: Sequence[int] | None = None,
                      now: datetime | None = None) -> list[ClockResult]:
        """Bring stored clocks up to date (all open tickets, or the given ones) and record breaches."""
        now = now or self._clock()
        async with self.db.write(Scope.workspace(workspace_id)) as session:
            cfg = await load_config(session, workspace_id)
            await ensure_default_calendar(session, cfg)
            loaded = await session.run_sync(self._load, ticket_ids)  # type: ignore[arg-type]  # a sqlmodel Session
            results, clocks = self._pass(cfg, loaded, now), loaded.clocks
            if ticket_ids is None:
                await clear_deleted(session)
            new: list[dict[str, Any]] = []
            risks = risk_instants(self.tables, cfg, results, now)
            for r, risk_from, ticket_risk in zip(results, risks, ticket_risk_instants(results, risks), strict=True):
                values = row_values(r.state)
                values["paused_used_s"] = paused_used(r)
                values["risk_from"], values["ticket_risk_from"] = dt(risk_from), dt(ticket_risk)
                row = clocks.get((r.ticket.id, r.metric.value))
                if row is None:
                    new.append({**values, "workspace_id": workspace_id, "ticket_id": r.ticket.id,
                                "updated_at": now})
                    continue
                changed = {k: v for k, v in values.items() if getattr(row, k) != v}
                if changed:
                    for k, v in changed.items():
                        setattr(row, k, v)
                    row.updated_at = now
            await session.flush()
            for i in range(0, len(new), CHUNK):
                dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
                ins = dialect_insert(dialect, SlaClock)
                await session.execute(ins.values(new[i:i + CHUNK]).on_conflict_do_nothing(
                    index_elements=["ticket_id", "metric"]))
        return results

    async def on_ticket_changed(self, workspace_id: int, ticket_ids: Sequence[int]) -> None:
        """Hook for the ticket service and sync: update these tickets' clocks now (else the next pass does)."""
        if ticket_ids:
            await self.refresh(workspace_id, ticket_ids)

    # ------------------------------------------------------------ reads

    async def derive(self, workspace_id: int, ticket_ids: Sequence[int] | None,
                     now: datetime | None = None) -> tuple[WorkspaceSla, list[ClockResult]]:
        """The workspace's SLA setup and clock results derived in memory (nothing written)."""
        now = now or self._clock()
        cfg = await self.configs.get(workspace_id, lambda: self._config(workspace_id))
        loaded = await self.db.read_sync(Scope.workspace(workspace_id), lambda s: self._load(s, ticket_ids, self.memo))
        return cfg, self._pass(cfg, loaded, now, self.memo)

    async def _config(self, workspace_id: int) -> WorkspaceSla:
        async with self.db.read(Scope.workspace(workspace_id)) as session:
            return await load_config(session, workspace_id)

    async def results(self, workspace_id: int, ticket_ids: Sequence[int] | None,
                      now: datetime | None = None) -> list[ClockResult]:
        """Clock results derived in memory (nothing written)."""
        return (await self.derive(workspace_id, ticket_ids, now))[1]

    def view_of(self, cfg: WorkspaceSla, results: Sequence[ClockResult]) -> SlaView:
        """The view model of one ticket's results."""
        t = results[0].ticket
        metrics = []
        for r in results:
            spec = cfg.calendar_by_id(r.state.calendar_id) if r.state.calendar_id is not None else None
            psa_due = t.psa_respond_by if r.metric is Metric.FIRST_RESPONSE else t.psa_resolve_by
            due = dt(r.figures.due)
            diff = None
            if psa_due is not None and due is not None:
                delta = (due - psa_due).total_seconds()
                diff = delta if abs(delta) > self.psa_tolerance_s else None
            metrics.append(SlaMetricView(
                metric=r.metric.value, state=r.state.state.value, priority=r.state.priority, cycle=r.state.cycle,
                target_s=r.state.target_s, used_s=r.figures.used, remaining_s=r.figures.remaining, due_at=due,
                breached_at=dt(r.figures.breached_at), business_hours=r.state.calendar_id is not None,
                calendar_name=spec.name if spec else None, psa_due_at=psa_due, psa_disagreement_s=diff))
        return SlaView(ticket_id=t.id, ticket_number=t.number, metrics=tuple(metrics))

    async def views(self, workspace_id: int, ticket_ids: Sequence[int], now: datetime | None = None
                    ) -> dict[int, SlaView]:
        """SLA view per ticket (both metrics, with the PSA's due dates beside ours)."""
        cfg, results = await self.derive(workspace_id, ticket_ids, now)
        by_ticket: dict[int, list[ClockResult]] = {}
        for r in results:
            by_ticket.setdefault(r.ticket.id, []).append(r)
        return {tid: self.view_of(cfg, rs) for tid, rs in by_ticket.items()}

    async def remaining_by_metric(self, workspace_id: int, ticket_ids: Sequence[int],
                                  now: datetime | None = None) -> dict[int, dict[str, float]]:
        """Remaining business seconds per ticket and metric (negative = exceeded; stopped clocks left out)."""
        return _by_metric(await self.results(workspace_id, ticket_ids, now))

    async def remaining(self, workspace_id: int, ticket_ids: Sequence[int], now: datetime) -> dict[int, float]:
        """The most urgent remaining time per ticket (SlaInfo for queues and cards)."""
        if not ticket_ids:
            return {}
        by_metric = await self.remaining_by_metric(workspace_id, ticket_ids, now)
        return {tid: min(d.values()) for tid, d in by_metric.items() if d}

    def load_for_page(self, session: Session, rows: Sequence[Any]) -> _Loaded:
        """What `remaining` reads, read inside a queue page's own read (core/chat/sla_info.py PageSla): the page's
        rows carry the ticket columns (core/queue.py `_ROW_COLUMNS`, `_ALSO_COLUMNS`), so only the clocks (and changes) are read."""
        tickets = [TicketRow(r.id, r.number, r.subject, r.customer_id, r.priority, r.stage, r.psa_status_name,
                             r.created_at, r.updated_at, r.version, r.first_response_at, r.psa_respond_by,
                             r.psa_resolve_by) for r in rows]
        return self._load_of(session, tickets, self.memo)

    async def remaining_loaded(self, workspace_id: int, loaded: Any, now: datetime) -> dict[int, float]:
        """`remaining` of the tickets `load_for_page` read (None: no tickets)."""
        if loaded is None:
            return {}
        cfg = await self.configs.get(workspace_id, lambda: self._config(workspace_id))
        return self._remaining_of(cfg, loaded, now)

    def _remaining_of(self, cfg: WorkspaceSla, loaded: _Loaded, now: datetime) -> dict[int, float]:
        """`min(remaining)` of each ticket's running or paused clocks: what `_by_metric(_pass(...))` gives, computed
        without the pass's objects (results, figures, state copies, arrays). A queue page asks only this, for a
        few dozen clocks: states (derived, kept by the memo, or read from the stored rows) are only read, and each
        clock's remaining time is `evaluate`'s arithmetic on plain floats (core/sla/clock.py `remaining_one`, the
        same value bit for bit). ~3x less CPU than the pass for a 15-ticket page (issue 20 item 4)."""
        tickets, clocks, changes, stale_ids = loaded
        now_ts = now.timestamp()
        table_of = self._table_memo(cfg, now)
        b_now: dict[int, float] = {}  # B(now) per table
        new_calendar: dict[int, int | None] = {}
        out: dict[int, float] = {}
        for t in tickets:
            rows = tuple(clocks.get((t.id, m)) for m in METRIC_VALUES) if clocks else NO_ROWS
            if t.id in stale_ids:
                policy = cfg.policy_for(t.customer_id)
                key = id(policy)
                if key not in new_calendar:
                    new_calendar[key] = _calendar_id(cfg, policy)
                clocks_of: Sequence[Any] = [
                    (s.calendar_id, s.start, s.target_s, s.paused_acc_s, s.paused_since, s.stopped_at)
                    for s in _derive(t, rows, changes.get(t.id, ()), policy, new_calendar[key], table_of, now_ts,
                                     self.memo, copy=False)]
            else:  # stored and up to date: the row's columns are the state's (state_from_row)
                clocks_of = [(r.calendar_id, r.start_at.timestamp(), r.target_s, r.paused_acc_s, ts(r.paused_since),
                              ts(r.stopped_at)) for r in rows if r is not None]  # none is None when fresh
            best: float | None = None
            for cal_id, start, target, paused_acc, paused_since, stopped_at in clocks_of:
                if stopped_at is not None:
                    continue
                table = table_of(cal_id)
                bn = b_now.get(id(table))
                if bn is None:
                    bn = b_now[id(table)] = table.B_one(now_ts)
                r = remaining_one(table, bn, start=start, target=target, paused_acc=paused_acc,
                                  paused_since=paused_since)
                best = r if best is None or r < best else best
            if best is not None:
                out[t.id] = best
        return out

    async def breaching_ids(self, workspace_id: int, now: datetime, *, within_pct: float = 0.0) -> list[int]:
        """Open tickets with a running or paused clock that is breached or within `within_pct`% of its target."""
        return await self.breaching_ids_of(workspace_id, None, now, within_pct=within_pct)

    async def at_risk_count(self, workspace_id: int, now: datetime) -> int:
        """How many open tickets have a clock breached or within `RISK_PCT`% of its target, as of the last pass
        (core/sla/risk.py): one indexed count, whatever the size of the desk. For the admin overview."""
        return await at_risk_count(self, workspace_id, now)

    async def breaching_ids_of(self, workspace_id: int, ticket_ids: Sequence[int] | None, now: datetime, *,
                               within_pct: float = 0.0) -> list[int]:
        """`breaching_ids` among the given tickets (None: every open ticket)."""
        out: list[int] = []
        for r in await self.results(workspace_id, ticket_ids, now):
            if r.state.stopped_at is not None or not Stage(r.ticket.stage).is_open or r.state.target_s <= 0:
                continue
            if r.figures.remaining <= r.state.target_s * within_pct / 100.0:
                out.append(r.ticket.id)
        return sorted(set(out))

    async def annotate(self, workspace_id: int, page: QueuePage, now: datetime | None = None) -> QueuePage:
        """The page with `sla_remaining_s` filled in for every row."""
        rem = await self.remaining(workspace_id, [t.id for t in page.items], now or self._clock())
        items = tuple(replace(t, sla_remaining_s=rem.get(t.id, t.sla_remaining_s)) for t in page.items)
        return replace(page, items=items)


def _columns(states: list[ClockState]) -> dict[str, np.ndarray]:
    """The clocks' inputs to `evaluate` as arrays (NaN: not set); one array call for a page's few clocks, one pass
    per column for a sweep's many (the faster way at each size)."""
    nan, n = np.nan, len(states)
    if n <= 256:
        cols = np.array([(s.start, s.target_s, s.paused_acc_s, nan if s.paused_since is None else s.paused_since,
                          nan if s.stopped_at is None else s.stopped_at) for s in states], np.float64).reshape(n, 5).T
        return dict(start=cols[0], target=cols[1], paused_acc=cols[2], paused_since=cols[3], stopped_at=cols[4])
    return dict(start=np.fromiter((s.start for s in states), np.float64, n),
                target=np.fromiter((s.target_s for s in states), np.float64, n),
                paused_acc=np.fromiter((s.paused_acc_s for s in states), np.float64, n),
                paused_since=np.fromiter((nan if s.paused_since is None else s.paused_since for s in states),
                                         np.float64, n),
                stopped_at=np.fromiter((nan if s.stopped_at is None else s.stopped_at for s in states), np.float64, n))


def _derive(t: TicketRow, rows: tuple[Any, ...], changes: Sequence[Change], policy: Policy, new_calendar: int | None,
            table_of: Callable[[int | None], IntervalTable], now: float, memo: DerivedMemo | None, *,
            copy: bool = True) -> list[ClockState]:
    """Both metrics' clocks of a ticket whose stored clocks are stale or absent, brought up to date (or as kept);
    a clock without a stored row starts on `new_calendar`. `copy=False`: kept states are returned as kept (the
    caller only reads them)."""
    cal_ids = [row.calendar_id if row is not None else new_calendar for row in rows]
    tables = tuple(table_of(cal_id) for cal_id in cal_ids)
    if memo is not None:
        kept = memo.states(t, rows, policy, tables, now, copy=copy)
        if kept is not None:
            return kept
    facts = t.facts()
    states = [advance(state_from_row(row) if row is not None else None, m, facts, changes, policy, table, cal_id, now)
              for m, row, table, cal_id in zip(METRICS, rows, tables, cal_ids, strict=True)]
    if memo is not None:
        memo.keep(t, rows, changes, policy, tables, states, now)
    return states


def _calendar_id(cfg: WorkspaceSla, policy: Policy) -> int | None:
    spec = cfg.calendar_for(policy)
    if spec is None:
        return None
    return spec.calendar_id if spec.calendar_id is not None else -1  # -1: the unsaved default (read paths)
