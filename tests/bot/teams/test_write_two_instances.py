"""Two Deskbridge instances on one database (SQLite file here, PostgreSQL with DESKBRIDGE_TEST_DATABASE_URL), each
its own app, Teams surface and hold memory: the same write click delivered to both (Teams redelivers to whichever
instance its load balancer picks) is one write. What guarantees it is the click's once-only claim, a row in the
shared database (`ChatService.first_time`), not the per-process hold memory; the instance that finds the click
claimed writes nothing and answers with the card as it is now (never "saving", which it would not follow up)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from bot.api.app import create_app
from bot.main import build
from tests.bot.teams.conftest import TeamsHarness, teams_settings, text_of
from tests.bot.teams.test_write_hold import TIME, answer_card, card_in_channel, click, time_ops, updates_of


async def second_instance(h: Any, db_url: str, tmp_path: Any) -> TeamsHarness:
    container = build(teams_settings(db_url, tmp_path / "second", h.fake))
    container.default_workspace_id = h.ws
    await container.teams.start()
    return TeamsHarness(create_app(container, start_background=False), container, h.fake, h.ws, h.setup)


async def close(h: TeamsHarness) -> None:
    await h.settle()
    await h.http.aclose()
    await h.c.aclose()


async def test_one_click_delivered_to_two_instances_at_once_is_one_write(teams, db_url, tmp_path):
    (tmp_path / "second").mkdir()
    other = await second_instance(teams, db_url, tmp_path)
    try:
        card_id = await card_in_channel(teams)
        body = click(teams, card_id, TIME)
        first, second = await asyncio.gather(teams.send(body, settle=False), other.send(body, settle=False))
        await asyncio.gather(teams.settle(), other.settle())
        assert len(await time_ops(teams)) == 1
        answers = [json.dumps(answer_card(r)) for r in (first, second)]
        assert sum("1 write(s) queued for the PSA." in a for a in answers) >= 1
        assert not any("Saving your" in a for a in answers)  # neither said "saving" (both waited: budget 0)
        assert all("#5001 VPN down" in text_of({"value": answer_card(r)}) for r in (first, second))
        # and again, later, to each: still one write, the card as it is
        for h in (teams, other):
            late = await h.send(body)
            assert "1 write(s) queued for the PSA." in json.dumps(answer_card(late))
        assert len(await time_ops(teams)) == 1
    finally:
        await close(other)


async def test_a_held_click_redelivered_to_another_instance_is_one_write_and_one_follow_up(teams, db_url, tmp_path):
    (tmp_path / "second").mkdir()
    other = await second_instance(teams, db_url, tmp_path)
    try:
        card_id = await card_in_channel(teams)
        teams.c.teams.holds.hold_s = 0.0  # the first instance answers "saving" at once
        body = click(teams, card_id, TIME)
        resp = await teams.send(body, settle=False)
        assert "Saving your time entry on #5001" in resp.text
        await teams.settle()
        again = await other.send(body)  # Teams retries the click on the other instance
        shown = json.dumps(answer_card(again))
        assert "1 write(s) queued for the PSA." in shown and "Saving" not in shown
        assert len(await time_ops(teams)) == 1
        assert len(updates_of(teams, card_id)) == 1  # the first instance's follow-up, and no other
    finally:
        await close(other)
