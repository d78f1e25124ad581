"""The composition root: settings -> engine -> connector registry -> services -> surfaces.

The only module of bot/ that imports store/ and concrete connectors. Everything else receives what it
needs from the `Deskbridge` container built here.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
from sqlalchemy.exc import IntegrityError

from bot.settings import Settings
from bot.wiring import _load_keys, connector_options
from connectors.alert_webhook import AlertWebhookClient
from connectors.docs import DocsPlatform
from connectors.hudu import HuduDocs
from connectors.itglue import ItGlueDocs
from connectors.m365 import DirectoryPool, admin_consent_url
from connectors.mail import build_reader as build_mail_reader
from connectors.registry import Registry
from connectors.rmm import PARSERS as ALERT_PARSERS
from connectors.rmm import datto
from core.admin_links import AdminLinkService
from core.admin_sessions import AdminSessionService
from core.ai import psa_kb
from core.ai.drafts import LlmConfig
from core.ai.service import AiService
from core.alert_webhooks import AlertWebhookService
from core.apikeys import ApiKeyService
from core.audit_search import AuditSearch
from core.chat import ChatCommands, ChatPosts, ChatService, ChatViews
from core.connections import ConnectionService
from core.context import Actor
from core.docs_links import DocsService
from core.errors import Conflict, NotFound
from core.idempotency import IdempotencyService
from core.intake.alerts import AlertIntake
from core.intake.mail import MailIntake
from core.intake.mailbox import MailboxService
from core.intake.offers import AlertOffers
from core.intake.requests import EndUserRequests
from core.intake.sources import AlertSourceService
from core.m365_tenants import M365TenantService
from core.notify import FanoutNotifier
from core.outbox.admin import OutboxAdmin
from core.outbox.backoff import BackoffPolicy
from core.outbox.worker import OutboxWorker, WorkerConfig
from core.psa_tokens import DatabaseTokenCache
from core.queue import QueueService
from core.sla.config import SlaConfigService
from core.sla.monitor import SlaMonitor
from core.sla.service import SlaService
from core.sync.engine import SyncEngine
from core.sync.service import SyncService
from core.tenant_actions import QuickActions
from core.tenant_context import TenantContextService
from core.tickets import TicketService
from core.workspaces import DirectoryService, WorkspaceService
from store import migrate
from store.crypto import CredentialCipher, generate_key  # noqa: F401 - bot/cli/serve.py takes it from here
from store.db import Database

if TYPE_CHECKING:
    from bot.slack.app import SlackSurface
    from bot.teams.app import TeamsSurface

log = logging.getLogger("deskbridge")

SANDBOX_CONNECTION = "sandbox"
# Notes of bootstrap() that the start banner (bot/banner.py) shows as its own lines instead.
SANDBOX_NOTE = ("No PSA configured: running against the built-in sandbox PSA (connection 'sandbox', generated demo "
                "data). Add a real PSA with `deskbridge connection add connectwise ...`.")
NO_SLACK_NOTE = "No Slack credentials: the Slack app is off. Try Deskbridge in the terminal with `deskbridge console`."


@dataclass
class Deskbridge:
    """Everything the surfaces need, built once by `build`; every service always exists."""

    settings: Settings
    db: Database
    registry: Registry
    cipher: CredentialCipher
    # Surfaces register themselves here (SlackNotifier, TeamsNotifier, the console).
    notifier: FanoutNotifier
    workspaces: WorkspaceService
    directory: DirectoryService
    connections: ConnectionService
    tickets: TicketService
    queue: QueueService
    apikeys: ApiKeyService
    idempotency: IdempotencyService
    outbox_admin: OutboxAdmin
    outbox_worker: OutboxWorker  # delivers outbox ops (run by `serve`, `background` and the console)
    alert_webhooks: AlertWebhookService  # acknowledge/resolve RMM alerts through the MSP's own webhook
    alert_sources: AlertSourceService  # alert intake: sources, secrets, customer mapping rules, triage
    alert_intake: AlertIntake  # POST /webhooks/alerts/{key}: alerts become tickets (core/intake)
    mailboxes: MailboxService  # the support mailbox (IMAP or Graph), polled each minute into MailIntake
    end_user_requests: EndUserRequests  # end users asking for help in customer channels
    alert_offers: AlertOffers  # "Create ticket" from chat for alerts that made no ticket
    sync: SyncService  # ticket sync, picklists, reconcile, webhooks, mappings
    sla: SlaService  # clocks and figures
    sla_config: SlaConfigService  # calendars and policies
    sla_monitor: SlaMonitor  # the per-minute warning sweep
    ai: AiService  # categorisation, similar tickets, suggested resolutions (core/ai)
    m365: M365TenantService  # which M365 tenant each customer has (issue 23)
    tenant_context: TenantContextService  # M365 user quick view beside a ticket (issue 23)
    quick_actions: QuickActions  # M365 reset password / revoke sessions / sync device through the outbox
    docs: DocsService  # Hudu / IT Glue links on technicians' cards (issue 23)
    # Chat, shared by Slack, Teams and the console: bindings/identities, view builders, the command runner.
    chat: ChatService
    chat_posts: ChatPosts
    chat_views: ChatViews
    chat_commands: ChatCommands
    admin_links: AdminLinkService  # one-time sign-in links to the admin pages (`deskbridge admin link`)
    admin_sessions: AdminSessionService  # admin-page sessions (server-side: sign-out ends them everywhere)
    audit: AuditSearch  # the audit log: search (admin pages) and admin changes recorded
    slack: SlackSurface | None = None  # only when Slack is configured (settings.slack_enabled)
    teams: TeamsSurface | None = None  # only when Teams is configured (settings.teams_enabled)
    # Body templates an admin pastes into an RMM (`deskbridge intake template datto`): name -> text.
    alert_templates: dict[str, str] = field(default_factory=dict)
    banner: list[str] = field(default_factory=list)
    # Signs admin-page session cookies; derived from the instance's secret key (bot/admin/session.py).
    admin_session_key: bytes = field(default=b"", repr=False)
    settle_gc: bool = False  # a long-running server process: bot/gctune.py settings (not in tests)
    _workspace_id: int | None = field(default=None, init=False, repr=False)

    @property
    def default_workspace_id(self) -> int:
        """The workspace of single-workspace mode (DESKBRIDGE_WORKSPACE_SLUG), known once bootstrapped."""
        if self._workspace_id is None:
            raise RuntimeError("bootstrap() the container first: the default workspace is not known yet")
        return self._workspace_id

    @default_workspace_id.setter
    def default_workspace_id(self, workspace_id: int) -> None:
        self._workspace_id = workspace_id

    def system_actor(self) -> Actor:
        return Actor.system(self.default_workspace_id)

    async def readiness(self) -> dict[str, bool]:
        db_ok = await self.db.ping()
        mig_ok = False
        if db_ok:
            mig_ok = await asyncio.to_thread(migrate.is_up_to_date, self.settings.database_url)
        return {"database": db_ok, "migrations": mig_ok}

    async def aclose(self) -> None:
        await self.sync.webhooks.stop()  # the refresh worker process, if one was started (idempotent)
        if self.slack is not None:  # Slack deliveries queued by the outbox worker / SLA monitor go out first
            await self.slack.flush()
        if self.teams is not None:
            await self.teams.stop()
        await self.sla_monitor.aclose()
        await self.connections.aclose()
        await self.alert_webhooks.aclose()
        await self.tenant_context.aclose()
        await self.docs.aclose()
        await self.db.dispose()


def build(settings: Settings, *, transport: httpx.AsyncBaseTransport | None = None,
          registry: Registry | None = None) -> Deskbridge:
    """Wire every service for these settings (no I/O beyond reading the key file)."""
    db = Database(settings.database_url, read_threads=settings.database_read_threads)
    cipher, note, session_key = _load_keys(settings)
    worker = settings.refresh_worker == "process" and transport is None and registry is None  # see _sync
    # The outbox's settle delay must exceed the connectors' real request timeout: one setting for both.
    registry = registry or Registry(transport=transport, options=connector_options(settings, db, cipher))
    notifier = FanoutNotifier()
    workspaces, directory = WorkspaceService(db), DirectoryService(db)
    connections = ConnectionService(db, cipher=cipher, checker=registry.check, factory=registry.build,
                                    known_kinds=registry.kinds())
    sync = _sync(settings, db, connections, notifier, worker=worker)
    # Standalone tickets (no PSA) are announced by TicketService itself; a PSA ticket whose history a first
    # sync left unread (closed ones) has it read when someone opens it.
    tickets = TicketService(db, capabilities=registry.capabilities, notifier=notifier, history=sync.load_history)
    queue, outbox_admin = QueueService(db), OutboxAdmin(db)
    alert_webhooks = AlertWebhookService(db, cipher=cipher, poster=AlertWebhookClient(
        transport=transport, timeout=min(settings.psa_request_timeout_seconds, 15.0)))
    sla = SlaService(db)
    m365 = M365TenantService(db, consent_url=_consent_url(settings))
    m365_pool = _m365_pool(settings, db, cipher, transport)
    docs = DocsService(db, cipher=cipher, factory=_docs_factory(transport))
    ai = _ai(settings, db, registry, docs, notifier, connections)
    tenant_context = TenantContextService(db, tenants=m365, directories=m365_pool, connections=connections, ai=ai)
    quick_actions = QuickActions(db, context=tenant_context, cipher=cipher, tickets=tickets)
    chat = ChatService(db, cipher=cipher, workspaces=workspaces, directory=directory)
    alert_sources = AlertSourceService(db, cipher=cipher)
    alert_intake = AlertIntake(db, sources=alert_sources, tickets=tickets, parsers=ALERT_PARSERS)
    mailboxes = MailboxService(db, cipher=cipher, intake=MailIntake(db, tickets=tickets),
                               readers=lambda kind, config: build_mail_reader(kind, config, transport=transport))
    chat_views = ChatViews(db, tickets=tickets, connections=connections, capabilities=registry.capabilities, sla=sla,
                           ai=ai.suggestions, tenant_context=tenant_context.available if m365_pool else None,
                           docs=docs.card_links)
    container = Deskbridge(
        settings=settings,
        db=db,
        registry=registry,
        cipher=cipher,
        notifier=notifier,
        workspaces=workspaces,
        directory=directory,
        connections=connections,
        tickets=tickets,
        queue=queue,
        apikeys=ApiKeyService(db),
        idempotency=IdempotencyService(db),
        outbox_admin=outbox_admin,
        outbox_worker=OutboxWorker(db, connections, notifier, config=outbox_worker_config(settings),
                                   name=settings.instance_id, alerts=alert_webhooks,
                                   tenant=quick_actions.sender if m365_pool is not None else None),
        alert_webhooks=alert_webhooks,
        alert_sources=alert_sources, alert_intake=alert_intake, mailboxes=mailboxes,
        end_user_requests=EndUserRequests(db, tickets=tickets),
        alert_offers=AlertOffers(chat=chat, views=chat_views, intake=alert_intake),
        alert_templates={"datto-trigger": datto.TRIGGER_TEMPLATE, "datto-resolve": datto.RESOLVE_TEMPLATE},
        sync=sync,
        sla=sla,
        sla_config=SlaConfigService(db),
        sla_monitor=SlaMonitor(db, sla, notifier),
        ai=ai,
        m365=m365,
        tenant_context=tenant_context,
        quick_actions=quick_actions,
        docs=docs,
        chat=chat,
        chat_posts=ChatPosts(db),
        chat_views=chat_views,
        chat_commands=ChatCommands(db, chat=chat, views=chat_views, queue=queue, tickets=tickets,
                                   directory=directory, workspaces=workspaces, alerts=alert_webhooks,
                                   outbox_admin=outbox_admin, ai=ai, quick_actions=quick_actions),
        admin_links=AdminLinkService(db),
        admin_sessions=AdminSessionService(db),
        audit=AuditSearch(db),
        admin_session_key=session_key,
    )
    _add_surfaces(container, notifier)
    if note:
        container.banner.append(note)
    return container


def _sync(settings: Settings, db: Database, connections: ConnectionService, notifier: FanoutNotifier, *,
          worker: bool) -> SyncService:
    """Sync, with callbacks' re-reads in a worker process (bot/refresh_worker.py) unless told not to or built
    around an injected transport or registry (tests: neither can go to another process)."""
    sync = SyncService(SyncEngine(db, connections, notifier, instance_id=settings.instance_id))
    if worker:
        from bot import refresh_worker

        sync.webhooks.use_worker(refresh_worker.client(settings, db, notifier))
    return sync


def _ai(settings: Settings, db: Database, registry: Registry, docs: DocsService, notifier: FanoutNotifier,
        connections: ConnectionService) -> AiService:
    """AI assist: KB articles read through the documentation platforms and the PSAs' own knowledge bases,
    at-risk posts through the notifier."""
    return AiService(db, capabilities=registry.capabilities, llm=_llm_config(settings),
                     kb_reader=psa_kb.combined(docs.kb_articles, psa_kb.psa_reader(connections)), notifier=notifier)


def _docs_factory(transport: httpx.AsyncBaseTransport | None) -> Callable[[str, str, str], DocsPlatform]:
    """Documentation clients by kind (core/docs_links.py asks for them with the stored URL and key)."""
    def make(kind: str, base_url: str, api_key: str) -> DocsPlatform:
        cls = HuduDocs if kind == "hudu" else ItGlueDocs
        return cls(base_url, api_key, transport=transport)

    return make


def _m365_pool(settings: Settings, db: Database, cipher: CredentialCipher, transport: httpx.AsyncBaseTransport | None
               ) -> DirectoryPool | None:
    """Graph clients per customer tenant, when the MSP's multi-tenant app is configured."""
    if not (settings.m365_client_id and settings.m365_client_secret):
        return None
    return DirectoryPool(
        client_id=settings.m365_client_id, client_secret=settings.m365_client_secret.get_secret_value(),
        graph_url=settings.m365_graph_url, login_url=settings.m365_login_url, transport=transport,
        token_cache=DatabaseTokenCache(db, cipher, holder=settings.instance_id),  # one token per tenant, all instances
    )


