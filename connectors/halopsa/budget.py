"""The request budget of one HaloPSA tenant: hosted Halo allows 300 requests per rolling 5 minutes, token
calls included (reference/psa-apis.md §4.8, gotcha 33), and answers 429 past it.

`RequestBudget` is a sliding-window log: a request goes at once while fewer than `limit` were sent in the
last `window` seconds, else it waits until the oldest of them leaves the window. Every request of the
tenant's connectors in this process (sync, outbox, webhooks' re-reads, token calls) takes its slot from the
same budget: the composition root hands every Halo connector one `RequestBudgets` registry, which keeps
one budget per tenant. With several processes, give each a share (`rate_limit_requests` setting).
Time is injected (clock and sleep), so a benchmark can run the budget on the fake's clock.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

DEFAULT_LIMIT = 300
DEFAULT_WINDOW = 300.0
WINDOW_MARGIN = 2.0  # seconds added to the window: our clock and Halo's are not the same clock

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[Any]]


class RequestBudget:
    """At most `limit` requests in any `window` seconds (waiting, never refusing)."""

    def __init__(self, limit: int = DEFAULT_LIMIT, window: float = DEFAULT_WINDOW, *, clock: Clock = time.monotonic,
                 sleep: Sleep = asyncio.sleep) -> None:
        if limit < 1 or window <= 0:
            raise ValueError("a request budget needs limit >= 1 and window > 0")
        self.limit, self.window = int(limit), float(window)
        self.clock, self.sleep = clock, sleep
        self.sent: deque[float] = deque()
        self.waited = 0.0  # seconds callers spent waiting (observability, benchmarks)
        self.requests = 0
        self._lock = asyncio.Lock()

    def _trim(self, now: float) -> None:
        while self.sent and now - self.sent[0] >= self.window:
            self.sent.popleft()

    def wait_time(self) -> float:
        """Seconds the next request would wait now."""
        now = self.clock()
        self._trim(now)
        return 0.0 if len(self.sent) < self.limit else max(0.0, self.sent[0] + self.window - now)

    async def acquire(self) -> None:
        """Take one request slot (waits while the window is full; callers are served in order)."""
        async with self._lock:
            while (wait := self.wait_time()) > 0:
                self.waited += wait
                await self.sleep(wait)
            self.sent.append(self.clock())
            self.requests += 1


class RequestBudgets:
    """One RequestBudget per tenant key, shared by every connector built with this registry."""

    def __init__(self, *, clock: Clock = time.monotonic, sleep: Sleep = asyncio.sleep) -> None:
        self.clock, self.sleep = clock, sleep
        self._budgets: dict[str, RequestBudget] = {}

    def get(self, key: str, limit: int = DEFAULT_LIMIT, window: float = DEFAULT_WINDOW) -> RequestBudget:
        """The tenant's budget (made on first use; a changed limit replaces it)."""
        budget = self._budgets.get(key)
        if budget is None or (budget.limit, budget.window) != (limit, window):
            budget = self._budgets[key] = RequestBudget(limit, window, clock=self.clock, sleep=self.sleep)
        return budget


def budget_settings(settings: Any) -> tuple[int, float]:
    """(limit, window) from connection settings `rate_limit_requests`, `rate_limit_window_seconds`."""
    limit = int(settings.get("rate_limit_requests") or DEFAULT_LIMIT)
    window = float(settings.get("rate_limit_window_seconds") or DEFAULT_WINDOW) + WINDOW_MARGIN
    if limit < 1:
        raise ValueError("rate_limit_requests must be at least 1")
    return limit, window
