"""Chat rules shared by every chat surface: installations, who is acting, channel bindings, threads.

Everything here is decided on the server from verified platform ids, never from what a user typed:
- a chat user is a technician only through a `MemberChatIdentity` row keyed by the user's own team id
  (a Slack Connect guest from another org never matches one);
- a channel bound to a customer scopes every query in it to that customer (`Actor.customer_scope_id`);
- an unknown user outside a customer channel (an unbound channel, a DM) sees nothing: default deny.
"""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import select

from core.context import Actor
from core.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from core.scheduling import mark_event_processed
from core.singleflight import SingleFlight
from core.workspaces import DirectoryService, WorkspaceService
from store.crypto import CredentialCipher
from store.db import Database, Scope
from store.enums import BindingKind, EntryKind, Origin
from store.tables import (
    ChannelBinding,
    ChatInstallation,
    ChatLink,
    Customer,
    Member,
    MemberChatIdentity,
    OutboxOp,
    Ticket,
    TimelineEntry,
)
from store.types import utcnow

CACHE_TTL_S = 30.0
AUTOLINK_RETRY_S = 600.0  # an unknown chat user is matched by e-mail at most this often
BINDING_KINDS = {"customer": BindingKind.CUSTOMER, "dispatch": BindingKind.DISPATCH, "sla": BindingKind.SLA_ALERTS,
                 "sla_alerts": BindingKind.SLA_ALERTS}
# Ticket fields shown in a queue row (TicketChanged keys): a change re-renders the assignee's App Home.
QUEUE_ROW_FIELDS = frozenset({"stage", "status", "priority", "subject", "customer_id", "deleted"})


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


class _TTLCache:
    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._data: dict[Any, tuple[float, Any]] = {}

    def get(self, key: Any) -> tuple[bool, Any]:
        hit = self._data.get(key)
        if hit is None or hit[0] < time.monotonic():
            return False, None
        return True, hit[1]

    def put(self, key: Any, value: Any) -> None:
        if len(self._data) > 10_000:
            self._data.clear()
        self._data[key] = (time.monotonic() + self.ttl, value)

    def clear(self) -> None:
        self._data.clear()


