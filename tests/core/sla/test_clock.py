"""The business-time engine against a minute-by-minute oracle, plus the named cases of
reliability-sla.md §5.3/§5.5 (Hypothesis example counts are kept small so the suite stays fast)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from functools import cache
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.sla.calendars import CalendarSpec, Window, build_intervals, parse_windows
from core.sla.clock import IntervalTable, evaluate, evaluate_one, remaining_one
from tests.core.sla.oracle import MinuteOracle

NY = ZoneInfo("America/New_York")
HOUR = 3600.0

# (name, tz, windows text, country, subdiv, custom holidays)
CALENDARS = [
    ("ny-office", "America/New_York", "mon-fri 08:00-17:00", "US", None, ()),
    ("london", "Europe/London", "mon-fri 09:00-17:30; sat 10:00-14:00", "GB", "SCT", ()),
    ("sydney-night", "Australia/Sydney", "daily 22:00-06:00", "AU", "NSW", ()),
    ("kolkata", "Asia/Kolkata", "mon-sat 09:30-18:30", "IN", None, ()),
    # Windows that straddle the spring-forward gap and the fall-back repeat.
    ("ny-dst-edges", "America/New_York", "daily 00:30-03:30; fri 20:00-02:15", None, None,
     (date(2026, 3, 20), date(2026, 10, 30))),
    ("chatham", "Pacific/Chatham", "mon-fri 07:00-19:00", None, None, (date(2026, 4, 7),)),
    ("berlin-24x7", "Europe/Berlin", "24x7", "DE", "BY", ()),
    ("st-johns", "America/St_Johns", "sun-thu 23:00-07:30", "CA", "NL", ()),
]
# Periods that contain the 2026 DST changes of both hemispheres (US Mar 8/Nov 1, EU Mar 29/Oct 25,
# AU/NZ Apr 5 and Sep 27/Oct 4).
PERIODS = [(datetime(2026, 3, 4, tzinfo=NY), datetime(2026, 4, 9, tzinfo=NY)),
           (datetime(2026, 9, 24, tzinfo=NY), datetime(2026, 11, 5, tzinfo=NY))]


def spec_for(i: int) -> CalendarSpec:
    name, tz, text, country, subdiv, custom = CALENDARS[i]
    return CalendarSpec(tz=tz, windows=parse_windows(text), holiday_country=country, holiday_subdiv=subdiv,
                        custom_holidays=frozenset(custom), name=name)


@cache
def table_for(i: int) -> IntervalTable:
    spec = spec_for(i)
    s, e = build_intervals(spec, date(2025, 12, 1), date(2027, 1, 31))
    return IntervalTable(s, e, horizon_start=float(s[0]), horizon_end=float(e[-1]))


@cache
def oracle_for(i: int, p: int) -> MinuteOracle:
    spec = spec_for(i)
    windows = [(w.days, w.start_min, w.end_min) for w in spec.windows]
    start, end = PERIODS[p]
    return MinuteOracle(spec.tz, windows, start, end, country=spec.holiday_country, subdiv=spec.holiday_subdiv,
                        custom=tuple(spec.custom_holidays))


def ny_table() -> IntervalTable:
    return table_for(0)


def due(table: IntervalTable, start: datetime, hours: float, tz: ZoneInfo = NY) -> datetime:
    return datetime.fromtimestamp(float(table.add(start.timestamp(), hours * HOUR)), tz)


# ---------------------------------------------------------------- named cases


@pytest.mark.parametrize("created, hours, expected", [
    # Friday 16:00 + 4 h on Mon-Fri 08-17 is due Monday 11:00, before the March and the November change.
    (datetime(2026, 3, 6, 16, 0, tzinfo=NY), 4, datetime(2026, 3, 9, 11, 0, tzinfo=NY)),
    (datetime(2026, 10, 30, 16, 0, tzinfo=NY), 4, datetime(2026, 11, 2, 11, 0, tzinfo=NY)),
    # Across Thanksgiving (US): Wednesday 15:00 + 4 h -> Friday 10:00.
    (datetime(2026, 11, 25, 15, 0, tzinfo=NY), 4, datetime(2026, 11, 27, 10, 0, tzinfo=NY)),
    # Created on a Saturday: the clock starts Monday 08:00.
    (datetime(2026, 11, 28, 10, 0, tzinfo=NY), 2, datetime(2026, 11, 30, 10, 0, tzinfo=NY)),
    # A budget ending exactly at a window end is due at 17:00, not at the next morning's 08:00.
    (datetime(2026, 11, 30, 8, 0, tzinfo=NY), 9, datetime(2026, 11, 30, 17, 0, tzinfo=NY)),
    (datetime(2026, 12, 1, 13, 0, tzinfo=NY), 4, datetime(2026, 12, 1, 17, 0, tzinfo=NY)),
])
def test_named_cases(created, hours, expected):
    got = due(ny_table(), created, hours)
    assert got == expected, f"{created:%a %d %b %H:%M} + {hours} h -> {got:%a %d %b %H:%M}"


def test_named_cases_agree_with_the_oracle():
    start = datetime(2026, 11, 20, tzinfo=NY)
    oracle = MinuteOracle("America/New_York", [(tuple(range(5)), 480, 1020)], start, start + timedelta(days=14),
                          country="US")
    created = datetime(2026, 11, 25, 15, 0, tzinfo=NY)
    a = (int(created.timestamp()) - oracle.t0) // 60
    assert datetime.fromtimestamp(oracle.due(a, 240), NY) == datetime(2026, 11, 27, 10, 0, tzinfo=NY)


def test_subdivision_holidays_close_the_day():
    ca = CalendarSpec(tz="America/Los_Angeles", windows=parse_windows("mon-fri 08:00-17:00"),
                      holiday_country="US", holiday_subdiv="CA")
    s, e = build_intervals(ca, date(2026, 3, 30), date(2026, 4, 1))
    la = ZoneInfo("America/Los_Angeles")
    opened = {datetime.fromtimestamp(float(x), la).date() for x in s}
    assert date(2026, 3, 31) not in opened  # Cesar Chavez Day (US-CA only)
    assert {date(2026, 3, 30), date(2026, 4, 1)} <= opened
    qc = CalendarSpec(tz="America/Toronto", windows=parse_windows("mon-fri 09:00-17:00"),
                      holiday_country="CA", holiday_subdiv="QC")
    s, _ = build_intervals(qc, date(2026, 6, 23), date(2026, 6, 25))
    assert date(2026, 6, 24) not in {datetime.fromtimestamp(float(x), ZoneInfo("America/Toronto")).date() for x in s}


def test_overnight_window_is_split_at_midnight_for_holidays():
    # Tuesday 2026-12-01 is a custom holiday: Monday 22:00-24:00 counts, Tuesday 00:00-06:00 does not.
    spec = CalendarSpec(tz="Europe/Paris", windows=parse_windows("mon 22:00-06:00"),
                        custom_holidays=frozenset({date(2026, 12, 1)}))
    s, e = build_intervals(spec, date(2026, 11, 30), date(2026, 12, 1))
    assert float((e - s).sum()) == 2 * HOUR


def test_dst_days_have_their_scheduled_hours():
    # A window clear of the 01:00-03:00 change keeps its wall-clock length on both change days.
    spec = CalendarSpec(tz="America/New_York", windows=parse_windows("daily 08:00-17:00"))
    for d in (date(2026, 3, 8), date(2026, 11, 1)):
        s, e = build_intervals(spec, d, d)
        assert float((e - s).sum()) == 9 * HOUR
    # A 24-hour day is 23 real hours in spring and 25 in autumn.
    day = CalendarSpec(tz="America/New_York", windows=parse_windows("24x7"))
    for d, hours in ((date(2026, 3, 8), 23), (date(2026, 11, 1), 25)):
        s, e = build_intervals(day, d, d)
        assert float((e - s).sum()) == hours * HOUR


def test_windows_parse_and_reject():
    w = parse_windows("mon-fri 08:00-17:00; sat 09:00-12:30; sun 22:00-06:00")
    assert w[0] == Window(days=(0, 1, 2, 3, 4), start_min=480, end_min=1020)
    assert w[2].overnight and w[2].segments() == [(6, 1320, 1440), (0, 0, 360)]
    assert parse_windows("fri-mon 10:00-11:00")[0].days == (0, 4, 5, 6)
    from core.sla.calendars import CalendarError, format_windows
    assert parse_windows(format_windows(w)) == w
    for bad in ("", "mon 08:00", "funday 08:00-09:00", "mon 08:00-08:00", "mon 25:00-26:00"):
        with pytest.raises(CalendarError):
            parse_windows(bad)


def test_calendar_time_is_identity_and_empty_calendar_never_opens():
    cont = IntervalTable.continuous()
    assert float(cont.add(1_800_000_000.0, 3600.0)) == 1_800_003_600.0
    empty = IntervalTable(np.array([]), np.array([]), horizon_start=0, horizon_end=1)
    assert float(empty.B(5.0)) == 0.0 and np.isnan(empty.B_inv(1.0))


def test_past_the_horizon_due_is_unknown():
    t = ny_table()
    assert np.isnan(t.B_inv(t.total + 1.0))


def test_pause_spanning_a_weekend_costs_nothing_extra():
    t = ny_table()
    start = datetime(2026, 12, 4, 15, 0, tzinfo=NY).timestamp()  # Friday 15:00
    pause_from = datetime(2026, 12, 4, 16, 0, tzinfo=NY).timestamp()
    resume_at = datetime(2026, 12, 7, 9, 0, tzinfo=NY).timestamp()  # Monday 09:00
    paused_acc = float(t.elapsed(pause_from, resume_at))
    assert paused_acc == 2 * HOUR  # Fri 16-17 + Mon 08-09
    now = datetime(2026, 12, 7, 10, 0, tzinfo=NY).timestamp()
    used, remaining, due_ts = evaluate_one(t, start=start, target=4 * HOUR, paused_acc=paused_acc,
                                           paused_since=None, stopped_at=None, now=now)
    assert used == 2 * HOUR and remaining == 2 * HOUR
    assert datetime.fromtimestamp(due_ts, NY) == datetime(2026, 12, 7, 12, 0, tzinfo=NY)
    # Paused now: used is frozen, due moves with the pause; once breached, due is the breach instant.
    used2, _, due2 = evaluate_one(t, start=start, target=4 * HOUR, paused_acc=0.0, paused_since=pause_from,
                                  stopped_at=None, now=now)
    assert used2 == HOUR and datetime.fromtimestamp(due2, NY) == datetime(2026, 12, 7, 13, 0, tzinfo=NY)
    ev = evaluate(t, start=np.array([start]), target=np.array([HOUR / 2]), paused_acc=np.array([0.0]),
                  paused_since=np.array([pause_from]), stopped_at=np.array([np.nan]), now=now)
    assert datetime.fromtimestamp(float(ev.breached_at[0]), NY) == datetime(2026, 12, 4, 15, 30, tzinfo=NY)


# ---------------------------------------------------------------- properties against the oracle

CAL = st.integers(0, len(CALENDARS) - 1)
PER = st.integers(0, len(PERIODS) - 1)
FRAC = st.floats(0, 1)
SETTINGS = settings(max_examples=int(__import__("os").environ.get("SLA_EXAMPLES", "60")), deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _minute(oracle: MinuteOracle, f: float) -> int:
    return int(f * oracle.minutes)


@SETTINGS
@given(CAL, PER, FRAC, FRAC)
def test_elapsed_matches_the_oracle(i, p, fa, fb):
    oracle, table = oracle_for(i, p), table_for(i)
    a, b = sorted((_minute(oracle, fa), _minute(oracle, fb)))
    assert float(table.elapsed(oracle.ts(a), oracle.ts(b))) == oracle.seconds_between(a, b)


@SETTINGS
@given(CAL, PER, FRAC, st.integers(1, 60 * 24 * 6))
def test_due_matches_the_oracle(i, p, fa, budget_min):
    oracle, table = oracle_for(i, p), table_for(i)
    a = _minute(oracle, fa)
    expected = oracle.due(a, budget_min)
    if expected is None:  # the oracle's period ends first
        return
    assert float(table.add(oracle.ts(a), budget_min * 60.0)) == expected


TS = st.floats(datetime(2026, 1, 1).timestamp(), datetime(2026, 12, 31).timestamp())


@SETTINGS
@given(CAL, TS, TS, TS)
def test_monotone_and_additive(i, t0, t1, t2):
    table = table_for(i)
    t0, t1, t2 = sorted((t0, t1, t2))
    b0, b1, b2 = (float(table.B(t)) for t in (t0, t1, t2))
    assert b0 <= b1 <= b2
    assert float(table.elapsed(t0, t2)) == pytest.approx(float(table.elapsed(t0, t1) + table.elapsed(t1, t2)),
                                                         abs=1e-6)


@SETTINGS
@given(CAL, TS, st.floats(0, 1))
def test_inverse_within_the_horizon(i, t, f):
    table = table_for(i)
    x = f * table.total
    assert float(table.B(table.B_inv(x))) == pytest.approx(x, abs=1e-6)
    back = float(table.B_inv(table.B(t)))
    assert back <= t + 1e-6  # the first instant with as much business time as t ...
    assert float(table.B(back)) == pytest.approx(float(table.B(t)), abs=1e-6)  # ... nothing open between
    nxt = table.next_open(t)
    assert nxt >= t and float(table.B(nxt)) == pytest.approx(float(table.B(t)), abs=1e-6)
    assert float(table.elapsed(nxt, nxt + 1)) == pytest.approx(min(1.0, float(table.e[table.e > nxt][0] - nxt)))


@settings(max_examples=25, deadline=None)
@given(CAL, st.lists(st.tuples(TS, st.floats(0, 3 * 86_400), st.floats(0, 1)), min_size=1, max_size=40), TS)
def test_vectorised_pass_equals_scalar_reasoning(i, rows, now):
    table = table_for(i)
    start = np.array([r[0] for r in rows])
    target = np.array([r[1] for r in rows])
    paused_since = np.array([r[0] + r[2] * 86_400 if r[2] > 0.5 else np.nan for r in rows])
    ev = evaluate(table, start=start, target=target, paused_acc=np.zeros(len(rows)), paused_since=paused_since,
                  stopped_at=np.full(len(rows), np.nan), now=now)
    for k, (s0, tgt, _) in enumerate(rows):
        end = now if np.isnan(paused_since[k]) else min(now, paused_since[k])
        used = max(float(table.elapsed(s0, max(end, s0))), 0.0)
        assert float(ev.used[k]) == pytest.approx(used, abs=1e-6)
        assert float(ev.remaining[k]) == pytest.approx(tgt - used, abs=1e-6)


@pytest.mark.parametrize("i", range(len(CALENDARS)), ids=[c[0] for c in CALENDARS])
@pytest.mark.parametrize("p", range(len(PERIODS)))
def test_every_minute_of_the_dst_periods_matches_the_oracle(i, p):
    """Exhaustive: B at every minute of both DST periods equals the oracle's running count."""
    oracle, table = oracle_for(i, p), table_for(i)
    ts = oracle.t0 + 60.0 * np.arange(oracle.minutes + 1)
    got = table.B(ts) - table.B(ts[0])
    mismatch = np.nonzero(got != 60.0 * oracle.cum)[0]
    assert mismatch.size == 0, f"first mismatch at {datetime.fromtimestamp(ts[mismatch[0]], NY)}"


