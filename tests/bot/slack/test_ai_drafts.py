"""Reply drafts on Slack (the real bolt app, the fake Slack Web API): a draft is shown to the technician who
asked for it alone; Approve sends exactly the text shown as their public reply, once; Edit opens the reply
form with it; Discard sends nothing; every choice is logged."""

from __future__ import annotations

import json

import pytest
from slack_sdk.models.blocks import Block
from sqlmodel import select

from core.chat import cards
from core.context import Actor
from core.errors import PermissionDenied
from store.db import Scope
from store.enums import Origin
from store.tables import AiDraft, Ticket
from tests.bot.slack.test_ai_actions import _button, _card, ops, train_workspace
from tests.bot.slack.test_slack_surfaces import ephemeral_click, note_values, submission


@pytest.fixture
async def trained(slack, monkeypatch):
    monkeypatch.setattr(cards, "AI_BUDGET_S", 60.0)  # these tests read the card's AI part, however loaded the machine
    return await train_workspace(slack)


async def drafts(h) -> list[AiDraft]:
    async with h.c.db.read(Scope.workspace(h.ws)) as s:
        return list((await s.exec(select(AiDraft).order_by(AiDraft.id))).all())


async def _offer(h) -> tuple[AiDraft, dict]:
    """Ask for a draft from the card's button; the draft comes back to the clicker alone."""
    await h.slash("/ticket", "5004")
    post = _card(h)
    ask = _button(post, "ai_draft")
    assert ask is not None and ask["text"]["text"] == "Draft a reply"
    h.fake.webhooks.clear()
    await h.interactive(h.action_payload("ai_draft", ask["value"], message_ts=post.args.get("ts")))
    (hook,) = [w for w in h.fake.webhooks if "Reply draft" in json.dumps(w)]
    assert hook["response_type"] == "ephemeral" and hook["replace_original"] is False
    for b in hook["blocks"]:
        Block.parse(b).validate_json()
    row = (await drafts(h))[-1]
    assert row.status == "offered" and row.kind == "template"
    return row, hook


async def test_no_draft_button_until_an_admin_turns_drafts_on(trained):
    await trained.slash("/ticket", "5004")
    assert _button(_card(trained), "ai_draft") is None


async def test_approve_sends_exactly_the_draft_as_the_public_reply_once(trained):
    h = trained
    await h.c.ai.set_setting(Actor.system(h.ws), "drafts", "on")
    row, hook = await _offer(h)
    shown = json.dumps(hook["blocks"])
    assert "Thank you for reporting: password reset account locked cannot login." in shown
    assert "Template draft (no AI model): review before sending." in shown  # the label, beside the text
    approve = next(e for b in hook["blocks"] for e in b.get("elements", []) if e.get("action_id") == "db_ai_draft_approve")
    before = len(await ops(h))
    await h.interactive(ephemeral_click(h, "ai_draft_approve", approve["value"]))
    new = (await ops(h))[before:]
    assert len(new) == 1 and new[0].kind == "add_note"
    assert new[0].payload["text"] == row.text and new[0].payload["visibility"] == "public"
    assert "Template draft" not in new[0].payload["text"] and "review before sending" not in new[0].payload["text"]
    assert "slack:" in new[0].actor  # the technician's reply, through the normal reply path
    (decided,) = await drafts(h)
    assert decided.status == "approved" and decided.decided_by and decided.decided_at
    h.fake.webhooks.clear()
    await h.interactive(ephemeral_click(h, "ai_draft_approve", approve["value"]))  # a second click
    assert len(await ops(h)) == before + 1
    assert any("already approved" in json.dumps(w) for w in h.fake.webhooks)


async def test_discard_sends_nothing_and_is_logged(trained):
    h = trained
    await h.c.ai.set_setting(Actor.system(h.ws), "drafts", "on")
    row, hook = await _offer(h)
    before = len(await ops(h))
    await h.interactive(ephemeral_click(h, "ai_draft_discard", str(row.id)))
    assert len(await ops(h)) == before
    assert (await drafts(h))[-1].status == "discarded"
    assert any("Draft discarded; nothing was sent." in json.dumps(w) for w in h.fake.webhooks)


