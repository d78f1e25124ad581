"""App Home open on one instance, refreshed by a PSA change applied on another (issue: "Home open" state was
per process). Two app instances (the real container and slack-bolt app each) on one database, the fake Slack
Web API over HTTP: a technician opens their Home through instance A; a reassignment in the PSA synced by
instance B publishes their Home once, from B. core/chat/home_views.py, bot/slack/home.py."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from bot.api.app import create_app
from bot.main import bootstrap, build
from connectors.sandbox.demo import sandbox_server, technician_changes_status
from core.chat import ChatUser
from core.context import Actor
from core.queue import QueueFilter
from store.db import Scope
from store.tables import HomeView
from tests.bot.slack import test_technician_day
from tests.bot.slack.conftest import TEAM, SlackHarness

day = test_technician_day.day  # instance A: the harness against the sandbox PSA, synced once


@pytest.fixture
async def other(day, fake_slack):
    """Instance B: its own container, bolt app and notifier on A's database, settings and fake Slack."""
    b = build(day.c.settings)
    await bootstrap(b)  # as a second instance starts: finds A's workspace and sandbox connection
    await b.slack.start()
    hb = SlackHarness(create_app(b, start_background=False), b, fake_slack, day.ws, None)
    yield hb
    await hb.settle()
    await hb.http.aclose()
    await b.aclose()


async def _reassignment(h):
    """A ticket with an assignee and another technician, both linked to Slack users (U_OLD, U_NEW)."""
    c = h.c
    members = [m for m in await c.directory.members(h.ws) if m.email]
    items = (await c.queue.list(Actor.system(h.ws), QueueFilter(), limit=100)).items
    target = next(t for t in items if t.assignee_id is not None)
    old = next(m for m in members if m.id == target.assignee_id)
    new = next(m for m in members if m.id != old.id)
    for uid, m in (("U_OLD", old), ("U_NEW", new)):
        h.fake.add_user(uid, email=m.email, name=m.name)
        await c.chat.link_user(h.ws, ChatUser(platform="slack", team_id=TEAM, user_id=uid), m.email)
    return target, new


async def test_a_home_opened_on_one_instance_is_refreshed_once_by_a_change_applied_on_another(day, other):
    a, b = day, other
    await b.c.slack.notifier.homes.fresh()  # B has read who has a Home open (nobody) before the open
    assert not b.c.slack.notifier.homes.any_open()
    target, new = await _reassignment(a)
    await a.event({"type": "app_home_opened", "user": "U_NEW", "tab": "home", "channel": "D1"}, event_id="EvNew")
    assert [p.args["user_id"] for p in a.fake.of("views.publish")] == ["U_NEW"]  # the open's own publish, by A
    async with a.c.db.read(Scope.workspace(a.ws)) as s:
        rows = (await s.execute(sa.select(HomeView.team_id, HomeView.user_id, HomeView.cursor))).all()
    assert [tuple(r) for r in rows] == [(TEAM, "U_NEW", None)]  # written by A, for every instance
    await asyncio.sleep(b.c.chat.home_views.ttl + 0.1)  # B's snapshot, read before the open, has expired
    a.fake.clear()
    reads = b.c.chat.home_views.reads
    technician_changes_status(sandbox_server(a.conn.settings), str(target.number), target.status_name,
                              technician=new.email)
    await b.c.sync.run(a.conn.id)  # the change is applied by instance B
    await b.settle()
    await a.settle()
    published = a.fake.of("views.publish")
    assert [p.args["user_id"] for p in published] == ["U_NEW"]  # once, for the technician whose Home is open
    assert f"#{target.number}" in json.dumps(published[0].args["view"]["blocks"])
    assert b.c.slack.notifier.homes.published == 1 and a.c.slack.notifier.homes.published == 0
    assert b.c.chat.home_views.reads - reads == 1  # one query for the whole sync's changes


