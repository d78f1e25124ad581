"""Retry delays (pure): capped exponential backoff with full jitter, Retry-After as a floor.

Full jitter (Brooker, AWS Architecture Blog 2015): `delay = random(0, min(cap, base * 2**(n-1)))` for the
n-th failed attempt. A Retry-After from the PSA is a floor under that delay; a write whose outcome is
unknown waits at least the settle delay before its reconciliation read (reliability-sla.md §2.3, §2.5).
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class BackoffPolicy:
    base: float = 2.0  # seconds: the ceiling of the first retry's jitter window
    cap: float = 600.0  # seconds: the largest jitter window
    max_retry_after: float = 900.0  # a longer Retry-After parks the connection (breaker) instead

    def window(self, attempt: int) -> float:
        """The jitter ceiling after `attempt` failed attempts (1-based), capped."""
        n = max(1, attempt)
        # 2**n overflows floats past ~1000; the cap is reached long before.
        return min(self.cap, self.base * (2 ** min(n - 1, 60)))

    def delay(self, attempt: int, rng: random.Random, *, retry_after: float | None = None,
              settle: float | None = None) -> float:
        """Seconds to wait before the next attempt: full jitter, floored by Retry-After and the settle delay."""
        d = rng.uniform(0.0, self.window(attempt))
        if retry_after is not None:
            d = max(d, min(retry_after, self.max_retry_after))
        if settle is not None:
            d = max(d, settle)
        return d
