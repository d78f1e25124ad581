"""App Home refreshes: what changed in a technician's own queue, within seconds, inside Slack's tier 4.

A bulk change in the PSA (a dispatcher reassigning forty tickets, a sync bringing in a morning's edits) can
touch more cards than Slack's chat.update budget (tier 3, ~50/min per workspace) lets us refresh within
seconds. The technician's App Home is where they see their queue change: `views.publish` is tier 4 (~100/min
per workspace, chat-platforms.md §2.4) and one publish shows every change of that technician's queue at once.

- Only for technicians who have their Home open: Slack says when a user opens the tab (`app_home_opened`, and
  a click inside it), never when they leave it. A Home opened within `open_for` seconds counts as open; a
  change for anyone else publishes nothing (their next opening publishes the newest queue anyway, see
  bot/slack/listeners/events.py `on_home`). Publishing for every technician concerned would spend the tier 4
  budget on tabs nobody looks at and delay the ones somebody does.
- Coalesced per user: requests while one is due collapse into it; at most one publish per user per
  `interval` seconds. The view is built when the publish is made, so it is always the newest state; a request
  arriving while a publish is being built publishes again after it.
- A refresh publishes the page the technician is on: paging in Home (`paged`) is remembered until they page
  back to the first one or open the tab again (opening shows the first page, most urgent first).
- Paced per Slack team (one bot token) within `per_minute` (burst `burst`): one drain task per team publishes
  the user whose request is oldest among those whose interval has passed, so no user starves. The publishes
  made directly on opening or clicking in Home (`spent`) count against the same budget. Up to
  `concurrency` publishes of different users are in flight at once (building a Home takes a query and a
  render: one at a time, a busy process would publish fewer than the budget allows); never two of one user,
  so an older view cannot land after a newer one.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

log = logging.getLogger("deskbridge.slack")

HOME_INTERVAL_S = 2.0  # at most one App Home refresh per user per this many seconds
HOME_PUBLISHES_PER_MINUTE = 90.0  # tier 4 is ~100/min per workspace: 10 left for opens and Home clicks
HOME_BURST = 10
HOME_OPEN_S = 15 * 60.0  # a Home opened (or clicked in) this recently counts as open
HOME_CONCURRENCY = 4  # publishes of different users built and sent at once per team (one user: one at a time)

Publish = Callable[[int, str, str], Awaitable[None]]  # (workspace, team, user) -> views.publish of the newest view


class HomeRefresher:
    """Re-publishes the App Homes of technicians who have them open: coalesced per user, paced per team."""

    def __init__(self, publish: Publish, *, interval: float = HOME_INTERVAL_S,
                 per_minute: float = HOME_PUBLISHES_PER_MINUTE, burst: int = HOME_BURST,
                 open_for: float = HOME_OPEN_S, concurrency: int = HOME_CONCURRENCY, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep) -> None:
        self._publish = publish
        self.interval = interval
        self.open_for = open_for
        self._rate = per_minute / 60.0
        self._burst = float(burst)
        self._clock = clock
        self._sleep = sleep
        self._opened: dict[tuple[str, str], float] = {}  # (team, user) -> when Home was last opened / used
        self._newest_open = float("-inf")  # when any Home was last opened / used
        self._pages: dict[tuple[str, str], tuple[str, str]] = {}  # (team, user) -> (filters, cursor) paged to
        self._last: dict[tuple[str, str], float] = {}  # (team, user) -> when its last refresh was published
        self._pending: dict[str, dict[str, int]] = {}  # team -> user -> workspace, oldest request first
        self._budget: dict[str, tuple[float, float]] = {}  # team -> (tokens, when counted)
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._concurrency = max(1, concurrency)
        self._busy: dict[str, set[str]] = {}  # team -> users whose publish is in flight
        self._flights: set[asyncio.Task[None]] = set()
        self._freed: dict[str, asyncio.Event] = {}  # team -> set when one of its publishes ends
        self.published = 0
        self.skipped = 0  # requests for technicians without their Home open

    # ------------------------------------------------------------ who looks

    def opened(self, team_id: str, user_id: str) -> None:
        """The user opened their Home (or clicked in it): changes of their queue are published from now on."""
        now = self._clock()
        self._opened[(team_id, user_id)] = now
        self._newest_open = now
        if len(self._opened) > 20000:
            self._opened = {k: v for k, v in self._opened.items() if v > now - self.open_for}

    def paged(self, team_id: str, user_id: str, filters: str, cursor: str | None) -> None:
        """The user moved to another page of their Home's queue: refreshes publish that page (None: the first)."""
        if cursor:
            self._pages[(team_id, user_id)] = (filters, cursor)
            if len(self._pages) > 20000:
                self._pages = {k: v for k, v in self._pages.items() if self.is_open(*k)}
        else:
            self._pages.pop((team_id, user_id), None)

    def page(self, team_id: str, user_id: str) -> tuple[str, str] | None:
        """(filters, cursor) of the page the user's Home shows, None for the first page of their queue."""
        return self._pages.get((team_id, user_id))

    def any_open(self) -> bool:
        """Whether anyone's Home counts as open (else no change needs to look for whose Home it touches)."""
        return self._clock() - self._newest_open <= self.open_for

    def is_open(self, team_id: str, user_id: str) -> bool:
        return self._clock() - self._opened.get((team_id, user_id), float("-inf")) <= self.open_for

    def spent(self, team_id: str) -> None:
        """A views.publish made elsewhere (on opening, on a click in Home) counts against the team's budget."""
        tokens = self._tokens(team_id)
        self._budget[team_id] = (tokens - 1.0, self._clock())

    # ------------------------------------------------------------ requests

    def request(self, workspace_id: int, team_id: str, user_id: str) -> None:
        """The user's queue changed: publish it (soon, coalesced) if their Home is open."""
        if not self.is_open(team_id, user_id):
            self.skipped += 1
            return
        pending = self._pending.setdefault(team_id, {})
        if user_id in pending:
            return  # a publish is already due: it will show this change too
        pending[user_id] = workspace_id
        if team_id not in self._tasks:
            task = asyncio.get_running_loop().create_task(self._drain(team_id), name=f"slack-home-{team_id}")
            self._tasks[team_id] = task

    def _tokens(self, team_id: str) -> float:
        now = self._clock()
        tokens, at = self._budget.get(team_id, (self._burst, now))
        tokens = min(self._burst, tokens + (now - at) * self._rate)
        self._budget[team_id] = (tokens, now)
        return tokens

    def _next(self, team_id: str) -> tuple[str | None, float]:
        """The user to publish now (oldest request whose interval has passed), or None and how long to wait."""
        now = self._clock()
        wait = float("inf")
        busy = self._busy.get(team_id, set())
        if len(busy) >= self._concurrency:
            return None, float("inf")  # until a publish in flight ends
        for user in self._pending.get(team_id, {}):
            if user in busy:
                continue  # its publish is in flight: the next one goes after it (never out of order)
            due = self._last.get((team_id, user), float("-inf")) + self.interval - now
            if due <= 0:
                tokens = self._tokens(team_id)
                return (user, 0.0) if tokens >= 1.0 else (None, (1.0 - tokens) / self._rate)
            wait = min(wait, due)
        return None, wait  # inf: only users whose publish is in flight are waiting

    async def _drain(self, team_id: str) -> None:
        try:
            while self._pending.get(team_id):
                user, wait = self._next(team_id)
                if user is None:
                    await self._nap(team_id, wait)
                    continue
                workspace_id = self._pending[team_id].pop(user)
                tokens = self._tokens(team_id)
                self._budget[team_id] = (tokens - 1.0, self._clock())
                self._last[(team_id, user)] = self._clock()
                self._busy.setdefault(team_id, set()).add(user)
                flight = asyncio.get_running_loop().create_task(self._one(workspace_id, team_id, user))
                self._flights.add(flight)
                flight.add_done_callback(self._flights.discard)
                await asyncio.sleep(0)  # let it start
        finally:
            self._tasks.pop(team_id, None)
            if not self._pending.get(team_id):
                self._pending.pop(team_id, None)
            if len(self._last) > 5000:
                cutoff = self._clock() - self.interval
                self._last = {k: v for k, v in self._last.items() if v > cutoff}

    async def _nap(self, team_id: str, seconds: float) -> None:
        """Sleep up to `seconds` (inf: no limit); a publish of this team ending wakes it early."""
        freed = self._freed.setdefault(team_id, asyncio.Event())
        freed.clear()
        if not self._busy.get(team_id):
            if seconds == float("inf"):
                return
            await self._sleep(seconds)
            return
        waits = [asyncio.ensure_future(freed.wait())]
        if seconds != float("inf"):
            waits.append(asyncio.ensure_future(self._sleep(seconds)))
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()
            await asyncio.gather(*waits, return_exceptions=True)

    async def _one(self, workspace_id: int, team_id: str, user: str) -> None:
        try:
            await self._publish(workspace_id, team_id, user)
            self.published += 1
        except Exception:  # noqa: BLE001 - a failed publish is logged; the next change publishes again
            log.exception("App Home refresh failed")
        finally:
            self._busy.get(team_id, set()).discard(user)
            freed = self._freed.get(team_id)
            if freed is not None:
                freed.set()

    # ------------------------------------------------------------ lifecycle

    @property
    def idle(self) -> bool:
        return not self._tasks and not self._flights

    async def drain(self) -> None:
        while self._tasks or self._flights:
            await asyncio.gather(*list(self._tasks.values()), *list(self._flights), return_exceptions=True)

    async def close(self) -> None:
        tasks = list(self._tasks.values()) + list(self._flights)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()
        self._pending.clear()
