"""Work the web server does in its quiet moments: the garbage collector's older generations and kept cards'
rebuilds, so neither lands inside a burst of requests.

Measured (bench/teams_invoke.py --trace, notes/session8-teams.md): a burst of 200 card refreshes costs the
event loop ~90 ms of CPU, and every one of them waits for the whole burst (they share one read). A round
was slow when something else ran inside it: a generation-1 collection (24k cyclic objects freed; 114-188 ms
at load 8) or a kept card rebuilt because its 15 s were up (55 ms). Neither has to happen then.

`IdleWork` counts the HTTP requests in flight (`CountRequests`, an ASGI wrapper) and ticks every `tick_s`.
After `quiet_s` with no request in flight and the loop keeping its timer, it runs what is due, one item at a
time, looking again between items:
- the collector's generation 1 or 2 when due by CPython's own counts (bot/gctune.py raises the automatic
  thresholds of those generations to a safety net, so they wait for a quiet moment instead), and the young
  generation when it is half full (a burst then starts with it empty);
- submitted jobs, once per key (`submit`), e.g. a kept card rebuilt before its time is up.
A server that is never quiet loses nothing: the automatic thresholds still collect, and a card whose time is
up is built by the request that finds it so (as before this module).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from typing import Any

from bot import gctune, looptrace

log = logging.getLogger("deskbridge.idle")

Job = Callable[[], Awaitable[Any]]


class IdleWork:
    def __init__(self, *, tick_s: float = 0.02, quiet_s: float = 0.06, late_s: float = 0.005,
                 max_jobs: int = 256, collect: bool = True) -> None:
        self.tick_s = tick_s
        self.quiet_s = quiet_s
        self.late_s = late_s
        self.max_jobs = max_jobs
        self.collect = collect  # run the collector's generations here (the server process; not in tests)
        self.in_flight = 0
        self.last_busy = time.monotonic()
        self._jobs: OrderedDict[Hashable, Job] = OrderedDict()
        self._task: asyncio.Task[None] | None = None
        self.collections = [0, 0, 0]  # collections run here, by generation
        self.jobs_run = 0

    # ------------------------------------------------------------ requests

    def enter(self) -> None:
        self.in_flight += 1

    def leave(self) -> None:
        self.in_flight -= 1
        self.last_busy = time.monotonic()

    # ------------------------------------------------------------ jobs

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def submit(self, key: Hashable, job: Job) -> bool:
        """Run `job` at the next quiet moment (once per key while it waits); False when not running or full."""
        if not self.running:
            return False
        if key in self._jobs:
            return True
        if len(self._jobs) >= self.max_jobs:
            return False
        self._jobs[key] = job
        return True

    def quiet(self, late: float) -> bool:
        return self.in_flight == 0 and late <= self.late_s and time.monotonic() - self.last_busy >= self.quiet_s

    def start(self) -> None:
        if not self.running:
            self._task = asyncio.create_task(self._run(), name="idle-work")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        self._jobs.clear()

    async def _run(self) -> None:
        while True:
            t = time.monotonic()
            await asyncio.sleep(self.tick_s)
            late = time.monotonic() - t - self.tick_s
            if not self.quiet(late):
                continue
            if self.collect and self._collect_due():
                continue  # one item per quiet tick: look again before the next
            if self._jobs:
                _, job = self._jobs.popitem(last=False)
                try:
                    looptrace.event("job")
                    await job()
                    self.jobs_run += 1
                except Exception:  # a job's failure is its own (the next request does the work)
                    log.warning("Idle-time job failed", exc_info=True)

    def _collect_due(self) -> bool:
        """Collect the generation that is due, if any (True when one was collected)."""
        young, gen1_due, gen2_due = gc.get_count()
        if gen2_due >= gctune.THRESHOLDS[2]:
            generation = 2
        elif gen1_due >= gctune.THRESHOLDS[1]:
            generation = 1
        elif young >= gctune.THRESHOLDS[0] // 2:
            generation = 0
        else:
            return False
        looptrace.event(f"collect gen{generation}")
        gc.collect(generation)
        self.collections[generation] += 1
        return True


class CountRequests:
    """ASGI wrapper: the HTTP requests in flight, for `IdleWork` (about a microsecond per request)."""

    def __init__(self, app: Any, idle: IdleWork) -> None:
        self.app = app
        self.idle = idle

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        self.idle.enter()
        try:
            await self.app(scope, receive, send)
        finally:
            self.idle.leave()
