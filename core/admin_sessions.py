"""Admin-page sessions kept on the server, and who may open one.

A session is a row (`admin_session`) named by a random id that only the browser's cookie holds; the row keeps
its SHA-256. Every page checks the row, so signing out (`end`) kills the session on every instance at once,
including a copy of the cookie taken before. Rows long past their expiry are deleted when new ones start.

Who may sign in with Slack or Microsoft (`admin_for`): the chat installation of the verified team/tenant
names the workspace; the person must be an active technician marked admin there, found by the chat identity
they linked (`/deskbridge link`) or else by the e-mail the provider verified. Anyone else is refused.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import col, select

from core.context import Actor
from core.errors import PermissionDenied
from core.local_time import zone_named
from store.db import Database, Scope
from store.enums import Origin
from store.tables import AdminSession, ChatInstallation, Member, MemberChatIdentity, Workspace
from store.types import utcnow

SESSION_TTL = timedelta(hours=8)
KEEP_ENDED = timedelta(days=7)


@dataclass(frozen=True, slots=True)
class SessionInfo:
    workspace_id: int
    who: str
    member_id: int | None
    expires_at: datetime
    timezone: str = "UTC"  # the workspace's zone: the pages show times and read dates in it

    def actor(self) -> Actor:
        """Who this session acts as; audit rows name the admin (`admin-page:<who>`)."""
        return Actor(workspace_id=self.workspace_id, origin=Origin.API, member_id=self.member_id,
                     display=f"admin-page:{self.who}"[:200], is_admin=True)


@dataclass(frozen=True, slots=True)
class VerifiedIdentity:
    """What an identity provider vouched for (checked ID token): platform, team/tenant, user, e-mail."""

    platform: str  # "slack" or "teams" (Microsoft Entra: the tenant of the Teams installation)
    team_id: str
    user_id: str
    email: str | None
    name: str | None = None


def _hash(sid: str) -> str:
    return hashlib.sha256(sid.encode()).hexdigest()


class AdminSessionService:
    """Start, check and end admin-page sessions; map a verified identity to a workspace's admin."""

    def __init__(self, db: Database, *, clock: Callable[[], datetime] = utcnow, ttl: timedelta = SESSION_TTL) -> None:
        self.db = db
        self._clock = clock
        self.ttl = ttl

    async def start(self, workspace_id: int, who: str, member_id: int | None = None) -> tuple[str, SessionInfo]:
        """A new session; returns its id (for the cookie only) and what it is."""
        sid = secrets.token_urlsafe(32)
        now = self._clock()
        expires = now + self.ttl
        async with self.db.write(Scope.workspace(workspace_id)) as session:
            await session.execute(sa.delete(AdminSession).where(  # housekeeping: sessions long over
                col(AdminSession.expires_at) < now - KEEP_ENDED))
            session.add(AdminSession(workspace_id=workspace_id, sid_hash=_hash(sid), who=who[:200],
                                     member_id=member_id, expires_at=expires))
            zone = (await session.exec(select(Workspace.timezone).where(Workspace.id == workspace_id))).first()
        return sid, SessionInfo(workspace_id, who[:200], member_id, expires, zone_named(zone).key)

    async def check(self, workspace_id: int, sid: str) -> SessionInfo | None:
        """The live session with this id in this workspace, or None (unknown, ended, expired)."""
        if not sid or len(sid) > 100:
            return None
        async with self.db.read(Scope.workspace(workspace_id)) as session:
            found = (await session.exec(select(AdminSession, Workspace.timezone).join(
                Workspace, col(Workspace.id) == col(AdminSession.workspace_id)).where(
                AdminSession.sid_hash == _hash(sid)))).first()
            row, zone = found if found is not None else (None, None)
            if row is not None and row.member_id is not None:
                member = await session.get(Member, row.member_id)
                if member is None or not (member.is_admin and member.active):
                    return None  # no longer an admin: the session dies with the role
        if row is None or row.revoked_at is not None or row.expires_at <= self._clock():
            return None
        return SessionInfo(row.workspace_id, row.who, row.member_id, row.expires_at, zone_named(zone).key)

    async def end(self, workspace_id: int, sid: str) -> bool:
        """Sign out: the session stops working everywhere. False when it was not live."""
        async with self.db.write(Scope.workspace(workspace_id)) as session:
            done = await session.execute(sa.update(AdminSession).where(
                col(AdminSession.sid_hash) == _hash(sid), col(AdminSession.revoked_at).is_(None)
            ).values(revoked_at=self._clock()))
        return bool(done.rowcount)  # type: ignore[attr-defined]

    async def admin_for(self, ident: VerifiedIdentity) -> tuple[int, Member]:
        """(workspace, member) for a verified identity that is a Deskbridge admin; PermissionDenied otherwise."""
        async with self.db.read(Scope.system_wide()) as session:
            inst = (await session.exec(select(ChatInstallation).where(
                ChatInstallation.platform == ident.platform,
                ChatInstallation.external_team_id == ident.team_id))).first()
        where = "Slack workspace" if ident.platform == "slack" else "Microsoft tenant"
        if inst is None:
            raise PermissionDenied(f"Deskbridge is not installed in your {where}.",
                                   hint="Sign in with the account of the organisation Deskbridge is installed for, "
                                        "or ask for a sign-in link: `deskbridge admin link`.")
        ws = inst.workspace_id
        async with self.db.read(Scope.workspace(ws)) as session:
            member = (await session.exec(select(Member).join(
                MemberChatIdentity, col(MemberChatIdentity.member_id) == col(Member.id)).where(
                MemberChatIdentity.platform == ident.platform, MemberChatIdentity.team_id == ident.team_id,
                MemberChatIdentity.user_id == ident.user_id))).first()
            if member is None and ident.email:
                member = (await session.exec(select(Member).where(
                    sa.func.lower(col(Member.email)) == ident.email.strip().lower(),
                    col(Member.active) == sa.true()).order_by(col(Member.is_admin).desc()))).first()
        if member is None or not member.is_admin or not member.active:
            raise PermissionDenied("You are not a Deskbridge admin of this workspace.",
                                   hint="Ask an admin to make you one (on the server: `deskbridge workspace admin "
                                        "<your e-mail>`), then sign in again.")
        return ws, member
