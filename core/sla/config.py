"""SLA configuration of a workspace: calendars and policy overrides (storage, validation, caching).

Calendars are per workspace and named; a customer gets its own calendar (time zone, hours,
holidays) through its policy override `{"calendar": "<name>"}`. The "default" calendar is created on
first use (Mon-Fri 08:00-17:00 in the workspace's time zone, no holidays) so a fresh install works.

Calendars are not versioned by `effective_from`: an edit bumps `version` and applies at once to every
clock on that calendar, including the time already elapsed (history is recomputed). Policy edits reach
an open ticket's clock the next time that ticket changes (as in Zendesk), except that a new cycle or
a new ticket always uses the current policy.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from core.admin_audit import Who, record_change
from core.errors import InvalidInput, NotFound
from core.hints import CUSTOMER_HINT, WORKSPACE_HINT
from core.local_time import zone_named
from core.sla.calendars import (
    CalendarError,
    CalendarSpec,
    build_intervals,
    format_windows,
    holiday_dates,
    parse_windows,
    validate,
)
from core.sla.clock import IntervalTable
from core.sla.policies import (
    DEFAULT_CALENDAR,
    Policy,
    PolicyError,
    effective_policy,
    merge_overrides,
    validate_overrides,
)
from store.db import Database, Scope
from store.sql import dialect_insert
from store.tables import Customer, SlaCalendar, SlaPolicy, Workspace
from store.types import utcnow

DEFAULT_WINDOWS = "mon-fri 08:00-17:00"
HORIZON_DAYS = 400
WORKSPACE_SCOPE = "workspace"


def scope_key(customer_id: int | None) -> str:
    return WORKSPACE_SCOPE if customer_id is None else f"customer:{customer_id}"


def spec_from_row(row: SlaCalendar) -> CalendarSpec:
    return CalendarSpec(
        tz=row.timezone, windows=parse_windows(row.windows), holiday_country=row.holiday_country,
        holiday_subdiv=row.holiday_subdiv, custom_holidays=frozenset(date.fromisoformat(d) for d in row.custom_holidays),
        name=row.name, calendar_id=row.id, version=row.version)


@functools.lru_cache(maxsize=256)
def default_spec(tz: str) -> CalendarSpec:
    """The default calendar in a time zone (frozen: one per zone is shared; parsed once)."""
    return CalendarSpec(tz=tz, windows=parse_windows(DEFAULT_WINDOWS), name=DEFAULT_CALENDAR)


@dataclass
class WorkspaceSla:
    """Everything the engine needs to know about one workspace's SLA setup (loaded once per pass)."""

    workspace_id: int
    timezone: str
    workspace_overrides: dict[str, Any]
    customer_overrides: dict[int, dict[str, Any]]
    calendars: dict[str, CalendarSpec]
    _policies: dict[int | None, Policy] = field(default_factory=dict)

    def policy_for(self, customer_id: int | None) -> Policy:
        if customer_id not in self._policies:
            layers = [self.workspace_overrides]
            if customer_id is not None and customer_id in self.customer_overrides:
                layers.append(self.customer_overrides[customer_id])
            self._policies[customer_id] = effective_policy(*layers)
        return self._policies[customer_id]

    def calendar_for(self, policy: Policy) -> CalendarSpec | None:
        """The policy's calendar, None for calendar time (24x7); falls back to the default calendar."""
        if not policy.business_hours:
            return None
        return self.calendars.get(policy.calendar) or self.calendars.get(DEFAULT_CALENDAR) or \
            default_spec(self.timezone)

    def calendar_by_id(self, calendar_id: int | None) -> CalendarSpec | None:
        if calendar_id is None:
            return None
        for spec in self.calendars.values():
            if spec.calendar_id == calendar_id:
                return spec
        return self.calendars.get(DEFAULT_CALENDAR) or default_spec(self.timezone)


