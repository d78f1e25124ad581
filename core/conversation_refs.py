"""Stored conversation references: where a chat surface may post on its own (Teams), kept in our database.

Every activity refreshes its conversation's reference (service URLs can change); installing the app records
one, removing it marks it uninstalled (kept, so a reinstall finds the ticket threads again; adding or removing it
in a team does so for every channel of the team we know, `team_installed`). Nothing here is
held only in memory, so proactive posts work after a restart.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import col, select

from store.db import Database, Scope
from store.tables import ChatConversation
from store.types import utcnow


@dataclass(frozen=True, slots=True, kw_only=True)
class ConversationRef:
    workspace_id: int
    platform: str
    tenant_id: str
    conversation_id: str
    service_url: str
    conversation_type: str
    team_id: str | None
    channel_id: str | None
    installed: bool
    shared: bool = False  # a channel shared with other organisations (a Teams shared channel)


def _ref(row: ChatConversation) -> ConversationRef:
    return ConversationRef(workspace_id=row.workspace_id, platform=row.platform, tenant_id=row.tenant_id,
                           conversation_id=row.conversation_id, service_url=row.service_url,
                           conversation_type=row.conversation_type, team_id=row.team_id,
                           channel_id=row.channel_id, installed=row.installed,
                           shared=bool((row.data or {}).get("shared")))


class ConversationRefs:
    def __init__(self, db: Database, *, platform: str, clock: Callable[[], datetime] = utcnow) -> None:
        self.db = db
        self.platform = platform
        self._clock = clock
        self._seen: dict[tuple[str, str], tuple[str, bool]] = {}  # skip the write when nothing changed

    async def remember(self, workspace_id: int, *, tenant_id: str, conversation_id: str, service_url: str,
                       conversation_type: str, team_id: str | None = None,
                       channel_id: str | None = None, shared: bool = False, user_id: str | None = None) -> None:
        """Record (or refresh) a conversation the bot heard from or was installed in (`user_id`: whose personal
        chat with the bot it is, so the bot can tell that person something privately: `personal_for`)."""
        key = (tenant_id, conversation_id)
        if self._seen.get(key) == (service_url, shared):
            return
        async with self.db.write(Scope.workspace(workspace_id)) as session:
            row = (await session.exec(select(ChatConversation).where(
                ChatConversation.platform == self.platform, ChatConversation.tenant_id == tenant_id,
                ChatConversation.conversation_id == conversation_id))).first()
            if row is None:
                row = ChatConversation(workspace_id=workspace_id, platform=self.platform, tenant_id=tenant_id,
                                       conversation_id=conversation_id, service_url=service_url,
                                       conversation_type=conversation_type)
                session.add(row)
            row.service_url = service_url
            row.conversation_type = conversation_type
            row.team_id = team_id or row.team_id
            row.channel_id = channel_id or row.channel_id
            row.installed = True
            row.data = {**(row.data or {}), "shared": shared,
                        **({"user_id": user_id} if user_id and conversation_type == "personal" else {})}
            row.updated_at = self._clock()
        self._seen[key] = (service_url, shared)

    async def forget(self, workspace_id: int, *, tenant_id: str, conversation_id: str) -> bool:
        """The app was removed from a conversation: no more proactive posts there until it is added again."""
        self._seen.pop((tenant_id, conversation_id), None)
        async with self.db.write(Scope.workspace(workspace_id)) as session:
            row = (await session.exec(select(ChatConversation).where(
                ChatConversation.platform == self.platform, ChatConversation.tenant_id == tenant_id,
                ChatConversation.conversation_id == conversation_id))).first()
            if row is None:
                return False
            row.installed = False
            row.updated_at = self._clock()
        return True

    async def personal_for(self, workspace_id: int, *, tenant_id: str, user_id: str) -> ConversationRef | None:
        """The person's installed personal chat with the bot, if they have one (the bot's private line to them)."""
        async with self.db.read(Scope.workspace(workspace_id)) as session:
            rows = (await session.exec(select(ChatConversation).where(
                ChatConversation.platform == self.platform, ChatConversation.tenant_id == tenant_id,
                ChatConversation.conversation_type == "personal", col(ChatConversation.installed).is_(True))
                .order_by(col(ChatConversation.id).desc()))).all()
        row = next((r for r in rows if (r.data or {}).get("user_id") == user_id), None)
        return _ref(row) if row is not None else None

    async def get(self, workspace_id: int, *, tenant_id: str, conversation_id: str) -> ConversationRef | None:
        """An installed conversation's reference (by channel or chat id)."""
        async with self.db.read(Scope.workspace(workspace_id)) as session:
            row = (await session.exec(select(ChatConversation).where(
                ChatConversation.platform == self.platform, ChatConversation.tenant_id == tenant_id,
                (ChatConversation.conversation_id == conversation_id)
                | (ChatConversation.channel_id == conversation_id)).order_by(col(ChatConversation.id)))).first()
        return _ref(row) if row is not None and row.installed else None

    async def team_installed(self, workspace_id: int, *, tenant_id: str, team_id: str,
                             installed: bool) -> list[ConversationRef]:
        """The app added to (or removed from) a whole team: every channel of it we know may be posted in again
        (or no longer); their references, as they are now."""
        self._seen = {k: v for k, v in self._seen.items() if k[0] != tenant_id}
        async with self.db.write(Scope.workspace(workspace_id)) as session:
            rows = (await session.exec(select(ChatConversation).where(
                ChatConversation.platform == self.platform, ChatConversation.tenant_id == tenant_id,
                ChatConversation.team_id == team_id).order_by(col(ChatConversation.id)))).all()
            for row in rows:
                row.installed = installed
                row.updated_at = self._clock()
            return [_ref(row) for row in rows]
