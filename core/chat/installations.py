"""Chat installations: which Deskbridge workspace a chat team belongs to, and its bot token (encrypted)."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from core.chat.cache import TTLCache
from core.chat.models import Installation
from core.errors import Conflict
from core.scheduling import EventClaims, forget_event
from core.workspaces import WorkspaceService
from store.crypto import CredentialCipher
from store.db import Database, Scope
from store.tables import ChatInstallation
from store.types import utcnow


class Installations:
    """Installations per chat team (or org-wide enterprise install), cached briefly."""

    def __init__(self, db: Database, *, cipher: CredentialCipher, workspaces: WorkspaceService, cache: TTLCache,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.db = db
        self.cipher = cipher
        self.workspaces = workspaces
        self._cache = cache
        self._clock = clock
        self.claims = EventClaims(db)  # every chat event/click claims its id: in batches under load

    def invalidate(self) -> None:
        self._cache.clear()

    async def installation(self, platform: str, team_id: str | None,
                           enterprise_id: str | None = None) -> Installation | None:
        """The installation for a team (or an org-wide enterprise install), cached briefly."""
        if not team_id and not enterprise_id:
            return None

        async def fetch() -> Installation | None:
            # Cross-workspace lookup by design: the request's team id is what tells us the workspace.
            async with self.db.read(Scope.system_wide()) as session:
                stmt = select(ChatInstallation).where(ChatInstallation.platform == platform)
                if team_id:
                    stmt = stmt.where(ChatInstallation.external_team_id == team_id)
                else:
                    stmt = stmt.where(ChatInstallation.enterprise_id == enterprise_id)
                row = (await session.exec(stmt)).first()
            return self._to_installation(row) if row else None

        inst: Installation | None = await self._cache.load(("inst", platform, team_id, enterprise_id), fetch)
        return inst

    def cached(self, platform: str, team_id: str | None,
               enterprise_id: str | None = None) -> tuple[bool, Installation | None]:
        """(True, what `installation` would answer) while the cache holds it, else (False, None): no await,
        no task, for the request path where nearly every lookup is a hit."""
        hit: tuple[bool, Installation | None] = self._cache.get(("inst", platform, team_id, enterprise_id))
        return hit

    def _to_installation(self, row: ChatInstallation) -> Installation:
        token = None
        if row.bot_token_ciphertext:
            token = self.cipher.decrypt(row.bot_token_ciphertext, workspace_id=row.workspace_id,
                                        kind=f"chat:{row.platform}").get("bot_token")
        return Installation(workspace_id=row.workspace_id, platform=row.platform, team_id=row.external_team_id,
                            enterprise_id=row.enterprise_id, bot_user_id=row.bot_user_id,
                            bot_id=(row.data or {}).get("bot_id"), bot_token=token,
                            data={k: v for k, v in (row.data or {}).items() if "token" not in k})

    async def save_installation(self, *, platform: str, team_id: str, bot_token: str | None,
                                bot_user_id: str | None = None, bot_id: str | None = None,
                                enterprise_id: str | None = None, data: dict[str, Any] | None = None,
                                workspace_id: int | None = None, team_name: str | None = None) -> Installation:
        """Create or update an installation; a new team gets the default workspace if it has none, else its own."""
        existing = await self.installation(platform, team_id)
        if existing is not None:
            ws_id = existing.workspace_id
        elif workspace_id is not None:
            ws_id = workspace_id
        else:
            ws_id = await self._workspace_for_new_team(platform, team_id, team_name)
        extra = {k: v for k, v in (data or {}).items() if "token" not in k and "secret" not in k}
        if bot_id:
            extra["bot_id"] = bot_id
        try:
            await self._write(ws_id, platform, team_id, bot_token, bot_user_id, enterprise_id, extra)
        except IntegrityError:
            # A first contact of the same team at the same moment (20 Teams refreshes of a new tenant on
            # PostgreSQL) inserted it first: update that row, in its workspace.
            self.invalidate()
            winner = await self.installation(platform, team_id)
            if winner is None:
                raise
            await self._write(winner.workspace_id, platform, team_id, bot_token, bot_user_id, enterprise_id, extra)
        self.invalidate()
        inst = await self.installation(platform, team_id)
        assert inst is not None
        return inst

    async def _write(self, ws_id: int, platform: str, team_id: str, bot_token: str | None, bot_user_id: str | None,
                     enterprise_id: str | None, extra: dict[str, Any]) -> None:
        async with self.db.write(Scope.workspace(ws_id)) as session:
            row = (await session.exec(select(ChatInstallation).where(
                ChatInstallation.platform == platform, ChatInstallation.external_team_id == team_id))).first()
            if row is None:
                row = ChatInstallation(workspace_id=ws_id, platform=platform, external_team_id=team_id)
                session.add(row)
            row.enterprise_id = enterprise_id
            row.bot_user_id = bot_user_id
            row.data = extra
            row.bot_token_ciphertext = (self.cipher.encrypt({"bot_token": bot_token}, workspace_id=ws_id,
                                                            kind=f"chat:{platform}") if bot_token else None)
            row.installed_at = self._clock()

    def claim_ahead(self, source: str, event_id: str) -> None:
        """Start `first_time`'s claim now (at the ack); the work's own `first_time` takes its answer."""
        begin = getattr(self.claims, "begin", None)
        if begin is not None:
            begin(source, event_id)

    async def first_time(self, source: str, event_id: str) -> bool:
        """True the first time an event (or OAuth state nonce) is seen; retries and replays get False."""
        return await self.claims.claim(source, event_id)

    async def not_done(self, source: str, event_id: str) -> None:
        """Forget an event taken by `first_time` whose work was refused (a corrected retry is new work)."""
        await forget_event(self.db, source, event_id)

    async def _workspace_for_new_team(self, platform: str, team_id: str, team_name: str | None) -> int:
        """A brand-new, empty workspace: an install never claims an existing MSP's workspace by itself
        (an outsider reaching /slack/install first must not inherit its tickets). Admins attach a team to
        an existing workspace beforehand with `preauthorize` (`deskbridge workspace allow-team`)."""
        slug = re.sub(r"[^a-z0-9-]+", "-", f"{platform}-{team_id.lower()}")[:63].strip("-")
        ws = await self.workspaces.create(slug=slug, name=team_name or slug)
        return ws.id  # type: ignore[return-value]

    async def preauthorize(self, platform: str, team_id: str, workspace_id: int) -> Installation:
        """Reserve a chat team for a workspace before it installs (no token yet); its install lands there."""
        existing = await self.installation(platform, team_id)
        if existing is not None and existing.workspace_id != workspace_id:
            raise Conflict(f"{platform} team {team_id} already belongs to another workspace.",
                           hint="Uninstall it there first.")
        return await self.save_installation(platform=platform, team_id=team_id, bot_token=None,
                                            workspace_id=workspace_id)

    async def delete_installation(self, platform: str, team_id: str) -> bool:
        """Forget a team's tokens (uninstall or revocation); bindings and links stay for a reinstall."""
        inst = await self.installation(platform, team_id)
        if inst is None:
            return False
        async with self.db.write(Scope.workspace(inst.workspace_id)) as session:
            await session.execute(sa.update(ChatInstallation).where(
                col(ChatInstallation.platform) == platform, col(ChatInstallation.external_team_id) == team_id,
            ).values(bot_token_ciphertext=None))
        self.invalidate()
        return True
