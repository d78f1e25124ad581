"""Escalation risk over the database: honest training rows (as tickets stood an hour after opening), scoring
open tickets on a schedule and again when they change, the at-risk list with reasons, the card's chip above
the admin's threshold, and none of it for customers."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import select

from core.ai.service import AiService
from core.context import Actor
from core.errors import InvalidInput, PermissionDenied
from store.db import Database, Scope
from store.enums import Stage
from store.tables import AiRisk, Customer, SlaClock, Ticket

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


async def seed(db: Database, ws: int, n: int = 240) -> dict[str, int]:
    """Closed history where Globex's critical tickets breach (mostly) and Acme's low ones do not, plus edge
    rows the training must leave out; then three open tickets."""
    rnd = random.Random(3)
    async with db.write(Scope.workspace(ws)) as s:
        acme = Customer(workspace_id=ws, identifier="ACME", name="Acme")
        globex = Customer(workspace_id=ws, identifier="GLOBEX", name="Globex")
        s.add_all([acme, globex])
        await s.flush()
        for i in range(n):
            risky = i % 2 == 0
            breach = risky if rnd.random() > 0.1 else not risky
            created = T0 + timedelta(hours=3 * i)
            s.add(Ticket(workspace_id=ws, number=i + 1, subject=f"history {i}", priority="critical" if risky else "low",
                         customer_id=globex.id if risky else acme.id, stage=Stage.CLOSED.value, source="email",
                         created_at=created, closed_at=created + timedelta(hours=5),
                         psa_resolve_by=created + timedelta(hours=4 if breach else 8)))
        # Left out: closed within the hour (not open at the snapshot); breached before the snapshot (already
        # known); no SLA outcome at all.
        s.add(Ticket(workspace_id=ws, number=900, subject="quick", priority="low", stage=Stage.CLOSED.value,
                     created_at=T0, closed_at=T0 + timedelta(minutes=20), psa_resolve_by=T0 + timedelta(hours=4)))
        early = Ticket(workspace_id=ws, number=901, subject="early breach", priority="low", stage=Stage.CLOSED.value,
                       created_at=T0, closed_at=T0 + timedelta(hours=6))
        s.add(early)
        s.add(Ticket(workspace_id=ws, number=902, subject="no sla", priority="low", stage=Stage.CLOSED.value,
                     created_at=T0, closed_at=T0 + timedelta(hours=6)))
        await s.flush()
        s.add(SlaClock(workspace_id=ws, ticket_id=early.id, metric="first_response", priority="low", start_at=T0,  # type: ignore[arg-type]
                       target_s=600, breached_at=T0 + timedelta(minutes=10), last_at=T0))
        ids = {}
        for number, prio, cust in ((1001, "critical", globex.id), (1002, "low", acme.id), (1003, "low", acme.id)):
            t = Ticket(workspace_id=ws, number=number, subject=f"open {number}", priority=prio, customer_id=cust,
                       stage=Stage.NEW.value, source="email", created_at=NOW - timedelta(hours=2))
            s.add(t)
            await s.flush()
            ids[str(number)] = t.id  # type: ignore[assignment]
        ids["globex"] = globex.id  # type: ignore[assignment]
        return ids


@pytest.fixture
def ai(db: Database) -> AiService:
    return AiService(db, clock=lambda: NOW)


async def test_training_rows_are_what_was_known_an_hour_in(ai, workspace_id):
    await seed(ai.db, workspace_id)
    rows, labels = await ai.risk.training_data(workspace_id)
    assert len(rows) == 240  # the quick, the already-breached and the unknown-outcome tickets are left out
    assert 0.4 < sum(labels) / len(labels) < 0.6
    assert all(r["reassignments"] == 0.0 and r["hours_since_update"] > 0 for r in rows)


async def test_too_little_history_says_what_to_do(ai, workspace_id):
    with pytest.raises(InvalidInput, match="Configure SLAs"):
        await ai.risk.train(workspace_id)


async def test_open_tickets_are_scored_listed_by_risk_with_reasons_and_rescored_on_change(ai, workspace_id, tech):
    ids = await seed(ai.db, workspace_id)
    version, metrics = await ai.risk.train(workspace_id)
    assert version == 1 and metrics["trained_on"] == 240
    assert await ai.risk.score(workspace_id) == 3
    assert await ai.risk.score(workspace_id) == 0  # nothing changed: nothing rescored
    found = await ai.risk.at_risk(tech)
    assert [f.number for f in found] == [1001]  # only the risky one is at or above the 0.60 default
    assert found[0].score >= 0.6 and found[0].customer == "Globex"
    assert "priority critical" in found[0].reasons or "customer GLOBEX" in found[0].reasons
    everything = await ai.risk.at_risk(tech, all_scores=True)
    assert [f.number for f in everything][0] == 1001 and everything[-1].score < 0.5
    await ai.set_setting(Actor.system(workspace_id), "risk_threshold", "0.99")
    assert await ai.risk.at_risk(tech) == []
    async with ai.db.write(Scope.workspace(workspace_id)) as s:  # a change: that ticket alone is rescored
        t = await s.get(Ticket, ids["1002"])
        t.priority, t.customer_id, t.version = "critical", ids["globex"], t.version + 1
        closed = await s.get(Ticket, ids["1003"])
        closed.stage, closed.closed_at = Stage.CLOSED.value, NOW
    assert await ai.risk.score(workspace_id) == 1
    async with ai.db.read(Scope.workspace(workspace_id)) as s:
        scores = {r.ticket_id: r.score for r in (await s.exec(select(AiRisk))).all()}
    assert set(scores) == {ids["1001"], ids["1002"]} and scores[ids["1002"]] >= 0.6  # the closed one dropped


async def test_risk_is_for_technicians_and_its_chip_shows_only_above_the_threshold(ai, workspace_id, tech):
    ids = await seed(ai.db, workspace_id)
    await ai.risk.train(workspace_id)
    await ai.risk.score(workspace_id)
    with pytest.raises(PermissionDenied):
        await ai.risk.at_risk(tech.scoped_to_customer(ids["globex"]))
    view = await ai.suggestions(tech, ids["1001"])
    assert view is not None and view.risk is not None and view.risk.score >= 0.6 and view.risk.threshold == 0.6
    low = await ai.suggestions(tech, ids["1002"])
    assert low is None or low.risk is None
    assert await ai.suggestions(tech.scoped_to_customer(ids["globex"]), ids["1001"]) is None
    await ai.set_setting(Actor.system(workspace_id), "risk", "off")
    assert await ai.risk.at_risk(tech) == [] and await ai.risk.score(workspace_id, changed_only=False) == 0


async def test_scheduled_training_says_why_a_workspace_was_skipped(ai, workspace_id, caplog):
    """Too little history is not an error for the 6-hourly retrain, but it is never silent: the log says why."""
    import logging

    caplog.set_level(logging.INFO, logger="deskbridge.ai.risk")
    assert workspace_id not in await ai.risk.train_due()
    skipped = [r for r in caplog.records if r.name == "deskbridge.ai.risk" and getattr(r, "workspace_id", None)
               == workspace_id]
    assert skipped and "closed tickets with a known SLA outcome" in skipped[0].getMessage()
