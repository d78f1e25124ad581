"""The slow reference: walks time minute by minute in the calendar's local wall clock.

Deliberately independent of core/sla/calendars.py's interval building: it asks, for every UTC minute,
"is the local wall-clock date a holiday, and does the local time fall in a window?" (an overnight
window's after-midnight half belongs to the next date).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import holidays
import numpy as np


class MinuteOracle:
    """Open/closed for each UTC minute of [start, end); windows as (days, start_min, end_min)."""

    def __init__(self, tz: str, windows: list[tuple[tuple[int, ...], int, int]], start: datetime, end: datetime,
                 *, country: str | None = None, subdiv: str | None = None, custom: tuple[date, ...] = ()):
        self.tz = ZoneInfo(tz)
        self.windows = windows
        self.t0 = int(start.timestamp()) // 60 * 60
        n = (int(end.timestamp()) - self.t0) // 60
        hol: set[date] = set(custom)
        if country:
            hol |= set(holidays.country_holidays(country, subdiv=subdiv,
                                                 years=range(start.year - 1, end.year + 2)).keys())
        self.holidays = hol
        self.open = np.array([self.is_open(self.t0 + 60 * i) for i in range(n)], dtype=bool)
        self.cum = np.concatenate(([0], np.cumsum(self.open)))  # cum[i] = open minutes before minute i

    def is_open(self, ts: int) -> bool:
        local = datetime.fromtimestamp(ts, UTC).astimezone(self.tz)
        if local.date() in self.holidays:
            return False
        wd, m = local.weekday(), local.hour * 60 + local.minute
        for days, a, b in self.windows:
            if b > a:
                if wd in days and a <= m < b:
                    return True
            else:  # overnight: the evening half today, the morning half belongs to the next day
                if wd in days and m >= a:
                    return True
                if (wd - 1) % 7 in days and m < b:
                    return True
        return False

    @property
    def minutes(self) -> int:
        return len(self.open)

    def ts(self, minute: int) -> int:
        return self.t0 + 60 * minute

    def seconds_between(self, a: int, b: int) -> int:
        """Business seconds between minute indexes a <= b."""
        return 60 * int(self.cum[b] - self.cum[a])

    def due(self, a: int, business_minutes: int) -> int | None:
        """The instant (epoch s) at which `business_minutes` open minutes have passed after minute a."""
        need = self.cum[a] + business_minutes
        idx = int(np.searchsorted(self.cum, need, side="left"))  # first i with cum[i] >= need
        if idx >= len(self.cum):
            return None
        return self.ts(idx)  # the end of the minute that completed the budget
