"""Similar tickets say when they were closed on the workspace's calendar: a ticket closed at 00:00 UTC on
1 March was closed on 28 February in Los Angeles, and its suggested resolution says "28 Feb 2026"."""

from __future__ import annotations

import sqlalchemy as sa

from core.ai.service import AiService
from store.db import Database, Scope
from store.tables import Workspace
from tests.core.ai.test_service import T0, seed


async def _zone(db: Database, ws: int, zone: str) -> None:
    async with db.write(Scope.system_wide()) as s:
        await s.execute(sa.update(Workspace).where(Workspace.id == ws).values(timezone=zone))


async def test_closing_dates_are_the_workspace_days(db: Database, workspace_id: int, tech):
    assert T0.isoformat() == "2026-03-01T00:00:00+00:00"
    _, open_id = await seed(db, workspace_id)
    await _zone(db, workspace_id, "America/Los_Angeles")
    ai = AiService(db)
    answer = await ai.similar(tech, ticket_id=open_id)
    first = answer.resolutions.items[0]
    assert first.attribution.startswith("from #9001, 28 Feb 2026"), first.attribution
    hit = next(h for h in answer.hits if h.doc.number == 9001)
    assert hit.doc.closed_at == T0 and hit.doc.closed_at.date().isoformat() == "2026-02-28"  # same instant
    view = await ai.suggestions(tech, open_id)
    assert view is not None
    assert [s.closed_at.strftime("%d %b %Y") for s in view.similar if s.number == 9001] == ["28 Feb 2026"]
    await _zone(db, workspace_id, "UTC")
    answer = await ai.similar(tech, ticket_id=open_id)
    assert answer.resolutions.items[0].attribution.startswith("from #9001, 01 Mar 2026")
