"""An interval table covers its whole horizon in every zone: the horizon is cut at UTC midnights, but a local day
west of UTC runs past the next UTC midnight (Los Angeles' 7 December ends at 08:00 UTC on the 8th), so the
local days on both sides of the horizon must be in the table. Fixed instants only."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from core.sla.calendars import CalendarSpec, parse_windows
from core.sla.config import TableCache

NOW = datetime(2026, 12, 8, 12, 0, tzinfo=UTC)
H = 3600.0


@pytest.mark.parametrize("tz", ["America/Los_Angeles", "Pacific/Honolulu", "UTC", "Pacific/Auckland",
                                "Asia/Kolkata"])
def test_every_hour_of_the_horizon_is_business_time_on_a_24x7_calendar(tz: str):
    table = TableCache().get(CalendarSpec(tz=tz, windows=parse_windows("daily 00:00-24:00")), NOW)
    a, b = table.horizon_start, table.horizon_end
    assert table.elapsed(a, a + 8 * H) == pytest.approx(8 * H)  # was 1 h in Los Angeles (PDT, -7)
    assert table.elapsed(b - 8 * H, b) == pytest.approx(8 * H)
    assert table.elapsed(a, b) == pytest.approx(b - a)


def test_the_evening_before_the_horizon_counts_in_los_angeles():
    """Mon-Fri 08:00-17:00 in Los Angeles: the Monday before the horizon's first UTC day (the table's local
    days start on Tuesday) ends at 00:00 UTC in summer time; with 09:00-18:00 it runs an hour into the horizon."""
    table = TableCache(horizon_days=399).get(CalendarSpec(tz="America/Los_Angeles",
                                                          windows=parse_windows("mon-fri 09:00-18:00")), NOW)
    start = datetime.fromtimestamp(table.horizon_start, UTC)
    assert start == datetime(2025, 10, 28, tzinfo=UTC) and start.weekday() == 1  # Tuesday 00:00 UTC
    assert table.elapsed(table.horizon_start, table.horizon_start + 2 * H) == pytest.approx(1 * H)  # Mon 17-18 PDT
