"""`/deskbridge settings timezone ZONE` from Slack: an admin changes the day the workspace means by a date, a
wrong name is refused with an example and changes nothing, a technician cannot change it, and the settings list
shows it."""

from __future__ import annotations

import json

from tests.bot.slack.conftest import ADMIN, TECH


async def _say(h, text: str, user: str = ADMIN) -> str:
    await h.slash("/deskbridge", text, user=user)
    return json.dumps(h.fake.webhooks[-1], ensure_ascii=False)


async def test_timezone_from_chat(slack):
    said = await _say(slack, "settings timezone America/New_York")
    assert "timezone is now America/New_York" in said and "sla calendar set" in said
    assert await slack.c.workspaces.timezone_of(slack.ws) == "America/New_York"
    said = await _say(slack, "settings timezone Eastern")
    assert "'Eastern' is not a time zone" in said and "Europe/Berlin" in said
    said = await _say(slack, "settings timezone UTC", user=TECH)
    assert "timezone is now" not in said
    assert await slack.c.workspaces.timezone_of(slack.ws) == "America/New_York"
    assert "timezone = America/New_York" in await _say(slack, "settings")
