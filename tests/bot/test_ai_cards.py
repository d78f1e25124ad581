"""AI suggestions on the ticket card (core views -> Slack Block Kit and console text): shown to technicians
with their source and confidence, never on a customer's card, and never breaking a card when they fail."""

from __future__ import annotations

import json

import pytest

from bot.console.render import render_ticket
from bot.main import build
from bot.settings import Settings
from bot.slack.blocks import ticket_blocks
from core.context import Actor
from store.crypto import generate_key
from store.enums import Origin
from tests.core.ai.test_service import seed


@pytest.fixture
async def container(db_url, tmp_path, workspace_id):
    c = build(Settings(database_url=db_url, secret_key=generate_key(), sandbox="off", auto_migrate=False,
                       secret_key_file=tmp_path / "k"))
    c.default_workspace_id = workspace_id
    yield c
    await c.aclose()


async def test_technician_card_shows_suggestions_with_source_and_confidence(container, workspace_id, tech,
                                                                          monkeypatch):
    from core.chat import cards

    monkeypatch.setattr(cards, "AI_BUDGET_S", 60.0)  # this test reads the suggestions, however loaded the machine
    customer, _ = await seed(container.db, workspace_id)
    await container.ai.train(workspace_id)
    view = await container.chat_views.ticket(tech, 9003)
    assert view.ai is not None and view.ai.category is not None
    assert view.ai.category.action == "suggest" and 0 < view.ai.category.confidence <= 1
    assert [s.number for s in view.ai.similar][:1] == [9001] and 9002 not in {s.number for s in view.ai.similar}
    slack = json.dumps(ticket_blocks(view))
    assert "AI suggestions" in slack and "Suggested resolution (from #9001" in slack
    assert "Raised the VPN keepalive to 60 s." in slack and "trained on this workspace" in slack
    assert "GLOBEX-ONLY" not in slack
    text, _ = render_ticket(view)
    assert "Suggested category: " in text and "%" in text and "Similar: #9001" in text

    as_customer = Actor(workspace_id=workspace_id, origin=Origin.SLACK, is_member=False, customer_scope_id=customer)
    customer_card = await container.chat_views.ticket(as_customer, 9003)
    assert customer_card.ai is None and "AI suggestions" not in json.dumps(ticket_blocks(customer_card))
    tech_in_shared_channel = await container.chat_views.ticket(tech, 9003, audience="customer")
    assert tech_in_shared_channel.ai is None


async def test_a_failing_ai_never_breaks_the_card(container, workspace_id, tech):
    await seed(container.db, workspace_id)

    async def broken(actor, ticket_id):
        raise RuntimeError("model file unreadable")

    container.chat_views.cards._ai = broken
    view = await container.chat_views.ticket(tech, 9003)
    assert view.ai is None and view.summary.number == 9003


async def test_deskbridge_ai_commands_in_chat(container, workspace_id, tech):
    import asyncio

    from core.chat import grammar
    from core.chat.models import ChannelInfo, ChatUser
    from core.errors import InvalidInput, PermissionDenied

    customer, _ = await seed(container.db, workspace_id)
    user = ChatUser(platform="slack", team_id="T1", user_id="U1")
    tech_channel = ChannelInfo()

    async def say(actor, text, info=tech_channel):
        return await container.chat_commands.run(actor, user, info, grammar.parse("/deskbridge", text))

    assert (await say(tech, "ai")).text == "No category model yet."
    with pytest.raises(PermissionDenied):
        await say(tech, "ai train")
    with pytest.raises(PermissionDenied):
        await say(tech, "ai set cross_customer on")
    admin = Actor.system(workspace_id)
    started = await say(admin, "ai train")
    assert started.text == "Training started."  # answered before the model is fitted
    for _ in range(600):
        if (await say(tech, "ai")).text.startswith("Category model v1"):
            break
        await asyncio.sleep(0.1)
    status = await say(tech, "ai")
    assert status.text == "Category model v1" and "on 330 tickets" in status.lines[0]
    assert "Held-out accuracy: " in status.lines[1]
    assert status.lines[-2].startswith("No escalation model yet") and status.lines[-1].startswith("No KB articles yet")
    assert (await say(admin, "ai set fill_threshold 0.9")).text == "AI setting fill_threshold is now 0.9."
    assert "fill_threshold: 0.9" in (await say(tech, "ai settings")).lines
    with pytest.raises(InvalidInput, match="between 0 and 1"):
        await say(admin, "ai set change_threshold high")
    # Free-text search across customers needs the workspace's permission; never in a customer's channel.
    with pytest.raises(InvalidInput, match="cross_customer"):
        await say(tech, "ai similar vpn tunnel drops")
    customer_channel = ChannelInfo(customer_id=customer, visibility="customer")
    with pytest.raises(PermissionDenied):
        await say(tech, "ai similar vpn tunnel drops", customer_channel)
    await say(admin, "ai set cross_customer on")
    found = await say(tech, "ai similar vpn tunnel drops")
    assert any(line.startswith("#9001") for line in found.lines) and any(line.startswith("#9002") for line in found.lines)


