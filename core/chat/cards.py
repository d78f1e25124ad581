"""The ticket card every chat surface renders: conversation (public vs internal marked), history, time,
files, links into the PSA and RMM, and the actions a technician may take.

A card for a customer (`audience="customer"`, or any non-technician) leaves out everything internal
(core/chat/visibility.py `for_customer`). SLA figures come from an `SlaInfo` provider (core/chat/sla_info.py).
A card asked for again while its ticket is unchanged comes from core/chat/card_cache.py (per viewer, ticket and
audience); a card whose AI suggestions or documentation links were not ready in time is not kept.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from datetime import datetime
from string import Formatter
from typing import Any
from urllib.parse import quote, urlsplit

from connectors.base import Capabilities, Feature
from core import alert_webhooks
from core.card_fields import card_field_names
from core.chat.alert_chips import alert_chips
from core.chat.card_cache import CardCache
from core.chat.sla_info import SlaInfo
from core.chat.visibility import for_customer
from core.connections import ConnectionService
from core.context import Actor
from core.tickets import DEFAULT_CAPABILITIES, TicketService
from core.views import AiSuggestionsView, ConversationItem, ExternalLink, TicketDetail, TicketView, ViewAction
from store.db import Database
from store.enums import NOTE_KINDS, EntryKind
from store.tables import PsaConnection, Workspace

log = logging.getLogger(__name__)

MAX_FACT_CHARS = 200
AI_BUDGET_S = 0.5  # a card waits at most this long for AI suggestions
# AI assist on technicians' cards (core/ai AiService.suggestions): (actor, ticket id) -> suggestions or None.
AiSuggester = Callable[[Actor, int], Awaitable[AiSuggestionsView | None]]
# Whether a ticket's customer has Microsoft 365 tenant context (core/tenant_context.py): (workspace, customer).
ContextCheck = Callable[[int, int | None], Awaitable[bool]]
# Documentation links for a technician's card (core/docs_links.py): (actor, ticket id) -> (title, url) pairs.
DocsLinks = Callable[[Actor, int], Awaitable[tuple[tuple[str, str], ...]]]
DOCS_BUDGET_S = 0.3  # a card waits at most this long for documentation links (the next card has them, cached)
# A card's AI part is shared by the cards of the same viewer and ticket built within this long while what the AI
# reads of the ticket is unchanged (ai_basis): a burst of write clicks on a few tickets (200 "Add time" clicks,
# bench/teams_invoke.py --writes-only) computed it once per card, about half of each click's CPU. As long as a kept
# card lives (core/chat/card_cache.py TTL), so no card shows an older AI part than a refresh already could.
AI_KEEP_S = 15.0
AI_KEPT_MAX = 512
# Tables whose changes (in this process; other processes' wait out AI_KEEP_S) drop every kept AI part: AI settings
# live in the workspace's settings; models, applied categories, risk scores, drafts and KB articles in their own.
AI_TABLES = ("workspace", "ai_model", "ai_category_apply", "ai_risk", "ai_draft", "kb_article")


class TicketCards:
    """Builds ticket cards (TicketView) from the ticket service, the PSA connection and the SLA figures."""

    def __init__(self, db: Database, *, tickets: TicketService, connections: ConnectionService,
                 capabilities: Callable[[str], Capabilities], sla: SlaInfo, clock: Callable[[], datetime],
                 ai: AiSuggester | None = None, tenant_context: ContextCheck | None = None,
                 docs: DocsLinks | None = None, cache: CardCache | None = None) -> None:
        self.db = db
        self.cache = cache
        self._docs = docs
        self._ai = ai
        self._tenant_context = tenant_context
        self.tickets = tickets
        self.connections = connections
        self._capabilities = capabilities
        self.sla = sla
        self._clock = clock
        self._url_cache: dict[int, Any] = {}
        self._ai_kept: dict[tuple[Any, ...], tuple[float, asyncio.Future[AiSuggestionsView | None]]] = {}
        for table in AI_TABLES:  # what the AI part shows changed here: every kept one is computed again
            db.on_table_change(table, self._ai_kept.clear)

    async def _connection(self, actor: Actor, connection_id: int | None) -> PsaConnection | None:
        if connection_id is None:
            return None
        async with self.db.read(actor.scope) as session:
            return await session.get(PsaConnection, connection_id)

    async def psa_url(self, actor: Actor, connection_id: int | None, external_id: str | None) -> str | None:
        """Deep link into the PSA's own UI (None while the ticket is not yet created there)."""
        if connection_id is None or not external_id:
            return None
        connector = self._url_cache.get(connection_id)
        try:
            if connector is None:
                conn = await self._connection(actor, connection_id)
                if conn is None:
                    return None
                connector = self.connections.build(conn)
                self._url_cache[connection_id] = connector
            return str(connector.ticket_url(external_id))
        except Exception:  # noqa: BLE001 - a link is optional; a broken connector never breaks the card
            log.warning("ticket_url failed", extra={"connection_id": connection_id}, exc_info=True)
            return None

    async def caps_for(self, actor: Actor, connection_id: int | None) -> Capabilities:
        conn = await self._connection(actor, connection_id)
        return self._capabilities(conn.kind) if conn else DEFAULT_CAPABILITIES

    async def _workspace_settings(self, actor: Actor, connection_id: int | None = None
                                  ) -> tuple[dict[str, Any], PsaConnection | None]:
        """The workspace's settings and the ticket's connection, in one read."""
        async with self.db.read(actor.scope) as session:
            ws = await session.get(Workspace, actor.workspace_id)
            conn = await session.get(PsaConnection, connection_id) if connection_id is not None else None
        return (dict(ws.settings) if ws else {}), conn

    async def ticket(self, actor: Actor, ref: int | str, *, audience: str = "tech",
                     notice: str | None = None, kept: bool = False) -> TicketView:
        """The ticket card: conversation (public vs internal marked), history, time, files, links, actions.
        `kept`: a card kept for this viewer, ticket and audience may be the answer while the ticket is
        unchanged (core/chat/card_cache.py; a card's refresh, asked for each time someone looks at it)."""
        if self.cache is None or notice is not None or not kept:
            detail = await self.tickets.get(actor, ref)
            return await self.ticket_from_detail(actor, detail, audience=audience, notice=notice)
        aud = "customer" if audience == "customer" or not actor.is_member else "tech"
        fp = await self.cache.fingerprint(actor, ref)

        async def build(incomplete: list[str]) -> TicketView:
            return await self.ticket_from_detail(actor, await self.tickets.get(actor, ref), audience=aud,
                                                 incomplete=incomplete)

        return await self.cache.card(actor, fp, aud, build, ref=ref)

    async def ticket_by_id(self, actor: Actor, ticket_id: int) -> TicketView | None:
        """The card of a ticket known by its id (events carry ids); None while its PSA create is queued (a
        ticket whose PSA number another connection holds has a card: it is named `cw-1002`)."""
        detail = await self.tickets.get(actor, f"id:{ticket_id}")  # one read: the card needs all of it anyway
        if detail.summary.number is None and detail.external_id is None:
            return None
        return await self.ticket_from_detail(actor, detail)

    def now(self) -> datetime:
        return self._clock()

    async def ticket_from_detail(self, actor: Actor, detail: TicketDetail, *, audience: str = "tech",
                                 notice: str | None = None, incomplete: list[str] | None = None) -> TicketView:
        """The card of a loaded ticket; `incomplete` collects the extras not ready in time (AI, docs)."""
        now = self._clock()
        missed = incomplete if incomplete is not None else []
        customer_view = audience == "customer" or not actor.is_member
        items = [i for i in detail.timeline if not (customer_view and i.is_internal)]
        conversation = tuple(
            ConversationItem(author=i.author_name or "someone", body=i.body, at=i.occurred_at,
                             visibility=i.kind.value.removeprefix("note_"), origin=i.origin,
                             queued=i.write == "pending", failed=i.failed)
            for i in items if i.kind in NOTE_KINDS)
        status_history = tuple(i for i in items if i.kind == EntryKind.STATUS_CHANGE)
        time_entries = tuple(i for i in items if i.kind == EntryKind.TIME_ENTRY)
        attachments = tuple(i for i in items if i.kind == EntryKind.ATTACHMENT)
        s = detail.summary
        url = await self.psa_url(actor, s.connection_id, detail.external_id)
        settings, conn = await self._workspace_settings(actor, s.connection_id)
        links = []
        if url:
            links.append(ExternalLink(kind="psa", label="Open in PSA", url=url))
        if detail.device_ref:
            links.append(ExternalLink(kind="device", label="Device", ref=detail.device_ref,
                                      url=_template(settings.get("rmm_device_url"), ref=detail.device_ref)))
        if detail.alert_ref:
            links.append(ExternalLink(kind="alert", label="Alert", ref=detail.alert_ref,
                                      url=_template(settings.get("rmm_alert_url"), ref=detail.alert_ref)))
        if detail.contract_ref and not customer_view:
            links.append(ExternalLink(kind="contract", label="Contract", ref=detail.contract_ref))
        runbook = _template(settings.get("runbook_url"), ref=detail.type_name or "",
                            customer=s.customer_name or "")
        if runbook and not customer_view:
            links.append(ExternalLink(kind="runbook", label="Runbook", url=runbook))
        caps = self._capabilities(conn.kind) if conn else DEFAULT_CAPABILITIES
        sla = (await self.sla.remaining(actor.workspace_id, [s.id], now)).get(s.id)
        actions = () if customer_view else _ticket_actions(actor, detail, caps, links,
                                                           alert_webhook=alert_webhooks.configured(settings))
        # Technicians only, never in a customer-bound channel: Microsoft 365 user/device context.
        if (not customer_view and actor.customer_scope_id is None and self._tenant_context is not None
                and await self._tenant_context(actor.workspace_id, s.customer_id)):
            actions += (ViewAction(action="context", label="Context", value=s.ref),)
        if not customer_view and actor.customer_scope_id is None and self._docs is not None:
            actions += tuple(ViewAction(action="open_docs", label=title, value=s.ref, url=url)
                             for title, url in await _within(self._docs(actor, s.id), DOCS_BUDGET_S, "docs",
                                                             missed) or ())
        view = TicketView(
            detail=detail, now=now, conversation=conversation, status_history=status_history,
            time_entries=() if customer_view else time_entries, attachments=attachments, links=tuple(links),
            actions=actions, total_minutes=sum(int(i.data.get("minutes", 0)) for i in time_entries if not i.failed),
            sla_remaining_s=sla, audience="customer" if customer_view else "tech", notice=notice,
            ai=None if customer_view else await self._suggestions(actor, s.id, missed, basis=ai_basis(detail)),
            facts=() if customer_view else card_facts(detail, (conn.settings or {}) if conn else {}),
            alerts=() if customer_view else await alert_chips(
                self.db, actor, s.id, lambda ref: _template(settings.get("rmm_alert_url"), ref=ref)),
        )
        return for_customer(view) if customer_view else view

    async def _suggestions(self, actor: Actor, ticket_id: int, missed: list[str],
                           basis: tuple[Any, ...] = ()) -> AiSuggestionsView | None:
        """AI assist for the card, within AI_BUDGET_S: it never slows a card down. Work that takes longer
        (the first card of a workspace builds its similar-ticket index, tens of seconds on 100k tickets)
        goes on in the background and the card is shown without it; the next card has it. The same viewer's
        cards of the ticket share one computation for AI_KEEP_S while `basis` (ai_basis) is unchanged."""
        if self._ai is None:
            return None
        work = self._ai_work(actor, ticket_id, basis)
        try:
            return await self._linked(actor, await asyncio.wait_for(asyncio.shield(work), AI_BUDGET_S))
        except TimeoutError:
            log.info("AI suggestions not ready in time; card shown without them", extra={"ticket_id": ticket_id})
            missed.append("ai")
            return None
        except Exception:  # noqa: BLE001 - AI assist is optional; it never breaks a card
            log.warning("AI suggestions failed", extra={"ticket_id": ticket_id}, exc_info=True)
            missed.append("ai")
            return None

    def forget_ai(self, ticket_id: int) -> None:
        """Drop the kept AI parts of a ticket (an AI assist action changed what they show: category applied or
        undone, a draft)."""
        for key in [k for k in self._ai_kept if k[5] == ticket_id]:
            del self._ai_kept[key]

    def _ai_work(self, actor: Actor, ticket_id: int, basis: tuple[Any, ...]) -> asyncio.Future[AiSuggestionsView | None]:
        """The AI part being computed (or computed) for this viewer, ticket and basis, or a new computation; a
        failed one is not shared."""
        assert self._ai is not None
        key = (actor.workspace_id, actor.member_id, actor.is_member, actor.customer_scope_id, actor.is_admin,
               ticket_id, basis)
        now = time.monotonic()
        kept = self._ai_kept.get(key)
        if kept is not None and kept[0] > now and not (kept[1].done() and (kept[1].cancelled()
                                                                           or kept[1].exception() is not None)):
            return kept[1]
        work = asyncio.ensure_future(self._ai(actor, ticket_id))
        work.add_done_callback(_consume)
        if len(self._ai_kept) >= AI_KEPT_MAX:  # the same dict object always (its clear() is subscribed above)
            for old in [k for k, v in self._ai_kept.items() if v[0] <= now]:
                del self._ai_kept[old]
            while len(self._ai_kept) >= AI_KEPT_MAX:
                self._ai_kept.pop(next(iter(self._ai_kept)))
        self._ai_kept[key] = (now + AI_KEEP_S, work)
        return work

    async def _linked(self, actor: Actor, view: AiSuggestionsView | None) -> AiSuggestionsView | None:
        """Similar tickets with their link into the PSA (where they live in one)."""
        if view is None or not view.similar:
            return view
        return replace(view, similar=tuple([replace(h, url=await self.psa_url(actor, h.connection_id, h.external_id))
                                            for h in view.similar]))