class TableCache:
    """Interval tables per calendar version, rebuilt when "now" drifts a month from the table's anchor."""

    def __init__(self, horizon_days: int = HORIZON_DAYS) -> None:
        self.horizon_days = horizon_days
        self._tables: dict[tuple[Any, ...], IntervalTable] = {}
        self._continuous = IntervalTable.continuous()

    def get(self, spec: CalendarSpec | None, now: datetime) -> IntervalTable:
        if spec is None:
            return self._continuous
        anchor = date(now.year, now.month, 1)
        key = (spec.calendar_id, spec.name, spec.version, spec.tz, anchor)
        table = self._tables.get(key)
        if table is None:
            lo, hi = anchor - timedelta(days=self.horizon_days), anchor + timedelta(days=self.horizon_days + 31)
            # the horizon is cut at UTC midnights; a local day reaches up to 14 h either side of its UTC date
            # (Los Angeles' evening is the next UTC day), so the local days beside the horizon are built too
            s, e = build_intervals(spec, lo - timedelta(days=1), hi + timedelta(days=1))
            lo_ts = datetime(lo.year, lo.month, lo.day, tzinfo=UTC).timestamp()
            hi_ts = datetime(hi.year, hi.month, hi.day, tzinfo=UTC).timestamp()
            table = IntervalTable(s, e, horizon_start=lo_ts, horizon_end=hi_ts, key=key)
            if len(self._tables) > 512:
                self._tables.clear()
            self._tables[key] = table
        return table


def _insert(session: AsyncSession, table: type) -> Any:
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    return dialect_insert(dialect, table)


async def load_config(session: AsyncSession, workspace_id: int) -> WorkspaceSla:
    """Policies and calendars of one workspace (the session's scope must cover it)."""
    ws = await session.get(Workspace, workspace_id)
    if ws is None:
        raise NotFound(f"Workspace {workspace_id} was not found.", hint=WORKSPACE_HINT)
    pol_rows = (await session.exec(select(SlaPolicy).where(SlaPolicy.workspace_id == workspace_id))).all()
    cal_rows = (await session.exec(select(SlaCalendar).where(SlaCalendar.workspace_id == workspace_id))).all()
    ws_over: dict[str, Any] = {}
    cust_over: dict[int, dict[str, Any]] = {}
    for p in pol_rows:
        if p.customer_id is None:
            ws_over = dict(p.settings)
        else:
            cust_over[p.customer_id] = dict(p.settings)
    return WorkspaceSla(workspace_id=workspace_id, timezone=ws.timezone or "UTC", workspace_overrides=ws_over,
                        customer_overrides=cust_over, calendars={c.name: spec_from_row(c) for c in cal_rows})


async def ensure_default_calendar(session: AsyncSession, cfg: WorkspaceSla) -> None:
    """Create the workspace's default calendar row if a policy needs it (safe under concurrency)."""
    if DEFAULT_CALENDAR in cfg.calendars:
        return
    now = utcnow()
    stmt = _insert(session, SlaCalendar).values(
        workspace_id=cfg.workspace_id, name=DEFAULT_CALENDAR, timezone=cfg.timezone, windows=DEFAULT_WINDOWS,
        custom_holidays=[], version=1, created_at=now, updated_at=now,
    ).on_conflict_do_nothing(index_elements=["workspace_id", "name"])
    await session.execute(stmt)
    row = (await session.exec(select(SlaCalendar).where(SlaCalendar.workspace_id == cfg.workspace_id,
                                                        SlaCalendar.name == DEFAULT_CALENDAR))).one()
    cfg.calendars[DEFAULT_CALENDAR] = spec_from_row(row)


def holidays_in(info: CalendarInfo, year: int) -> list[tuple[date, str]]:
    """The holidays a calendar observes in a year, by date (country/subdivision and custom dates)."""
    spec = CalendarSpec(tz=info.timezone, windows=parse_windows(info.windows), holiday_country=info.holiday_country,
                        holiday_subdiv=info.holiday_subdiv, custom_holidays=frozenset(info.custom_holidays),
                        name=info.name)
    return sorted(holiday_dates(spec, date(year, 1, 1), date(year, 12, 31)).items())