class ChatService:
    """Installations, identities, bindings and thread links for chat surfaces."""

    def __init__(self, db: Database, *, cipher: CredentialCipher, workspaces: WorkspaceService,
                 directory: DirectoryService, clock: Callable[[], datetime] = utcnow,
                 cache_ttl_s: float = CACHE_TTL_S) -> None:
        self.db = db
        self.cipher = cipher
        self.workspaces = workspaces
        self.directory = directory
        self._clock = clock
        self._cache = _TTLCache(cache_ttl_s)
        self._autolink_tried: dict[tuple[str, str, str], float] = {}
        self._autolinking: SingleFlight[bool] = SingleFlight()

    def invalidate(self) -> None:
        """Forget cached installations, identities and bindings (after an admin change)."""
        self._cache.clear()

    # ------------------------------------------------------------ installations

    async def installation(self, platform: str, team_id: str | None,
                           enterprise_id: str | None = None) -> Installation | None:
        """The installation for a team (or an org-wide enterprise install), cached briefly."""
        key = ("inst", platform, team_id, enterprise_id)
        hit, value = self._cache.get(key)
        if hit:
            return value  # type: ignore[no-any-return]
        # Cross-workspace lookup by design: the request's team id is what tells us the workspace.
        async with self.db.read(Scope.system_wide()) as session:
            stmt = select(ChatInstallation).where(ChatInstallation.platform == platform)
            if team_id:
                stmt = stmt.where(ChatInstallation.external_team_id == team_id)
            elif enterprise_id:
                stmt = stmt.where(ChatInstallation.enterprise_id == enterprise_id)
            else:
                return None
            row = (await session.exec(stmt)).first()
        inst = self._to_installation(row) if row else None
        self._cache.put(key, inst)
        return inst

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
        self.invalidate()
        inst = await self.installation(platform, team_id)
        assert inst is not None
        return inst

    async def first_time(self, source: str, event_id: str) -> bool:
        """True the first time an event (or OAuth state nonce) is seen; retries and replays get False."""
        return await mark_event_processed(self.db, source, event_id)

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
                ChatInstallation.platform == platform, ChatInstallation.external_team_id == team_id,
            ).values(bot_token_ciphertext=None))
        self.invalidate()
        return True

    # ------------------------------------------------------------ who is acting

    async def member_for(self, workspace_id: int, user: ChatUser) -> Member | None:
        key = ("member", workspace_id, user.platform, user.home_team, user.user_id)
        hit, value = self._cache.get(key)
        if hit:
            return value  # type: ignore[no-any-return]
        member = await self.directory.member_for_chat_user(workspace_id, platform=user.platform,
                                                           team_id=user.home_team, user_id=user.user_id)
        self._cache.put(key, member)
        return member

    async def channel(self, workspace_id: int, platform: str, team_id: str, channel_id: str | None) -> ChannelInfo:
        """What a channel is bound to (cached briefly)."""
        if not channel_id:
            return ChannelInfo()
        key = ("chan", workspace_id, platform, team_id, channel_id)
        hit, value = self._cache.get(key)
        if hit:
            return value  # type: ignore[no-any-return]
        async with self.db.read(Scope.workspace(workspace_id)) as session:
            rows = (await session.exec(select(ChannelBinding).where(
                ChannelBinding.platform == platform, ChannelBinding.team_id == team_id,
                ChannelBinding.channel_id == channel_id))).all()
            cust = next((r for r in rows if r.kind == BindingKind.CUSTOMER and r.customer_id), None)
            customer = await session.get(Customer, cust.customer_id) if cust and cust.customer_id else None
        # Any binding saying the customer reads the channel makes it a customer channel (fail closed).
        outsiders = any(r.visibility == "customer" for r in rows)
        info = ChannelInfo(kinds=frozenset(r.kind for r in rows), customer_id=customer.id if customer else None,
                           customer_name=customer.name if customer else None,
                           visibility="customer" if outsiders else "tech")
        self._cache.put(key, info)
        return info

    async def actor_for(self, workspace_id: int, user: ChatUser) -> tuple[Actor, ChannelInfo]:
        """The actor for a chat user in a channel; unknown users outside customer channels are refused."""
        info = await self.channel(workspace_id, user.platform, user.team_id, user.channel_id)
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
        raise PermissionDenied(
            "Deskbridge does not know you yet, and this channel is not bound to a customer.",
            hint="Technicians: run /deskbridge link to link your account by e-mail. Customers: ask your MSP "
                 "to bind this channel to your company.",
        )

    async def write_author(self, workspace_id: int, op_id: int, platform: str) -> str | None:
        """The chat user id of whoever made an outbox write from this platform (its audit actor), if any."""
        async with self.db.read(Scope.workspace(workspace_id)) as session:
            op = await session.get(OutboxOp, op_id)
        m = re.match(rf"^{re.escape(platform)}:([^\s(]+)", (op.actor if op else "") or "")
        return m.group(1) if m else None

    async def has_admin(self, workspace_id: int) -> bool:
        """Whether the workspace has an active Deskbridge admin (a technician marked admin); cached briefly."""
        key = ("has_admin", workspace_id)
        hit, value = self._cache.get(key)
        if hit:
            return bool(value)
        async with self.db.read(Scope.workspace(workspace_id)) as session:
            found = (await session.exec(select(Member.id).where(Member.is_admin == sa.true(),
                                                                Member.active == sa.true()).limit(1))).first()
        self._cache.put(key, found is not None)
        return found is not None

    async def link_user(self, workspace_id: int, user: ChatUser, email: str) -> Member:
        """Link a chat user to the technician with this e-mail (the platform's verified e-mail)."""
        if user.is_external:
            raise PermissionDenied("Accounts from another organisation cannot be linked to a technician.")
        member = await self.directory.member_by_email(workspace_id, email)
        if member is None:
            raise NotFound(f"No technician has the e-mail {email}.",
                           hint="Ask an admin to add you as a technician (or run a PSA sync), then link again.")
        await self.directory.link_chat_user(workspace_id, member.id, platform=user.platform,  # type: ignore[arg-type]
                                            team_id=user.home_team, user_id=user.user_id)
        self.invalidate()
        return member

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

    # ------------------------------------------------------------ bindings

    @staticmethod
    def require_admin(actor: Actor, what: str) -> None:
        if not actor.is_admin:
            raise PermissionDenied(f"Only Deskbridge admins can {what}.",
                                   hint="Ask an admin (a technician marked admin, or a workspace admin).")

    async def bind(self, actor: Actor, user: ChatUser, kind: str, customer_text: str | None = None, *,
                   shared: bool = False) -> ChannelInfo:
        """Bind the user's channel; customer channels shared with another org get customer visibility."""
        self.require_admin(actor, "bind channels")
        if not user.channel_id or user.is_dm:
            raise InvalidInput("Only channels can be bound, not direct messages.", hint="Run it in the channel.")
        bkind = BINDING_KINDS.get(kind)
        if bkind is None:
            raise InvalidInput(f"'{kind}' is not a channel kind.", hint="Use customer, dispatch or sla.")
        customer = None
        if bkind == BindingKind.CUSTOMER or customer_text:
            if not customer_text:
                raise InvalidInput("Which customer?", hint="Use /deskbridge bind customer <identifier>.")
            customer = await self.directory.find_customer(actor.workspace_id, customer_text)
        async with self.db.write(actor.scope) as session:
            # Once the customer's people read a channel, re-binding without `shared` does not make it internal
            # again (guests are invisible to the chat API): `unbind` first to really change that.
            shared = shared or any(r.visibility == "customer" for r in (await session.exec(select(ChannelBinding).where(
                ChannelBinding.platform == user.platform, ChannelBinding.team_id == user.team_id,
                ChannelBinding.channel_id == user.channel_id))).all())
            if bkind == BindingKind.CUSTOMER:
                # One customer per channel: rebinding replaces the old customer.
                await session.execute(sa.delete(ChannelBinding).where(
                    ChannelBinding.platform == user.platform, ChannelBinding.team_id == user.team_id,
                    ChannelBinding.channel_id == user.channel_id, ChannelBinding.kind == BindingKind.CUSTOMER))
            row = (await session.exec(select(ChannelBinding).where(
                ChannelBinding.platform == user.platform, ChannelBinding.team_id == user.team_id,
                ChannelBinding.channel_id == user.channel_id, ChannelBinding.kind == bkind))).first()
            if row is None:
                row = ChannelBinding(workspace_id=actor.workspace_id, platform=user.platform, team_id=user.team_id,
                                     channel_id=user.channel_id, kind=bkind, created_by=actor.display[:128])
                session.add(row)
            else:
                row.updated_at = self._clock()
            row.customer_id = customer.id if customer else None
            row.visibility = "customer" if shared else "tech"
        self.invalidate()
        return await self.channel(actor.workspace_id, user.platform, user.team_id, user.channel_id)

    async def unbind(self, actor: Actor, user: ChatUser, kind: str | None = None) -> int:
        self.require_admin(actor, "unbind channels")
        stmt = sa.delete(ChannelBinding).where(
            ChannelBinding.platform == user.platform, ChannelBinding.team_id == user.team_id,
            ChannelBinding.channel_id == user.channel_id)
        if kind:
            if kind not in BINDING_KINDS:
                raise InvalidInput(f"'{kind}' is not a channel kind.", hint="Use customer, dispatch or sla.")
            stmt = stmt.where(ChannelBinding.kind == BINDING_KINDS[kind])
        async with self.db.write(actor.scope) as session:
            n = (await session.execute(stmt)).rowcount or 0
        self.invalidate()
        return n

    async def sla_warning_channels(self, workspace_id: int, platform: str, *,
                                   customer_id: int | None) -> list[tuple[str, str]]:
        """(team, channel) pairs that get an SLA warning for a ticket of `customer_id`, each once.

        SLA figures are internal: a channel shared with a customer never gets one. A channel bound to a
        customer gets warnings for that customer's tickets only, even when it is also bound `sla`
        (otherwise one customer's channel would show every other customer's warnings). A technicians'
        `sla` channel bound to no customer gets them all.
        """
        async with self.db.read(Scope.workspace(workspace_id)) as session:
            rows = (await session.exec(select(ChannelBinding).where(
                ChannelBinding.platform == platform,
                ChannelBinding.kind.in_((BindingKind.SLA_ALERTS, BindingKind.CUSTOMER))))).all()  # type: ignore[attr-defined]
        channels: dict[tuple[str, str], list[ChannelBinding]] = {}
        for r in rows:
            channels.setdefault((r.team_id, r.channel_id), []).append(r)
        out = []
        for key, bindings in channels.items():
            if any(b.visibility == "customer" for b in bindings):
                continue
            bound_customers = {b.customer_id for b in bindings if b.kind == BindingKind.CUSTOMER}
            if bound_customers and customer_id not in bound_customers:
                continue
            out.append(key)
        return out

    # ------------------------------------------------------------ threads

    async def record_post(self, workspace_id: int, *, ticket_id: int, platform: str, team_id: str,
                          channel_id: str, message_ts: str, ref: dict[str, Any] | None = None) -> None:
        """Remember where a ticket card was posted (its thread)."""
        async with self.db.write(Scope.workspace(workspace_id)) as session:
            exists = (await session.exec(select(ChatLink).where(
                ChatLink.platform == platform, ChatLink.channel_id == channel_id,
                ChatLink.message_ts == message_ts))).first()
            if exists is None:
                session.add(ChatLink(workspace_id=workspace_id, ticket_id=ticket_id, platform=platform,
                                     team_id=team_id, channel_id=channel_id, message_ts=message_ts,
                                     conversation_ref=ref or {}))

    async def ticket_for_thread(self, workspace_id: int, platform: str, channel_id: str,
                                thread_ts: str) -> int | None:
        """The ticket whose card started this thread, if any."""
        key = ("thread", workspace_id, platform, channel_id, thread_ts)
        hit, value = self._cache.get(key)
        if hit and value is not None:
            return value  # type: ignore[no-any-return]
        async with self.db.read(Scope.workspace(workspace_id)) as session:
            row = (await session.exec(select(ChatLink.ticket_id).where(
                ChatLink.platform == platform, ChatLink.channel_id == channel_id,
                ChatLink.message_ts == thread_ts))).first()
        if row is not None:
            self._cache.put(key, row)
        return row

    async def posts_for_ticket(self, workspace_id: int, ticket_id: int, platform: str) -> list[ThreadPost]:
        """Every thread of this ticket on a platform (root ts and the ts of the card to update)."""
        async with self.db.read(Scope.workspace(workspace_id)) as session:
            rows = (await session.exec(select(ChatLink, Ticket.customer_id).join(
                Ticket, Ticket.id == ChatLink.ticket_id).where(  # type: ignore[arg-type]
                ChatLink.ticket_id == ticket_id, ChatLink.platform == platform).order_by(ChatLink.id))).all()
        return [ThreadPost(team_id=r.team_id, channel_id=r.channel_id, thread_ts=r.message_ts,
                           card_ts=str((r.conversation_ref or {}).get("card_ts") or r.message_ts),
                           customer_id=customer_id) for r, customer_id in rows]

    async def member_ids_for_chat(self, workspace_id: int, platform: str) -> dict[int, tuple[str, str]]:
        """member id -> (team, user) for App Home refreshes."""
        async with self.db.read(Scope.workspace(workspace_id)) as session:
            rows = (await session.exec(select(MemberChatIdentity).where(
                MemberChatIdentity.platform == platform))).all()
        return {r.member_id: (r.team_id, r.user_id) for r in rows}

    # ------------------------------------------------------------ delivery: dispatch, App Home

    async def dispatch_channels(self, workspace_id: int, platform: str, *,
                                customer_id: int | None) -> list[tuple[str, str, str]]:
        """(team, channel, audience) for each channel bound `dispatch` that gets a new ticket of `customer_id`.

        A dispatch channel also bound to a customer (by a customer binding, or `bind dispatch <customer>`)
        gets that customer's tickets only. A channel shared with a customer gets the customer-audience card,
        and only when it is bound to that customer: never every customer's tickets.
        """
        async with self.db.read(Scope.workspace(workspace_id)) as session:
            rows = (await session.exec(select(ChannelBinding).where(
                ChannelBinding.platform == platform,
                ChannelBinding.kind.in_((BindingKind.DISPATCH, BindingKind.CUSTOMER))))).all()  # type: ignore[attr-defined]
        channels: dict[tuple[str, str], list[ChannelBinding]] = {}
        for r in rows:
            channels.setdefault((r.team_id, r.channel_id), []).append(r)
        out = []
        for (team, channel), bindings in channels.items():
            if not any(b.kind == BindingKind.DISPATCH for b in bindings):
                continue
            shared = any(b.visibility == "customer" for b in bindings)
            bound = {b.customer_id for b in bindings if b.customer_id is not None}
            if (bound or shared) and customer_id not in bound:
                continue
            out.append((team, channel, "customer" if shared else "tech"))
        return out

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

    async def member_actor(self, workspace_id: int, platform: str, team_id: str, user_id: str) -> Actor | None:
        """The technician behind a chat identity, acting outside any channel (their App Home); None if unlinked."""
        try:
            actor, _ = await self.actor_for(workspace_id, ChatUser(platform=platform, team_id=team_id, user_id=user_id))
        except PermissionDenied:
            return None
        return actor if actor.member_id is not None else None


