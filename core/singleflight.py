"""One run per key at a time: callers that arrive while it runs wait for that run and share its result.

Used where a burst of requests would otherwise repeat the same slow lookup (an installation whose cache
entry just expired, a Slack channel's sharing, a new user's e-mail auto-link).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

V = TypeVar("V")


class SingleFlight(Generic[V]):
    def __init__(self) -> None:
        self._running: dict[Hashable, asyncio.Future[V]] = {}

    def busy(self, key: Hashable) -> bool:
        """A run for `key` is under way (a new caller would join it)."""
        return key in self._running

    async def run(self, key: Hashable, make: Callable[[], Awaitable[V]]) -> V:
        """The result of the run under way for `key`, or of a new `make()` run. A caller that is cancelled
        does not cancel the run the others wait for."""
        running = self._running.get(key)
        if running is None:
            running = asyncio.ensure_future(make())
            self._running[key] = running
            running.add_done_callback(
                lambda done: self._running.pop(key) if self._running.get(key) is done else None)
        return await asyncio.shield(running)
