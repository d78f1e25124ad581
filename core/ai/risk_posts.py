"""At-risk posts: an open ticket whose escalation risk rose over the workspace's threshold is announced once per
rise (a RiskAlertEvent; the Slack and Teams notifiers post it to the SLA/dispatch channels core names, never a
channel a customer reads). A rise ends when the score falls `RISE_MARGIN` under the threshold or the ticket
closes; the next rise is announced again. One row per rise in `ai_risk_alert`, claimed with an insert only one
instance wins, so two instances never post a rise twice.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlmodel import col, select

from core.ai import settings as ai_settings
from core.context import Actor
from core.notify import Notifier, RiskAlertEvent
from store.db import Database, Scope
from store.enums import Origin
from store.sql import dialect_insert
from store.tables import AiRisk, AiRiskAlert, Ticket

if TYPE_CHECKING:
    from core.ai.risk import RiskService

RISE_MARGIN = 0.05  # a rise ends when the score falls this far under the threshold (no repost on wobbles)
POST_MAX = 10  # new at-risk posts per workspace per pass (the rest wait for the next pass)


class RiskPosts:
    def __init__(self, db: Database, risk: RiskService, notifier: Notifier, *,
                 clock: Callable[[], datetime]) -> None:
        self.db, self.risk, self.notifier, self._clock = db, risk, notifier, clock

    async def announce(self, workspace_id: int) -> list[int]:
        """Emit a RiskAlertEvent for each open ticket whose score rose to the threshold since its last post:
        once per rise (a row in ai_risk_alert, claimed with an insert that only one instance wins), a rise ending
        when the score falls RISE_MARGIN under the threshold or the ticket closes. Surfaces post it to the
        SLA/dispatch channels only. Returns the tickets announced."""
        opts = ai_settings.effective(await self.risk._settings(workspace_id))
        if not (opts["risk"] and opts["risk_post"]):
            return []
        threshold = opts["risk_threshold"]
        now = self._clock()
        async with self.db.write(Scope.workspace(workspace_id)) as session:
            scores = dict((await session.execute(
                sa.select(col(AiRisk.ticket_id), col(AiRisk.score)).join(Ticket, col(Ticket.id) == AiRisk.ticket_id)
                .where(col(Ticket.is_open).is_(True), col(Ticket.deleted_at).is_(None)))).all())
            posted = set((await session.execute(select(AiRiskAlert.ticket_id))).scalars().all())
            ended = [tid for tid in posted if scores.get(tid, 0.0) < threshold - RISE_MARGIN]
            for start in range(0, len(ended), 1000):
                await session.execute(sa.delete(AiRiskAlert).where(
                    col(AiRiskAlert.ticket_id).in_(ended[start:start + 1000])))
            fresh = sorted((t for t, sc in scores.items() if sc >= threshold and t not in posted),
                           key=lambda t: (-scores[t], t))[:POST_MAX]
            won: list[int] = []
            if fresh:
                dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
                stmt = dialect_insert(dialect, AiRiskAlert).values([
                    {"workspace_id": workspace_id, "ticket_id": t, "score": float(scores[t]), "posted_at": now}
                    for t in fresh]).on_conflict_do_nothing(index_elements=["ticket_id"]).returning(
                    col(AiRiskAlert.ticket_id))
                won = sorted((await session.execute(stmt)).scalars().all(), key=lambda t: (-scores[t], t))
        if won:
            await self._post(workspace_id, won, threshold, now)
        return won

    async def _post(self, workspace_id: int, ticket_ids: list[int], threshold: float, now: datetime) -> None:
        found = {a.ticket_id: a for a in await self.risk.at_risk(Actor.system(workspace_id), ticket_ids=ticket_ids,
                                                            limit=len(ticket_ids), all_scores=True)}
        async with self.db.read(Scope.workspace(workspace_id)) as session:
            customers = dict((await session.execute(sa.select(col(Ticket.id), col(Ticket.customer_id))
                                                    .where(col(Ticket.id).in_(ticket_ids)))).all())
        for tid in ticket_ids:
            a = found.get(tid)
            if a is None:
                continue
            await self.notifier.notify(RiskAlertEvent(
                workspace_id=workspace_id, ticket_id=tid, ticket_number=a.number, origin=Origin.SYSTEM.value,
                occurred_at=now, score=a.score, threshold=threshold, reasons=a.reasons,
                customer_id=customers.get(tid), subject=a.subject, priority=a.priority))
