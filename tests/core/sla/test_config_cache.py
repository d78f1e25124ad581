"""The SLA setup cached for read paths (issue 20 item 4): fewer queries per `/tickets mine`, never a stale policy
in the process that changed it, and a bounded staleness in another process."""

from __future__ import annotations

import sqlalchemy as sa
from sqlmodel import select

from core.cache import ConfigCache
from core.sla.config import SlaConfigService
from core.sla.service import CONFIG_TABLES, SlaService
from store.db import Database, Scope
from store.tables import SlaPolicy, Workspace
from tests.core.sla.conftest import Sla

H = 3600.0


class Ticks:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def _resolution_target(sla: Sla, service: SlaService, ticket_id: int) -> float:
    _, results = await service.derive(sla.ws, [ticket_id])
    return next(r.state.target_s for r in results if r.metric.value == "resolution")


async def test_read_paths_load_the_setup_once_and_see_a_change_made_here_at_once(sla: Sla):
    t = await sla.tickets.create(sla.tech, subject="Printer", priority="high")
    assert t.summary.id is not None
    await _resolution_target(sla, sla.sla, t.summary.id)
    loads = sla.sla.configs.loads
    for _ in range(5):
        await sla.sla.remaining(sla.ws, [t.summary.id], sla.clock())
    assert sla.sla.configs.loads == loads  # served from memory: no policy/calendar/workspace queries

    await sla.config.set_policy(sla.ws, {"targets": {"high": {"resolution": "6h"}}})  # same process, same db
    # A new cycle or ticket uses the current policy at once (existing clocks keep theirs: config.py's rule).
    t2 = await sla.tickets.create(sla.tech, subject="Mail", priority="high")
    assert t2.summary.id is not None
    assert await _resolution_target(sla, sla.sla, t2.summary.id) == 6 * H
    assert sla.sla.configs.loads == loads + 1


async def test_a_timezone_or_calendar_written_by_any_code_here_drops_the_cache(sla: Sla):
    cfg, _ = await sla.sla.derive(sla.ws, [])
    assert cfg.timezone == "America/New_York"
    async with sla.db.write(Scope.workspace(sla.ws)) as s:  # not through SlaConfigService: a plain ORM write
        ws = (await s.exec(select(Workspace).where(Workspace.id == sla.ws))).one()
        ws.timezone = "Europe/Paris"
    cfg, _ = await sla.sla.derive(sla.ws, [])
    assert cfg.timezone == "Europe/Paris"
    await sla.config.set_calendar(sla.ws, "eu", timezone="Europe/Paris", windows="mon-fri 09:00-18:00")
    cfg, _ = await sla.sla.derive(sla.ws, [])
    assert "eu" in cfg.calendars
    async with sla.db.write(Scope.workspace(sla.ws)) as s:  # a DML statement, no ORM object
        await s.execute(sa.update(SlaPolicy).where(SlaPolicy.workspace_id == sla.ws).values(settings={}))
        await s.execute(sa.delete(SlaPolicy).where(SlaPolicy.workspace_id == sla.ws))
    await sla.config.set_policy(sla.ws, {"calendar": "eu"})
    cfg, _ = await sla.sla.derive(sla.ws, [])
    assert cfg.workspace_overrides == {"calendar": "eu"}


async def test_a_write_rolled_back_keeps_the_cache(sla: Sla):
    await sla.sla.derive(sla.ws, [])
    loads = sla.sla.configs.loads
    try:
        async with sla.db.write(Scope.workspace(sla.ws)) as s:
            ws = (await s.exec(select(Workspace).where(Workspace.id == sla.ws))).one()
            ws.timezone = "Europe/Paris"
            await s.flush()
            raise RuntimeError("abort")
    except RuntimeError:
        pass
    cfg, _ = await sla.sla.derive(sla.ws, [])
    assert cfg.timezone == "America/New_York" and sla.sla.configs.loads == loads


async def test_another_process_sees_a_policy_change_within_the_ttl(sla: Sla, db_url: str):
    """Two Database objects on one database are two processes as far as the cache can tell: the other one's
    commit listeners never run here, so only the TTL brings the change in."""
    ticks = Ticks()
    other_db = Database(db_url)
    try:
        other = SlaService(other_db, clock=sla.clock)
        other.configs = ConfigCache(other_db, CONFIG_TABLES, ttl=10.0, clock=ticks)
        cfg, _ = await other.derive(sla.ws, [])
        assert cfg.workspace_overrides == {}
        await SlaConfigService(sla.db, clock=sla.clock).set_policy(sla.ws, {"targets": {"low": {"resolution": "9h"}}})
        ticks.now += 9.9
        cfg, _ = await other.derive(sla.ws, [])
        assert cfg.workspace_overrides == {}  # still within the TTL: the old setup (the bounded staleness)
        ticks.now += 0.2
        cfg, _ = await other.derive(sla.ws, [])
        assert cfg.workspace_overrides == {"targets": {"low": {"resolution": 9 * 3600}}}
    finally:
        await other_db.dispose()


async def test_a_load_overtaken_by_a_change_is_not_kept(db: Database):
    cache: ConfigCache[str] = ConfigCache(db, ["sla_policy"])

    async def load_then_change() -> str:
        cache.clear()  # what a commit listener does while a slow load is still reading
        return "old"

    assert await cache.get("k", load_then_change) == "old"

    async def load() -> str:
        return "new"

    assert await cache.get("k", load) == "new" and cache.loads == 2