async def _within(call: Awaitable[Any], budget: float, what: str, missed: list[str]) -> Any:
    """`call`'s result if it is ready within `budget` seconds, else None (it goes on in the background, so a
    cache behind it is warm for the next card); a failure is logged, never raised. `missed` names what was
    not ready (such a card is not kept)."""
    work = asyncio.ensure_future(call)
    work.add_done_callback(_consume)
    try:
        return await asyncio.wait_for(asyncio.shield(work), budget)
    except TimeoutError:
        log.info("card extra not ready in time; card shown without it", extra={"what": what})
    except Exception:  # noqa: BLE001 - optional on a card
        log.warning("card extra failed", extra={"what": what}, exc_info=True)
    missed.append(what)
    return None


def ai_basis(detail: TicketDetail) -> tuple[Any, ...]:
    """What AI assist (core/ai AiService.suggestions) reads of the ticket: its text (subject and description: the
    category model, similar tickets and KB links match on nothing else), its category (the gate's current label),
    its customer (whose similar tickets and KB articles it may show) and whether it is open (the risk chip is for
    open tickets only). A card built when any of it changed computes its AI part again. A status change between
    open stages, a reassignment, a priority, a note or a time entry changes none of it, so a burst of PSA edits
    of a ticket (each one a card refresh) computes it once per AI_KEEP_S. What it reads elsewhere (AI settings,
    models, applied categories, risk scores, drafts, KB articles) drops every kept part when it changes
    (AI_TABLES); other tickets' closures reach the similar-ticket index within AI_KEEP_S, as before."""
    s = detail.summary
    return (s.subject, detail.description, s.stage.is_open, s.customer_id, detail.category_name,
            detail.subcategory_name, detail.type_name, detail.closed_at)


