"""Business calendars: an IANA zone, weekly windows (overnight allowed) and holidays (pure).

A calendar becomes a table of open UTC intervals (core/sla/clock.py) by walking the local dates of a
horizon (reliability-sla.md §5.4). Semantics, shared with the minute-by-minute oracle in the tests:

- An instant is open when its *local wall-clock* date is not a holiday and its local time falls in a
  window of that weekday. Windows are [start, end) in minutes; "24:00" is the next midnight.
- An overnight window (22:00-06:00 on Monday) is split at midnight: Monday 22:00-24:00 belongs to
  Monday and Tuesday 00:00-06:00 to Tuesday (each half checked against its own date's holidays).
- Daylight saving: windows are wall-clock windows. A window crossing a spring-forward gap is shorter,
  one crossing a fall-back repeat counts the repeated hour twice (both occurrences are open).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays as holidays_lib
import numpy as np

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MINUTES_PER_DAY = 24 * 60
_EPOCH = datetime(1970, 1, 1)  # noqa: DTZ001 - naive on purpose: local wall times, shifted by the offset
_RANGE = re.compile(r"^(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})$")
_DAY_ALIASES = {"daily": tuple(range(7)), "all": tuple(range(7)), "weekdays": tuple(range(5)),
                "weekend": (5, 6), "weekends": (5, 6)}


class CalendarError(ValueError):
    """A calendar definition that cannot be used (the service turns it into InvalidInput)."""


@dataclass(frozen=True, slots=True)
class Window:
    """Open from `start_min` to `end_min` (minutes after local midnight) on each of `days` (0 = Monday).

    `end_min <= start_min` means the window runs overnight into the next day.
    """

    days: tuple[int, ...]
    start_min: int
    end_min: int

    @property
    def overnight(self) -> bool:
        return self.end_min <= self.start_min

    def segments(self) -> list[tuple[int, int, int]]:
        """(weekday, start_min, end_min) pieces, each within one local day."""
        out: list[tuple[int, int, int]] = []
        for d in self.days:
            if not self.overnight:
                out.append((d, self.start_min, self.end_min))
                continue
            if self.start_min < MINUTES_PER_DAY:
                out.append((d, self.start_min, MINUTES_PER_DAY))
            if self.end_min > 0:
                out.append(((d + 1) % 7, 0, self.end_min))
        return out


@dataclass(frozen=True, slots=True)
class CalendarSpec:
    """Everything that defines a business calendar."""

    tz: str
    windows: tuple[Window, ...]
    holiday_country: str | None = None
    holiday_subdiv: str | None = None
    custom_holidays: frozenset[date] = field(default_factory=frozenset)
    name: str = "default"
    calendar_id: int | None = None
    version: int = 1

    @property
    def zone(self) -> ZoneInfo:
        return zone(self.tz)


def zone(tz: str) -> ZoneInfo:
    """The ZoneInfo for an IANA name, or CalendarError."""
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError, TypeError) as exc:
        raise CalendarError(f"'{tz}' is not an IANA time zone (e.g. America/New_York).") from exc


def _minutes(h: str, m: str, text: str) -> int:
    hh, mm = int(h), int(m)
    if mm > 59 or hh > 24 or (hh == 24 and mm):
        raise CalendarError(f"'{text}' is not a time range like 08:00-17:00.")
    return hh * 60 + mm


def _days(text: str) -> tuple[int, ...]:
    out: list[int] = []
    for part in text.lower().replace(" ", "").split(","):
        if part in _DAY_ALIASES:
            out.extend(_DAY_ALIASES[part])
            continue
        a, _, b = part.partition("-")
        if a[:3] not in DAY_NAMES or (b and b[:3] not in DAY_NAMES):
            raise CalendarError(f"'{part}' is not a day or day range like mon-fri.")
        i, j = DAY_NAMES.index(a[:3]), DAY_NAMES.index((b or a)[:3])
        out.extend((i + k) % 7 for k in range((j - i) % 7 + 1))
    return tuple(sorted(set(out)))


def parse_windows(text: str) -> tuple[Window, ...]:
    """Parse "mon-fri 08:00-17:00; sat 09:00-12:00; sun 22:00-06:00" (or "24x7")."""
    text = (text or "").strip()
    if text.lower() in ("24x7", "24/7", "always"):
        return (Window(tuple(range(7)), 0, MINUTES_PER_DAY),)
    windows: list[Window] = []
    for entry in filter(None, (e.strip() for e in text.split(";"))):
        days_text, _, range_text = entry.rpartition(" ")
        m = _RANGE.match(range_text.strip())
        if not days_text.strip() or not m:
            raise CalendarError(f"'{entry}' is not like 'mon-fri 08:00-17:00'.")
        start, end = _minutes(m[1], m[2], entry), _minutes(m[3], m[4], entry)
        if start == end or start == MINUTES_PER_DAY:
            raise CalendarError(f"'{entry}' is an empty window.")
        windows.append(Window(_days(days_text), start, end))
    if not windows:
        raise CalendarError("A calendar needs at least one window, e.g. 'mon-fri 08:00-17:00'.")
    return tuple(windows)


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def format_windows(windows: Iterable[Window]) -> str:
    """The inverse of parse_windows (days written as ranges where contiguous)."""
    parts = []
    for w in windows:
        runs: list[list[int]] = []
        for d in w.days:
            if runs and runs[-1][-1] == d - 1:
                runs[-1].append(d)
            else:
                runs.append([d])
        days = ",".join(DAY_NAMES[r[0]] if len(r) == 1 else f"{DAY_NAMES[r[0]]}-{DAY_NAMES[r[-1]]}" for r in runs)
        parts.append(f"{days} {_hhmm(w.start_min)}-{_hhmm(w.end_min)}")
    return "; ".join(parts)


@lru_cache(maxsize=256)
def _country_holidays(country: str, subdiv: str | None, years: tuple[int, ...]) -> dict[date, str]:
    try:
        data = holidays_lib.country_holidays(country, subdiv=subdiv, years=years)
    except NotImplementedError as exc:
        where = f"{country}-{subdiv}" if subdiv else country
        raise CalendarError(f"The holidays package has no calendar for '{where}'.") from exc
    return dict(data.items())


def holiday_dates(spec: CalendarSpec, start: date, end: date) -> dict[date, str]:
    """Holidays (date -> name) between start and end inclusive: the country's plus custom dates."""
    out: dict[date, str] = {}
    if spec.holiday_country:
        years = tuple(range(start.year, end.year + 1))
        out.update(_country_holidays(spec.holiday_country.upper(), spec.holiday_subdiv, years))
    for d in spec.custom_holidays:
        out.setdefault(d, "custom holiday")
    return {d: n for d, n in out.items() if start <= d <= end}


