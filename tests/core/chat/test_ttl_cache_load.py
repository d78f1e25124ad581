"""The chat lookups' cache (core/chat/cache.py): a missing key is read once however many callers ask at the same
moment (a burst of card refreshes after an entry's time was up ran one read per request); a `clear` during a read
keeps that read's answer out of the cache; a failed read is shared, not cached."""

from __future__ import annotations

import asyncio

import pytest

from core.chat.cache import TTLCache


async def test_simultaneous_misses_share_one_read_and_it_is_cached() -> None:
    cache, gate, reads = TTLCache(), asyncio.Event(), []

    async def fetch() -> str:
        reads.append(1)
        await gate.wait()
        return "member-7"

    callers = [asyncio.create_task(cache.load("k", fetch)) for _ in range(200)]
    await asyncio.sleep(0.01)
    gate.set()
    assert await asyncio.gather(*callers) == ["member-7"] * 200
    assert len(reads) == 1 and cache.loads == 1
    assert await cache.load("k", fetch) == "member-7" and len(reads) == 1  # cached now


async def test_a_read_that_started_before_a_clear_answers_its_callers_but_is_not_kept() -> None:
    cache, gate, values = TTLCache(), asyncio.Event(), iter(["old binding", "new binding"])

    async def fetch() -> str:
        value = next(values)
        if value == "old binding":
            await gate.wait()
        return value

    first = asyncio.create_task(cache.load("chan", fetch))
    await asyncio.sleep(0.01)
    cache.clear()  # the channel was bound meanwhile
    assert await cache.load("chan", fetch) == "new binding"  # does not join the read from before the clear
    gate.set()
    assert await first == "old binding"
    assert cache.get("chan") == (True, "new binding")


async def test_a_failed_read_reaches_every_caller_and_is_not_cached() -> None:
    cache, gate, reads = TTLCache(), asyncio.Event(), []

    async def fetch() -> str:
        reads.append(1)
        await gate.wait()
        raise RuntimeError("database is locked")

    callers = [asyncio.create_task(cache.load("k", fetch)) for _ in range(5)]
    await asyncio.sleep(0.01)
    gate.set()
    results = await asyncio.gather(*callers, return_exceptions=True)
    assert all(isinstance(r, RuntimeError) for r in results) and len(reads) == 1
    assert cache.get("k") == (False, None)
    with pytest.raises(RuntimeError):
        await cache.load("k", fetch)
    assert len(reads) == 2
