"""Time logged without a start ("log 30m") starts now minus its length, told in the workspace's time zone, so the
PSA files it under the technician's day (connectors read the date from the start as given: Autotask dateWorked)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlmodel import select

from store.db import Scope
from store.tables import OutboxOp, Workspace


async def _log(rig, zone: str | None) -> datetime:
    if zone is not None:
        async with rig.db.write(Scope.system_wide()) as s:
            await s.execute(sa.update(Workspace).where(Workspace.id == rig.tech.workspace_id).values(timezone=zone))
    rig.clock.now = datetime(2026, 12, 8, 2, 0, tzinfo=UTC)
    tid = await rig.synced_ticket("77")
    await rig.tickets.log_time(rig.tech, 77, 30, notes="Late call")
    async with rig.db.read(Scope.system_wide()) as s:
        [op] = (await s.exec(select(OutboxOp).where(OutboxOp.ticket_id == tid))).all()
    return datetime.fromisoformat(op.payload["started_at"])


async def test_a_start_we_pick_is_in_the_workspace_zone(rig):
    start = await _log(rig, "America/Los_Angeles")
    assert start == datetime(2026, 12, 8, 1, 30, tzinfo=UTC)  # the same instant
    assert start.utcoffset() == timedelta(hours=-8) and start.date().isoformat() == "2026-12-07"


async def test_an_unknown_zone_falls_back_to_utc(rig):
    start = await _log(rig, "Mars/Olympus_Mons")
    assert start == datetime(2026, 12, 8, 1, 30, tzinfo=UTC) and start.utcoffset() == timedelta(0)


async def test_a_start_given_in_utc_is_filed_under_the_workspace_day(rig):
    """A start that arrives with another offset (UTC, from an API or a form) is the same instant told in the
    workspace's zone: 03:00 UTC on the 8th is 19:00 on the 7th in Los Angeles, the day the PSA must file it under."""
    async with rig.db.write(Scope.system_wide()) as s:
        await s.execute(sa.update(Workspace).where(Workspace.id == rig.tech.workspace_id)
                        .values(timezone="America/Los_Angeles"))
    tid = await rig.synced_ticket("78")
    await rig.tickets.log_time(rig.tech, 78, 45, started_at=datetime(2026, 12, 8, 3, 0, tzinfo=UTC))
    async with rig.db.read(Scope.system_wide()) as s:
        [op] = (await s.exec(select(OutboxOp).where(OutboxOp.ticket_id == tid))).all()
    start = datetime.fromisoformat(op.payload["started_at"])
    assert start == datetime(2026, 12, 8, 3, 0, tzinfo=UTC) and start.date().isoformat() == "2026-12-07"
