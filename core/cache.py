"""Configuration read on every request, kept briefly in memory and dropped when it changes.

For things that change rarely and are read per request (a workspace's SLA
policies and calendars, a board's statuses): without them each `/tickets mine` or status form re-reads
them (3 and 2 queries). Two rules keep a cached value honest:

- A write in this process to any of the watched tables drops every entry at once, right after its commit
  (`Database.on_table_change`), so the process that changed a policy or refreshed a picklist sees it on
  its next read.
- Another process's writes are not seen here: entries expire after `ttl` seconds, which bounds how long
  another process (a second instance, the CLI) can show the old value.

A load that started before an invalidation is not stored (its result may predate the change). Cached
values are shared by every caller: they must not be changed in place.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Hashable, Iterable
from typing import Any, Generic, TypeVar

from store.db import Database

V = TypeVar("V")
DEFAULT_TTL_S = 10.0
MAX_ENTRIES = 4096


class ConfigCache(Generic[V]):
    """Values by key, loaded on a miss, dropped after `ttl` s or when a watched table is written here."""

    def __init__(self, db: Database, tables: Iterable[str], *, ttl: float = DEFAULT_TTL_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self._clock = clock
        self._data: dict[Hashable, tuple[float, V]] = {}
        self._generation = 0
        self.loads = 0  # misses that read the database (tests and benches look at it)
        self.tables = tuple(tables)
        for table in self.tables:
            db.on_table_change(table, self.clear)

    async def get(self, key: Hashable, load: Callable[[], Awaitable[V]]) -> V:
        hit = self._data.get(key)
        now = self._clock()
        if hit is not None and hit[0] > now:
            return hit[1]
        generation = self._generation
        self.loads += 1
        value = await load()
        if generation == self._generation:  # nothing changed while it loaded
            if len(self._data) >= MAX_ENTRIES:
                self._data.clear()
            self._data[key] = (now + self.ttl, value)
        return value

    def clear(self, *_: Any) -> None:
        self._generation += 1
        self._data.clear()
