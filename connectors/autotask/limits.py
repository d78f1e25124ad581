"""The request budget of one Autotask database (reference/psa-apis.md §3.8, gotchas 24-26).

Autotask allows 10,000 requests per rolling hour per *database*, shared with every other integration of the
tenant; past it, every integration fails until usage drops, and from 50% each call is slowed by Autotask
itself. So Deskbridge spends from two limits at once:

- its own allowance (`hourly_request_budget`, 3,000 by default): a sliding-window log of our requests. The
  sync and the outbox of a connection draw on the same `Throttle`: one per database in a process, kept by
  the `Throttles` registry handed to the connector, else by `process_throttles()`.
- the tenant's usage, read from `ThresholdInformation` every `check_every` requests or `check_seconds`
  (whichever first; the call counts against the budget too) and estimated in between as the last reading
  plus what we sent since. Reads stop at `read_stop_share` (80%) and writes at `write_stop_share` (95%):
  a technician's reply still goes out while a sync waits. Between 50% and the stop, calls are paced
  (`pace_seconds`), as Autotask's own added latency would anyway.

A request that cannot go now raises PsaRateLimited(retry_after) at once, never sleeping long inside a
connector: the outbox reschedules the write and the sync keeps its cursor for the next run. A 429 or a
thread-threshold error from Autotask starts a cool-down for its Retry-After (60 s when it said nothing),
during which calls fail locally instead of hammering the tenant. Time is injected (clock and sleep).
"""

from __future__ import annotations

import asyncio
import functools
import time
import weakref
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, TypeVar

from connectors.errors import PsaRateLimited, PsaValidationError

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[Any]]

F = TypeVar("F", bound=Callable[..., Awaitable[Any]])
WINDOW = 3600.0
# The reads a write needs on the way (picklists, the API resource, a lost write's lookup) go with the write's
# priority: a technician's reply is not held because the sync must wait.
WRITE_PRIORITY: ContextVar[bool] = ContextVar("autotask_write_priority", default=False)


def write_priority(fn: F) -> F:
    """Run a connector method's requests with a write's priority."""
    @functools.wraps(fn)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        token = WRITE_PRIORITY.set(True)
        try:
            return await fn(*args, **kwargs)
        finally:
            WRITE_PRIORITY.reset(token)

    return wrapper  # type: ignore[return-value]
DEFAULT_BUDGET = 3_000
DEFAULT_COOLDOWN = 60.0


@dataclass(frozen=True, slots=True)
class ThrottlePolicy:
    hourly_budget: int = DEFAULT_BUDGET
    read_stop_share: float = 0.80
    write_stop_share: float = 0.95
    pace_from_share: float = 0.50
    pace_seconds: float = 0.25
    check_every: int = 200
    check_seconds: float = 300.0


def policy_from(settings: Mapping[str, Any]) -> ThrottlePolicy:
    """The policy from connection settings (PsaValidationError naming the setting when a value is out of range)."""
    def number(name: str, default: float, low: float, high: float) -> float:
        raw = settings.get(name)
        if raw in (None, ""):
            return default
        try:
            value = float(raw)
        except (TypeError, ValueError):
            value = float("nan")
        if not low <= value <= high:
            raise PsaValidationError(f"{name} must be a number from {low:g} to {high:g}.", fields={name: "invalid"})
        return value

    budget = int(number("hourly_request_budget", DEFAULT_BUDGET, 1, 10_000))
    read_stop = number("read_stop_share", 0.80, 0.1, 1.0)
    write_stop = number("write_stop_share", max(0.95, read_stop), read_stop, 1.0)
    return ThrottlePolicy(hourly_budget=budget, read_stop_share=read_stop, write_stop_share=write_stop)


@dataclass(slots=True)
class Reading:
    limit: int
    used: int
    at: float
    sent_since: int = 0

    @property
    def share(self) -> float:
        return (self.used + self.sent_since) / self.limit if self.limit else 0.0