def _llm_config(settings: Settings) -> LlmConfig | None:
    """The OpenAI-compatible endpoint for remote drafts, when one is configured."""
    if not settings.llm_base_url:
        return None
    return LlmConfig(base_url=settings.llm_base_url, model=settings.llm_model, timeout=settings.llm_timeout,
                     api_key=settings.llm_api_key.get_secret_value() if settings.llm_api_key else "local")


def _add_surfaces(container: Deskbridge, notifier: FanoutNotifier) -> None:
    """The chat surfaces that are configured; each platform's SDK is imported only then. Kept ticket cards
    (core/chat/card_cache.py) are dropped on their ticket's events before any surface redraws one."""
    if container.chat_views.cards.cache is not None:
        notifier.add(container.chat_views.cards.cache)
    if container.settings.slack_enabled:
        from bot.slack.app import SlackSurface

        container.slack = SlackSurface(container)
        notifier.add(container.slack.notifier)
    if container.settings.teams_enabled:
        from bot.teams.app import TeamsSurface

        container.teams = TeamsSurface(container)
        notifier.add(container.teams.notifier)


def _consent_url(settings: Settings) -> Callable[[str], str] | None:
    """The admin-consent link maker of the configured multi-tenant M365 app (None when there is none)."""
    client_id = settings.m365_client_id
    if not client_id:
        return None
    return lambda tenant: admin_consent_url(tenant, client_id, login_url=settings.m365_login_url,
                                            redirect_uri=settings.m365_consent_redirect_uri)


