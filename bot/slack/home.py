"""App Home refreshes: what changed in a technician's own queue, within seconds, inside Slack's tier 4.

A bulk change in the PSA (a dispatcher reassigning forty tickets, a sync bringing in a morning's edits) can
touch more cards than Slack's chat.update budget (tier 3, ~50/min per workspace) lets us refresh within
seconds. The technician's App Home is where they see their queue change: `views.publish` is tier 4 (~100/min
per workspace, chat-platforms.md §2.4) and one publish shows every change of that technician's queue at once.

- Shared by every app instance: each open and page is written to the store (core/chat/home_views.py, table
  home_view) by a write-behind task (one upsert per open / page, coalesced per user) and who has a Home open
  is read from a snapshot of it (one query at most every 2 s, dropped when this process writes a row; `fresh`
  before a change looks for Homes), merged with this process's own opens, which count at once. So a Home opened
  on instance A is refreshed by a PSA change applied on instance B (or its refresh worker), within 2 s of the
  open. Without a store (`shared=None`) the state is this process's only.
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
from datetime import UTC, datetime
from typing import Any

from core.chat.home_views import HomeViews, Snapshot

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
                 sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep, shared: HomeViews | None = None,
                 platform: str = "slack", wall: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self._publish = publish
        self._shared = shared  # Homes open on every instance (None: this process's only)
        self._platform = platform
        self._wall = wall
        self._snapshot: Snapshot | None = None  # the store's, as last read
        self._shared_opened: dict[tuple[str, str], float] = {}  # from the snapshot, on this process's clock
        self._shared_newest = float("-inf")
        self._unsaved: dict[tuple[str, str], tuple[int, datetime]] = {}  # not written yet -> workspace, when
        self._saver: asyncio.Task[None] | None = None
        self.saved = 0
        self.interval = interval
        self.open_for = open_for
        self._rate = per_minute / 60.0
        self._burst = float(burst)
        self._clock = clock
        self._sleep = sleep
        self._opened: dict[tuple[str, str], float] = {}  # (team, user) -> when Home was last opened / used
        self._newest_open = float("-inf")  # when any Home was last opened / used
        # (team, user) -> (when, (filters, cursor) paged to or None for the first page), paged in this process
        self._pages: dict[tuple[str, str], tuple[float, tuple[str, str] | None]] = {}
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

    def opened(self, team_id: str, user_id: str, workspace_id: int | None = None) -> None:
        """The user opened their Home (or clicked in it): changes of their queue are published from now on, by
        every instance once it is written (`workspace_id` None: this process only)."""
        now = self._clock()
        self._opened[(team_id, user_id)] = now
        self._newest_open = now
        if len(self._opened) > 20000:
            self._opened = {k: v for k, v in self._opened.items() if v > now - self.open_for}
        self._save(team_id, user_id, workspace_id)

    def paged(self, team_id: str, user_id: str, filters: str, cursor: str | None,
              workspace_id: int | None = None) -> None:
        """The user moved to another page of their Home's queue: refreshes publish that page (None: the first)."""
        now = self._clock()
        self._pages[(team_id, user_id)] = (now, (filters, cursor) if cursor else None)
        if len(self._pages) > 20000:
            self._pages = {k: v for k, v in self._pages.items() if v[0] > now - self.open_for}
        self._save(team_id, user_id, workspace_id)

    def page(self, team_id: str, user_id: str) -> tuple[str, str] | None:
        """(filters, cursor) of the page the user's Home shows, None for the first page of their queue: the
        newer of this process's paging and the store's (another instance's)."""
        key = (team_id, user_id)
        mine = self._pages.get(key)
        row = self._snapshot.get(key) if self._snapshot is not None else None
        if row is not None and (mine is None or self._shared_opened.get(key, float("-inf")) > mine[0]):
            return row.page
        return None if mine is None else mine[1]

    def any_open(self) -> bool:
        """Whether anyone's Home counts as open (else no change needs to look for whose Home it touches)."""
        return self._clock() - max(self._newest_open, self._shared_newest) <= self.open_for

    def is_open(self, team_id: str, user_id: str) -> bool:
        key = (team_id, user_id)
        opened = max(self._opened.get(key, float("-inf")), self._shared_opened.get(key, float("-inf")))
        return self._clock() - opened <= self.open_for

    async def fresh(self) -> None:
        """Take in the Homes opened on other instances (the store's snapshot: a query at most every 2 s)."""
        if self._shared is None:
            return
        try:
            snap = await self._shared.open_homes(self._platform, self.open_for)
        except Exception:  # noqa: BLE001 - the last snapshot and this process's opens still count
            log.exception("reading the App Homes open failed")
            return
        if snap is self._snapshot:
            return
        now, wall = self._clock(), self._wall()
        self._snapshot = snap
        self._shared_opened = {k: now - (wall - row.opened_at).total_seconds() for k, row in snap.items()}
        self._shared_newest = max(self._shared_opened.values(), default=float("-inf"))

    def _save(self, team_id: str, user_id: str, workspace_id: int | None) -> None:
        if self._shared is None or workspace_id is None:
            return
        self._unsaved[(team_id, user_id)] = (workspace_id, self._wall())  # when they last opened / clicked in it
        if self._saver is None:
            self._saver = asyncio.get_running_loop().create_task(self._write(), name="slack-home-save")

    async def _write(self) -> None:
        """Write the opens and pages waiting (one upsert per user, the newest state of each)."""
        assert self._shared is not None
        try:
            while self._unsaved:
                key = next(iter(self._unsaved))
                workspace_id, opened_at = self._unsaved.pop(key)
                paged = self._pages.get(key)
                try:
                    await self._shared.save(workspace_id, self._platform, *key, page=None if paged is None else paged[1],
                                            opened_at=opened_at, open_for=self.open_for)
                    self.saved += 1
                except Exception:  # noqa: BLE001 - this process still refreshes it; other instances do not
                    log.exception("recording an App Home open failed")
        finally:
            self._saver = None

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
        return not self._tasks and not self._flights and self._saver is None

    async def drain(self) -> None:
        while self._tasks or self._flights or self._saver is not None:
            saver = [] if self._saver is None else [self._saver]
            await asyncio.gather(*list(self._tasks.values()), *list(self._flights), *saver, return_exceptions=True)

    async def close(self) -> None:
        tasks = list(self._tasks.values()) + list(self._flights) + ([] if self._saver is None else [self._saver])
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()
        self._pending.clear()
