"""Facts a starting instance reports about itself (the start banner, bot/banner.py) that only the database knows."""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import col, select

from store.db import Database, Scope
from store.tables import ChatInstallation


@dataclass(frozen=True, slots=True)
class InstalledTeam:
    """A Slack team or Teams tenant installed in a workspace (no token: ids and a name only)."""

    platform: str
    team_id: str
    name: str | None


async def chat_teams(db: Database, workspace_id: int) -> list[InstalledTeam]:
    """The chat teams installed in a workspace, oldest first."""
    async with db.read(Scope.workspace(workspace_id)) as s:
        rows = (await s.exec(select(ChatInstallation).where(ChatInstallation.workspace_id == workspace_id)
                             .order_by(col(ChatInstallation.id)))).all()
    return [InstalledTeam(platform=r.platform, team_id=r.external_team_id,
                          name=str((r.data or {}).get("team_name") or "") or None) for r in rows]
