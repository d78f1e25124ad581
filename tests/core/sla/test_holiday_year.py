""""This year's holidays" is the year it is in the calendar's zone: at 18:00 on 31 December in Los Angeles UTC
is already in January, and an admin there must still see 2026's list (Christmas included), not 2027's."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from tests.core.sla.conftest import Sla

LA = ZoneInfo("America/Los_Angeles")


async def test_the_default_year_is_the_calendars_own(sla: Sla):
    await sla.config.set_calendar(sla.ws, "west", timezone="America/Los_Angeles", country="US")
    await sla.config.set_calendar(sla.ws, "utc", timezone="UTC", country="US")
    sla.clock.set(datetime(2026, 12, 31, 18, 0, tzinfo=LA))
    assert sla.clock.now == datetime(2027, 1, 1, 2, 0, tzinfo=UTC)
    year, days = await sla.config.holidays(sla.ws, "west")
    assert year == 2026 and date(2026, 12, 25) in dict(days)
    assert (await sla.config.holidays(sla.ws, "utc"))[0] == 2027  # UTC's own calendar: its own new year
    assert (await sla.config.holidays(sla.ws, "west", 2028))[0] == 2028  # a year asked for is kept