def _same_float(a: float, b: float) -> bool:
    """Equal bit for bit: the same value and the same sign of zero (NaN equal to NaN)."""
    return np.float64(a).tobytes() == np.float64(b).tobytes()


# instants around the tables (before, inside, after the horizon, on interval edges) and whole-minute ones
INSTANT = st.one_of(TS, st.integers(1_700_000_000 // 60, 1_830_000_000 // 60).map(lambda m: m * 60.0),
                    st.sampled_from([0.0, 1e10, -1e9]))


@settings(max_examples=120, deadline=None)
@given(st.integers(0, len(CALENDARS)), st.lists(st.tuples(INSTANT, st.sampled_from([0.0, 60.0, 4 * HOUR]) | st.floats(0, 9e5),
                                                           st.sampled_from([0.0, HOUR]) | st.floats(0, 1e5),
                                                           st.none() | INSTANT), min_size=1, max_size=30), INSTANT)
def test_scalar_remaining_is_the_vectorised_one_bit_for_bit(i, clocks, now):
    """`remaining_one` (the queue page's SLA figures, without numpy) gives exactly what `evaluate` gives: the page
    a technician sees does not change with the path (the 24x7 table is index len(CALENDARS))."""
    table = table_for(i) if i < len(CALENDARS) else IntervalTable.continuous()
    ev = evaluate(table, start=np.array([c[0] for c in clocks]), target=np.array([c[1] for c in clocks]),
                  paused_acc=np.array([c[2] for c in clocks]),
                  paused_since=np.array([np.nan if c[3] is None else c[3] for c in clocks]),
                  stopped_at=np.full(len(clocks), np.nan), now=now)
    b_now = table.B_one(now)
    assert _same_float(b_now, float(table.B(now)))
    for k, (start, target, acc, paused_since) in enumerate(clocks):
        assert _same_float(table.B_one(start), float(table.B(start)))
        got = remaining_one(table, b_now, start=start, target=target, paused_acc=acc, paused_since=paused_since)
        assert _same_float(got, float(ev.remaining[k])), (k, got, float(ev.remaining[k]))
