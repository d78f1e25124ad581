"""Per-connection circuit breaker (pure: time is an argument), reliability-sla.md §2.6.

closed --(fail_max consecutive failures)--> open --(reset_timeout)--> half_open
half_open --(success_threshold successes)--> closed;  half_open --(any failure)--> open

While open, the worker does not claim the connection's ops (they wait without spending attempts).
Only retryable failures count (5xx, timeouts, connect errors); 4xx business errors do not.
`trip` forces it open for a given time (a long Retry-After, revoked credentials).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(slots=True)
class CircuitBreaker:
    fail_max: int = 5
    reset_timeout: float = 30.0
    success_threshold: int = 1
    half_open_probes: int = 1  # calls allowed at once while half-open
    state: BreakerState = BreakerState.CLOSED
    failures: int = 0
    successes: int = 0
    open_until: float = 0.0
    reason: str | None = None
    probes_in_flight: int = 0
    transitions: list[tuple[float, BreakerState]] = field(default_factory=list)

    def _to(self, state: BreakerState, now: float) -> None:
        if state != self.state:
            self.state = state
            self.transitions.append((now, state))

    def is_open(self, now: float) -> bool:
        """True while calls must not be made (open and not yet due for a probe)."""
        if self.state == BreakerState.OPEN and now >= self.open_until:
            self._to(BreakerState.HALF_OPEN, now)
            self.successes = 0
            self.probes_in_flight = 0
        if self.state == BreakerState.HALF_OPEN:
            return self.probes_in_flight >= self.half_open_probes
        return self.state == BreakerState.OPEN

    def allow(self, now: float) -> bool:
        """Take permission for one call (counts a half-open probe); pair it with a record_* call."""
        if self.is_open(now):
            return False
        if self.state == BreakerState.HALF_OPEN:
            self.probes_in_flight += 1
        return True

    def release(self) -> None:
        """Give back a permission that was not used for a call."""
        if self.state == BreakerState.HALF_OPEN and self.probes_in_flight > 0:
            self.probes_in_flight -= 1

    def record_success(self, now: float) -> None:
        self.failures = 0
        if self.state == BreakerState.HALF_OPEN:
            self.release()
            self.successes += 1
            if self.successes >= self.success_threshold:
                self.reason = None
                self._to(BreakerState.CLOSED, now)
        elif self.state == BreakerState.OPEN:
            pass  # a call that started before the breaker opened; the open period stands

    def record_failure(self, now: float, reason: str | None = None) -> bool:
        """Count a retryable failure; True when this failure opened the breaker."""
        if self.state == BreakerState.HALF_OPEN:
            self.release()
            self.trip(now, self.reset_timeout, reason)
            return True
        if self.state == BreakerState.OPEN:
            return False
        self.failures += 1
        if self.failures >= self.fail_max:
            self.trip(now, self.reset_timeout, reason)
            return True
        return False

    def trip(self, now: float, seconds: float, reason: str | None = None) -> None:
        """Open now for `seconds` (extends, never shortens, an open period)."""
        self.open_until = max(self.open_until if self.state == BreakerState.OPEN else 0.0, now + seconds)
        self.reason = reason
        self.failures = 0
        self.probes_in_flight = 0
        self._to(BreakerState.OPEN, now)

    def reset(self, now: float) -> None:
        """Close (e.g. after the connection's credentials were replaced)."""
        self.failures = 0
        self.successes = 0
        self.probes_in_flight = 0
        self.reason = None
        self._to(BreakerState.CLOSED, now)
