"""AI buttons on a technician's Slack card (the real bolt app, the fake Slack Web API): "Use <category>"
queues the type for the PSA through the outbox; the AI's own category shows its confidence and an Undo that
queues the way back; neither appears for a customer."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from slack_sdk.models.blocks import Block
from sqlmodel import select

from core.chat import cards
from core.context import Actor
from store.db import Scope
from store.enums import Priority, Stage
from store.tables import OutboxOp, PicklistItem, Ticket
from tests.bot.slack.conftest import CHANNEL
from tests.core.ai.test_categorize import corpus
from tests.factories import BOARD


async def ops(h):
    async with h.c.db.read(Scope.workspace(h.ws)) as s:
        return list((await s.exec(select(OutboxOp).order_by(OutboxOp.id))).all())


@pytest.fixture
async def trained(slack, monkeypatch):
    monkeypatch.setattr(cards, "AI_BUDGET_S", 60.0)  # these tests read the suggestions, however loaded the machine
    return await train_workspace(slack)


async def train_workspace(slack):
    """Closed labelled history, the board's types in the picklist, ticket 5004 to categorise; a trained model."""
    ws, setup = slack.ws, slack.setup
    texts, labels = corpus(110)
    t0 = datetime(2026, 3, 1, tzinfo=UTC)
    async with slack.c.db.write(Scope.workspace(ws)) as s:
        for i, (text, label) in enumerate(zip(texts, labels, strict=True)):
            s.add(Ticket(workspace_id=ws, number=60_000 + i, subject=text, priority=Priority.MEDIUM.value,
                         stage=Stage.CLOSED.value, type_name=label, closed_at=t0 + timedelta(minutes=i)))
        for ext, name in (("31", "Access"), ("32", "Hardware"), ("33", "Purchase")):
            s.add(PicklistItem(workspace_id=ws, connection_id=setup.connection_id, kind="type",
                               parent_external_id=BOARD, external_id=ext, name=name))
        s.add(Ticket(workspace_id=ws, number=5004, external_id="5004", connection_id=setup.connection_id,
                     customer_id=setup.customer_id, subject="password reset account locked cannot login",
                     priority="medium", stage="new", psa_status_id="10", psa_status_name="New",
                     board_external_id=BOARD, board_name="Service Desk", source="psa"))
    await slack.c.ai.train(ws)
    return slack


def _card(h):
    post = h.fake.of("chat.postMessage")[-1]
    for b in post.args["blocks"]:
        Block.parse(b).validate_json()
    return post


def _button(post, action):
    for b in post.args["blocks"]:
        for e in b.get("elements", []):
            if e.get("action_id") == f"db_{action}":
                return e
    return None


async def test_use_the_suggested_category_in_one_click(trained):
    h = trained
    await h.slash("/ticket", "5004")
    post = _card(h)
    text = json.dumps(post.args["blocks"])
    assert "Suggested category: Access" in text and "%" in text
    use = _button(post, "ai_accept_category")
    assert use is not None and use["text"]["text"] == "Use Access"
    await h.interactive(h.action_payload("ai_accept_category", use["value"], message_ts=post.args.get("ts")))
    (op,) = await ops(h)
    assert op.kind == "update_ticket" and op.payload["type_external_id"] == "31"
    assert "slack:" in op.actor  # the technician's write, not the AI's
    hooks = [w for w in h.fake.webhooks if "Category set to Access" in json.dumps(w)]
    posts = [c for c in h.fake.of("chat.postMessage") if "Category set to Access" in json.dumps(c.args)]
    assert hooks or posts


async def test_the_ais_category_shows_its_confidence_and_undo_queues_the_way_back(trained):
    h = trained
    admin = Actor.system(h.ws)
    await h.c.ai.set_setting(admin, "auto_apply", "on")
    await h.c.ai.set_setting(admin, "fill_threshold", "0.5")
    assert await h.c.ai.auto_categorise(h.ws) == 2  # 5004 (Access) and 5002 "Printer jammed" (Hardware)
    await h.slash("/ticket", "5004")
    post = _card(h)
    text = json.dumps(post.args["blocks"])
    assert "Category set by AI: Access (" in text and "undo puts back no category" in text
    undo = _button(post, "ai_undo_category")
    assert undo is not None and _button(post, "ai_accept_category") is None
    await h.interactive(h.action_payload("ai_undo_category", undo["value"], message_ts=post.args.get("ts")))
    async with h.c.db.read(Scope.workspace(h.ws)) as s:
        tid = (await s.exec(select(Ticket.id).where(Ticket.number == 5004))).one()
    first, second = [o for o in await ops(h) if o.ticket_id == tid]
    assert first.payload["type_external_id"] == "31" and first.actor.startswith("ai:category")
    assert second.payload["clear_type"] is True and "slack:" in second.actor
    async with h.c.db.read(Scope.workspace(h.ws)) as s:
        ticket = (await s.exec(select(Ticket).where(Ticket.number == 5004))).one()
    assert ticket.type_name is None
    assert await h.c.ai.auto_categorise(h.ws) == 0  # the technician decided


async def test_no_ai_buttons_in_a_customer_channel(trained):
    h = trained
    await h.slash("/deskbridge", "bind customer ACME", user="U_ADMIN", channel="C_CUST")
    await h.slash("/ticket", "5004", channel="C_CUST")
    calls = [c for c in h.fake.calls if c.args.get("channel") == "C_CUST" and c.args.get("blocks")]
    assert calls and all(_button(c, "ai_accept_category") is None for c in calls)
    assert all("AI suggestions" not in json.dumps(c.args["blocks"]) for c in calls)
    assert CHANNEL != "C_CUST"
