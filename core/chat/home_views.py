"""Homes open, shared by every app instance: which technicians have their Slack App Home (or Teams personal view)
open, and the page of their queue it shows (table home_view).

Slack says when a user opens their Home (`app_home_opened`) or clicks in it, and only to the one instance its
load balancer picked; a PSA change may be applied on any other instance (its callback, its sync, its refresh
worker). So the surface's refresher (bot/slack/home.py) writes each open / page here and reads who has a Home
open from here, through `open_homes`:

- Cheap on the hot path: `open_homes` answers from a snapshot of the rows opened within the open window, read
  in one indexed query (`opened_at >=`) at most every `ttl` seconds per platform (concurrent callers share one
  read). A write of home_view in this process drops the snapshot at once (`Database.on_table_change`); another
  instance's open is seen within `ttl`.
- Expiry: a row older than the open window counts for nothing (the query skips it) and is deleted by the next
  write of its workspace, so a Home nobody has looked at for the window costs no refresh and no row.
- One row per (platform, team, user), upserted: an open is one write whatever instance took it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import col

from store.db import Database, Scope
from store.sql import dialect_insert
from store.tables import HomeView
from store.types import utcnow

HOME_SNAPSHOT_S = 2.0  # another instance's open is seen within this many seconds


@dataclass(frozen=True, slots=True)
class OpenHome:
    """A Home opened at `opened_at` showing `page` ((filters, cursor); None: the first page of the queue)."""

    workspace_id: int
    opened_at: datetime
    page: tuple[str, str] | None


Snapshot = dict[tuple[str, str], OpenHome]  # (team, user) -> its Home


class HomeViews:
    """home_view rows: written on each open / page, read as a snapshot cached for `ttl` seconds."""

    def __init__(self, db: Database, *, ttl: float = HOME_SNAPSHOT_S, clock: Callable[[], datetime] = utcnow,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.db = db
        self.ttl = ttl
        self._clock = clock
        self._monotonic = monotonic
        self._snap: dict[str, tuple[float, Snapshot]] = {}  # platform -> (read when, monotonic; rows)
        self._reading: dict[str, asyncio.Future[Snapshot]] = {}
        self.reads = 0  # queries made (the bench and tests count them)
        db.on_table_change(HomeView.__tablename__, self.invalidate)

    def invalidate(self) -> None:
        """Forget the snapshots (a Home was opened or paged in this process): the next read sees the rows."""
        self._snap.clear()

    async def save(self, workspace_id: int, platform: str, team_id: str, user_id: str, *, opened_at: datetime,
                   page: tuple[str, str] | None, open_for: float) -> None:
        """Record that the user's Home was opened (or clicked in) at `opened_at`, showing `page`; delete the
        workspace's rows older than `open_for` seconds."""
        filters, cursor = page if page is not None else ("", None)
        values = {"opened_at": opened_at, "filters": filters[:500], "cursor": None if cursor is None else cursor[:500]}
        stmt = dialect_insert(self.db.dialect, HomeView).values(
            workspace_id=workspace_id, platform=platform, team_id=team_id, user_id=user_id, **values)
        stmt = stmt.on_conflict_do_update(
            index_elements=["platform", "team_id", "user_id"],
            set_=values | {"workspace_id": workspace_id},
            # an older open arriving late (a slow write) never replaces a newer one
            where=col(HomeView.opened_at) <= stmt.excluded.opened_at)
        cutoff = self._clock() - timedelta(seconds=open_for)
        async with self.db.write(Scope.workspace(workspace_id)) as s:
            await s.execute(stmt)
            await s.execute(sa.delete(HomeView).where(col(HomeView.opened_at) < cutoff))

    async def open_homes(self, platform: str, open_for: float) -> Snapshot:
        """The Homes of `platform` opened within `open_for` seconds, from a snapshot at most `ttl` s old."""
        now = self._monotonic()
        hit = self._snap.get(platform)
        if hit is not None and now - hit[0] < self.ttl:
            return hit[1]
        pending = self._reading.get(platform)
        if pending is not None:
            return await asyncio.shield(pending)
        fut: asyncio.Future[Snapshot] = asyncio.get_running_loop().create_future()
        self._reading[platform] = fut
        try:
            snap = await self._read(platform, open_for)
            self._snap[platform] = (now, snap)
            fut.set_result(snap)
            return snap
        except BaseException as exc:
            fut.set_exception(exc)
            fut.exception()  # retrieved: callers waiting on it get it; nobody else needs to
            raise
        finally:
            self._reading.pop(platform, None)

    async def _read(self, platform: str, open_for: float) -> Snapshot:
        cutoff = self._clock() - timedelta(seconds=open_for)
        stmt = sa.select(col(HomeView.workspace_id), col(HomeView.team_id), col(HomeView.user_id),
                         col(HomeView.opened_at), col(HomeView.filters), col(HomeView.cursor)).where(
            col(HomeView.platform) == platform, col(HomeView.opened_at) >= cutoff)
        async with self.db.read(Scope.system_wide()) as s:  # every workspace's Homes: one query per snapshot
            rows = (await s.execute(stmt)).all()
        self.reads += 1
        return {(team, user): OpenHome(ws, opened, (filters, cursor) if cursor else None)
                for ws, team, user, opened, filters, cursor in rows}
