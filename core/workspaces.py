"""Workspaces (one MSP each), their settings, customers and members."""

from __future__ import annotations

import re
from typing import Any

import sqlalchemy as sa
from sqlmodel import select

from core.errors import Conflict, InvalidInput, NotFound
from store.db import Database, Scope
from store.tables import Customer, Member, MemberChatIdentity, Workspace

_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")

# Workspace options an admin can set, with their types and defaults.
WORKSPACE_OPTIONS: dict[str, tuple[type, Any]] = {
    "first_reply_moves_to_in_progress": (bool, False),
}


class WorkspaceService:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(self, *, slug: str, name: str, timezone: str = "UTC") -> Workspace:
        if not _SLUG.match(slug):
            raise InvalidInput(f"'{slug}' is not a valid workspace slug.",
                               hint="Use 2-63 lowercase letters, digits and dashes, e.g. 'acme-it'.")
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise InvalidInput(f"'{timezone}' is not a time zone.", hint="Use an IANA name, e.g. Europe/Berlin.") from exc
        async with self.db.write(Scope.system_wide()) as session:
            if (await session.exec(select(Workspace).where(Workspace.slug == slug))).first():
                raise Conflict(f"Workspace '{slug}' already exists.")
            ws = Workspace(slug=slug, name=name.strip()[:200] or slug, timezone=timezone)
            session.add(ws)
        return ws

    async def list(self) -> list[Workspace]:
        async with self.db.read(Scope.system_wide()) as session:
            return list((await session.exec(select(Workspace).order_by(Workspace.id))).all())

    async def by_slug(self, slug: str) -> Workspace:
        async with self.db.read(Scope.system_wide()) as session:
            ws = (await session.exec(select(Workspace).where(Workspace.slug == slug))).first()
        if ws is None:
            raise NotFound(f"Workspace '{slug}' was not found.", hint="List them with `deskbridge workspace list`.")
        return ws

    async def set_option(self, workspace_id: int, key: str, value: str | bool) -> dict[str, Any]:
        if key not in WORKSPACE_OPTIONS:
            raise InvalidInput(f"Unknown setting '{key}'.", hint="Known settings: " + ", ".join(WORKSPACE_OPTIONS))
        typ, _ = WORKSPACE_OPTIONS[key]
        if typ is bool and isinstance(value, str):
            low = value.strip().lower()
            if low not in ("true", "false", "on", "off", "yes", "no", "1", "0"):
                raise InvalidInput(f"'{value}' is not on/off.", hint="Use on or off.")
            value = low in ("true", "on", "yes", "1")
        async with self.db.write(Scope.workspace(workspace_id)) as session:
            ws = await session.get(Workspace, workspace_id)
            if ws is None:
                raise NotFound(f"Workspace {workspace_id} was not found.")
            ws.settings = {**ws.settings, key: value}
            return dict(ws.settings)


class DirectoryService:
    """Customers and members of one workspace, and chat identity lookup."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def add_customer(self, workspace_id: int, *, identifier: str, name: str) -> Customer:
        ident = identifier.strip()
        if not ident or len(ident) > 100:
            raise InvalidInput("A customer needs a short identifier (1-100 characters).", field="identifier")
        async with self.db.write(Scope.workspace(workspace_id)) as session:
            c = Customer(workspace_id=workspace_id, identifier=ident, name=name.strip()[:200] or ident)
            session.add(c)
        return c

    async def find_customer(self, workspace_id: int, text: str) -> Customer:
        """A customer by identifier or name (case-insensitive, exact first, then unique prefix)."""
        q = text.strip().lower()
        async with self.db.read(Scope.workspace(workspace_id)) as session:
            rows = list((await session.exec(select(Customer).where(Customer.active == sa.true()))).all())
        exact = [c for c in rows if c.identifier.lower() == q or c.name.lower() == q]
        if len(exact) == 1:
            return exact[0]
        prefix = [c for c in rows if c.identifier.lower().startswith(q) or c.name.lower().startswith(q)]
        if len(prefix) == 1:
            return prefix[0]
        if not prefix:
            raise NotFound(f"No customer matches '{text}'.", hint="Check the spelling or use the PSA identifier.")
        names = ", ".join(sorted(c.identifier for c in prefix)[:5])
        raise InvalidInput(f"'{text}' matches several customers: {names}.", hint="Be more specific.")

    async def add_member(self, workspace_id: int, *, name: str, email: str | None = None,
                         is_admin: bool = False) -> Member:
        async with self.db.write(Scope.workspace(workspace_id)) as session:
            m = Member(workspace_id=workspace_id, name=name.strip()[:200], email=(email or "").strip().lower() or None,
                       is_admin=is_admin)
            session.add(m)
        return m

    async def link_chat_user(self, workspace_id: int, member_id: int, *, platform: str, team_id: str,
                             user_id: str) -> None:
        async with self.db.write(Scope.workspace(workspace_id)) as session:
            if await session.get(Member, member_id) is None:
                raise NotFound(f"Member {member_id} was not found.")
            existing = (await session.exec(select(MemberChatIdentity).where(
                MemberChatIdentity.platform == platform, MemberChatIdentity.team_id == team_id,
                MemberChatIdentity.user_id == user_id))).first()
            if existing:
                existing.member_id = member_id
            else:
                session.add(MemberChatIdentity(workspace_id=workspace_id, member_id=member_id, platform=platform,
                                               team_id=team_id, user_id=user_id))

    async def member_for_chat_user(self, workspace_id: int, *, platform: str, team_id: str,
                                   user_id: str) -> Member | None:
        async with self.db.read(Scope.workspace(workspace_id)) as session:
            row = (await session.exec(select(Member).join(
                MemberChatIdentity, MemberChatIdentity.member_id == Member.id).where(  # type: ignore[arg-type]
                MemberChatIdentity.platform == platform, MemberChatIdentity.team_id == team_id,
                MemberChatIdentity.user_id == user_id, Member.active == sa.true()))).first()
        return row

    async def member_by_email(self, workspace_id: int, email: str) -> Member | None:
        async with self.db.read(Scope.workspace(workspace_id)) as session:
            return (await session.exec(select(Member).where(
                sa.func.lower(Member.email) == email.strip().lower(), Member.active == sa.true()))).first()

    async def customers(self, workspace_id: int) -> list[Customer]:
        async with self.db.read(Scope.workspace(workspace_id)) as session:
            return list((await session.exec(select(Customer).order_by(Customer.identifier))).all())

    async def members(self, workspace_id: int) -> list[Member]:
        async with self.db.read(Scope.workspace(workspace_id)) as session:
            return list((await session.exec(select(Member).order_by(Member.name))).all())
