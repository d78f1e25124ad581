"""A small time-boxed cache shared by the chat lookups (installations, identities, bindings, threads).

`load` reads a missing key once however many callers ask at the same moment: when an entry's time was up, a
burst of 200 card refreshes used to run 200 copies of the same lookup (each a database session of its own),
which cost the burst ~1.3 ms of event-loop CPU per request (bench/teams_invoke.py --trace,
notes/session8-teams.md). A `clear` (something the lookups read changed) also ends the sharing: a read that
started before it neither answers later callers nor fills the cache.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

CACHE_TTL_S = 30.0


class TTLCache:
    def __init__(self, ttl: float = CACHE_TTL_S) -> None:
        self.ttl = ttl
        self._data: dict[Any, tuple[float, Any]] = {}
        self._loading: dict[Any, asyncio.Future[Any]] = {}
        self._generation = 0
        self.loads = 0  # reads `load` ran (not the callers that shared them)

    def get(self, key: Any) -> tuple[bool, Any]:
        hit = self._data.get(key)
        if hit is None or hit[0] < time.monotonic():
            return False, None
        return True, hit[1]

    def put(self, key: Any, value: Any) -> None:
        if len(self._data) > 10_000:
            self._data.clear()
        self._data[key] = (time.monotonic() + self.ttl, value)

    def clear(self) -> None:
        self._data.clear()
        self._loading.clear()
        self._generation += 1

    async def load(self, key: Any, fetch: Callable[[], Awaitable[Any]]) -> Any:
        """The cached value, or `fetch()`'s (cached), one fetch per key at a time."""
        hit, value = self.get(key)
        if hit:
            return value
        flight = self._loading.get(key)
        if flight is not None:
            return await asyncio.shield(flight)
        done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._loading[key] = done
        generation = self._generation
        try:
            self.loads += 1
            value = await fetch()
            if generation == self._generation:
                self.put(key, value)
            done.set_result(value)
            return value
        except BaseException as exc:
            done.set_exception(exc)
            done.exception()  # retrieved: a read nobody else awaited is not reported as lost
            raise
        finally:
            if self._loading.get(key) is done:
                del self._loading[key]