def outbox_worker_config(settings: Settings, *, concurrency: int | None = None) -> WorkerConfig:
    """The outbox worker's timing from settings (see bot/settings.py, `outbox_*`); `concurrency` overrides."""
    return WorkerConfig(
        concurrency=concurrency or settings.outbox_concurrency, lease_seconds=settings.outbox_lease_seconds,
        settle_seconds=settings.outbox_settle_seconds, client_timeout=settings.psa_request_timeout_seconds,
        poll_seconds=settings.outbox_poll_seconds,
        backoff=BackoffPolicy(base=settings.outbox_backoff_base_seconds, cap=settings.outbox_backoff_cap_seconds),
        breaker_fail_max=settings.outbox_breaker_failures, breaker_reset_seconds=settings.outbox_breaker_reset_seconds,
    )


async def bootstrap(container: Deskbridge) -> list[str]:
    """Migrate, ensure the default workspace, and fall back to the sandbox PSA when none is configured."""
    s = container.settings
    if s.auto_migrate:
        await asyncio.to_thread(migrate.upgrade, s.database_url)
    # Instances may start together (serve + background, or several serve): every step tolerates that
    # another one did it first.
    try:
        ws = await container.workspaces.by_slug(s.workspace_slug)
    except NotFound:
        try:
            ws = await container.workspaces.create(slug=s.workspace_slug, name=s.workspace_name,
                                                   timezone=s.workspace_timezone)
        except (Conflict, IntegrityError):
            ws = await container.workspaces.by_slug(s.workspace_slug)
    assert ws.id is not None  # a stored row
    container.default_workspace_id = ws.id
    conns = await container.connections.list(ws.id)
    real = [c for c in conns if c.kind != "sandbox"]
    want_sandbox = s.sandbox == "on" or (s.sandbox == "auto" and not real)
    if want_sandbox:
        if not any(c.kind == "sandbox" for c in conns):
            state = Path(s.secret_key_file).parent / "sandbox.db"  # the sandbox PSA's own SQLite file
            try:
                await container.connections.add(
                    ws.id, kind="sandbox", name=SANDBOX_CONNECTION,
                    settings={"seed": s.sandbox_seed, "state_path": str(state)}, credentials={"api_key": "sandbox"},
                    make_default=True,
                )
            except (Conflict, IntegrityError):
                pass  # another instance starting at the same time added it
        container.banner.append(SANDBOX_NOTE)
    if not s.slack_enabled:
        container.banner.append(NO_SLACK_NOTE)
    return container.banner  # logged by the start banner (bot/banner.py) of `serve` and `background`


def settings_from_env(**overrides: Any) -> Settings:
    """Settings from the environment (and .env), with explicit overrides (CLI flags, tests)."""
    return Settings(**{k: v for k, v in overrides.items() if v is not None})