def validate(spec: CalendarSpec) -> None:
    """Raise CalendarError if the zone, windows or holiday country are unusable."""
    zone(spec.tz)
    if not spec.windows:
        raise CalendarError("A calendar needs at least one window.")
    if spec.holiday_country:
        _country_holidays(spec.holiday_country.upper(), spec.holiday_subdiv, (2026,))


# ---------------------------------------------------------------- local wall time -> UTC


def _offset_at(tz: ZoneInfo, ts: float) -> float:
    off = datetime.fromtimestamp(ts, tz).utcoffset()
    return off.total_seconds() if off is not None else 0.0


def _naive_offsets(tz: ZoneInfo, naive: datetime) -> set[float]:
    return {o.total_seconds() for o in (naive.replace(tzinfo=tz, fold=f).utcoffset() for f in (0, 1)) if o is not None}


def _transition(tz: ZoneInfo, lo: float, hi: float) -> float:
    """The first instant in (lo, hi] whose offset differs from lo's (bisection to the second)."""
    before = _offset_at(tz, lo)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if _offset_at(tz, mid) == before:
            lo = mid
        else:
            hi = mid
    return hi


def local_range_to_utc(tz: ZoneInfo, day: date, start_min: int, end_min: int) -> list[tuple[float, float]]:
    """UTC [start, end) ranges of the instants whose local wall time on `day` lies in [start_min, end_min)."""
    a = datetime(day.year, day.month, day.day) + timedelta(minutes=start_min)  # noqa: DTZ001 - wall time
    b = datetime(day.year, day.month, day.day) + timedelta(minutes=end_min)  # noqa: DTZ001 - wall time
    wa, wb = (a - _EPOCH).total_seconds(), (b - _EPOCH).total_seconds()
    offsets = _naive_offsets(tz, a) | _naive_offsets(tz, b)
    if len(offsets) == 1:
        off = offsets.pop()
        return [(wa - off, wb - off)]
    # An offset change near this window: split at the transition instant (assumes one per window).
    lo, hi = wa - max(offsets) - 86_400, wb - min(offsets) + 86_400
    t = _transition(tz, lo, hi)
    pre, post = _offset_at(tz, t - 1), _offset_at(tz, t)
    out = []
    s, e = wa - pre, min(wb - pre, t)
    if e > s:
        out.append((s, e))
    s, e = max(wa - post, t), wb - post
    if e > s:
        out.append((s, e))
    return out


def build_intervals(spec: CalendarSpec, start: date, end: date) -> tuple[np.ndarray, np.ndarray]:
    """Sorted, merged open intervals (UTC epoch seconds) for local dates start..end inclusive."""
    tz = spec.zone
    hols = holiday_dates(spec, start, end)
    by_day: dict[int, list[tuple[int, int]]] = {d: [] for d in range(7)}
    for w in spec.windows:
        for wd, a, b in w.segments():
            by_day[wd].append((a, b))
    raw: list[tuple[float, float]] = []
    d = start
    one = timedelta(days=1)
    while d <= end:
        if d not in hols:
            for a, b in by_day[d.weekday()]:
                raw.extend(local_range_to_utc(tz, d, a, b))
        d += one
    return merge(raw)


def merge(raw: list[tuple[float, float]]) -> tuple[np.ndarray, np.ndarray]:
    """Sort intervals and merge overlapping or touching ones."""
    raw.sort()
    s: list[float] = []
    e: list[float] = []
    for a, b in raw:
        if s and a <= e[-1]:
            e[-1] = max(e[-1], b)
        else:
            s.append(a)
            e.append(b)
    return np.asarray(s, dtype=np.float64), np.asarray(e, dtype=np.float64)


def to_local(spec: CalendarSpec, ts: float) -> datetime:
    """An epoch instant as an aware datetime in the calendar's zone."""
    return datetime.fromtimestamp(ts, UTC).astimezone(spec.zone)