class Throttle:
    """One database's spending: our sliding-window log, the tenant's last reading, a cool-down after a 429."""

    def __init__(self, policy: ThrottlePolicy | None = None, *, clock: Clock = time.monotonic,
                 sleep: Sleep = asyncio.sleep) -> None:
        self.policy = policy or ThrottlePolicy()
        self.clock, self.sleep = clock, sleep
        self.sent: deque[float] = deque()
        self.reading: Reading | None = None
        self.cool_until = 0.0
        self.requests = self.refused = self.readings = 0
        self.paced = 0.0
        # 3 concurrent per endpoint, shared by sync and outbox; asyncio primitives per event loop (a process-wide
        # throttle may outlive a loop: CLI commands, tests)
        self._per_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, tuple[dict[str, asyncio.Semaphore],
                                                                                     asyncio.Lock]] = \
            weakref.WeakKeyDictionary()

    def _trim(self, now: float) -> None:
        while self.sent and now - self.sent[0] >= WINDOW:
            self.sent.popleft()

    def needs_reading(self) -> bool:
        r = self.reading
        return r is None or r.sent_since >= self.policy.check_every or \
            self.clock() - r.at >= self.policy.check_seconds

    def record_reading(self, limit: int, used: int) -> None:
        self.reading = Reading(limit=limit, used=used, at=self.clock())
        self.readings += 1

    def cool_down(self, seconds: float | None) -> None:
        """Autotask throttled us: nothing goes for `seconds` (60 when it did not say)."""
        self.cool_until = max(self.cool_until, self.clock() + (seconds or DEFAULT_COOLDOWN))

    def share(self) -> float | None:
        """The tenant's estimated share of its hourly threshold used (None before the first reading)."""
        return self.reading.share if self.reading else None

    def refusal(self, *, write: bool) -> PsaRateLimited | None:
        """Why a request may not go now (None when it may)."""
        now = self.clock()
        self._trim(now)
        if now < self.cool_until:
            return PsaRateLimited("Autotask is throttling this database; waiting before the next request.",
                                  retry_after=self.cool_until - now, code="CoolDown")
        if len(self.sent) >= self.policy.hourly_budget:
            wait = self.sent[0] + WINDOW - now
            return PsaRateLimited(f"Deskbridge has used its {self.policy.hourly_budget:,} Autotask requests for this "
                                  "hour (hourly_request_budget).", retry_after=max(1.0, wait), code="OwnBudget")
        share = self.share()
        stop = self.policy.write_stop_share if write else self.policy.read_stop_share
        if share is not None and share >= stop:
            return PsaRateLimited(f"The Autotask database has used {share:.0%} of its hourly request threshold; "
                                  f"Deskbridge holds its {'writes' if write else 'reads'} until usage drops.",
                                  retry_after=max(60.0, self.policy.check_seconds / 2), code="TenantThreshold")
        return None

    async def spend(self, *, write: bool) -> None:
        """Take one request (PsaRateLimited when it may not go now; paced when the tenant is busy)."""
        write = write or WRITE_PRIORITY.get()
        refused = self.refusal(write=write)
        if refused is not None:
            self.refused += 1
            raise refused
        share = self.share()
        if share is not None and share >= self.policy.pace_from_share and self.policy.pace_seconds > 0:
            self.paced += self.policy.pace_seconds
            await self.sleep(self.policy.pace_seconds)
        self.sent.append(self.clock())
        self.requests += 1
        if self.reading is not None:
            self.reading.sent_since += 1

    def _loop_state(self) -> tuple[dict[str, asyncio.Semaphore], asyncio.Lock]:
        loop = asyncio.get_running_loop()
        state = self._per_loop.get(loop)
        if state is None:
            state = self._per_loop[loop] = ({}, asyncio.Lock())
        return state

    def gate(self, entity: str, per_endpoint: int) -> asyncio.Semaphore:
        gates = self._loop_state()[0]
        gate = gates.get(entity)
        if gate is None:
            gate = gates[entity] = asyncio.Semaphore(per_endpoint)
        return gate

    @property
    def reading_lock(self) -> asyncio.Lock:
        return self._loop_state()[1]


class Throttles:
    """One Throttle per database key, shared by every Autotask connector built with this registry."""

    def __init__(self, *, clock: Clock = time.monotonic, sleep: Sleep = asyncio.sleep) -> None:
        self.clock, self.sleep = clock, sleep
        self._throttles: dict[str, Throttle] = {}

    def get(self, key: str, policy: ThrottlePolicy) -> Throttle:
        """The database's throttle (made on first use; a changed policy applies to the existing one)."""
        throttle = self._throttles.get(key)
        if throttle is None:
            throttle = self._throttles[key] = Throttle(policy, clock=self.clock, sleep=self.sleep)
        throttle.policy = policy
        return throttle


_PROCESS = Throttles()
_BY_TRANSPORT: weakref.WeakKeyDictionary[Any, Throttles] = weakref.WeakKeyDictionary()


def process_throttles(transport: Any = None) -> Throttles:
    """The registry a connector uses when none is handed in: one per process, so the sync's and the outbox's
    connectors of a database share one budget without the composition root doing anything; with an injected
    transport (tests, benchmarks), one per transport, so separate fakes never share a budget."""
    if transport is None:
        return _PROCESS
    try:
        return _BY_TRANSPORT.setdefault(transport, Throttles())
    except TypeError:  # a transport that cannot be weakly referenced: its own registry
        return Throttles()
