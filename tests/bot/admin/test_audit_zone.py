"""The audit page speaks the workspace's time zone: an admin in New York who searches "from 2026-12-08" gets
what happened from their midnight (05:00 UTC), not from UTC's (19:00 the evening before), and every time on the
admin pages is shown in that zone, named. Fixed instants: nothing here depends on when the test runs."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import sqlalchemy as sa

from store.db import Scope
from store.tables import AuditLog, Workspace
from tests.bot.admin.helpers import sign_in
from tests.bot.api.conftest import Api

# 2026-12-07 22:30 in New York (EST, UTC-5) is 2026-12-08 03:30 UTC: the UTC day and the local day differ
EVENING = datetime(2026, 12, 8, 3, 30, tzinfo=UTC)
MORNING = datetime(2026, 12, 8, 14, 0, tzinfo=UTC)  # 2026-12-08 09:00 in New York
SUMMER = datetime(2026, 7, 1, 3, 30, tzinfo=UTC)  # 2026-06-30 23:30 in New York (EDT, UTC-4)


async def _rows(api: Api, zone: str) -> None:
    async with api.container.db.write(Scope.system_wide()) as s:
        await s.execute(sa.update(Workspace).where(Workspace.id == api.ws).values(timezone=zone))
    async with api.container.db.write(Scope.workspace(api.ws)) as s:
        for when, action in ((EVENING, "evening"), (MORNING, "morning"), (SUMMER, "summer")):
            s.add(AuditLog(workspace_id=api.ws, attempt=1, action=action, outcome="ok", actor="slack:U1 (Ana)",
                           created_at=when))


async def _search(api: Api, **params: str) -> list[tuple[str, str]]:
    r = await api.client.get("/admin/audit", params=params)
    assert r.status_code == 200, r.text
    return re.findall(r"<tr><td>([^<]+)</td><td>(\w+)</td>", r.text)


async def test_days_are_the_workspace_days_and_times_are_shown_in_its_zone(api: Api):
    await _rows(api, "America/New_York")
    await sign_in(api)
    assert await _search(api, since="2026-12-08") == [("2026-12-08 09:00:00 EST", "morning")]
    assert await _search(api, until="2026-12-07", since="2026-12-01") == [("2026-12-07 22:30:00 EST", "evening")]
    assert await _search(api, since="2026-12-07", until="2026-12-07") == [("2026-12-07 22:30:00 EST", "evening")]
    # a summer day is cut at the summer offset (EDT), and shown with it
    assert await _search(api, since="2026-06-30", until="2026-06-30") == [("2026-06-30 23:30:00 EDT", "summer")]
    assert await _search(api, since="2026-07-01", until="2026-07-01") == []
    # a time without a zone is the workspace's too; one with an offset is taken as written
    assert [a for _, a in await _search(api, since="2026-12-07T22:00")] == ["morning", "evening"]
    assert [a for _, a in await _search(api, since="2026-12-07T22:00", until="2026-12-07T23:00")] == ["evening"]
    assert [a for _, a in await _search(api, since="2026-12-08T04:00+00:00")] == ["morning"]
    page = (await api.client.get("/admin/audit")).text
    assert "America/New_York" in page  # the form says which day "2026-12-08" means


async def test_a_utc_workspace_keeps_utc_days(api: Api):
    await _rows(api, "UTC")
    await sign_in(api)
    assert await _search(api, since="2026-12-08") == [("2026-12-08 14:00:00 UTC", "morning"),
                                                      ("2026-12-08 03:30:00 UTC", "evening")]
    assert await _search(api, since="2026-12-07", until="2026-12-07") == []


async def test_an_unknown_zone_falls_back_to_utc_and_says_so(api: Api):
    """A zone this server's tz database does not know (a typo made before zones were checked, or an old
    tzdata): the page still answers, in UTC, and says that is what it used."""
    await _rows(api, "Mars/Olympus_Mons")
    await sign_in(api)
    assert [a for _, a in await _search(api, since="2026-12-08")] == ["morning", "evening"]
    page = (await api.client.get("/admin/audit")).text
    assert "UTC" in page and "2026-12-08 03:30:00 UTC" in page
