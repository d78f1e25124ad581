"""A ChatService on a migrated database, with a workspace, a linked technician, an admin and two customers."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from core.chat import ChatService, ChatUser
from core.workspaces import DirectoryService, WorkspaceService
from store.crypto import CredentialCipher, generate_key
from store.db import Database
from store.tables import Customer, Member


@dataclass
class ChatEnv:
    chat: ChatService
    directory: DirectoryService
    ws: int
    tech: Member
    admin: Member
    acme: Customer
    globex: Customer

    def user(self, user_id: str = "U_TECH", *, channel: str | None = "C1", team: str = "T1",
             user_team: str | None = None, platform_admin: bool = False, is_dm: bool = False) -> ChatUser:
        return ChatUser(platform="slack", team_id=team, user_id=user_id, channel_id=channel, user_team_id=user_team,
                        platform_admin=platform_admin, is_dm=is_dm)


@pytest.fixture
async def env(db: Database, workspace_id: int) -> ChatEnv:
    workspaces, directory = WorkspaceService(db), DirectoryService(db)
    chat = ChatService(db, cipher=CredentialCipher.from_keys([generate_key()]), workspaces=workspaces,
                       directory=directory, cache_ttl_s=0)
    tech = await directory.add_member(workspace_id, name="Ana Tech", email="ana@msp.example")
    admin = await directory.add_member(workspace_id, name="Ada Admin", email="ada@msp.example", is_admin=True)
    await directory.link_chat_user(workspace_id, tech.id, platform="slack", team_id="T1", user_id="U_TECH")  # type: ignore[arg-type]
    await directory.link_chat_user(workspace_id, admin.id, platform="slack", team_id="T1", user_id="U_ADMIN")  # type: ignore[arg-type]
    acme = await directory.add_customer(workspace_id, identifier="ACME", name="Acme Corp")
    globex = await directory.add_customer(workspace_id, identifier="GLOBEX", name="Globex")
    return ChatEnv(chat, directory, workspace_id, tech, admin, acme, globex)
