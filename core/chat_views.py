"""Builds the chat view models (core/views.py) from services: queue, ticket card, forms, SLA warnings.

Dropdowns come from the connection's cached picklists (PicklistItem) and required fields follow the
PSA's rules (`Capabilities.create_requires`). SLA figures come from an `SlaInfo` provider (the SLA
engine when wired in, else the PSA's own due dates).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any, Protocol

import sqlalchemy as sa
from sqlmodel import select

from connectors.base import Capabilities, Feature
from core import alert_webhooks, create_fields
from core.connections import ConnectionService
from core.context import Actor
from core.status import board_statuses
from core.ticket_views import load_ticket_by_id
from core.tickets import DEFAULT_CAPABILITIES, TicketService
from core.views import (
    ConversationItem,
    ExternalLink,
    FormField,
    FormOption,
    FormView,
    TicketDetail,
    TicketView,
    ViewAction,
)
from store.db import Database
from store.enums import NOTE_KINDS, EntryKind, Priority, Stage
from store.tables import Customer, PicklistItem, PsaConnection, Ticket, Workspace
from store.types import utcnow

log = logging.getLogger(__name__)

NO_CHANGE = "__same__"
VISIBILITY_LABEL = {"public": "Public reply (customer sees it)", "internal": "Internal note",
                    "resolution": "Resolution note"}


class SlaInfo(Protocol):
    """Remaining SLA time per ticket (negative = exceeded) and the ids of breaching tickets."""

    async def remaining(self, workspace_id: int, ticket_ids: Sequence[int], now: datetime) -> dict[int, float]:
        ...

    async def breaching_ids(self, workspace_id: int, now: datetime) -> list[int]:
        ...


class PsaDueDates:
    """SlaInfo from the PSA's own due dates (respond-by until first response, then resolve-by)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def remaining(self, workspace_id: int, ticket_ids: Sequence[int], now: datetime) -> dict[int, float]:
        if not ticket_ids:
            return {}
        from store.db import Scope

        async with self.db.read(Scope.workspace(workspace_id)) as session:
            rows = (await session.exec(select(Ticket).where(Ticket.id.in_(list(ticket_ids))))).all()  # type: ignore[union-attr]
        out: dict[int, float] = {}
        for t in rows:
            due = _due(t)
            if due is not None:
                out[t.id] = (due - now).total_seconds()  # type: ignore[index]
        return out

    async def breaching_ids(self, workspace_id: int, now: datetime) -> list[int]:
        from store.db import Scope

        async with self.db.read(Scope.workspace(workspace_id)) as session:
            rows = (await session.exec(select(Ticket).where(
                Ticket.stage.in_([s.value for s in Stage if s.is_open]),  # type: ignore[attr-defined]
                sa.or_(Ticket.psa_respond_by.is_not(None), Ticket.psa_resolve_by.is_not(None))))).all()  # type: ignore[union-attr]
        return [t.id for t in rows if (d := _due(t)) is not None and d <= now]  # type: ignore[misc]


def _due(t: Ticket) -> datetime | None:
    if not Stage(t.stage).is_open:
        return None
    if t.first_response_at is None and t.psa_respond_by is not None:
        return t.psa_respond_by
    return t.psa_resolve_by


