"""core/chat/home_views.py on both databases: one row per Home, an older open never replaces a newer one, opens
past the window count for nothing and go with the workspace's next write, and the snapshot costs one query per
period (shared by concurrent callers, dropped by this process's writes)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from core.chat.home_views import HomeViews
from store.db import Database, Scope
from store.tables import HomeView

WINDOW = 900.0


async def _rows(db: Database, ws: int) -> list[tuple[str, datetime, str | None]]:
    async with db.read(Scope.workspace(ws)) as s:
        return [(u, at, c) for u, at, c in (await s.execute(
            sa.select(HomeView.user_id, HomeView.opened_at, HomeView.cursor).order_by(HomeView.user_id))).all()]


async def test_one_row_per_home_and_an_older_open_never_replaces_a_newer_one(db: Database, workspace_id: int):
    views = HomeViews(db)
    now = datetime.now(UTC).replace(microsecond=0)
    await views.save(workspace_id, "slack", "T1", "U1", opened_at=now, page=("mine", "c2"), open_for=WINDOW)
    await views.save(workspace_id, "slack", "T1", "U1", opened_at=now - timedelta(seconds=5), page=None,
                     open_for=WINDOW)  # a slower write of an earlier open, arriving late
    assert await _rows(db, workspace_id) == [("U1", now, "c2")]
    await views.save(workspace_id, "slack", "T1", "U1", opened_at=now + timedelta(seconds=1), page=None,
                     open_for=WINDOW)  # opened again: the first page
    assert await _rows(db, workspace_id) == [("U1", now + timedelta(seconds=1), None)]
    snap = await views.open_homes("slack", WINDOW)
    assert list(snap) == [("T1", "U1")] and snap[("T1", "U1")].page is None
    assert snap[("T1", "U1")].workspace_id == workspace_id and await views.open_homes("teams", WINDOW) == {}


async def test_an_open_past_the_window_counts_for_nothing_and_goes_with_the_next_write(
        db: Database, workspace_id: int, other_workspace_id: int):
    views = HomeViews(db, ttl=0.0)
    now = datetime.now(UTC)
    old = now - timedelta(seconds=WINDOW + 60)
    await views.save(workspace_id, "slack", "T1", "U_OLD", opened_at=old, page=None, open_for=10 * WINDOW)
    await views.save(other_workspace_id, "slack", "T2", "U_ELSE", opened_at=old, page=None, open_for=10 * WINDOW)
    assert await views.open_homes("slack", WINDOW) == {}  # skipped by the read
    await views.save(workspace_id, "slack", "T1", "U_NEW", opened_at=now, page=None, open_for=WINDOW)
    assert [u for u, _, _ in await _rows(db, workspace_id)] == ["U_NEW"]  # the stale row went with this write
    assert [u for u, _, _ in await _rows(db, other_workspace_id)] == ["U_ELSE"]  # another workspace's: its own
    assert list(await views.open_homes("slack", WINDOW)) == [("T1", "U_NEW")]


async def test_the_snapshot_is_one_query_per_period_shared_and_dropped_by_a_write_here(db: Database, workspace_id: int):
    views = HomeViews(db, ttl=60.0)
    now = datetime.now(UTC)
    await views.save(workspace_id, "slack", "T1", "U1", opened_at=now, page=None, open_for=WINDOW)
    got = await asyncio.gather(*(views.open_homes("slack", WINDOW) for _ in range(5)))
    assert views.reads == 1 and all(g is got[0] for g in got) and list(got[0]) == [("T1", "U1")]
    assert await views.open_homes("slack", WINDOW) is got[0] and views.reads == 1  # within the period: no query
    other = HomeViews(db, ttl=60.0)  # a write through the same Database (this process) ...
    await other.save(workspace_id, "slack", "T1", "U2", opened_at=now, page=None, open_for=WINDOW)
    # ... drops the snapshot at once (another process's is seen when the period ends: test_home_instances.py)
    assert sorted(await views.open_homes("slack", WINDOW)) == [("T1", "U1"), ("T1", "U2")] and views.reads == 2
