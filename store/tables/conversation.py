"""Where a chat bot may post on its own: a stored conversation reference (Teams needs one per conversation)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field

from store.tables.base import WorkspaceOwned, created_field, updated_field
from store.types import JSONType, UTCDateTime


class ChatConversation(WorkspaceOwned, table=True):
    """A conversation the bot was installed in or heard from: enough to post into it later (SLA warnings,
    dispatch, notes into a ticket's thread) after any restart. Kept when the app is removed (`installed`
    false), so a reinstall finds its threads."""

    __tablename__ = "chat_conversation"
    __table_args__ = (sa.UniqueConstraint("platform", "tenant_id", "conversation_id", name="uq_chat_conversation"),)

    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=16)
    tenant_id: str = Field(max_length=64)
    conversation_id: str = Field(max_length=255)  # the channel or chat itself (no ;messageid=)
    service_url: str = Field(max_length=255)
    conversation_type: str = Field(max_length=16)  # personal | groupChat | channel
    team_id: str | None = Field(default=None, max_length=255)
    channel_id: str | None = Field(default=None, max_length=255)
    installed: bool = Field(default=True)
    data: dict[str, Any] = Field(default_factory=dict, sa_type=JSONType)
    created_at: datetime = created_field()
    updated_at: datetime = updated_field()


class HomeView(WorkspaceOwned, table=True):
    """A technician's App Home (Slack) / personal view (Teams) that was opened, and the page of their queue it
    shows: every app instance reads these, so a PSA change applied on any instance refreshes a Home opened on
    another (core/chat/home_views.py). A row older than the open window (15 min) counts for nothing and is
    deleted by the next write of its workspace."""

    __tablename__ = "home_view"
    __table_args__ = (sa.UniqueConstraint("platform", "team_id", "user_id", name="uq_home_view"),)

    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=16)
    team_id: str = Field(max_length=200)  # Teams ids ("29:..." user, tenant GUID) run past 64
    user_id: str = Field(max_length=200)  # Teams ids ("29:..." user, tenant GUID) run past 64
    opened_at: datetime = Field(sa_type=UTCDateTime, nullable=False, index=True)  # opened, or clicked in, last
    filters: str = Field(default="", max_length=500)  # the page it shows ("" and no cursor: the first page)
    cursor: str | None = Field(default=None, max_length=500)
