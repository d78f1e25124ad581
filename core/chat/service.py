"""The two facades chat surfaces hold, in the style of core/sync/service.py (each call goes to the module
that owns it):

- `ChatService`: installations (installations.py), who is acting (identity.py), channel bindings
  (bindings.py) and ticket threads (threads.py); they share one short-lived cache, which `invalidate`
  clears after an admin change.
- `ChatViews`: the view models surfaces render, ticket cards (cards.py) and forms (forms.py).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager
from dataclasses import replace
from datetime import datetime
from typing import Any

from connectors.base import Capabilities
from core.chat import visibility
from core.chat.bindings import Bindings
from core.chat.cache import CACHE_TTL_S, TTLCache
from core.chat.card_cache import CardCache, Defer
from core.chat.cards import AiSuggester, ContextCheck, DocsLinks, TicketCards
from core.chat.end_users import EndUsers
from core.chat.forms import TicketForms
from core.chat.home_views import HomeViews
from core.chat.identity import Identities
from core.chat.installations import Installations
from core.chat.models import ChannelInfo, ChatUser, Installation, ThreadPost
from core.chat.posts import PostRecord, add_post
from core.chat.sla_info import PsaDueDates, SlaInfo
from core.chat.threads import Threads, add_link
from core.connections import ConnectionService
from core.context import Actor
from core.errors import DeskbridgeError
from core.notify import RiskAlertEvent
from core.tickets import DEFAULT_CAPABILITIES, TicketService
from core.views import FormOption, FormView, RiskAlertView, TicketDetail, TicketView
from core.workspaces import DirectoryService, WorkspaceService
from store.crypto import CredentialCipher
from store.db import Database, Scope
from store.group_commit import grouped_writes
from store.tables import Member, PsaConnection
from store.types import utcnow


class ChatService:
    """Installations, identities, bindings and thread links for chat surfaces."""

    def __init__(self, db: Database, *, cipher: CredentialCipher, workspaces: WorkspaceService,
                 directory: DirectoryService, clock: Callable[[], datetime] = utcnow,
                 cache_ttl_s: float = CACHE_TTL_S) -> None:
        self.db = db
        self.cipher = cipher
        self.workspaces = workspaces
        self.directory = directory
        self._cache = TTLCache(cache_ttl_s)
        self.installations = Installations(db, cipher=cipher, workspaces=workspaces, cache=self._cache, clock=clock)
        self.bindings = Bindings(db, directory=directory, cache=self._cache, clock=clock)
        self.identities = Identities(db, directory=directory, bindings=self.bindings, cache=self._cache)
        self.threads = Threads(db, cache=self._cache)
        self.end_users = EndUsers(db, bindings=self.bindings)  # contacts outside their customer's channels
        self.home_views = HomeViews(db)  # Homes open, shared by every app instance (home_views.py)

    def invalidate(self) -> None:
        """Forget cached installations, identities and bindings (after an admin change)."""
        self._cache.clear()

    # ------------------------------------------------------------ installations

    async def installation(self, platform: str, team_id: str | None,
                           enterprise_id: str | None = None) -> Installation | None:
        return await self.installations.installation(platform, team_id, enterprise_id)

    def cached_installation(self, platform: str, team_id: str | None,
                            enterprise_id: str | None = None) -> tuple[bool, Installation | None]:
        return self.installations.cached(platform, team_id, enterprise_id)

    async def save_installation(self, *, platform: str, team_id: str, bot_token: str | None,
                                bot_user_id: str | None = None, bot_id: str | None = None,
                                enterprise_id: str | None = None, data: dict[str, Any] | None = None,
                                workspace_id: int | None = None, team_name: str | None = None) -> Installation:
        return await self.installations.save_installation(
            platform=platform, team_id=team_id, bot_token=bot_token, bot_user_id=bot_user_id, bot_id=bot_id,
            enterprise_id=enterprise_id, data=data, workspace_id=workspace_id, team_name=team_name)

    async def first_time(self, source: str, event_id: str) -> bool:
        return await self.installations.first_time(source, event_id)

    @staticmethod
    def grouped_writes() -> AbstractContextManager[None]:
        """Writes made inside may share one commit with others queued at the same moment, each in its own
        savepoint, its own write and its own refusal (store/group_commit.py): a burst of held clicks' acceptances."""
        return grouped_writes()

    def claim_ahead(self, source: str, event_id: str) -> None:
        """Begin `first_time(source, event_id)` now, without waiting (surfaces call it as they ack)."""
        self.installations.claim_ahead(source, event_id)

    async def not_done(self, source: str, event_id: str) -> None:
        await self.installations.not_done(source, event_id)

    async def preauthorize(self, platform: str, team_id: str, workspace_id: int) -> Installation:
        return await self.installations.preauthorize(platform, team_id, workspace_id)

    async def delete_installation(self, platform: str, team_id: str) -> bool:
        return await self.installations.delete_installation(platform, team_id)

    # ------------------------------------------------------------ who is acting

    async def member_for(self, workspace_id: int, user: ChatUser) -> Member | None:
        return await self.identities.member_for(workspace_id, user)

    async def actor_for(self, workspace_id: int, user: ChatUser) -> tuple[Actor, ChannelInfo]:
        return await self.identities.actor_for(workspace_id, user)

    async def end_user_actor(self, workspace_id: int, user: ChatUser,
                             email: str | None) -> tuple[Actor, ChannelInfo]:
        """A contact (by verified e-mail) outside a customer channel (end_users.py); PermissionDenied if none."""
        return await self.end_users.actor_for(workspace_id, user, email)

    async def member_actor(self, workspace_id: int, platform: str, team_id: str, user_id: str) -> Actor | None:
        return await self.identities.member_actor(workspace_id, platform, team_id, user_id)

    async def write_author(self, workspace_id: int, op_id: int, platform: str,
                           team_id: str | None = None) -> str | None:
        return await self.identities.write_author(workspace_id, op_id, platform, team_id)

    async def has_admin(self, workspace_id: int) -> bool:
        return await self.identities.has_admin(workspace_id)

    async def link_first_admin(self, workspace_id: int, user: ChatUser, email: str) -> tuple[Member, bool]:
        return await self.identities.link_first_admin(workspace_id, user, email)

    async def link_user(self, workspace_id: int, user: ChatUser, email: str) -> Member:
        return await self.identities.link_user(workspace_id, user, email)

    async def autolink(self, workspace_id: int, user: ChatUser,
                       verified_email: Callable[[], Awaitable[str | None]]) -> bool:
        return await self.identities.autolink(workspace_id, user, verified_email)

    async def member_ids_for_chat(self, workspace_id: int, platform: str) -> dict[int, tuple[str, str]]:
        return await self.identities.member_ids_for_chat(workspace_id, platform)

    async def app_home_targets(self, workspace_id: int, platform: str, *, ticket_id: int | None,
                               changes: dict[str, tuple[Any, Any]] | None = None, op_id: int | None = None,
                               created: bool = False) -> list[tuple[str, str]]:
        return await self.identities.app_home_targets(workspace_id, platform, ticket_id=ticket_id, changes=changes,
                                                      op_id=op_id, created=created)

    async def app_home_targets_of_changes(self, workspace_id: int, platform: str,
                                          changes: list[tuple[int, dict[str, tuple[Any, Any]]]]
                                          ) -> dict[int, list[tuple[str, str]]]:
        return await self.identities.app_home_targets_of_changes(workspace_id, platform, changes)

    require_admin = staticmethod(visibility.require_admin)

    # ------------------------------------------------------------ bindings

    async def channel(self, workspace_id: int, platform: str, team_id: str, channel_id: str | None) -> ChannelInfo:
        return await self.bindings.channel(workspace_id, platform, team_id, channel_id)

    async def bind(self, actor: Actor, user: ChatUser, kind: str, customer_text: str | None = None, *,
                   shared: bool = False) -> ChannelInfo:
        return await self.bindings.bind(actor, user, kind, customer_text, shared=shared)

    async def unbind(self, actor: Actor, user: ChatUser, kind: str | None = None) -> int:
        return await self.bindings.unbind(actor, user, kind)

    async def sla_warning_channels(self, workspace_id: int, platform: str, *,
                                   customer_id: int | None) -> list[tuple[str, str]]:
        return await self.bindings.sla_warning_channels(workspace_id, platform, customer_id=customer_id)

    async def risk_alert_channels(self, workspace_id: int, platform: str, *,
                                  customer_id: int | None) -> list[tuple[str, str]]:
        return await self.bindings.risk_alert_channels(workspace_id, platform, customer_id=customer_id)

    async def dispatch_channels(self, workspace_id: int, platform: str, *,
                                customer_id: int | None) -> list[tuple[str, str, str]]:
        return await self.bindings.dispatch_channels(workspace_id, platform, customer_id=customer_id)

    # ------------------------------------------------------------ threads

    async def record_post(self, workspace_id: int, *, ticket_id: int, platform: str, team_id: str,
                          channel_id: str, message_ts: str, ref: dict[str, Any] | None = None,
                          post: PostRecord | None = None) -> None:
        """The ticket's thread at this message; with `post`, the bot post's record too (what it holds, for redaction:
        core/chat/posts.py), in the same transaction."""
        if post is None:
            await self.threads.record_post(workspace_id, ticket_id=ticket_id, platform=platform, team_id=team_id,
                                           channel_id=channel_id, message_ts=message_ts, ref=ref)
            return
        async with self.db.write(Scope.workspace(workspace_id)) as session:
            await add_post(session, post, message_ts)
            await add_link(session, workspace_id, ticket_id=ticket_id, platform=platform, team_id=team_id,
                           channel_id=channel_id, message_ts=message_ts, ref=ref)

    async def ticket_for_thread(self, workspace_id: int, platform: str, channel_id: str,
                                thread_ts: str) -> int | None:
        return await self.threads.ticket_for_thread(workspace_id, platform, channel_id, thread_ts)

    async def posts_for_ticket(self, workspace_id: int, ticket_id: int, platform: str) -> list[ThreadPost]:
        return await self.threads.posts_for_ticket(workspace_id, ticket_id, platform)

    async def posts_for_tickets(self, workspace_id: int, ticket_ids: list[int],
                                platform: str) -> dict[int, list[ThreadPost]]:
        return await self.threads.posts_for_tickets(workspace_id, ticket_ids, platform)