def card_facts(detail: TicketDetail, settings: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    """Technicians' lines: the PSA category ("Hardware › Printer"), then each PSA field the admin chose
    (connection setting `card_fields`, in that order) that has a value on this ticket."""
    facts: list[tuple[str, str]] = []
    if detail.category_name:
        sub = f" › {detail.subcategory_name}" if detail.subcategory_name else ""
        facts.append(("Category", f"{detail.category_name}{sub}"))
    values = {k.lower(): (k, v) for k, v in detail.custom_fields.items()}
    for name in card_field_names(settings):
        hit = values.get(name.lower())
        if hit and hit[1].strip():
            facts.append((hit[0], hit[1].strip()[:MAX_FACT_CHARS]))
    return tuple(facts)


def _consume(fut: asyncio.Future[Any]) -> None:
    """Retrieve a background AI task's outcome (an exception nobody awaited is logged once, not warned)."""
    if not fut.cancelled() and fut.exception() is not None:
        log.debug("background AI suggestions failed", exc_info=fut.exception())


def _template(template: Any, **values: str) -> str | None:
    """A workspace URL template (core/workspaces.URL_TEMPLATES) filled with URL-encoded values; None when unset,
    when a placeholder it uses has no value for this ticket, or when it does not give an http(s) URL."""
    if not isinstance(template, str) or not template:
        return None
    try:
        used = {name for _, name, _, _ in Formatter().parse(template) if name is not None}
        if any(not values.get(name) for name in used):
            return None
        filled = template.format(**{k: quote(v, safe="") for k, v in values.items()})
    except (KeyError, IndexError, ValueError):
        return None
    return filled if urlsplit(filled).scheme in ("https", "http") else None


def _ticket_actions(actor: Actor, detail: TicketDetail, caps: Capabilities, links: list[ExternalLink], *,
                    alert_webhook: bool = False) -> tuple[ViewAction, ...]:
    s = detail.summary
    ref = s.ref
    acts = [ViewAction(action="reply", label="Reply", value=ref, style="primary"),
            ViewAction(action="note", label="Internal note", value=ref),
            ViewAction(action="status", label="Change status", value=ref)]
    # A card drawn for no one in particular (the system actor: dispatch posts, refreshed channel cards) is
    # seen by every technician there, so it offers "Assign to me"; a technician's own view hides it from
    # the assignee.
    if actor.member_id is None or s.assignee_id != actor.member_id:
        acts.append(ViewAction(action="assign_me", label="Assign to me", value=ref))
    if caps.has(Feature.TIME_ENTRIES) or s.connection_id is None:
        acts.append(ViewAction(action="time", label="Add time", value=ref))
    # Only with an alert webhook to send them to (core/alert_webhooks.py); without one the alert stays a
    # reference or link on the card: a button that always fails is worse than none.
    if detail.alert_ref and alert_webhook:
        acts.append(ViewAction(action="alert_ack", label="Acknowledge alert", value=ref))
        acts.append(ViewAction(action="alert_resolve", label="Resolve alert", value=ref, style="danger"))
    for link in links:
        if link.kind == "psa" and link.url:
            acts.append(ViewAction(action="open_psa", label="Open in PSA", value=ref, url=link.url))
        elif link.kind == "device" and link.url:
            acts.append(ViewAction(action="open_rmm", label="Open device in RMM", value=ref, url=link.url))
        elif link.kind == "runbook" and link.url:
            acts.append(ViewAction(action="open_runbook", label="Open runbook", value=ref, url=link.url))
    return tuple(acts)
