"""Per-connection request budget: a token bucket (rate) and a concurrency gate (psa-apis.md §5).

Published limits: Autotask 10,000 requests/hour per database, shared with every integration, and 3
concurrent per endpoint; ConnectWise publishes no quota (keep 2-4 concurrent, honour 429 Retry-After);
HaloPSA about 1 request/second. The outbox takes only a share of the shared budgets, so sync and
people's own integrations keep theirs. Every number can be overridden in the connection's settings:
`rate_limit_per_hour` | `rate_limit_per_minute` | `rate_limit_per_second`, `rate_burst`, `max_concurrency`.

The burst is what people feel: technicians' clicks come in bursts (a shift start, a storm), and a
burst within the bucket goes out at once, limited only by the concurrency gate. ConnectWise has no
rate quota to protect, only concurrency (psa-apis.md §2.8), so its bucket holds 20: a burst of 20
writes leaves at once (at most 4 in flight), while sustained load stays at 5/s. The published
quotas (Autotask's per hour, Halo's rolling 5 minutes) keep small bursts. A 429 still pauses the
whole connection for its Retry-After whatever the bucket holds.

The budget is per worker process; with several worker processes, divide the rate between them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class RateLimits:
    per_second: float
    burst: float
    concurrency: int


# The outbox's default share of each PSA's published budget.
DEFAULT_LIMITS: dict[str, RateLimits] = {
    "autotask": RateLimits(per_second=5_000 / 3600, burst=2, concurrency=3),  # half of 10,000/h shared
    "connectwise": RateLimits(per_second=5.0, burst=20, concurrency=4),  # no published quota: burst freely
    "halopsa": RateLimits(per_second=0.8, burst=1, concurrency=2),  # 300 per rolling 5 min: no bursts
    "sandbox": RateLimits(per_second=200.0, burst=50, concurrency=8),
}
FALLBACK_LIMITS = RateLimits(per_second=2.0, burst=4, concurrency=2)


def limits_for(kind: str, settings: Mapping[str, Any]) -> RateLimits:
    """The budget for one connection: its settings override the defaults of its PSA kind."""
    base = DEFAULT_LIMITS.get(kind, FALLBACK_LIMITS)
    rate, burst = base.per_second, base.burst
    for key, per in (("rate_limit_per_second", 1.0), ("rate_limit_per_minute", 60.0), ("rate_limit_per_hour", 3600.0)):
        if settings.get(key) not in (None, ""):
            rate = float(settings[key]) / per
            burst = min(base.burst, max(1.0, rate))  # a lowered rate is not undone by the default burst
            break
    burst = float(settings.get("rate_burst") or burst)
    concurrency = int(settings.get("max_concurrency") or base.concurrency)
    if rate <= 0 or burst < 1 or concurrency < 1:
        raise ValueError("rate limits must be positive (rate > 0, burst >= 1, max_concurrency >= 1)")
    return RateLimits(per_second=rate, burst=burst, concurrency=concurrency)


class TokenBucket:
    """Pure token bucket with reservations: time is an argument. Tokens may go negative (queued callers)."""

    def __init__(self, rate: float, capacity: float, *, now: float = 0.0) -> None:
        if rate <= 0 or capacity < 1:
            raise ValueError("rate must be > 0 and capacity >= 1")
        self.rate = rate
        self.capacity = capacity
        self.tokens = capacity
        self.updated = now

    def _refill(self, now: float) -> None:
        if now > self.updated:
            self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
            self.updated = now

    def wait_time(self, now: float) -> float:
        """Seconds until one token would be available (without taking it)."""
        self._refill(now)
        return 0.0 if self.tokens >= 1 else (1 - self.tokens) / self.rate

    def reserve(self, now: float) -> float:
        """Take one token now or in the future; returns how long the caller must wait before using it."""
        self._refill(now)
        self.tokens -= 1
        return 0.0 if self.tokens >= 0 else -self.tokens / self.rate

    def give_back(self) -> None:
        """Return a reserved token that was not used."""
        self.tokens = min(self.capacity, self.tokens + 1)


class BudgetExhausted(Exception):
    """No request slot before the caller's deadline; `wait` says how long it would have taken."""

    def __init__(self, wait: float) -> None:
        super().__init__(f"no request budget for {wait:.1f}s")
        self.wait = wait


# The bucket runs this far under the configured rate: timer and scheduling jitter can make two requests
# arrive at the PSA closer together than they left, and the PSA's limiter must never see a burst.
SAFETY = 0.97


class ConnectionBudget:
    """The token bucket and concurrency gate of one connection in this process."""

    def __init__(self, limits: RateLimits, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep) -> None:
        self.limits = limits
        self._clock = clock
        self._sleep = sleep
        self.bucket = TokenBucket(limits.per_second * SAFETY, limits.burst, now=clock())
        self.gate = asyncio.Semaphore(limits.concurrency)
        self.paused_until = 0.0

    def pause(self, seconds: float) -> None:
        """Hold every call of this connection (e.g. the PSA sent 429 with Retry-After)."""
        self.paused_until = max(self.paused_until, self._clock() + seconds)

    def expected_wait(self) -> float:
        now = self._clock()
        return max(self.paused_until - now, self.bucket.wait_time(now))

    @asynccontextmanager
    async def request(self, deadline: float | None = None) -> AsyncIterator[float]:
        """Hold a concurrency slot and one token for one PSA request; BudgetExhausted past `deadline`.

        Yields the time (on this budget's clock) the bucket scheduled the request for: the bucket's promise,
        which a late wake-up can only delay."""
        async with self.gate:
            now = self._clock()
            wait = max(self.paused_until - now, 0.0)
            token_wait = self.bucket.reserve(now + wait)
            wait += token_wait
            if deadline is not None and now + wait > deadline:
                self.bucket.give_back()
                raise BudgetExhausted(wait)
            if wait > 0:
                await self._sleep(wait)
            yield now + wait