class ChatViews:
    """Turns service results into the views every chat surface renders."""

    CHOICES_MAX = TicketForms.CHOICES_MAX

    def __init__(self, db: Database, *, tickets: TicketService, connections: ConnectionService,
                 capabilities: Callable[[str], Capabilities] | None = None, sla: SlaInfo | None = None,
                 clock: Callable[[], datetime] = utcnow, ai: AiSuggester | None = None,
                 tenant_context: ContextCheck | None = None, docs: DocsLinks | None = None) -> None:
        self.db = db
        self.tickets = tickets
        self.connections = connections
        self.sla: SlaInfo = sla or PsaDueDates(db)
        self._clock = clock
        caps = capabilities or (lambda kind: DEFAULT_CAPABILITIES)
        self.cards = TicketCards(db, tickets=tickets, connections=connections, capabilities=caps, sla=self.sla,
                                 clock=clock, ai=ai, tenant_context=tenant_context,
                                 docs=docs, cache=CardCache(db))
        self.forms = TicketForms(db, tickets=tickets, cards=self.cards, capabilities=caps)

    def now(self) -> datetime:
        return self._clock()

    @property
    def defer(self) -> Defer | None:
        """How kept cards are rebuilt ahead of time (the server's quiet-time jobs; None: never)."""
        return self.cards.cache.defer if self.cards.cache is not None else None

    @defer.setter
    def defer(self, value: Defer | None) -> None:
        if self.cards.cache is not None:
            self.cards.cache.defer = value

    # ------------------------------------------------------------ ticket card

    async def psa_url(self, actor: Actor, connection_id: int | None, external_id: str | None) -> str | None:
        """Deep link into the PSA's own UI (None while the ticket is not yet created there)."""
        return await self.cards.psa_url(actor, connection_id, external_id)

    async def risk_alert(self, event: RiskAlertEvent) -> RiskAlertView:
        """An at-risk post's view: the event's figures, with the customer's name and the PSA link where the ticket
        has them (a ticket that cannot be read now is posted with the figures alone)."""
        view = RiskAlertView(ticket_number=event.ticket_number, subject=event.subject, customer_name=None,
                             priority=event.priority, score=event.score, threshold=event.threshold,
                             reasons=event.reasons)
        if event.ticket_number is None:
            return view
        actor = Actor.system(event.workspace_id)
        try:
            detail = await self.tickets.get(actor, event.ticket_number)
            return replace(view, customer_name=detail.summary.customer_name,
                           psa_url=await self.psa_url(actor, detail.summary.connection_id, detail.external_id))
        except DeskbridgeError:
            return view

    async def caps_for(self, actor: Actor, connection_id: int | None) -> Capabilities:
        return await self.cards.caps_for(actor, connection_id)

    async def ticket(self, actor: Actor, ref: int | str, *, audience: str = "tech",
                     notice: str | None = None, kept: bool = False) -> TicketView:
        return await self.cards.ticket(actor, ref, audience=audience, notice=notice, kept=kept)

    async def ticket_by_id(self, actor: Actor, ticket_id: int, *, audience: str = "tech") -> TicketView | None:
        return await self.cards.ticket_by_id(actor, ticket_id, audience=audience)

    async def ticket_after_ai(self, actor: Actor, ref: int | str) -> TicketView:
        """The card after an AI assist action on the ticket (a category applied or undone, a draft): its AI part
        computed again, not the one kept for its other cards (core/chat/cards.py AI_KEEP_S)."""
        detail = await self.cards.tickets.get(actor, ref)
        self.cards.forget_ai(detail.summary.id)
        return await self.cards.ticket_from_detail(actor, detail)

    def bare(self, detail: TicketDetail) -> TicketView:
        """The ticket as written, with no card built (no links, SLA, AI): for a surface that renders later."""
        return TicketView(detail=detail, now=self.cards.now())

    async def ticket_from_detail(self, actor: Actor, detail: TicketDetail, *, audience: str = "tech",
                                 notice: str | None = None) -> TicketView:
        return await self.cards.ticket_from_detail(actor, detail, audience=audience, notice=notice)

    # ------------------------------------------------------------ forms

    async def default_connection(self, actor: Actor) -> PsaConnection | None:
        return await self.forms.default_connection(actor)

    async def new_ticket_form(self, actor: Actor, *, subject: str = "", description: str = "",
                              context: dict[str, Any] | None = None) -> FormView:
        return await self.forms.new_ticket_form(actor, subject=subject, description=description, context=context)

    async def customer_options(self, actor: Actor, query: str, limit: int = CHOICES_MAX) -> list[FormOption]:
        return await self.forms.customer_options(actor, query, limit)

    async def customer_choice(self, actor: Actor, value: str) -> FormOption | None:
        return await self.forms.customer_choice(actor, value)

    async def reply_form(self, actor: Actor, ref: int | str, *, visibility: str = "public",
                         context: dict[str, Any] | None = None, text: str | None = None) -> FormView:
        return await self.forms.reply_form(actor, ref, visibility=visibility, context=context, text=text)

    async def status_form(self, actor: Actor, ref: int | str, *, context: dict[str, Any] | None = None) -> FormView:
        return await self.forms.status_form(actor, ref, context=context)

    async def time_form(self, actor: Actor, ref: int | str, *, context: dict[str, Any] | None = None) -> FormView:
        return await self.forms.time_form(actor, ref, context=context)