def audience(actor: Actor, info: ChannelInfo) -> str:
    """Who a view is for: "customer" (no internal notes, time, SLA, devices, write plumbing) or "tech".

    A non-technician only ever gets the customer view, and so does everyone in a channel shared with the
    customer (what a technician opens there, the customer reads too).
    """
    return "customer" if (not actor.is_member or info.visibility == "customer") else "tech"


def seen_with(info: ChannelInfo, *, shared: bool) -> ChannelInfo:
    """A channel as it is now: one shared with another organisation (Slack Connect, a Teams shared channel)
    is read by outsiders, whatever its binding said when it was made (it may have been shared since)."""
    return replace(info, visibility="customer") if shared and info.visibility != "customer" else info


def may_show_tickets(info: ChannelInfo) -> bool:
    """Ticket cards may be posted into a channel outsiders read only once it is bound to their customer:
    otherwise any customer's ticket could be shown to another customer's people."""
    return info.visibility != "customer" or info.customer_id is not None


def may_post_ticket(info: ChannelInfo, customer_id: int | None) -> bool:
    """Whether anything of a ticket of `customer_id` (its card and card updates, notes, failed writes, SLA
    warnings, dispatch) may be posted into a channel, by its binding *now*, not when its thread began.

    A channel bound to a customer gets that customer's tickets only, even in threads it had before it was
    bound; a channel outsiders read gets nothing until it is bound to their customer.
    """
    if info.customer_id is not None:
        return customer_id == info.customer_id
    return may_show_tickets(info)


def card_audience(info: ChannelInfo) -> str:
    """The audience of a card posted into a channel, whoever caused the post (sync, outbox, a technician)."""
    return "customer" if info.visibility == "customer" else "tech"


def note_visible_in(info: ChannelInfo, visibility: str) -> bool:
    """Whether a PSA note is mirrored into a channel: a channel shared with the customer gets public notes only."""
    return info.visibility != "customer" or visibility == "public"


def failures_visible_in(info: ChannelInfo) -> bool:
    """Whether a failed write (and the PSA's error text) is told in a channel: never where the customer reads."""
    return info.visibility != "customer"


def with_scope(actor: Actor, info: ChannelInfo) -> Actor:
    """The actor scoped to the channel's customer (used when a channel binding changes mid-request)."""
    return replace(actor, customer_scope_id=info.customer_id)
