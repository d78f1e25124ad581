"""Tickets newly at risk of escalation posted to the SLA/dispatch channels (core/ai/risk.py `announce`, through the
real container's notifier and the real Slack app against the fake Slack API): once per ticket per rise, with the
score and reasons, never into a customer channel or a channel shared with a customer, and only that channel's
customers where it is bound to some."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlmodel import col, select

from core.ai.risk_posts import RISE_MARGIN
from core.context import Actor
from store.db import Scope
from store.tables import AiRisk, AiRiskAlert, Ticket
from tests.bot.slack.conftest import ADMIN

SLA, DISPATCH, ACME_SHARED, ACME_INTERNAL, GLOBEX_SLA = "C_SLA", "C_DISPATCH", "C_ACME_SHARED", "C_ACME_INT", "C_GLX_SLA"


async def _ids(h) -> dict[int, int]:
    async with h.c.db.read(Scope.workspace(h.ws)) as s:
        return {n: i for i, n in (await s.execute(sa.select(col(Ticket.id), col(Ticket.number)))).all()}


async def _score(h, ticket_id: int, score: float) -> None:
    """What a scoring pass writes (core/ai/risk.py `score`): the ticket's latest score and its top reasons."""
    async with h.c.db.write(Scope.workspace(h.ws)) as s:
        await s.execute(sa.delete(AiRisk).where(col(AiRisk.ticket_id) == ticket_id))
        s.add(AiRisk(workspace_id=h.ws, ticket_id=ticket_id, score=score, model_version=1, ticket_version=0,
                     reasons=[["priority=high", 0.9], ["hours_since_update", 0.4]],
                     scored_at=datetime.now(UTC)))


def _posts(h, channel: str) -> list[dict]:
    return [c.args for c in h.fake.calls if c.method == "chat.postMessage" and c.args.get("channel") == channel]


async def _bind(h) -> None:
    h.fake.shared_channels.add(ACME_SHARED)
    await h.slash("/deskbridge", "bind sla", user=ADMIN, channel=SLA)
    await h.slash("/deskbridge", "bind dispatch", user=ADMIN, channel=DISPATCH)
    await h.slash("/deskbridge", "bind customer ACME shared", user=ADMIN, channel=ACME_SHARED)
    await h.slash("/deskbridge", "bind customer ACME", user=ADMIN, channel=ACME_INTERNAL)
    await h.slash("/deskbridge", "bind customer GLOBEX", user=ADMIN, channel=GLOBEX_SLA)
    await h.slash("/deskbridge", "bind sla", user=ADMIN, channel=GLOBEX_SLA)
    await h.settle()
    h.fake.clear()


async def test_a_rise_is_posted_once_to_sla_and_dispatch_channels_only(slack):
    await _bind(slack)
    ids = await _ids(slack)
    await _score(slack, ids[5001], 0.82)  # ACME, over the 0.60 threshold
    await _score(slack, ids[5002], 0.30)  # Globex, under it
    assert await slack.c.ai.risk.announce(slack.ws) == [ids[5001]]
    assert await slack.c.ai.risk.announce(slack.ws) == []  # the same rise: nothing more
    await slack.settle()
    for channel in (SLA, DISPATCH):
        [post] = _posts(slack, channel)
        text = json.dumps(post["blocks"])
        assert "At risk of escalation: 82%" in text and "#5001" in text and "VPN down" in text
        assert "priority high" in text and "time since the last update" in text
    for channel in (ACME_SHARED, ACME_INTERNAL, GLOBEX_SLA):  # customer channels; Globex's sla channel
        assert _posts(slack, channel) == []


async def test_a_new_rise_after_the_score_fell_is_posted_again_and_wobbles_are_not(slack):
    await _bind(slack)
    ids = await _ids(slack)
    await _score(slack, ids[5002], 0.70)  # Globex
    assert await slack.c.ai.risk.announce(slack.ws) == [ids[5002]]
    await _score(slack, ids[5002], 0.60 - RISE_MARGIN / 2)  # just under the threshold: the same rise
    assert await slack.c.ai.risk.announce(slack.ws) == []
    await _score(slack, ids[5002], 0.65)
    assert await slack.c.ai.risk.announce(slack.ws) == []
    await _score(slack, ids[5002], 0.40)  # the rise ends
    assert await slack.c.ai.risk.announce(slack.ws) == []
    async with slack.c.db.read(Scope.workspace(slack.ws)) as s:
        assert (await s.exec(select(AiRiskAlert))).all() == []
    await _score(slack, ids[5002], 0.75)  # a new rise
    assert await slack.c.ai.risk.announce(slack.ws) == [ids[5002]]
    await slack.settle()
    assert len(_posts(slack, SLA)) == 2 and len(_posts(slack, GLOBEX_SLA)) == 2  # Globex's own sla channel too
    assert _posts(slack, ACME_SHARED) == [] and _posts(slack, ACME_INTERNAL) == []


async def test_two_instances_announcing_at_once_post_each_rise_once(slack):
    from core.ai.risk import RiskService

    await _bind(slack)
    ids = await _ids(slack)
    await _score(slack, ids[5001], 0.9)
    other = RiskService(slack.c.db, notifier=slack.c.notifier)
    won = await asyncio.gather(slack.c.ai.risk.announce(slack.ws), other.announce(slack.ws))
    assert sorted(won, key=len) == [[], [ids[5001]]]
    await slack.settle()
    assert len(_posts(slack, SLA)) == 1


async def test_off_switch_and_closed_tickets(slack):
    await _bind(slack)
    ids = await _ids(slack)
    await slack.c.ai.set_setting(Actor.system(slack.ws), "risk_post", "off")
    await _score(slack, ids[5001], 0.9)
    assert await slack.c.ai.risk.announce(slack.ws) == []
    await slack.c.ai.set_setting(Actor.system(slack.ws), "risk_post", "on")
    async with slack.c.db.write(Scope.workspace(slack.ws)) as s:
        ticket = await s.get(Ticket, ids[5001])
        ticket.stage = "closed"
    assert await slack.c.ai.risk.announce(slack.ws) == []  # a closed ticket is never posted
    await slack.settle()
    assert _posts(slack, SLA) == []