@dataclass(frozen=True, slots=True)
class CalendarInfo:
    name: str
    timezone: str
    windows: str
    holiday_country: str | None
    holiday_subdiv: str | None
    custom_holidays: tuple[date, ...]
    version: int


def _info(spec: CalendarSpec) -> CalendarInfo:
    return CalendarInfo(name=spec.name, timezone=spec.tz, windows=format_windows(spec.windows),
                        holiday_country=spec.holiday_country, holiday_subdiv=spec.holiday_subdiv,
                        custom_holidays=tuple(sorted(spec.custom_holidays)), version=spec.version)


class SlaConfigService:
    """Read and edit calendars and policies (the CLI and admin commands call this)."""

    def __init__(self, db: Database, *, clock: Callable[[], datetime] = utcnow) -> None:
        self.db = db
        self._clock = clock

    async def calendars(self, workspace_id: int) -> list[CalendarInfo]:
        """Every calendar, by name (a write only the first time, to create the default one)."""
        async with self.db.read(Scope.workspace(workspace_id)) as session:
            cfg = await load_config(session, workspace_id)
        if DEFAULT_CALENDAR not in cfg.calendars:
            async with self.db.write(Scope.workspace(workspace_id)) as session:
                cfg = await load_config(session, workspace_id)
                await ensure_default_calendar(session, cfg)
        return [_info(s) for s in sorted(cfg.calendars.values(), key=lambda s: s.name)]

    async def calendar(self, workspace_id: int, name: str) -> CalendarInfo:
        for info in await self.calendars(workspace_id):
            if info.name == name:
                return info
        raise NotFound(f"There is no SLA calendar named '{name}'.", hint="See them on the admin page SLA (/admin/sla) or with "
                                                                           "`deskbridge sla calendar show`.")

    async def set_calendar(self, workspace_id: int, name: str, *, timezone: str | None = None,
                           windows: str | None = None, country: str | None = None, subdiv: str | None = None,
                           add_holidays: Iterable[str] = (), remove_holidays: Iterable[str] = (),
                           clear_country: bool = False, actor: Who = None) -> CalendarInfo:
        """Create or change a calendar; validated before anything is saved."""
        name = name.strip()
        if not name or len(name) > 64:
            raise InvalidInput("A calendar name is 1-64 characters.", hint="Give it a short name, e.g. office-hours.",
                               field="name")
        async with self.db.write(Scope.workspace(workspace_id)) as session:
            cfg = await load_config(session, workspace_id)
            row = (await session.exec(select(SlaCalendar).where(SlaCalendar.name == name))).first()
            if row is None:
                row = SlaCalendar(workspace_id=workspace_id, name=name, timezone=timezone or cfg.timezone,
                                  windows=DEFAULT_WINDOWS, custom_holidays=[], version=0)
                session.add(row)
            try:
                if timezone is not None:
                    row.timezone = timezone.strip()
                if windows is not None:
                    row.windows = format_windows(parse_windows(windows))
                if clear_country:
                    row.holiday_country, row.holiday_subdiv = None, None
                if country is not None:
                    row.holiday_country = country.strip().upper() or None
                    row.holiday_subdiv = None
                if subdiv is not None:
                    row.holiday_subdiv = subdiv.strip().upper() or None
                dates = {date.fromisoformat(d) for d in row.custom_holidays}
                dates |= {_iso_date(d) for d in add_holidays}
                dates -= {_iso_date(d) for d in remove_holidays}
                row.custom_holidays = sorted(d.isoformat() for d in dates)
                validate(spec_from_row(row))
            except CalendarError as exc:
                raise InvalidInput(str(exc), hint="Hours look like 'mon-fri 08:00-17:00', dates like 2026-12-24 "
                                        "(admin page SLA, or `deskbridge sla calendar set --help`).",
                                   field="calendar") from None
            row.version += 1
            row.updated_at = self._clock()
            await session.flush()
            info = _info(spec_from_row(row))
            record_change(session, actor, workspace_id, "sla.calendar", {
                "name": info.name, "tz": info.timezone, "hours": info.windows, "country": info.holiday_country,
                "subdiv": info.holiday_subdiv, "holidays": list(info.custom_holidays), "version": info.version})
            return info

    def this_year(self, info: CalendarInfo) -> int:
        """The year it is now in the calendar's zone (on 31 December at 18:00 in Los Angeles, UTC's is the next)."""
        return self._clock().astimezone(zone_named(info.timezone)).year

    async def holidays(self, workspace_id: int, name: str, year: int | None = None) -> tuple[int, list[tuple[date, str]]]:
        """(year, the holidays the calendar observes in it): country/subdivision and custom dates; the year
        defaults to the one it is now in the calendar's zone."""
        info = await self.calendar(workspace_id, name)
        year = year or self.this_year(info)
        return year, holidays_in(info, year)

    async def policy(self, workspace_id: int, customer_id: int | None = None) -> tuple[Policy, dict[str, Any]]:
        """The effective policy and the overrides stored at this level."""
        async with self.db.read(Scope.workspace(workspace_id)) as session:
            cfg = await load_config(session, workspace_id)
            if customer_id is not None and await session.get(Customer, customer_id) is None:
                raise NotFound(f"Customer {customer_id} was not found.", hint=CUSTOMER_HINT)
        own = cfg.workspace_overrides if customer_id is None else cfg.customer_overrides.get(customer_id, {})
        return cfg.policy_for(customer_id), dict(own)

    async def set_policy(self, workspace_id: int, settings: dict[str, Any], *, customer_id: int | None = None,
                         replace: bool = False, actor: Who = None) -> Policy:
        """Merge (or, with replace, set) overrides at workspace or customer level."""
        try:
            clean = validate_overrides(settings)
        except (PolicyError, TypeError, ValueError) as exc:
            raise InvalidInput(str(exc), hint="Durations look like 30m, 4h or 2d (admin page SLA, or "
                                                                     "`deskbridge sla policy set --help`).", field="policy") from None
        async with self.db.write(Scope.workspace(workspace_id)) as session:
            if customer_id is not None and await session.get(Customer, customer_id) is None:
                raise NotFound(f"Customer {customer_id} was not found.", hint=CUSTOMER_HINT)
            key = scope_key(customer_id)
            await session.execute(_insert(session, SlaPolicy).values(
                workspace_id=workspace_id, scope_key=key, customer_id=customer_id, settings={},
                updated_at=self._clock()).on_conflict_do_nothing(index_elements=["workspace_id", "scope_key"]))
            row = (await session.exec(select(SlaPolicy).where(SlaPolicy.scope_key == key))).one()
            row.settings = clean if replace else merge_overrides(row.settings or {}, clean)
            row.updated_at = self._clock()
            await session.flush()
            cfg = await load_config(session, workspace_id)
            policy = cfg.policy_for(customer_id)
            if policy.business_hours and policy.calendar != DEFAULT_CALENDAR and policy.calendar not in cfg.calendars:
                raise NotFound(f"There is no SLA calendar named '{policy.calendar}'.",
                               hint="Create it first on the admin page SLA (/admin/sla) or with "
                                    "`deskbridge sla calendar set NAME --tz ... --hours ...`.")
            record_change(session, actor, workspace_id, "sla.policy",
                          {"scope": key, "replace": replace, "settings": clean})
            return policy


def _iso_date(text: str) -> date:
    try:
        return date.fromisoformat(str(text).strip())
    except ValueError:
        raise CalendarError(f"'{text}' is not a date like 2026-12-24.") from None
