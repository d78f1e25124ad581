"""Escalation risk reads "hour and weekday opened" on the workspace's clock: a desk in Los Angeles whose evening
tickets (18:00, after the day shift) breach is told "opened at 18:00" and "on a Monday", not UTC's "02:00" on a
Tuesday. A model remembers the zone it learned in and is scored in it, so a model stored before (UTC hours) keeps
meaning what it learned until it is retrained. Fixed instants only."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from core.ai.service import AiService
from store.db import Database, Scope
from store.enums import Stage
from store.tables import Customer, Ticket, Workspace

LA = ZoneInfo("America/Los_Angeles")
OPENED = datetime(2026, 3, 2, 18, 0, tzinfo=LA)  # Monday 18:00 in LA = Tuesday 02:00 UTC
NOW = OPENED + timedelta(hours=2)


async def _zone(db: Database, ws: int, zone: str) -> None:
    async with db.write(Scope.system_wide()) as s:
        await s.execute(sa.update(Workspace).where(Workspace.id == ws).values(timezone=zone))


async def seed(db: Database, ws: int) -> int:
    """200 closed tickets over 100 days: the morning one (10:00 LA) each day kept its SLA, the evening one
    (18:00 LA) breached it; everything else alike. Then one open ticket opened at 18:00 LA on a Monday."""
    async with db.write(Scope.workspace(ws)) as s:
        acme = Customer(workspace_id=ws, identifier="ACME", name="Acme")
        s.add(acme)
        await s.flush()
        for i in range(200):
            evening = i % 2 == 1
            local = datetime.combine(date(2025, 11, 1) + timedelta(days=i // 2), time(18 if evening else 10),
                                     tzinfo=LA)
            created = local.astimezone(UTC)
            s.add(Ticket(workspace_id=ws, number=i + 1, subject=f"history {i}", priority="medium",
                         customer_id=acme.id, stage=Stage.CLOSED.value, source="email", created_at=created,
                         closed_at=created + timedelta(hours=5),
                         psa_resolve_by=created + timedelta(hours=4 if evening else 8)))
        t = Ticket(workspace_id=ws, number=1001, subject="open", priority="medium", customer_id=acme.id,
                   stage=Stage.NEW.value, source="email", created_at=OPENED.astimezone(UTC))
        s.add(t)
        await s.flush()
        assert t.id is not None
        return t.id


async def test_hours_and_weekdays_are_the_workspace_clock(db: Database, workspace_id: int, tech):
    ai = AiService(db, clock=lambda: NOW)
    await _zone(db, workspace_id, "America/Los_Angeles")
    await seed(db, workspace_id)
    rows, labels = await ai.risk.training_data(workspace_id)
    assert {r["hour"] for r in rows} == {"h10", "h18"}  # UTC would say h18 / h02 (h17 / h01 in summer time)
    assert {r["hour"] for r, breached in zip(rows, labels, strict=True) if breached} == {"h18"}
    assert {r["weekday"] for r in rows if r["hour"] == "h18"} == {f"d{n}" for n in range(7)}
    await ai.risk.train(workspace_id)
    await ai.risk.score(workspace_id)
    [found] = await ai.risk.at_risk(tech)
    assert "opened at 18:00" in found.reasons, found.reasons


async def test_a_model_is_scored_in_the_zone_it_learned_in(db: Database, workspace_id: int, tech):
    """Trained while the workspace said UTC (as every model stored before this change was): a later zone change
    does not shift its hours under it; the next training learns in the new zone."""
    ai = AiService(db, clock=lambda: NOW)
    await seed(db, workspace_id)
    await ai.risk.train(workspace_id)
    await _zone(db, workspace_id, "America/Los_Angeles")
    await ai.risk.score(workspace_id)
    [found] = await ai.risk.at_risk(tech)
    assert "opened at 02:00" in found.reasons, found.reasons  # UTC's hour, as the model learned it
    await ai.risk.train(workspace_id)
    await ai.risk.score(workspace_id, changed_only=False)
    [found] = await ai.risk.at_risk(tech)
    assert "opened at 18:00" in found.reasons, found.reasons
