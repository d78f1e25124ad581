"""The SLA page lists each calendar's holidays for the year it is in that calendar's zone: at 18:00 on
31 December in Los Angeles (02:00 UTC on 1 January) a Los Angeles calendar still shows 2026, a UTC one 2027."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from core.sla.config import SlaConfigService
from tests.bot.admin.helpers import sign_in
from tests.bot.api.conftest import Api

NEW_YEAR_UTC = datetime(2027, 1, 1, 2, 0, tzinfo=UTC)


async def test_each_calendar_shows_its_own_year(api: Api):
    api.container.sla_config = SlaConfigService(api.container.db, clock=lambda: NEW_YEAR_UTC)
    csrf = await sign_in(api)
    for name, tz in (("west", "America/Los_Angeles"), ("plain", "UTC")):
        r = await api.client.post("/admin/sla/calendar", data={"csrf": csrf, "name": name, "tz": tz,
                                                               "country": "US"})
        assert r.status_code == 303, r.text
    page = (await api.client.get("/admin/sla")).text
    years = dict(re.findall(r'id="calendar-([\w-]+)".*?holidays in (\d{4})', page, re.S))
    assert years["west"] == "2026" and years["plain"] == "2027", years
    assert "2026-12-25" in page  # the Los Angeles calendar's Christmas