async def test_a_home_nobody_has_looked_at_for_the_open_window_costs_no_refresh(day, other):
    a, b = day, other
    target, new = await _reassignment(a)
    await a.event({"type": "app_home_opened", "user": "U_NEW", "tab": "home", "channel": "D1"}, event_id="EvNew")
    window = b.c.slack.notifier.homes.open_for
    async with a.c.db.write(Scope.workspace(a.ws)) as s:  # the open was longer ago than the window
        await s.execute(sa.update(HomeView).values(opened_at=datetime.now(UTC) - timedelta(seconds=window + 60)))
    a.fake.clear()
    technician_changes_status(sandbox_server(a.conn.settings), str(target.number), target.status_name,
                              technician=new.email)
    await b.c.sync.run(a.conn.id)
    await b.settle()
    assert a.fake.of("views.publish") == [] and b.c.slack.notifier.homes.published == 0
    # the next open (on B this time) records it again, and deletes the workspace's rows past the window
    await b.event({"type": "app_home_opened", "user": "U_OLD", "tab": "home", "channel": "D1"}, event_id="EvOld")
    async with a.c.db.read(Scope.workspace(a.ws)) as s:
        users = (await s.execute(sa.select(HomeView.user_id))).scalars().all()
    assert users == ["U_OLD"]


async def test_the_page_a_home_shows_is_kept_for_refreshes_on_every_instance(day, other):
    """Paging in Home on A (real clicks): B's refresh publishes that page; opening the tab again (on B) puts
    both instances back on the first page of the technician's own queue."""
    from tests.bot.slack.test_notifier_lanes import _next_page, changed

    a, b = day, other
    target, _ = await _reassignment(a)
    owner = "U_OLD"  # the ticket's assignee: a change of it touches their queue
    await a.event({"type": "app_home_opened", "user": owner, "tab": "home", "channel": "D1"}, event_id="EvOwn")

    def home_click(value: str) -> dict[str, object]:
        p = a.action_payload("page", value, user=owner)
        p.pop("response_url"), p.pop("channel"), p.pop("message")
        p["container"] = {"type": "view", "view_id": "VHOME"}
        p["view"] = {"id": "VHOME", "type": "home"}
        return p

    await a.interactive(home_click(json.dumps({"f": "", "c": None})))  # every ticket, first page
    first = a.fake.of("views.publish")[-1].args["view"]
    value = _next_page(first)
    assert value is not None, "the sandbox has more than one page of tickets"
    await a.interactive(home_click(value))
    second = a.fake.of("views.publish")[-1].args["view"]
    assert second["blocks"] != first["blocks"]
    await asyncio.sleep(b.c.chat.home_views.ttl + 0.1)
    a.fake.clear()
    event = changed(target.id, stage=("new", "in_progress"))
    await b.c.slack.notifier.notify(replace(event, workspace_id=a.ws))  # the change reaches instance B only
    await b.settle()
    (refreshed,) = [p.args["view"] for p in a.fake.of("views.publish") if p.args["user_id"] == owner]
    assert refreshed["blocks"][0] == second["blocks"][0] and _next_page(refreshed) == _next_page(second)
    assert b.c.slack.notifier.homes.published == 1 and a.c.slack.notifier.homes.published == 0
    # opening again, on B this time, shows the first page: A's refreshes show it too from then on
    await b.event({"type": "app_home_opened", "user": owner, "tab": "home", "channel": "D1"}, event_id="EvOwn2")
    await asyncio.sleep(a.c.chat.home_views.ttl + 0.1)
    a.fake.clear()
    await a.c.slack.notifier.notify(replace(changed(target.id, stage=("in_progress", "new")), workspace_id=a.ws))
    await a.settle()
    (mine,) = [p.args["view"] for p in a.fake.of("views.publish") if p.args["user_id"] == owner]
    assert "My tickets" in json.dumps(mine["blocks"][0]) and f"#{target.number}" in json.dumps(mine["blocks"])
