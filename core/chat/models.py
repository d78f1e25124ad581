"""What chat code passes around: a verified chat user, an installation, a channel's binding, a ticket's thread.

Plain frozen values, built on the server from verified platform ids, never from what a user typed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True, kw_only=True)
class ChatUser:
    """A verified chat identity, as the platform reported it on this request."""

    platform: str
    team_id: str  # the installation's team (where the request came from)
    user_id: str
    channel_id: str | None = None
    user_team_id: str | None = None  # the user's own team (differs for Slack Connect guests)
    name: str | None = None
    is_dm: bool = False
    platform_admin: bool = False  # a workspace admin/owner on the chat platform

    @property
    def home_team(self) -> str:
        return self.user_team_id or self.team_id

    @property
    def is_external(self) -> bool:
        return self.user_team_id is not None and self.user_team_id != self.team_id


@dataclass(frozen=True, slots=True, kw_only=True)
class Installation:
    workspace_id: int
    platform: str
    team_id: str
    enterprise_id: str | None
    bot_user_id: str | None
    bot_id: str | None
    bot_token: str | None
    data: dict[str, Any]


@dataclass(frozen=True, slots=True, kw_only=True)
class ChannelInfo:
    kinds: frozenset[str] = frozenset()
    customer_id: int | None = None
    customer_name: str | None = None
    visibility: str = "tech"

    @property
    def is_customer_channel(self) -> bool:
        return self.customer_id is not None


@dataclass(frozen=True, slots=True, kw_only=True)
class ThreadPost:
    team_id: str
    channel_id: str
    thread_ts: str  # the thread's root message
    card_ts: str  # the ticket card (the root itself, or a reply in a thread a shortcut started)
    customer_id: int | None = None  # the ticket's customer now (what the channel's binding is checked against)
