"""A small time-boxed cache shared by the chat lookups (installations, identities, bindings, threads)."""

from __future__ import annotations

import time
from typing import Any

CACHE_TTL_S = 30.0


class TTLCache:
    def __init__(self, ttl: float = CACHE_TTL_S) -> None:
        self.ttl = ttl
        self._data: dict[Any, tuple[float, Any]] = {}

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
