"""Work after the ack, on a small bounded pool (chat-platforms.md §2.1).

Every Slack listener acks at once and hands the rest (database queries, PSA-backed views, Web API posts)
to `AfterAck`: a FIFO drained by a few worker tasks. Compared with one task per request (bolt's lazy
listeners on asyncio), a burst of 200 requests is acked before most of the work it started runs, and that
work can never hold more than `workers` database connections, so the pool stays free for the acks that
need one and for the scheduler. Acks also go first: a worker starts its next job only once no Slack
request has been in progress for `quiet_s` (the surface reports them through `acking`), or after waiting
`max_defer_s`, so work is delayed by a burst but never starved by steady traffic. A job that fails is
logged; it never stops a worker.

Deadlines first: a job that will use a trigger id (open or push a modal: Slack refuses the trigger 3 s
after the click) is queued as urgent and starts before any job that can wait (response_url posts stay
valid for 30 minutes, Web API posts have no deadline). Among jobs of one kind the order is FIFO.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

log = logging.getLogger("deskbridge.slack")

WORKERS = 4  # below the database pool's size (5): acks and the scheduler always find a connection
MAX_BACKLOG = 10_000  # jobs waiting; beyond it new work is refused (logged), never memory without bound
SETTLED_POLL_S = 0.02  # how often `settled` looks again
QUIET_S = 0.005  # no Slack request for this long: the burst is over, start the next job
HEADROOM = 1_000  # queue slots kept for requests already past the door (see nearly_full)
TRIGGER_DEFER_S = 0.05  # ... and a job holding a trigger at most this long
MAX_DEFER_S = 0.25  # a job waits at most this long for a quiet moment (views.open triggers expire in 3 s)

Job = Callable[[], Awaitable[Any]]
TRIGGER, FILL, LATER = 0, 1, 2  # ranks: uses a trigger id; fills a modal already open; can wait


class AfterAck:
    """A FIFO of jobs drained by `workers` tasks, started lazily on the running event loop."""

    def __init__(self, workers: int = WORKERS, *, max_backlog: int = MAX_BACKLOG, grace_s: float = 10.0,
                 quiet_s: float = QUIET_S, max_defer_s: float = MAX_DEFER_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.workers = workers
        self.max_backlog = max_backlog
        self.grace_s = grace_s
        self.quiet_s = quiet_s
        self.max_defer_s = max_defer_s
        self._clock = clock
        self._acking = 0
        self._last_ack = float("-inf")
        self._queue: asyncio.PriorityQueue[tuple[int, int, Job]] | None = None
        self._seq = itertools.count()
        self._triggers = 0  # TRIGGER jobs queued and not yet started
        self._running = 0
        self._tasks: list[asyncio.Task[None]] = []
        self.refused = 0

    @property
    def full(self) -> bool:
        """No room for another job: the surface must refuse the request before acking it."""
        return self._queue is not None and self._queue.full()

    @property
    def nearly_full(self) -> bool:
        """Less room than HEADROOM jobs: new requests are shed at the door, so that those already being
        parsed (up to the server's concurrency) still find room when their listener queues its work."""
        return self._queue is not None and self._queue.qsize() >= self.max_backlog - min(HEADROOM,
                                                                                          self.max_backlog // 2)

    @property
    def triggers_waiting(self) -> int:
        """Jobs holding a trigger id that have not started yet."""
        return self._triggers

    @property
    def backlog(self) -> int:
        """Jobs queued and not yet started."""
        return self._queue.qsize() if self._queue is not None else 0

    async def settled(self, max_wait_s: float) -> None:
        """Wait (up to `max_wait_s`) until no job is queued or running: work that can wait (a card built to
        confirm a write) lets a burst's writes commit first."""
        deadline = self._clock() + max_wait_s
        while (self.backlog or self._running) and self._clock() < deadline:  # noqa: ASYNC110 - bounded poll
            await asyncio.sleep(SETTLED_POLL_S)

    def submit(self, job: Job, *, urgent: bool = False, rank: int | None = None) -> bool:
        """Queue a job (never waits); False if the backlog is full and the job was dropped. An urgent job
        (it holds a trigger id) starts before every job that is not; a FILL job (the content of a modal
        that opened as "Loading…") before those that can wait."""
        if self._queue is None:
            self._queue = asyncio.PriorityQueue(self.max_backlog)
            self._tasks = [asyncio.get_running_loop().create_task(self._worker(), name=f"slack-after-ack-{i}")
                           for i in range(self.workers)]
        try:
            r = rank if rank is not None else TRIGGER if urgent else LATER
            self._queue.put_nowait((r, next(self._seq), job))
            if r == TRIGGER:
                self._triggers += 1
        except asyncio.QueueFull:
            self.refused += 1
            log.error("Slack work after the ack refused: %d jobs already waiting", self.max_backlog)
            return False
        return True

    @contextmanager
    def acking(self) -> Iterator[None]:
        """Wrap the handling of one incoming Slack request (up to its response)."""
        self._acking += 1
        self._last_ack = self._clock()
        try:
            yield
        finally:
            self._acking -= 1
            self._last_ack = self._clock()

    def _busy(self) -> bool:
        return self._acking > 0 or self._clock() - self._last_ack < self.quiet_s

    async def _quiet_moment(self, max_defer_s: float | None = None) -> None:
        deadline = self._clock() + (self.max_defer_s if max_defer_s is None else max_defer_s)
        while self._busy() and self._clock() < deadline:  # noqa: ASYNC110 - a quiet period is a time, not an event
            await asyncio.sleep(self.quiet_s)

    async def _worker(self) -> None:
        assert self._queue is not None
        while True:
            rank, _, job = await self._queue.get()
            if rank == TRIGGER:
                self._triggers -= 1
            try:
                # a job holding a trigger waits for a burst's acks only briefly (its trigger is ageing)
                await self._quiet_moment(TRIGGER_DEFER_S if rank == TRIGGER else None)
                self._running += 1
                try:
                    await job()
                finally:
                    self._running -= 1
            except Exception:  # noqa: BLE001 - one failed job must not stop the worker
                log.exception("slack work after the ack failed")
            finally:
                self._queue.task_done()

    async def drain(self) -> None:
        """Wait until every queued job (and any job they queued) has finished."""
        if self._queue is not None:
            await self._queue.join()

    async def close(self) -> None:
        """Finish queued work (up to `grace_s` seconds), then stop the workers."""
        try:
            await asyncio.wait_for(self.drain(), self.grace_s)
        except TimeoutError:
            log.warning("stopping with %d Slack jobs unfinished", self.backlog)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks, self._queue, self._triggers = [], None, 0