async def test_slow_ai_never_slows_the_card_and_finishes_in_the_background(container, workspace_id, tech):
    """The first card of a workspace may wait for its similar-ticket index to be built (tens of seconds on 100k
    tickets): the card is shown within the AI budget without suggestions; the work goes on and is not lost."""
    import asyncio

    from core.chat import cards

    await seed(container.db, workspace_id)
    release, finished = asyncio.Event(), asyncio.Event()

    async def slow(actor, ticket_id):  # the AI work ends only when the test says so: "slow" is not a race
        await release.wait()
        finished.set()
        return None

    container.chat_views.cards._ai = slow
    # Were the card waiting for the AI, it would never come back (the AI waits for the test).
    view = await asyncio.wait_for(container.chat_views.ticket(tech, 9003), 60)
    assert view.ai is None and view.summary.number == 9003
    assert not finished.is_set()  # the card did not wait for the slow AI work ...
    release.set()
    await asyncio.wait_for(finished.wait(), 30)  # ... which went on in the background
    assert cards.AI_BUDGET_S < 1.5


async def test_tickets_at_risk_in_chat_and_console_and_the_risk_chip_on_the_card(container, workspace_id, tech,
                                                                                  monkeypatch):
    from bot.console.render import render_message
    from core.chat import cards, grammar
    from core.chat.models import ChannelInfo, ChatUser
    from core.errors import PermissionDenied
    from tests.core.ai.test_risk import seed as seed_risk

    monkeypatch.setattr(cards, "AI_BUDGET_S", 60.0)
    ids = await seed_risk(container.db, workspace_id)
    user = ChatUser(platform="slack", team_id="T1", user_id="U1")
    run = container.chat_commands.run
    empty = await run(tech, user, ChannelInfo(), grammar.parse("/tickets", "at-risk"))
    assert empty.text.startswith("No open ticket is at or above the risk threshold (60%)")
    await container.ai.risk.train(workspace_id)
    assert await container.ai.risk.score(workspace_id) == 3
    status = await run(tech, user, ChannelInfo(), grammar.parse("/deskbridge", "ai"))
    assert "Escalation model v1: trained on 240 closed tickets with a known SLA outcome" in status.lines
    for command, text in (("/tickets", "at-risk"), ("/deskbridge", "tickets at-risk")):
        view = await run(tech, user, ChannelInfo(), grammar.parse(command, text))
        assert view.text.startswith("Open tickets at risk of escalation (risk at or above 60%")
        assert len(view.lines) == 1 and view.lines[0].startswith("#1001 open 1001 · Globex · critical · risk ")
        assert "priority critical" in view.lines[0] or "customer GLOBEX" in view.lines[0]
        assert "#1001 open 1001" in render_message(view)
    with pytest.raises(PermissionDenied):
        await run(tech, user, ChannelInfo(customer_id=ids["globex"], visibility="customer"),
                  grammar.parse("/tickets", "at-risk"))
    card = await container.chat_views.ticket(tech, 1001)
    assert card.ai is not None and card.ai.risk is not None
    assert "Escalation risk " in json.dumps(ticket_blocks(card)) and "(at or above 60%)" in json.dumps(ticket_blocks(card))
    calm = await container.chat_views.ticket(tech, 1002)
    assert calm.ai is None or calm.ai.risk is None
    as_customer = Actor(workspace_id=workspace_id, origin=Origin.SLACK, is_member=False, customer_scope_id=ids["globex"])
    assert (await container.chat_views.ticket(as_customer, 1001)).ai is None
