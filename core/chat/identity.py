"""Who is acting in chat: a chat user becomes a technician only through a `MemberChatIdentity` row.

Everything here is decided on the server from verified platform ids, never from what a user typed:
- a chat user is a technician only through a `MemberChatIdentity` row keyed by the user's own team id
  (a Slack Connect guest from another org never matches one);
- a channel bound to a customer scopes every query in it to that customer (`Actor.customer_scope_id`);
- an unknown user outside a customer channel (an unbound channel, a DM) sees nothing: default deny.
Also: linking chat users to technicians (by verified e-mail), and whose App Home a ticket change touches.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import sqlalchemy as sa
from sqlmodel import col, select

from core.chat.bindings import Bindings
from core.chat.cache import TTLCache
from core.chat.models import ChannelInfo, ChatUser
from core.context import Actor
from core.errors import NotFound, PermissionDenied
from core.singleflight import SingleFlight
from core.workspaces import DirectoryService
from store.db import Database, Scope
from store.enums import EntryKind, Origin
from store.tables import Member, MemberChatIdentity, OutboxOp, PsaConnection, Ticket, TimelineEntry

AUTOLINK_RETRY_S = 600.0  # an unknown chat user is matched by e-mail at most this often
# Ticket fields shown in a queue row (TicketChanged keys): a change re-renders the assignee's App Home.
QUEUE_ROW_FIELDS = frozenset({"stage", "status", "priority", "subject", "customer_id", "deleted"})


class Identities:
    """Chat users to actors and technicians, cached briefly."""

    def __init__(self, db: Database, *, directory: DirectoryService, bindings: Bindings, cache: TTLCache) -> None:
        self.db = db
        self.directory = directory
        self.bindings = bindings
        self._cache = cache
        self._autolink_tried: dict[tuple[str, str, str], float] = {}
        self._autolinking: SingleFlight[bool] = SingleFlight()

    def invalidate(self) -> None:
        self._cache.clear()

    async def member_for(self, workspace_id: int, user: ChatUser) -> Member | None:
        key = ("member", workspace_id, user.platform, user.home_team, user.user_id)
        member: Member | None = await self._cache.load(key, lambda: self.directory.member_for_chat_user(
            workspace_id, platform=user.platform, team_id=user.home_team, user_id=user.user_id))
        return member

    async def actor_for(self, workspace_id: int, user: ChatUser) -> tuple[Actor, ChannelInfo]:
        """The actor for a chat user in a channel; unknown users outside customer channels are refused."""
        info = await self.bindings.channel(workspace_id, user.platform, user.team_id, user.channel_id)
        member = None if user.is_external else await self.member_for(workspace_id, user)
        display = f"{user.platform}:{user.user_id}" + (f" ({user.name})" if user.name else "")
        origin = Origin(user.platform) if user.platform in {o.value for o in Origin} else Origin.SYSTEM
        # A chat platform's workspace admin is a Deskbridge admin only until Deskbridge has one of its own
        # (to bootstrap: bind channels, link people); after that, being a Slack admin grants nothing here.
        bootstrap_admin = (user.platform_admin and not user.is_external
                           and not await self.has_admin(workspace_id))
        if member is not None:
            actor = Actor(workspace_id=workspace_id, origin=origin, member_id=member.id, display=display,
                          is_admin=member.is_admin or bootstrap_admin,
                          is_member=True, customer_scope_id=info.customer_id)
            return actor, info
        if info.customer_id is not None:
            return Actor(workspace_id=workspace_id, origin=origin, display=display, is_member=False,
                         is_admin=bootstrap_admin, customer_scope_id=info.customer_id), info
        if bootstrap_admin:
            # A chat workspace admin who is not linked yet may set up bindings and links, nothing else.
            return Actor(workspace_id=workspace_id, origin=origin, display=display, is_member=False,
                         is_admin=True, customer_scope_id=-1), info
        setup = "" if await self.has_admin(workspace_id) else (
            " Setting Deskbridge up? A chat workspace admin runs /deskbridge link to become its first admin.")
        raise PermissionDenied(
            "Deskbridge does not know you yet, and this channel is not bound to a customer.",
            hint="Technicians: run /deskbridge link to link your account by e-mail. Customers: ask your MSP "
                 "to bind this channel to your company." + setup,
        )

    async def write_author(self, workspace_id: int, op_id: int, platform: str,
                           team_id: str | None = None) -> str | None:
        """The chat user id (on `team_id`, when given) of the technician who made an outbox write, if they
        have one on this platform: the op names its author (`OutboxOp.author_member_id`)."""
        async with self.db.read(Scope.workspace(workspace_id)) as session:
            op = await session.get(OutboxOp, op_id)
            if op is None or op.author_member_id is None:
                return None
            stmt = select(MemberChatIdentity.user_id).where(MemberChatIdentity.member_id == op.author_member_id,
                                                            MemberChatIdentity.platform == platform)
            if team_id is not None:
                stmt = stmt.where(MemberChatIdentity.team_id == team_id)
            return (await session.exec(stmt.order_by(col(MemberChatIdentity.id)))).first()

    async def has_admin(self, workspace_id: int) -> bool:
        """Whether the workspace has an active Deskbridge admin (a technician marked admin); cached briefly."""
        async def fetch() -> bool:
            async with self.db.read(Scope.workspace(workspace_id)) as session:
                found = (await session.exec(select(Member.id).where(Member.is_admin == sa.true(),
                                                                    Member.active == sa.true()).limit(1))).first()
            return found is not None

        return bool(await self._cache.load(("has_admin", workspace_id), fetch))

    async def link_user(self, workspace_id: int, user: ChatUser, email: str) -> Member:
        """Link a chat user to the technician with this e-mail (the platform's verified e-mail)."""
        if user.is_external:
            raise PermissionDenied("Accounts from another organisation cannot be linked to a technician.",
                                   hint="Link from an account of your MSP's own workspace or tenant.")
        member = await self.directory.member_by_email(workspace_id, email)
        if member is None:
            raise NotFound(f"No technician has the e-mail {email}.",
                           hint="Ask an admin to add you as a technician (or run a PSA sync), then link again.")
        await self.directory.link_chat_user(workspace_id, member.id, platform=user.platform,  # type: ignore[arg-type]
                                            team_id=user.home_team, user_id=user.user_id)
        self.invalidate()
        return member

    async def link_first_admin(self, workspace_id: int, user: ChatUser, email: str) -> tuple[Member, bool]:
        """The chat platform's admin sets Deskbridge up from chat alone: linked to the technician with this
        e-mail and made Deskbridge's first admin. In a workspace without a PSA (standalone) and without that
        technician, the technician is created from the chat profile. Returns (member, created)."""
        if user.is_external:
            raise PermissionDenied("Accounts from another organisation cannot be linked to a technician.",
                                   hint="Link from an account of your MSP's own workspace or tenant.")
        member = await self.directory.member_by_email(workspace_id, email)
        created = False
        if member is None:
            async with self.db.read(Scope.workspace(workspace_id)) as session:
                has_psa = (await session.exec(select(PsaConnection.id).limit(1))).first() is not None
            if has_psa:
                raise NotFound(f"No technician in your PSA has the e-mail {email}.",
                               hint="Run /deskbridge link you@your-psa-address with the e-mail your PSA has for "
                                    "you, or wait for the first sync to bring the technicians.")
            name = (user.name or email.split("@", 1)[0]).strip() or email
            member = await self.directory.add_member(workspace_id, name=name, email=email, is_admin=True)
            created = True
        else:
            member = await self.directory.set_admin(workspace_id, email, True)
        await self.directory.link_chat_user(workspace_id, member.id, platform=user.platform,  # type: ignore[arg-type]
                                            team_id=user.home_team, user_id=user.user_id)
        self.invalidate()
        self._cache.put(("has_admin", workspace_id), True)
        return member, created

    async def autolink(self, workspace_id: int, user: ChatUser,
                       verified_email: Callable[[], Awaitable[str | None]]) -> bool:
        """Link an unknown chat user to the technician with their platform-verified e-mail, if one matches.

        Tried at most once per user every AUTOLINK_RETRY_S (each try costs the surface a profile lookup);
        guests from another organisation are never linked. `verified_email` asks the platform only when needed.
        """
        if user.is_external:
            return False
        key = (user.platform, user.home_team, user.user_id)
        if not self._autolinking.busy(key):  # a new user's first clicks arrive together: all join one attempt
            now = time.monotonic()
            if now - self._autolink_tried.get(key, -AUTOLINK_RETRY_S) < AUTOLINK_RETRY_S:
                return False
            if len(self._autolink_tried) > 10_000:
                self._autolink_tried = {k: v for k, v in self._autolink_tried.items()
                                        if now - v < AUTOLINK_RETRY_S}
            self._autolink_tried[key] = now

        async def attempt() -> bool:
            email = await verified_email()
            if not email:
                return False
            try:
                await self.link_user(workspace_id, user, email.lower())
                return True
            except (NotFound, PermissionDenied):
                return False

        return await self._autolinking.run(key, attempt)

    async def member_actor(self, workspace_id: int, platform: str, team_id: str, user_id: str) -> Actor | None:
        """The technician behind a chat identity, acting outside any channel (their App Home); None if unlinked."""
        try:
            actor, _ = await self.actor_for(workspace_id, ChatUser(platform=platform, team_id=team_id, user_id=user_id))
        except PermissionDenied:
            return None
        return actor if actor.member_id is not None else None

    async def member_ids_for_chat(self, workspace_id: int, platform: str) -> dict[int, tuple[str, str]]:
        """member id -> (team, user) for App Home refreshes."""
        async with self.db.read(Scope.workspace(workspace_id)) as session:
            rows = (await session.exec(select(MemberChatIdentity).where(
                MemberChatIdentity.platform == platform))).all()
        return {r.member_id: (r.team_id, r.user_id) for r in rows}

    async def app_home_targets_of_changes(self, workspace_id: int, platform: str,
                                          changes: list[tuple[int, dict[str, tuple[Any, Any]]]]
                                          ) -> dict[int, list[tuple[str, str]]]:
        """`app_home_targets` of several tickets' changes in one read (a burst of PSA changes): ticket id ->
        (team, user) of the technicians whose queue the change alters (the same rule, without `op_id`/`created`)."""
        wanted = {tid: ch for tid, ch in changes if QUEUE_ROW_FIELDS & ch.keys() or "assignee_member_id" in ch}
        if not wanted:
            return {}
        touched: dict[int, set[int | None]] = {}
        async with self.db.read(Scope.workspace(workspace_id)) as session:
            owners = dict((await session.exec(select(col(Ticket.id), col(Ticket.assignee_member_id)).where(
                col(Ticket.id).in_(sorted(wanted))))).all())
            for tid, ch in wanted.items():
                if tid not in owners:
                    continue
                who = touched.setdefault(tid, set())
                if QUEUE_ROW_FIELDS & ch.keys():
                    who.add(owners[tid])
                who.update(ch.get("assignee_member_id", ()))
            members = sorted({m for who in touched.values() for m in who if isinstance(m, int)})
            if not members:
                return {}
            rows = (await session.exec(select(MemberChatIdentity).where(
                MemberChatIdentity.platform == platform,
                col(MemberChatIdentity.member_id).in_(members)))).all()
        chat: dict[int, set[tuple[str, str]]] = {}
        for r in rows:
            chat.setdefault(r.member_id, set()).add((r.team_id, r.user_id))
        return {tid: sorted({t for m in who if isinstance(m, int) for t in chat.get(m, ())})
                for tid, who in touched.items()}

    async def app_home_targets(self, workspace_id: int, platform: str, *, ticket_id: int | None,
                               changes: dict[str, tuple[Any, Any]] | None = None, op_id: int | None = None,
                               created: bool = False) -> list[tuple[str, str]]:
        """(team, user) of the technicians whose own queue (App Home) a ticket change alters.

        A reassignment touches the old and the new assignee; a ticket created, delivered, closed, reopened,
        deleted or changed in what a queue row shows touches its assignee. `op_id` names a delivered outbox
        write, whose timeline entry says what it changed.
        """
        if ticket_id is None:
            return []
        keys = (changes or {}).keys()
        if not created and op_id is None and not (QUEUE_ROW_FIELDS & keys or "assignee_member_id" in keys):
            return []  # nothing a queue row shows, nobody's queue: no read
        touched: set[int | None] = set()
        async with self.db.read(Scope.workspace(workspace_id)) as session:
            ticket = await session.get(Ticket, ticket_id)
            if ticket is None:
                return []
            if created or (changes and QUEUE_ROW_FIELDS & changes.keys()):
                touched.add(ticket.assignee_member_id)
            touched.update((changes or {}).get("assignee_member_id", ()))
            op = await session.get(OutboxOp, op_id) if op_id is not None else None
            if op is not None and op.kind in ("create_ticket", "update_ticket"):
                touched.add(ticket.assignee_member_id)
                entry = await session.get(TimelineEntry, op.timeline_entry_id) if op.timeline_entry_id else None
                if entry is not None and entry.kind == EntryKind.ASSIGNMENT:
                    touched.update((entry.data.get("from"), entry.data.get("to")))
            members = {m for m in touched if isinstance(m, int)}
            if not members:
                return []
            rows = (await session.exec(select(MemberChatIdentity).where(
                MemberChatIdentity.platform == platform,
                MemberChatIdentity.member_id.in_(sorted(members))))).all()  # type: ignore[attr-defined]
        return sorted({(r.team_id, r.user_id) for r in rows})