class ChatViews:
    """Turns service results into the views every chat surface renders."""

    def __init__(self, db: Database, *, tickets: TicketService, connections: ConnectionService,
                 capabilities: Callable[[str], Capabilities] | None = None, sla: SlaInfo | None = None,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.db = db
        self.tickets = tickets
        self.connections = connections
        self._capabilities = capabilities or (lambda kind: DEFAULT_CAPABILITIES)
        self.sla: SlaInfo = sla or PsaDueDates(db)
        self._clock = clock
        self._url_cache: dict[int, Any] = {}

    def now(self) -> datetime:
        return self._clock()

    # ------------------------------------------------------------ PSA links and capabilities

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

    async def _workspace_settings(self, actor: Actor) -> dict[str, Any]:
        async with self.db.read(actor.scope) as session:
            ws = await session.get(Workspace, actor.workspace_id)
        return dict(ws.settings) if ws else {}

    # ------------------------------------------------------------ ticket card

    async def ticket(self, actor: Actor, ref: int | str, *, audience: str = "tech",
                     notice: str | None = None) -> TicketView:
        """The ticket card: conversation (public vs internal marked), history, time, files, links, actions."""
        detail = await self.tickets.get(actor, ref)
        return await self.ticket_from_detail(actor, detail, audience=audience, notice=notice)

    async def ticket_by_id(self, actor: Actor, ticket_id: int) -> TicketView | None:
        """The card of a ticket known by its id (events carry ids); None while it has no number yet."""
        async with self.db.read(actor.scope) as session:
            ticket = await load_ticket_by_id(session, actor, ticket_id)
        if ticket.number is None:
            return None
        return await self.ticket(actor, ticket.number)

    async def ticket_from_detail(self, actor: Actor, detail: TicketDetail, *, audience: str = "tech",
                                 notice: str | None = None) -> TicketView:
        now = self._clock()
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
        settings = await self._workspace_settings(actor)
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
        caps = await self.caps_for(actor, s.connection_id)
        sla = (await self.sla.remaining(actor.workspace_id, [s.id], now)).get(s.id)
        actions = () if customer_view else _ticket_actions(actor, detail, caps, links,
                                                           alert_webhook=alert_webhooks.configured(settings))
        view = TicketView(
            detail=detail, now=now, conversation=conversation, status_history=status_history,
            time_entries=() if customer_view else time_entries, attachments=attachments, links=tuple(links),
            actions=actions, total_minutes=sum(int(i.data.get("minutes", 0)) for i in time_entries if not i.failed),
            sla_remaining_s=sla, audience="customer" if customer_view else "tech", notice=notice,
        )
        return for_customer(view) if customer_view else view

    # ------------------------------------------------------------ forms

    async def _picklist(self, actor: Actor, connection_id: int | None, kind: str,
                        parent: str | None = None) -> list[PicklistItem]:
        if connection_id is None:
            return []
        async with self.db.read(actor.scope) as session:
            stmt = select(PicklistItem).where(PicklistItem.connection_id == connection_id,
                                              PicklistItem.kind == kind, PicklistItem.active == sa.true())
            if parent is not None:
                stmt = stmt.where(sa.or_(PicklistItem.parent_external_id == parent,
                                         PicklistItem.parent_external_id == ""))
            return list((await session.exec(stmt.order_by(PicklistItem.sort_order, PicklistItem.name))).all())

    async def default_connection(self, actor: Actor) -> PsaConnection | None:
        async with self.db.read(actor.scope) as session:
            return (await session.exec(select(PsaConnection).where(
                PsaConnection.is_default == sa.true(), PsaConnection.enabled == sa.true()))).first()

    # The customer picker: up to CHOICES_MAX active customers are one dropdown (simplest to use: Slack's
    # static_select filters as you type, the console numbers them). Past that the field is searched instead
    # (kind "search_select": Slack external_select, console prompt), so thousands of customers stay reachable.
    CHOICES_MAX = 100  # Slack's static_select limit, and as many as a console list should show
    SEARCH_TEXT_MAX = 200  # longer than any customer name (200) or identifier (100): it cannot match

    async def new_ticket_form(self, actor: Actor, *, subject: str = "", description: str = "",
                              context: dict[str, Any] | None = None) -> FormView:
        """New ticket: customer, board and type from the PSA's picklists; required as the PSA requires."""
        conn = await self.default_connection(actor)
        caps = self._capabilities(conn.kind) if conn else DEFAULT_CAPABILITIES
        req = caps.create_requires
        # A pre-filled subject (message shortcut, `/ticket new <text>`) never exceeds what the PSA accepts.
        initial = _fit(subject, caps.max_summary_chars)
        fields = [FormField(name="subject", label="Subject", kind="text", required=True, initial=initial or None,
                            max_length=caps.max_summary_chars)]
        if actor.customer_scope_id is None:
            choices = await self.customer_options(actor, "", limit=self.CHOICES_MAX + 1)
            searched = len(choices) > self.CHOICES_MAX
            fields.append(FormField(name="customer", label="Customer", kind="search_select" if searched else "select",
                                    required="company_external_id" in req,
                                    options=() if searched else tuple(choices),
                                    source="customers" if searched else None,
                                    hint="Type part of the customer's name or identifier." if searched else None))
        boards = await self._picklist(actor, conn.id if conn else None, "board")
        board_names = {b.external_id: b.name for b in boards}
        if boards and conn is not None:
            async with self.db.read(actor.scope) as session:
                default = await create_fields.default_board(session, conn)
            fields.append(FormField(name="board", label="Board", kind="select",
                                    required="board_external_id" in req,
                                    options=tuple(FormOption(value=b.external_id, label=b.name) for b in boards),
                                    initial=default.external_id if default else None,
                                    hint=None if default else "Pick the board the PSA should file it on."))
        fields.append(FormField(name="priority", label="Priority", kind="select", required=True,
                                options=tuple(FormOption(value=p.value, label=p.label) for p in Priority),
                                initial=Priority.MEDIUM.value))
        types = await self._picklist(actor, conn.id if conn else None, "type")
        if types:
            # The PSA's own type id (a type belongs to a board); named with its board when there are several.
            several = len({t.parent_external_id for t in types}) > 1

            def label(t: PicklistItem) -> str:
                board = board_names.get(t.parent_external_id)
                return f"{board} › {t.name}" if several and board else t.name

            fields.append(FormField(name="type", label="Type", kind="select",
                                    required="type_external_id" in req,
                                    options=tuple(FormOption(value=t.external_id, label=label(t))
                                                  for t in types[:100]),
                                    hint="The type must be one of the chosen board's." if several else None))
        fields.append(FormField(name="description", label="Description", kind="textarea",
                                initial=description or None, max_length=3000))
        return FormView(form="new_ticket", title="New ticket", submit_label="Create", fields=tuple(fields),
                        context=dict(context or {}))

    async def customer_options(self, actor: Actor, query: str, limit: int = CHOICES_MAX) -> list[FormOption]:
        """Active customers whose name or identifier contains `query` (any case), best match first.

        Order: identifier equal to the text, identifier starting with it, name starting with it, then the
        rest; by name within each. An empty query gives the first `limit` by name. Only what the actor may
        pick: nothing for a non-technician, and in a customer channel only that customer. One query on the
        workspace's customers (its workspace_id index); `%`, `_` and `\\` in the text match themselves.
        """
        if not actor.is_member:
            return []
        text = (query or "").strip()
        if len(text) > self.SEARCH_TEXT_MAX:
            return []
        cols = sa.inspect(Customer).c
        stmt = select(Customer).where(cols.active == sa.true())
        if actor.customer_scope_id is not None:
            stmt = stmt.where(cols.id == actor.customer_scope_id)
        by_name = (sa.func.lower(cols.name), cols.id)
        if text:
            lit = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            stmt = stmt.where(sa.or_(cols.identifier.ilike(f"%{lit}%", escape="\\"),
                                     cols.name.ilike(f"%{lit}%", escape="\\")))
            rank = sa.case((sa.func.lower(cols.identifier) == sa.func.lower(sa.literal(text)), 0),
                           (cols.identifier.ilike(f"{lit}%", escape="\\"), 1),
                           (cols.name.ilike(f"{lit}%", escape="\\"), 2), else_=3)
            stmt = stmt.order_by(rank, *by_name)
        else:
            stmt = stmt.order_by(*by_name)
        async with self.db.read(actor.scope) as session:
            rows = (await session.exec(stmt.limit(max(1, min(int(limit), 1000))))).all()
        return [FormOption(value=str(c.id), label=f"{c.name} ({c.identifier})") for c in rows]

    async def _status_options(self, actor: Actor, detail: TicketDetail) -> tuple[FormOption, ...]:
        s = detail.summary
        if s.connection_id is None:
            return tuple(FormOption(value=st.value, label=st.label) for st in Stage)
        async with self.db.read(actor.scope) as session:
            ticket = await session.get(Ticket, s.id)
            board = ticket.board_external_id if ticket else None
            pairs = await board_statuses(session, s.connection_id, board)
        return tuple(FormOption(value=item.name, label=item.name) for item, _ in pairs[:100])

    async def reply_form(self, actor: Actor, ref: int | str, *, visibility: str = "public",
                         context: dict[str, Any] | None = None) -> FormView:
        """Reply or note, with an optional status change in the same submission."""
        detail = await self.tickets.get(actor, ref)
        caps = await self.caps_for(actor, detail.summary.connection_id)
        vis = ["public", "internal"] + (["resolution"] if caps.has(Feature.RESOLUTION_NOTES) else [])
        statuses = await self._status_options(actor, detail)
        fields = (
            FormField(name="text", label="Message", kind="textarea", required=True, max_length=3000),
            FormField(name="visibility", label="Visibility", kind="select", required=True,
                      options=tuple(FormOption(value=v, label=VISIBILITY_LABEL[v]) for v in vis), initial=visibility),
            FormField(name="status", label="Change status (optional)", kind="select",
                      options=(FormOption(value=NO_CHANGE, label=f"(keep: {detail.summary.status_name})"),) +
                      tuple(o for o in statuses if o.value != detail.summary.status_name)[:99],
                      initial=NO_CHANGE),
        )
        title = "Reply" if visibility == "public" else "Internal note"
        return FormView(form="reply", title=f"{title} {detail.summary.display_number}"[:24], submit_label="Send",
                        fields=fields, ticket_number=detail.summary.number, ticket_ref=detail.summary.ref,
                        context=dict(context or {}))

    async def status_form(self, actor: Actor, ref: int | str, *, context: dict[str, Any] | None = None) -> FormView:
        """The PSA's own statuses for the ticket's board, plus an optional public reply."""
        detail = await self.tickets.get(actor, ref)
        statuses = await self._status_options(actor, detail)
        fields = (
            FormField(name="status", label="New status", kind="select", required=True, options=statuses,
                      initial=detail.summary.status_name if any(o.value == detail.summary.status_name
                                                                for o in statuses) else None),
            FormField(name="text", label="Reply to the customer (optional)", kind="textarea", max_length=3000),
            FormField(name="visibility", label="Send the reply as", kind="select",
                      options=(FormOption(value="public", label=VISIBILITY_LABEL["public"]),
                               FormOption(value="internal", label=VISIBILITY_LABEL["internal"])),
                      initial="public"),
        )
        return FormView(form="status", title=f"Status {detail.summary.display_number}"[:24], submit_label="Save",
                        fields=fields, ticket_number=detail.summary.number, ticket_ref=detail.summary.ref,
                        context=dict(context or {}))

    async def time_form(self, actor: Actor, ref: int | str, *, context: dict[str, Any] | None = None) -> FormView:
        detail = await self.tickets.get(actor, ref)
        fields = (
            FormField(name="minutes", label="Time worked", kind="text", required=True, hint="e.g. 30m, 1h, 1h30m",
                      max_length=16),
            FormField(name="notes", label="Work done", kind="textarea", max_length=3000),
            FormField(name="billable", label="Billable", kind="checkbox", initial="true"),
        )
        return FormView(form="time", title=f"Time {detail.summary.display_number}"[:24], submit_label="Log",
                        fields=fields, ticket_number=detail.summary.number, ticket_ref=detail.summary.ref,
                        context=dict(context or {}))


def for_customer(view: TicketView) -> TicketView:
    """What a customer may see of a ticket card: the conversation they are part of, status and who works on it.

    Everything that is the MSP's own business goes: internal notes and time (already left out), SLA figures,
    the board, devices, alerts, contracts, the PSA's deep link and runbooks, and the write plumbing (queued or
    dead writes and their errors). Applied last, so a field added to the card later stays internal by default
    only if it is added here too: keep this list in step with TicketView.
    """
    detail = replace(view.detail, summary=replace(view.summary, sla_remaining_s=None), board_name=None,
                     device_ref=None, alert_ref=None, contract_ref=None, pending_writes=0, dead_writes=0,
                     psa_url=None, psa_respond_by=None, psa_resolve_by=None)
    return replace(view, detail=detail, sla_remaining_s=None, links=(), actions=(), time_entries=(),
                   total_minutes=0, audience="customer")


def _template(template: Any, **values: str) -> str | None:
    """A workspace URL template (core/workspaces.URL_TEMPLATES) filled with URL-encoded values; None when unset,
    when a placeholder it uses has no value for this ticket, or when it does not give an http(s) URL."""
    if not isinstance(template, str) or not template:
        return None
    from string import Formatter
    from urllib.parse import quote, urlsplit

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


def _fit(text: str, limit: int | None) -> str:
    """`text` cut to `limit` characters on a word boundary where one is near, with an ellipsis."""
    text = " ".join(text.split())
    if limit is None or len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    return (cut[:space] if space >= limit // 2 else cut).rstrip() + "…"
