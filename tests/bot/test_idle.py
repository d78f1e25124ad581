"""Quiet-time work (bot/idle.py): garbage collections and submitted jobs run only when no HTTP request is in
flight, each job once per key; a server never quiet keeps its automatic collector (bot/gctune.py)."""

from __future__ import annotations

import asyncio
import gc

import pytest

from bot import gctune
from bot.idle import CountRequests, IdleWork


def fast(**kw) -> IdleWork:
    return IdleWork(tick_s=0.005, quiet_s=0.02, late_s=1.0, **kw)


class HeldApp:
    """An ASGI app whose requests stay in flight until released."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.entered = asyncio.Event()

    async def __call__(self, scope, receive, send) -> None:
        self.entered.set()
        await self.release.wait()


async def eventually(check, within_s: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + within_s
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("not within the time")
        await asyncio.sleep(0.005)


async def test_a_job_waits_for_the_request_in_flight_and_runs_once_per_key() -> None:
    idle, app = fast(collect=False), HeldApp()
    wrapped = CountRequests(app, idle)
    ran: list[str] = []

    async def job() -> None:
        ran.append("card")

    assert not idle.submit("k", job)  # not running: the caller does the work itself
    idle.start()
    try:
        request = asyncio.create_task(wrapped({"type": "http"}, None, None))
        await app.entered.wait()
        assert idle.in_flight == 1
        assert idle.submit("k", job) and idle.submit("k", job)  # the same key waits once
        await asyncio.sleep(0.1)  # many ticks: a request is in flight, nothing runs
        assert ran == []
        app.release.set()
        await request
        assert idle.in_flight == 0
        await eventually(lambda: ran == ["card"])
        await asyncio.sleep(0.05)
        assert ran == ["card"] and idle.jobs_run == 1
    finally:
        await idle.stop()


async def test_a_failed_job_is_logged_and_the_next_one_runs(caplog) -> None:
    idle = fast(collect=False)
    ran: list[int] = []

    async def bad() -> None:
        raise RuntimeError("boom")

    async def good() -> None:
        ran.append(1)

    idle.start()
    try:
        idle.submit("a", bad)
        idle.submit("b", good)
        await eventually(lambda: ran == [1])
        assert "Idle-time job failed" in caplog.text
    finally:
        await idle.stop()


async def test_websocket_and_lifespan_scopes_are_not_counted() -> None:
    idle, app = fast(collect=False), HeldApp()
    app.release.set()
    await CountRequests(app, idle)({"type": "lifespan"}, None, None)
    assert idle.in_flight == 0


@pytest.mark.parametrize(("counts", "generation"), [((0, 10, 0), 1), ((0, 3, 10), 2),
                                                     ((gctune.THRESHOLDS[0] // 2, 0, 0), 0)])
async def test_the_due_generation_is_collected_only_when_quiet(monkeypatch, counts, generation) -> None:
    collected: list[int] = []
    monkeypatch.setattr(gc, "get_count", lambda: counts)
    monkeypatch.setattr(gc, "collect", lambda g=2: collected.append(g) or 0)
    idle, app = fast(), HeldApp()
    wrapped = CountRequests(app, idle)
    idle.start()
    try:
        request = asyncio.create_task(wrapped({"type": "http"}, None, None))
        await app.entered.wait()
        await asyncio.sleep(0.1)
        assert collected == []  # a request is in flight
        app.release.set()
        await request
        await eventually(lambda: bool(collected))
        assert set(collected) == {generation}
        assert idle.collections[generation] >= 1
    finally:
        await idle.stop()


async def test_nothing_is_collected_when_nothing_is_due(monkeypatch) -> None:
    collected: list[int] = []
    monkeypatch.setattr(gc, "get_count", lambda: (10, 2, 1))
    monkeypatch.setattr(gc, "collect", lambda g=2: collected.append(g) or 0)
    idle = fast()
    idle.start()
    try:
        await asyncio.sleep(0.1)
        assert collected == []
    finally:
        await idle.stop()


def test_with_a_quiet_collector_the_automatic_older_generations_are_a_safety_net() -> None:
    before = gc.get_threshold()
    try:
        gctune.collect_when_quiet()
        assert gc.get_threshold() == gctune.QUIET_THRESHOLDS
        assert gctune.QUIET_THRESHOLDS[0] == gctune.THRESHOLDS[0]  # young collections unchanged
        assert gctune.QUIET_THRESHOLDS[1] > gctune.THRESHOLDS[1]  # generation 1 waits for a quiet moment
        gctune.settle()  # a later settle (after the first sync) keeps the quiet-collector thresholds
        assert gc.get_threshold() == gctune.QUIET_THRESHOLDS
    finally:
        gc.unfreeze()
        gctune._active = gctune.THRESHOLDS
        gc.set_threshold(*before)
