"""AI assist on Teams cards (the real Teams SDK app, Action.Execute invokes): suggestions with confidence and
source on a technician's card, Undo of the AI's category, and reply drafts only in the technician's 1:1 chat
(Approve sends exactly the text shown)."""

from __future__ import annotations

import json
from typing import Any

import pytest
import sqlalchemy as sa

from bot.teams import cards
from core.chat import cards as chat_cards
from core.context import Actor
from store.db import Scope
from store.tables import AiDraft, OutboxOp, Ticket
from tests.bot.slack.test_ai_actions import train_workspace
from tests.bot.teams.conftest import text_of
from tests.bot.teams.test_commands import assert_valid_card

PERSONAL = "a:personal-bob"


async def invoke(h, data: dict[str, Any], *, ctype: str = "channel", conversation: str | None = None):
    extra = {"conversation": conversation} if conversation else {}
    body = h.activity(kind="invoke", name="adaptiveCard/action", ctype=ctype,
                      value={"action": {"type": "Action.Execute", "verb": cards.VERB, "data": data},
                             "trigger": "manual"}, **extra)
    resp = await h.send(body)
    assert resp.status_code == 200
    return resp.json()


async def ops(h) -> list[OutboxOp]:
    async with h.c.db.read(Scope.workspace(h.ws)) as s:
        return list((await s.exec(sa.select(OutboxOp).order_by(OutboxOp.id))).scalars().all())


@pytest.fixture
async def trained(teams, monkeypatch):
    monkeypatch.setattr(chat_cards, "AI_BUDGET_S", 60.0)
    await train_workspace(teams)
    admin = Actor.system(teams.ws)
    for name, value in (("auto_apply", "on"), ("fill_threshold", "0.5"), ("drafts", "on")):
        await teams.c.ai.set_setting(admin, name, value)
    assert await teams.c.ai.auto_categorise(teams.ws) >= 1
    async with teams.c.db.read(Scope.workspace(teams.ws)) as s:
        teams.ticket_id = (await s.exec(sa.select(Ticket.id).where(Ticket.number == 5004))).scalar_one()
    return teams


def _actions(card: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "Action.Execute":
                found[node["data"]["action"]] = node["data"]
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(card)
    return found


async def test_the_card_shows_the_ais_category_and_undo_queues_the_way_back(trained):
    h = trained
    out = await invoke(h, {"action": "open", "ref": "5004"})
    card = out["value"]
    assert_valid_card(card)
    text = text_of({"value": card})
    assert "AI suggestions" in text and "Category set by AI: Access (" in text and "trained on this workspace" in text
    buttons = _actions(card)
    assert {"ai_undo_category", "ai_draft"} <= set(buttons)
    before = len(await ops(h))
    out = await invoke(h, buttons["ai_undo_category"])
    assert_valid_card(out["value"])
    assert "AI category undone" in text_of({"value": out["value"]})
    new = (await ops(h))[before:]
    assert len(new) == 1 and new[0].payload["clear_type"] is True


async def test_a_draft_asked_for_in_a_channel_opens_only_in_the_1to1_chat(trained):
    h = trained
    out = await invoke(h, {"action": "ai_draft", "ref": f"id:{h.ticket_id}"})
    assert "only to you" in json.dumps(out)
    async with h.c.db.read(Scope.workspace(h.ws)) as s:
        assert (await s.exec(sa.select(AiDraft))).all() == []


async def test_approve_in_the_1to1_chat_sends_exactly_the_draft(trained):
    h = trained
    out = await invoke(h, {"action": "ai_draft", "ref": f"id:{h.ticket_id}"}, ctype="personal",
                       conversation=PERSONAL)
    card = out["value"]
    assert_valid_card(card)
    async with h.c.db.read(Scope.workspace(h.ws)) as s:
        (draft,) = (await s.exec(sa.select(AiDraft))).scalars().all()
    assert draft.text[:200] in text_of({"value": card}) and "review before sending" in text_of({"value": card})
    buttons = _actions(card)
    assert set(buttons) == {"ai_draft_approve", "ai_draft_edit", "ai_draft_discard"}
    before = len(await ops(h))
    out = await invoke(h, buttons["ai_draft_approve"], ctype="personal", conversation=PERSONAL)
    assert "Draft approved" in text_of({"value": out["value"]})
    new = (await ops(h))[before:]
    assert len(new) == 1 and new[0].kind == "add_note"
    assert new[0].payload["text"] == draft.text and new[0].payload["visibility"] == "public"


async def test_a_ticket_newly_at_risk_is_posted_to_the_sla_channel_once_and_never_where_the_customer_reads(teams):
    """core/ai/risk_posts.py through the real Teams notifier: the sla channel gets one card per rise with the
    score and reasons; a channel shared with the customer gets nothing."""
    from datetime import UTC, datetime

    import sqlalchemy as sa

    from store.db import Scope
    from store.tables import AiRisk, Ticket
    from tests.bot.teams.conftest import CHANNEL, text_of
    from tests.bot.teams.test_threads import make_admin

    await make_admin(teams)
    await teams.say("bind sla")
    async with teams.c.db.write(Scope.workspace(teams.ws)) as s:
        tid = (await s.exec(sa.select(Ticket.id).where(Ticket.number == 5002))).scalar_one()
        s.add(AiRisk(workspace_id=teams.ws, ticket_id=tid, score=0.77, model_version=1, ticket_version=0,
                     reasons=[["priority=low", 0.2], ["reassignments", 0.5]], scored_at=datetime.now(UTC)))
    teams.fake.clear()
    assert await teams.c.ai.risk.announce(teams.ws) == [tid]
    assert await teams.c.ai.risk.announce(teams.ws) == []
    await teams.settle()
    [post] = [c for c in teams.fake.of("create") if c.conversation_id == CHANNEL]
    text = text_of(post.body)
    assert "At risk of escalation: 77%" in text and "#5002 Printer jammed" in text and "reassigned so far" in text
    await teams.say("unbind")
    await teams.say("bind customer GLOBEX shared")
    await teams.say("bind sla")
    assert "bound to sla alerts" in teams.last_text() and "customer's people read this channel" in teams.last_text()
    async with teams.c.db.write(Scope.workspace(teams.ws)) as s:
        await s.execute(sa.text("DELETE FROM ai_risk_alert"))
    teams.fake.clear()
    assert await teams.c.ai.risk.announce(teams.ws) == [tid]  # a new rise, but the channel is the customer's
    await teams.settle()
    assert [c for c in teams.fake.of("create") if c.conversation_id == CHANNEL] == []
