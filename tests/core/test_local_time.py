"""core/local_time.py: a local day's bounds on the days a zone changes its clocks."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from core.audit_search import parse_when
from core.local_time import day_bounds

SANTIAGO = ZoneInfo("America/Santiago")  # changes its clocks at local midnight
NEW_YORK = ZoneInfo("America/New_York")  # at 02:00


def _utc_span(day: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    first, last = day_bounds(day, zone)
    return first.astimezone(UTC), last.astimezone(UTC)


def test_a_day_whose_last_hour_repeats_at_midnight_keeps_that_hour() -> None:
    # 2026-04-05 00:00 -03 in Santiago goes back to 2026-04-04 23:00 -04: April 4 has 25 hours, the second
    # 23:00-23:59 (-04) ends at 2026-04-05 04:00 UTC
    first, last = _utc_span(date(2026, 4, 4), SANTIAGO)
    assert first == datetime(2026, 4, 4, 3, 0, tzinfo=UTC)
    assert last == datetime(2026, 4, 5, 4, 0, tzinfo=UTC) - timedelta(microseconds=1)
    assert parse_when("2026-04-04", end=True, zone=SANTIAGO) == last
    # the next day starts right after it: no instant belongs to neither day
    assert _utc_span(date(2026, 4, 5), SANTIAGO)[0] == datetime(2026, 4, 5, 4, 0, tzinfo=UTC)


def test_a_day_that_starts_in_a_gap_starts_at_the_change() -> None:
    # 2026-09-06 00:00 -04 in Santiago jumps to 01:00 -03: that day starts at 04:00 UTC and has 23 hours
    first, last = _utc_span(date(2026, 9, 6), SANTIAGO)
    assert first == datetime(2026, 9, 6, 4, 0, tzinfo=UTC)
    assert last == datetime(2026, 9, 7, 3, 0, tzinfo=UTC) - timedelta(microseconds=1)
    assert _utc_span(date(2026, 9, 5), SANTIAGO)[1] == first - timedelta(microseconds=1)


def test_days_changing_clocks_at_2am_are_23_and_25_hours() -> None:
    spring, fall = _utc_span(date(2026, 3, 8), NEW_YORK), _utc_span(date(2026, 11, 1), NEW_YORK)
    assert spring[1] - spring[0] == timedelta(hours=23) - timedelta(microseconds=1)
    assert fall[1] - fall[0] == timedelta(hours=25) - timedelta(microseconds=1)