async def test_edit_opens_the_reply_form_with_the_draft_and_sends_what_the_technician_wrote(trained):
    h = trained
    await h.c.ai.set_setting(Actor.system(h.ws), "drafts", "on")
    row, _ = await _offer(h)
    before = len(await ops(h))
    await h.interactive(ephemeral_click(h, "ai_draft_edit", str(row.id)))
    view = h.last_view()
    prefilled = [e.get("initial_value") for b in view["blocks"] if b.get("element")
                 for e in [b["element"]] if e.get("type") == "plain_text_input"]
    assert row.text[:3000] in prefilled
    assert (await drafts(h))[-1].status == "edited"
    edited = row.text.replace("Hello,", "Hi Pat,")
    resp = await h.interactive(submission(view, note_values(edited, visibility="public")))
    assert resp.status_code == 200
    new = (await ops(h))[before:]
    assert len(new) == 1 and new[0].payload["text"] == edited and new[0].payload["visibility"] == "public"


async def test_a_draft_is_for_technicians_only(trained):
    h = trained
    await h.c.ai.set_setting(Actor.system(h.ws), "drafts", "on")
    row, _ = await _offer(h)
    customer = Actor(workspace_id=h.ws, origin=Origin.SLACK, is_member=False,
                     customer_scope_id=h.setup.customer_id)
    runner = h.c.chat_commands
    for call in (lambda: runner.draft_offer(customer, "5004"), lambda: runner.action(customer, "ai_draft_approve",
                                                                                      str(row.id))):
        try:
            await call()
        except PermissionDenied:
            continue
        raise AssertionError("a customer reached a draft")
    assert (await drafts(h))[-1].status == "offered"


async def test_a_draft_asked_for_in_a_ticket_modal_opens_on_top_and_approve_sends_it(trained):
    from slack_sdk.models.views import View

    h = trained
    await h.c.ai.set_setting(Actor.system(h.ws), "drafts", "on")
    async with h.c.db.read(Scope.workspace(h.ws)) as s:
        tid = (await s.exec(select(Ticket.id).where(Ticket.number == 5004))).one()
    click = h.action_payload("ai_draft", f"id:{tid}", channel=None)
    click.pop("channel")
    click.pop("response_url")
    click["container"] = {"type": "view", "view_id": "VTICKET"}
    click["view"] = {"id": "VTICKET", "type": "modal", "hash": "h2"}
    await h.interactive(click)
    (pushed,) = h.fake.of("views.push")
    View(**pushed.args["view"]).validate_json()
    row = (await drafts(h))[-1]
    assert "Thank you for reporting: password reset account locked cannot login." in json.dumps(pushed.args["view"])
    before = len(await ops(h))
    approve = h.action_payload("ai_draft_approve", str(row.id), channel=None)
    approve.pop("channel")
    approve.pop("response_url")
    approve["container"] = {"type": "view", "view_id": "VDRAFT"}
    approve["view"] = {"id": "VDRAFT", "type": "modal", "hash": "h3"}
    await h.interactive(approve)
    new = (await ops(h))[before:]
    assert len(new) == 1 and new[0].payload["text"] == row.text
    assert any("Draft approved" in json.dumps(c.args) for c in h.fake.of("views.update"))


async def test_a_refused_approve_sends_nothing_says_why_and_leaves_the_draft_offered(trained):
    """The reply itself is refused (here the ticket was deleted in the PSA meanwhile): no op, the refusal is
    shown, and the draft goes back to "offered", so an Approve after the ticket is back sends it once."""
    from store.types import utcnow

    h = trained
    await h.c.ai.set_setting(Actor.system(h.ws), "drafts", "on")
    row, hook = await _offer(h)
    approve = next(e for b in hook["blocks"] for e in b.get("elements", []) if e.get("action_id") == "db_ai_draft_approve")
    async with h.c.db.write(Scope.workspace(h.ws)) as s:
        (await s.get(Ticket, row.ticket_id)).deleted_at = utcnow()
    before = len(await ops(h))
    h.fake.webhooks.clear()
    await h.interactive(ephemeral_click(h, "ai_draft_approve", approve["value"]))
    assert len(await ops(h)) == before
    assert any("not found" in json.dumps(w).lower() for w in h.fake.webhooks)
    (kept,) = await drafts(h)
    assert kept.status == "offered" and kept.decided_by is None
    async with h.c.db.write(Scope.workspace(h.ws)) as s:
        (await s.get(Ticket, row.ticket_id)).deleted_at = None
    await h.interactive(ephemeral_click(h, "ai_draft_approve", approve["value"]))
    new = (await ops(h))[before:]
    assert len(new) == 1 and new[0].payload["text"] == row.text
    assert (await drafts(h))[0].status == "approved"
