"""Limits of the fake Autotask server: its clock, the hourly request budget with added latency, the thread
limit per endpoint, and the attachment caps (reference/psa-apis.md §3.6, §3.8). Mixed into FakeAutotask.
"""

from __future__ import annotations

import threading
from collections import Counter, deque
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from tests.fakes.autotask_http import AtError, rejected

ATTACHMENT_WINDOW = timedelta(minutes=5)


class FakeClock:
    """Injectable clock; `step` advances it on every stamp so successive changes get distinct times."""

    def __init__(self, start: datetime | None = None, step: timedelta = timedelta(seconds=1)) -> None:
        self.now = start or datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
        self.step = step

    def __call__(self) -> datetime:
        value = self.now
        self.now = self.now + self.step
        return value

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)

    def set(self, when: datetime) -> None:
        self.now = when


class LimitsMixin:
    """Budget, latency, thread and upload limits; FakeAutotask calls `_init_limits()` and `_spend`/`_enter`."""

    clock: FakeClock
    lock: threading.RLock
    integration_code: str

    def _init_limits(self) -> None:
        self.threshold, self.threshold_minutes = 10_000, 60
        self.latency, self.latency_scale = (0.5, 1.0), 1.0
        self.thread_limit: int | None = 3
        self.max_attachment_bytes, self.attachment_window_bytes = 6 * 1024 * 1024, 10_000_000
        self.added_latency: list[float] = []
        self.inflight: Counter[tuple[str, str]] = Counter()
        self.max_inflight: Counter[str] = Counter()
        self._budget: deque[datetime] = deque()
        self._uploads: deque[tuple[datetime, int]] = deque()
        self._upload_block: datetime | None = None

    def use_budget(self, n: int) -> None:
        """Count `n` requests by other integrations in the current window."""
        now = self.clock.now
        self._budget.extend([now] * n)

    def usage(self) -> int:
        window = timedelta(minutes=self.threshold_minutes)
        while self._budget and self._budget[0] <= self.clock.now - window:
            self._budget.popleft()
        return len(self._budget)

    def check_attachment_budget(self, size: int) -> None:
        now = self.clock.now
        if size > self.max_attachment_bytes:
            raise rejected(f"The attachment exceeds the maximum file size of {self.max_attachment_bytes} bytes.")
        if self._upload_block and now < self._upload_block:
            raise rejected("Attachment upload threshold exceeded: try again in 5 minutes.")
        while self._uploads and self._uploads[0][0] <= now - ATTACHMENT_WINDOW:
            self._uploads.popleft()
        if sum(s for _, s in self._uploads) + size > self.attachment_window_bytes:
            self._upload_block = now + ATTACHMENT_WINDOW
            raise rejected("Attachment upload threshold exceeded: try again in 5 minutes.")
        self._uploads.append((now, size))

    def _spend(self) -> float:
        """Count one call against the budget; the latency it earns (AtError 429 past the threshold)."""
        used = self.usage()
        if used >= self.threshold:
            wait = (self._budget[0] + timedelta(minutes=self.threshold_minutes) - self.clock.now).total_seconds()
            raise AtError(429, f"Request threshold of {self.threshold} requests per {self.threshold_minutes} "
                               "minutes exceeded for this database.", headers={"retry-after": str(max(1, int(wait)))})
        self._budget.append(self.clock.now)
        share = (used + 1) / self.threshold
        level = self.latency[1] if share >= 0.75 else self.latency[0] if share >= 0.5 else 0.0
        return level * self.latency_scale

    def _enter(self, entity: str) -> Callable[[], None]:
        key = (self.integration_code, entity)
        if self.thread_limit is not None and self.inflight[key] >= self.thread_limit:
            raise AtError(429, f"Itgenatr005: thread threshold of {self.thread_limit} concurrent requests per "
                               f"endpoint exceeded for {entity}.")
        self.inflight[key] += 1
        self.max_inflight[entity] = max(self.max_inflight[entity], self.inflight[key])

        def release() -> None:
            with self.lock:
                self.inflight[key] -= 1

        return release
