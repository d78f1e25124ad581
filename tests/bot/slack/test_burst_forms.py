"""A burst of clicks that open forms (bot/slack/context.py open_modal): one Slack call per form while the
triggers are young, "Loading…" first for old triggers, and no pile of builds when the database is slow.

The burst is made by construction: every post-ack worker is held (`workers_held`) while the clicks are acked, so
when the workers are let go every click's job finds the others still waiting for a worker."""

from __future__ import annotations

import asyncio
import json

from slack_sdk.models.views import View

from bot.slack import context as slack_context
from tests.bot.slack.conftest import production_budgets

CLICKS = 12


async def burst(slack, n=CLICKS):
    clicks = [slack.action_payload("status", str(5001 + k % 3), message_ts="1700000000.000100") for k in range(n)]
    async with slack.workers_held():
        for c in clicks:
            resp = await slack.interactive(c, settle=False)
            assert resp.status_code == 200
    await slack.settle()
    return clicks


def watch_builds(slack, monkeypatch, delay=0.0):
    """Wrap the status form's build: how many builds ran at once, and how many clicks were waiting meanwhile."""
    views = slack.c.slack.context.views
    real = views.status_form
    seen = {"running": 0, "most": 0, "waiting": [], "built": 0}

    async def build(*a, **kw):
        seen["running"] += 1
        seen["most"] = max(seen["most"], seen["running"])
        seen["waiting"].append(slack.c.slack.context.work.triggers_waiting)
        try:
            if delay:
                await asyncio.sleep(delay)
            return await real(*a, **kw)
        finally:
            seen["running"] -= 1
            seen["built"] += 1

    monkeypatch.setattr(views, "status_form", build)
    return seen


def filled_after_opened(opens, updates):
    """Every form update fills a "Loading…" opened before it: the k-th update follows at least k opens."""
    first_opens = sorted(c.at for c in opens)
    return all(first_opens[k] <= u.at for k, u in enumerate(sorted(updates, key=lambda u: u.at)))


def loading(call):
    return "Loading" in json.dumps(call.args["view"])


async def test_a_burst_of_young_clicks_opens_each_form_in_one_call(slack, monkeypatch):
    """Every trigger is used once, for the form itself: no "Loading…" and no views.update, although the clicks
    behind were waiting for a worker while each form was built."""
    monkeypatch.setattr(slack_context, "TRIGGER_SAFE_S", 60.0)  # the ages a loaded machine reaches (harness)
    seen = watch_builds(slack, monkeypatch)
    clicks = await burst(slack)
    opened = slack.fake.of("views.open")
    assert sorted(c.args["trigger_id"] for c in opened) == sorted(c["trigger_id"] for c in clicks)
    assert not [c for c in opened if loading(c)]
    assert all(c.args["view"]["callback_id"] == "db_form_status" for c in opened)
    for c in opened:
        View(**c.args["view"]).validate_json()
    assert slack.fake.of("views.update") == []
    assert max(seen["waiting"]) > 0  # built while other clicks waited: the burst path, not the lone click's


async def test_in_a_burst_an_old_trigger_opens_loading_at_once_and_gets_its_form_after(slack, monkeypatch):
    """Past YOUNG_TRIGGER_S since its ack, a click in a burst uses its trigger for "Loading…" before any build;
    its form follows by views.update (as every click in a burst did before)."""
    monkeypatch.setattr(slack_context, "YOUNG_TRIGGER_S", 0.0)  # every trigger is old
    seen = watch_builds(slack, monkeypatch)
    clicks = await burst(slack)
    opened = slack.fake.of("views.open")
    assert sorted(c.args["trigger_id"] for c in opened) == sorted(c["trigger_id"] for c in clicks)
    early = [c for c in opened if loading(c)]
    assert len(early) >= CLICKS - slack.c.slack.context.work.workers  # all but the last few ran in the burst
    forms = [u for u in slack.fake.of("views.update") if u.args["view"].get("callback_id") == "db_form_status"]
    assert len(forms) == len(early) and seen["built"] == CLICKS
    assert filled_after_opened(early, forms)


async def test_production_budgets_keep_a_burst_trigger_well_inside_slacks_three_seconds(monkeypatch):
    production_budgets(monkeypatch)
    assert slack_context.YOUNG_TRIGGER_S + slack_context.BUSY_BUDGET_S < slack_context.TRIGGER_SAFE_S < 3.0
    assert slack_context.BUSY_BUDGET_S < slack_context.FORM_BUDGET_S


async def test_a_slow_database_in_a_burst_shows_loading_and_does_not_pile_up_builds(slack, monkeypatch):
    """Builds that overrun BUSY_BUDGET_S open "Loading…", finish beside the workers and fill their modal; while
    one is still running, the next clicks open "Loading…" at once and build inside the workers. So at most the
    workers' first builds run beside them: never one build per click."""
    production_budgets(monkeypatch)
    monkeypatch.setattr(slack_context, "BUSY_BUDGET_S", 0.05)
    monkeypatch.setattr(slack_context, "TRIGGER_SAFE_S", 60.0)  # the ages a loaded machine reaches (harness)
    monkeypatch.setattr(slack_context, "YOUNG_TRIGGER_S", 60.0)
    seen = watch_builds(slack, monkeypatch, delay=0.5)
    n = 24
    clicks = await burst(slack, n)
    workers = slack.c.slack.context.work.workers
    assert seen["most"] <= 2 * workers, seen["most"]  # without the rule: one build running per click (24)
    opened = slack.fake.of("views.open")
    assert sorted(c.args["trigger_id"] for c in opened) == sorted(c["trigger_id"] for c in clicks)
    early = [c for c in opened if loading(c)]  # no 0.5 s build fits 0.05 s; the last few had no one behind them
    assert len(early) >= n - workers
    forms = [u for u in slack.fake.of("views.update") if u.args["view"].get("callback_id") == "db_form_status"]
    assert len(forms) == len(early) and seen["built"] == n
    assert filled_after_opened(early, forms)
    assert slack.c.slack.context._overran == 0  # every overrun build was counted back when it ended
