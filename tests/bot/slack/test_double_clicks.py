"""One intent is one write on the newer buttons: a technician's double click (two distinct clicks, sent by
Slack one after the other or at the same moment) on "Use <category>", "Undo" and a draft's Approve queues one
outbox op, and the second click is told it was already done."""

from __future__ import annotations

import asyncio
import json

import pytest

from core.chat import cards
from core.context import Actor
from tests.bot.slack.test_ai_actions import _button, _card, ops, train_workspace
from tests.bot.slack.test_slack_surfaces import ephemeral_click


@pytest.fixture
async def trained(slack, monkeypatch):
    monkeypatch.setattr(cards, "AI_BUDGET_S", 60.0)
    return await train_workspace(slack)


async def _clicks(h, payloads, *, together: bool) -> None:
    if together:
        await asyncio.gather(*(h.interactive(p, settle=False) for p in payloads))
        await h.settle()
    else:
        for p in payloads:
            await h.interactive(p)


@pytest.mark.parametrize("together", [False, True])
async def test_use_category_clicked_twice_queues_one_update(trained, together):
    h = trained
    await h.slash("/ticket", "5004")
    post = _card(h)
    use = _button(post, "ai_accept_category")
    clicks = [h.action_payload("ai_accept_category", use["value"], message_ts=post.args.get("ts")) for _ in range(2)]
    await _clicks(h, clicks, together=together)
    assert [o.kind for o in await ops(h)] == ["update_ticket"]


@pytest.mark.parametrize("together", [False, True])
async def test_approve_draft_clicked_twice_at_once_queues_one_reply(trained, together):
    h = trained
    await h.c.ai.set_setting(Actor.system(h.ws), "drafts", "on")
    await h.slash("/ticket", "5004")
    post = _card(h)
    ask = _button(post, "ai_draft")
    h.fake.webhooks.clear()
    await h.interactive(h.action_payload("ai_draft", ask["value"], message_ts=post.args.get("ts")))
    (hook,) = [w for w in h.fake.webhooks if "Reply draft" in json.dumps(w)]
    approve = next(e for b in hook["blocks"] for e in b.get("elements", [])
                   if e.get("action_id") == "db_ai_draft_approve")
    before = len(await ops(h))
    await _clicks(h, [ephemeral_click(h, "ai_draft_approve", approve["value"]) for _ in range(2)],
                  together=together)
    assert [o.kind for o in (await ops(h))[before:]] == ["add_note"]


@pytest.mark.parametrize("together", [False, True])
async def test_undo_of_the_ais_category_clicked_twice_queues_one_way_back(trained, together):
    h = trained
    admin = Actor.system(h.ws)
    await h.c.ai.set_setting(admin, "auto_apply", "on")
    await h.c.ai.set_setting(admin, "fill_threshold", "0.5")
    await h.c.ai.auto_categorise(h.ws)
    await h.slash("/ticket", "5004")
    post = _card(h)
    undo = _button(post, "ai_undo_category")
    before = len(await ops(h))
    clicks = [h.action_payload("ai_undo_category", undo["value"], message_ts=post.args.get("ts")) for _ in range(2)]
    await _clicks(h, clicks, together=together)
    new = (await ops(h))[before:]
    assert len(new) == 1 and new[0].payload.get("clear_type") is True
