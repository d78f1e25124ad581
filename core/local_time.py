"""The workspace's local time: what a technician or an admin means by "today" or by a date is a day of the
workspace's IANA zone (`Workspace.timezone`, set with `deskbridge workspace create --timezone`), never UTC's.

A workspace that names no zone, or one this server's tz database does not know (an old tzdata, a row written
before zones were checked), gets UTC, and whoever shows the time names the zone it used.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from store.tables import Workspace

UTC_ZONE = ZoneInfo("UTC")


def zone_named(name: str | None) -> ZoneInfo:
    """The zone of an IANA name; UTC for none or an unknown one."""
    try:
        return ZoneInfo(name) if name else UTC_ZONE
    except (ZoneInfoNotFoundError, ValueError):
        return UTC_ZONE


async def workspace_zone(session: AsyncSession, workspace_id: int) -> ZoneInfo:
    """The workspace's zone (UTC when it names none or an unknown one)."""
    name = (await session.exec(select(Workspace.timezone).where(Workspace.id == workspace_id))).first()
    return zone_named(name)


def day_bounds(day: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The first and the last instant of a local day (23 or 25 hours apart on a DST change). The last is the
    instant before the next day's first: `time.max` of the day would miss the repeated hour of a zone that turns
    its clocks back at midnight (America/Santiago: 23:00-23:59 twice). It is given in UTC: the same local time in
    its second occurrence (fold=1) never compares equal to another zone's (PEP 495)."""
    first = datetime.combine(day, time.min, tzinfo=zone)
    after = datetime.combine(day + timedelta(days=1), time.min, tzinfo=zone).astimezone(UTC)
    return first, after - timedelta(microseconds=1)


def shown(when: datetime, zone: ZoneInfo) -> str:
    """'2026-12-07 22:30:00 EST': an instant as the workspace reads it, its zone named."""
    return when.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S %Z")
