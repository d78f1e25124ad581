"""Runs parsed chat commands, form submissions and card actions against the services.

Every chat surface calls this one module, so `/tickets mine` means the same in Slack, Teams and the
console. Results are view models (core/views.py); errors are DeskbridgeError with message and hint.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import select

from core import alert_webhooks
from core import commands as c
from core.chat import ChannelInfo, ChatService, ChatUser, audience
from core.chat_files import ChatFile, fetch_file, files_only, thread_what
from core.chat_views import NO_CHANGE, ChatViews
from core.context import Actor
from core.errors import DeskbridgeError, InvalidFilter, InvalidInput, NotFound, PermissionDenied
from core.outbox.ops import AlertAction, enqueue
from core.queue import UNASSIGNED, QueueFilter, QueueService
from core.ticket_views import load_ticket
from core.tickets import TicketService
from core.views import QUEUE_COLUMNS, FormView, MessageView, QueueView, TicketView
from core.workspaces import (
    TEMPLATE_EXAMPLES,
    URL_TEMPLATES,
    WORKSPACE_OPTIONS,
    DirectoryService,
    WorkspaceService,
)
from store.db import Database
from store.tables import Customer, Member, PsaConnection, Workspace

HELP_LINES = (
    "`/tickets` open tickets · `/tickets mine` · `/tickets unassigned high` · `/tickets breaching`",
    "`/tickets customer:ACME stage:waiting age:>2d sort:priority` · free text searches subjects",
    "`/ticket 1042` open a ticket · `/ticket new Printer on fire` create one",
    "In a ticket's thread: your message becomes an internal note; start with `!public` to reply to the "
    "customer, `!time 30m what you did` to log time",
    "`/deskbridge link` link your chat account to your technician account (by e-mail)",
    "`/deskbridge bind customer ACME` (add `shared` if the customer's people are in it) · `bind sla` · "
    "`bind dispatch` · `unbind` · `bindings` (admins)",
    "`/deskbridge outbox` writes waiting or dead · `outbox redrive 12` · `outbox discard 12` (admins)",
    "`/deskbridge settings` · `/deskbridge settings first_reply_moves_to_in_progress on` (admins)",
)

View = QueueView | TicketView | FormView | MessageView


@dataclass(frozen=True, slots=True)
class Submitted:
    """A form or thread write: the updated card and a one-line confirmation ("queued")."""

    view: TicketView
    confirmation: str


@dataclass(frozen=True, slots=True)
class ThreadWrite:
    """What became of a thread message: the card and confirmation if anything was written, and one error
    per part that was not (a file too large for the PSA, a failed download, a note that was refused)."""

    view: TicketView | None
    confirmation: str | None
    problems: tuple[DeskbridgeError, ...] = ()


def error_view(exc: DeskbridgeError) -> MessageView:
    """The one translation of a service error into something a surface shows."""
    return MessageView(text=exc.message, kind="error", hint=exc.hint,
                       suggestions=tuple(getattr(exc, "suggestions", ()) or ()))


def filters_text(cmd: c.ListTickets) -> str:
    """The filters as a person could type them again."""
    parts: list[str] = []
    if cmd.stages:
        parts.append("stage:" + ",".join(s.value for s in cmd.stages))
    parts += [f'status:"{s}"' for s in cmd.statuses]
    if cmd.customer:
        parts.append(f"customer:{cmd.customer}")
    if cmd.assignee in ("mine", "unassigned"):
        parts.append(cmd.assignee)
    elif cmd.assignee:
        parts.append(f'assignee:"{cmd.assignee}"')
    if cmd.priorities:
        parts.append("priority:" + ",".join(p.value for p in cmd.priorities))
    if cmd.min_age:
        parts.append(f"older:{_dur(cmd.min_age.total_seconds())}")
    if cmd.max_age:
        parts.append(f"newer:{_dur(cmd.max_age.total_seconds())}")
    if cmd.breaching:
        parts.append("breaching")
    if cmd.sort.value != "oldest":
        parts.append(f"sort:{cmd.sort.value}")
    if cmd.text:
        parts.append(cmd.text)
    return " ".join(parts)


def _dur(seconds: float) -> str:
    m = int(seconds // 60)
    if m % (24 * 60) == 0:
        return f"{m // (24 * 60)}d"
    if m % 60 == 0:
        return f"{m // 60}h"
    return f"{m}m"


class ChatCommands:
    def __init__(self, db: Database, *, chat: ChatService, views: ChatViews, queue: QueueService,
                 tickets: TicketService, directory: DirectoryService, workspaces: WorkspaceService,
                 outbox_admin: Any | None = None, clock: Callable[[], datetime] | None = None) -> None:
        self.db = db
        self.chat = chat
        self.views = views
        self.queue_service = queue
        self.tickets = tickets
        self.directory = directory
        self.workspaces = workspaces
        self.outbox_admin = outbox_admin

    # ------------------------------------------------------------ queue

    async def queue(self, actor: Actor, cmd: c.ListTickets, *, info: ChannelInfo | None = None,
                    limit: int = 15, title: str = "Tickets") -> QueueView:
        """A page of the queue for the parsed filters; names resolved inside the actor's scope."""
        now = self.views.now()
        customer_id = None
        if cmd.customer:
            customer_id = await self._customer_id(actor, cmd.customer)
        assignee: int | str | None = None
        if cmd.assignee == "mine":
            if actor.member_id is None:
                raise InvalidFilter("You are not linked to a technician, so 'mine' is empty.",
                                    hint="Run /deskbridge link to link your chat account.")
            assignee = actor.member_id
        elif cmd.assignee == UNASSIGNED:
            assignee = UNASSIGNED
        elif cmd.assignee:
            assignee = await self._member_id(actor, cmd.assignee)
        ids = None
        if cmd.breaching and not actor.is_member:
            raise PermissionDenied("The SLA filter `breaching` is for technicians.",
                                   hint="Leave it out to see this channel's open tickets.")
        if cmd.breaching:
            ids = tuple(await self.views.sla.breaching_ids(actor.workspace_id, now))
        f = QueueFilter(stages=cmd.stages, statuses=cmd.statuses, customer_id=customer_id, assignee=assignee,
                        priorities=cmd.priorities, min_age=cmd.min_age, max_age=cmd.max_age, text=cmd.text,
                        ticket_ids=ids, sort=cmd.sort, include_closed=cmd.include_closed)
        page = await self.queue_service.list(actor, f, limit=limit, cursor=cmd.cursor, with_total=True)
        if actor.is_member:
            remaining = await self.views.sla.remaining(actor.workspace_id, [t.id for t in page.items], now)
            rows = tuple(replace(t, sla_remaining_s=remaining.get(t.id, t.sla_remaining_s)) for t in page.items)
            columns = QUEUE_COLUMNS
        else:  # SLA figures are the MSP's business: a customer's queue has no SLA column
            rows = tuple(replace(t, sla_remaining_s=None) for t in page.items)
            columns = tuple(col for col in QUEUE_COLUMNS if col[0] != "sla")
        scope_note = f"Customer channel: {info.customer_name}" if info and info.customer_name else None
        return QueueView(title=title, rows=rows, now=now, filters_text=filters_text(cmd), scope_note=scope_note,
                         next_cursor=page.next_cursor, total=page.total, columns=columns,
                         empty_text="No tickets match." if filters_text(cmd) else "No open tickets. Nice.")

    async def my_queue(self, actor: Actor, limit: int = 20) -> QueueView:
        """The technician's own open tickets (App Home)."""
        return await self.queue(actor, c.ListTickets(assignee="mine", sort=c.QueueSort.PRIORITY), limit=limit,
                                title="My tickets")

    async def _customer_id(self, actor: Actor, text: str) -> int:
        try:
            return (await self.directory.find_customer(actor.workspace_id, text)).id  # type: ignore[return-value]
        except NotFound:
            if actor.customer_scope_id is not None:
                return -1  # inside a customer channel: empty, never a list of other customers
            names = [x.identifier for x in await self.directory.customers(actor.workspace_id)]
            sugg = difflib.get_close_matches(text.upper(), [n.upper() for n in names], n=3, cutoff=0.5)
            raise InvalidFilter(f"No customer matches '{text}'.",
                                hint=("Did you mean " + " or ".join(f"`customer:{s}`" for s in sugg) + "? "
                                      if sugg else "") + "Use the customer's identifier, e.g. customer:ACME.",
                                suggestions=[f"customer:{s}" for s in sugg]) from None

    async def _member_id(self, actor: Actor, text: str) -> int:
        if not actor.is_member:
            raise PermissionDenied("Only technicians can filter by assignee.")
        q = text.strip().lower()
        async with self.db.read(actor.scope) as session:
            members = list((await session.exec(select(Member).where(Member.active == sa.true()))).all())
        keys = {m.id: {m.name.lower(), (m.identifier or "").lower(), (m.email or "").lower(),
                       m.name.lower().split(" ")[0]} for m in members}
        hits = [m for m in members if q in keys[m.id]] or [m for m in members if m.name.lower().startswith(q)]
        if len(hits) == 1:
            return hits[0].id  # type: ignore[return-value]
        names = [m.name for m in members]
        sugg = difflib.get_close_matches(text, names, n=3, cutoff=0.4) if not hits else [m.name for m in hits][:3]
        raise InvalidFilter(f"{'Several technicians match' if hits else 'No technician matches'} '{text}'.",
                            hint="Use their name, PSA identifier or e-mail; or use mine / unassigned.",
                            suggestions=[f'assignee:"{s}"' for s in sugg])

    # ------------------------------------------------------------ commands

    async def run(self, actor: Actor, user: ChatUser, info: ChannelInfo, cmd: c.Command, *,
                  verified_email: str | None = None, shared_channel: bool = False) -> View:
        """Run one parsed command; surfaces render whatever comes back."""
        if isinstance(cmd, c.ListTickets):
            return await self.queue(actor, cmd, info=info)
        if isinstance(cmd, c.ShowTicket):
            return await self.views.ticket(actor, cmd.ref, audience=audience(actor, info))
        if isinstance(cmd, c.NewTicket):
            if not actor.is_member:
                raise PermissionDenied("Only technicians can create tickets here.",
                                       hint="Ask your MSP's technician to open one for you.")
            return await self.views.new_ticket_form(actor, subject=cmd.subject)
        if isinstance(cmd, c.Help):
            return MessageView(text="Deskbridge commands", lines=HELP_LINES)
        if isinstance(cmd, c.Link):
            return await self._link(actor, user, cmd, verified_email)
        if isinstance(cmd, c.Bind):
            got = await self.chat.bind(actor, user, cmd.kind, cmd.customer, shared=shared_channel or cmd.shared)
            what = f"customer {got.customer_name}" if cmd.kind == "customer" else f"{cmd.kind} alerts"
            extra = " Everything here is now limited to that customer." if cmd.kind == "customer" else ""
            if got.visibility == "customer":
                extra += (" The customer's people read this channel: cards here are the customer's view, only "
                          "public notes appear, and internal details stay out.")
            return MessageView(text=f"This channel is bound to {what}.{extra}", kind="success")
        if isinstance(cmd, c.Unbind):
            n = await self.chat.unbind(actor, user, cmd.kind)
            return MessageView(text=f"Removed {n} binding(s) from this channel.", kind="success")
        if isinstance(cmd, c.Bindings):
            if not actor.is_member and not actor.is_admin:
                raise PermissionDenied("Only technicians can see this channel's bindings.")
            kinds = ", ".join(sorted(info.kinds)) or "nothing"
            cust = f" (customer: {info.customer_name}, {info.visibility} visibility)" if info.customer_name else ""
            return MessageView(text=f"This channel is bound to {kinds}{cust}.")
        if isinstance(cmd, c.Outbox):
            return await self._outbox(actor, cmd)
        if isinstance(cmd, c.SettingsCmd):
            return await self._settings(actor, cmd)
        raise InvalidInput("I don't know that command.", hint="Try /deskbridge help.")

    async def _link(self, actor: Actor, user: ChatUser, cmd: c.Link, verified_email: str | None) -> MessageView:
        if cmd.user and cmd.user != user.user_id:
            ChatService.require_admin(actor, "link other people's accounts")
            if not cmd.email:
                raise InvalidInput("Whose e-mail?", hint="Use /deskbridge link @someone their@email.")
            other = replace(user, user_id=cmd.user, user_team_id=None, name=None)
            member = await self.chat.link_user(actor.workspace_id, other, cmd.email)
            return MessageView(text=f"Linked <@{cmd.user}> to technician {member.name}.", kind="success")
        email = verified_email
        if cmd.email and cmd.email != (verified_email or "").lower():
            raise PermissionDenied("You can only link yourself with the e-mail of your own chat profile.",
                                   hint="Run /deskbridge link without an address, or ask an admin.")
        if not email:
            raise InvalidInput("Your chat profile has no e-mail I can read.",
                               hint="Ask an admin to run /deskbridge link @you your@email.")
        member = await self.chat.link_user(actor.workspace_id, user, email)
        return MessageView(text=f"You are linked to technician {member.name}. Try /tickets mine.", kind="success")

    async def _outbox(self, actor: Actor, cmd: c.Outbox) -> MessageView:
        if not actor.is_member:
            raise PermissionDenied("Only technicians can see the outbox.")
        if self.outbox_admin is None:
            raise InvalidInput("The outbox admin is not available in this build.",
                               hint="Use the `deskbridge outbox` command line instead.")
        if cmd.action == "list":
            page = await self.outbox_admin.list(actor, limit=20)
            lines = tuple(f"op {o.id} · {o.kind} · ticket #{o.ticket_number} · {o.attempts}/{o.max_attempts} "
                          f"attempts · {o.last_error or ''}".rstrip(" ·") for o in page.items)
            return MessageView(text=f"{len(lines)} dead write(s)." if lines else "No dead writes.", lines=lines,
                               hint="Redrive one with /deskbridge outbox redrive <op>." if lines else None)
        assert cmd.op_id is not None
        if cmd.action == "show":
            op, audits = await self.outbox_admin.show(actor, cmd.op_id)
            lines = tuple(f"attempt {a.attempt}: {a.outcome} {a.response_status or ''} {a.error or ''}".strip()
                          for a in audits)
            return MessageView(text=f"op {op.id} · {op.kind} · {op.status} · ticket #{op.ticket_number}",
                               lines=lines)
        ChatService.require_admin(actor, f"{cmd.action} outbox writes")
        if cmd.action == "redrive":
            op = await self.outbox_admin.redrive(actor, cmd.op_id)
            return MessageView(text=f"op {op.id} is queued again.", kind="success")
        op = await self.outbox_admin.discard(actor, cmd.op_id, f"discarded from chat by {actor.display}")
        return MessageView(text=f"op {op.id} was discarded; it will not be sent.", kind="success")

    async def _settings(self, actor: Actor, cmd: c.SettingsCmd) -> MessageView:
        if not actor.is_member and not actor.is_admin:  # link templates and the webhook's host are internal
            raise PermissionDenied("Only technicians can see Deskbridge's settings.")
        if cmd.key is None:
            current = await self.workspaces.settings(actor.workspace_id)
            lines = [f"{k} = {_shown(current.get(k))}" for k in WORKSPACE_OPTIONS]
            hook = alert_webhooks.info(await self._raw_settings(actor))
            lines.append("alert action webhook = " + (hook.display_url if hook else
                                                       "(not set: cards offer no Acknowledge/Resolve buttons)"))
            return MessageView(text="Workspace settings", lines=tuple(lines),
                               hint="Change one with /deskbridge settings <name> <value> (admins); `off` clears a "
                                    "link. The alert webhook is set with `deskbridge rmm set-webhook`.")
        ChatService.require_admin(actor, "change settings")
        if cmd.value is None:
            if cmd.key in URL_TEMPLATES:
                raise InvalidInput(f"What should {cmd.key} be?",
                                   hint=f"Use /deskbridge settings {cmd.key} {TEMPLATE_EXAMPLES[cmd.key]} (or off).")
            raise InvalidInput(f"What should {cmd.key} be?", hint=f"Use /deskbridge settings {cmd.key} on|off.")
        value = _chat_url(cmd.value) if cmd.key in URL_TEMPLATES else cmd.value
        out = await self.workspaces.set_option(actor.workspace_id, cmd.key, value)
        if out.get(cmd.key) is None:
            return MessageView(text=f"{cmd.key} is now off.", kind="success")
        return MessageView(text=f"{cmd.key} is now {out.get(cmd.key)}.", kind="success")

    async def _raw_settings(self, actor: Actor) -> dict[str, Any]:
        async with self.db.read(actor.scope) as session:
            ws = await session.get(Workspace, actor.workspace_id)
        return dict(ws.settings) if ws else {}

    # ------------------------------------------------------------ writes

    async def submit(self, actor: Actor, form: str, values: dict[str, str], *,
                     ticket_ref: str | None = None, audience: str = "tech", source: str | None = None) -> Submitted:
        """Apply a submitted form (new_ticket, reply, status, time); the write is queued for the PSA.
        `source` is the chat thread the form was opened from (its notes are not echoed there)."""
        if form == "new_ticket":
            detail = await self.tickets.create(
                actor, subject=values.get("subject", ""), description=values.get("description", ""),
                customer_id=_form_id(values.get("customer"), "customer"),
                priority=values.get("priority") or "medium", board_external_id=values.get("board") or None,
                type_external_id=values.get("type") or None, type_name=values.get("type") or None)
            return Submitted(await self.views.ticket_from_detail(actor, detail, audience=audience),
                             _queued("Ticket", detail.summary.connection_id))
        if ticket_ref is None:
            raise InvalidInput("That form lost its ticket.", hint="Open the ticket again and retry.")
        if form == "reply":
            status = values.get("status") or None
            status = None if status == NO_CHANGE else status
            vis = values.get("visibility") or "internal"
            detail = await self.tickets.comment(actor, ticket_ref, values.get("text", ""), visibility=vis, source=source,
                                                status=status)
            what = "Public reply" if vis == "public" else f"{vis.capitalize()} note"
            if status:
                what += f" and status → {detail.summary.status_name}"
        elif form == "status":
            text = (values.get("text") or "").strip()
            if text:
                detail = await self.tickets.comment(actor, ticket_ref, text, status=values.get("status"), source=source,
                                                    visibility=values.get("visibility") or "public")
                what = f"Status → {detail.summary.status_name} with a {values.get('visibility') or 'public'} reply"
            else:
                detail = await self.tickets.change_status(actor, ticket_ref, values.get("status") or "")
                what = f"Status → {detail.summary.status_name}"
        elif form == "time":
            minutes = c.parse_minutes(values.get("minutes") or "")
            detail = await self.tickets.log_time(actor, ticket_ref, minutes, notes=values.get("notes", ""),
                                                 billable=str(values.get("billable", "true")).lower()
                                                 in ("true", "on", "1", "yes", "billable"))
            what = f"{minutes} min logged"
        else:
            raise InvalidInput(f"Unknown form '{form}'.")
        return Submitted(await self.views.ticket_from_detail(actor, detail, audience=audience),
                         _queued(what, detail.summary.connection_id))

    async def thread_message(self, actor: Actor, ticket_id: int, text: str,
                             files: Sequence[ChatFile] = (), *, customer_reads: bool = False,
                             source: str | None = None) -> ThreadWrite | None:
        """A technician's message in a ticket's thread: internal note by default, `!public` for a reply,
        `!time 30m …` for time; each file in it becomes an attachment.

        None when the message is not for the ticket: not from a technician (only technicians' thread
        messages are written; customers talk in shared threads too), `!skip` chatter, or nothing in it.
        Nothing is downloaded before that is decided. Each part is written on its own, so a refused file
        never loses the text or the other files; a text-only message that cannot be written raises.
        """
        if not actor.is_member:
            return None
        problems: list[DeskbridgeError] = []
        defaulted = False
        try:
            reply = c.parse_thread_message(text, default="public" if customer_reads else "internal")
            plain = c.parse_thread_message(text) if customer_reads else reply
            # Public only because the customer read it in chat already: no PSA e-mail repeating it to them.
            defaulted = reply is not None and plain is not None and reply.visibility != plain.visibility
        except DeskbridgeError as exc:
            if not files:
                raise
            reply = None
            problems.append(exc)
        else:
            if reply is None and not (files and files_only(text)):
                return None
        number = f"id:{ticket_id}"  # also a ticket whose PSA create is still queued (the outbox keeps the order)
        detail, what = None, None
        if reply is not None:
            try:
                if reply.minutes is not None:
                    detail = await self.tickets.log_time(actor, number, reply.minutes, notes=reply.text)
                    what = f"Logged {reply.minutes} min"
                else:
                    detail = await self.tickets.comment(actor, number, reply.text, visibility=reply.visibility,
                                                        source=source, email_contact=False if defaulted else None)
                    what = "Public reply (the customer sees it)" if reply.visibility == "public" else "Internal note"
            except DeskbridgeError as exc:
                if not files:
                    raise
                problems.append(exc)
        attached = 0
        if files:
            limit = await self.tickets.attachment_limit(actor, number)
            # A file is as public as where it was shared: a thread the customer reads, or a public reply.
            first = (text.strip().split() or [""])[0].lower()
            public = customer_reads or first in c.PUBLIC_MARKERS or (reply is not None and reply.visibility == "public")
            shown = "public" if public else "internal"
            for f in files:
                try:
                    content = await fetch_file(f, limit)
                    detail = await self.tickets.attach(actor, number, filename=f.name, content=content,
                                                       content_type=f.content_type or "application/octet-stream",
                                                       visibility=shown)
                    attached += 1
                except DeskbridgeError as exc:
                    problems.append(exc)
        if detail is None:
            return ThreadWrite(None, None, tuple(problems))
        return ThreadWrite(await self.views.ticket_from_detail(actor, detail),
                           _queued(thread_what(what, attached), detail.summary.connection_id), tuple(problems))

    async def action(self, actor: Actor, action: str, ref: str) -> Submitted:
        """One-click card actions: assign_me, alert_ack, alert_resolve."""
        if action == "assign_me":
            if actor.member_id is None:
                raise PermissionDenied("You are not linked to a technician.", hint="Run /deskbridge link first.")
            detail = await self.tickets.assign(actor, ref, actor.member_id)
            return Submitted(await self.views.ticket_from_detail(actor, detail),
                             _queued("Assigned to you", detail.summary.connection_id))
        if action in ("alert_ack", "alert_resolve"):
            if not actor.is_member:
                raise PermissionDenied("Only technicians can act on alerts.")
            verb = "acknowledge" if action == "alert_ack" else "resolve"
            async with self.db.write(actor.scope) as session:
                ws = await session.get(Workspace, actor.workspace_id)
                if not alert_webhooks.configured(ws.settings if ws else None):
                    raise InvalidInput(f"Alert actions are not set up here, so the alert was not {verb}d.",
                                       hint="Handle the alert in your RMM. An admin can connect Deskbridge to it "
                                            "with `deskbridge rmm set-webhook`.")
                ticket = await load_ticket(session, actor, ref)
                if not ticket.alert_ref:
                    raise InvalidInput("This ticket has no linked alert.")
                # Delivered through the outbox (retries, audit, dead letters), which files ops under a PSA
                # connection: the ticket's, else the workspace's default.
                connection_id = ticket.connection_id or await _default_connection_id(session)
                if connection_id is None:
                    raise InvalidInput("Alert actions need a PSA connection in this workspace; nothing was sent.",
                                       hint="Handle the alert in your RMM, or add a connection with "
                                            "`deskbridge connection add`.")
                customer = await session.get(Customer, ticket.customer_id) if ticket.customer_id else None
                enqueue(session, workspace_id=actor.workspace_id, connection_id=connection_id,
                        payload=AlertAction(action=verb, alert_ref=ticket.alert_ref,  # type: ignore[arg-type]
                                            device_ref=ticket.device_ref, ticket_number=ticket.number,
                                            customer=customer.identifier if customer else None,
                                            actor=actor.display),
                        ticket_id=ticket.id, actor=actor.display)
            view = await self.views.ticket(actor, ref)
            return Submitted(view, f"Alert {verb} queued for your RMM's alert webhook. If it fails, "
                                   "`/deskbridge outbox` shows why.")
        raise InvalidInput(f"Unknown action '{action}'.")


def _form_id(value: str | None, field: str) -> int | None:
    """An id a form's dropdown sent back; anything else (a crafted payload) is a field error, not a crash."""
    if not value:
        return None
    v = value.strip()
    if not (v.isascii() and v.isdigit() and len(v) <= 9):
        raise InvalidInput(f"That {field} choice was not understood.", hint=f"Pick the {field} from the list again.",
                           field=field)
    return int(v)


async def _default_connection_id(session: Any) -> int | None:
    row = (await session.exec(select(PsaConnection.id).where(PsaConnection.is_default == sa.true(),
                                                             PsaConnection.enabled == sa.true()))).first()
    return int(row) if row is not None else None


def _shown(value: Any) -> str:
    if value is None:
        return "(not set)"
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value)


def _chat_url(text: str) -> str:
    """A URL as typed in chat: Slack may wrap it as <url> or <url|label> and escapes &, < and > (only those:
    a general HTML unescape would turn a query's `&copy=1` into `©=1`)."""
    text = text.strip()
    if text.startswith("<") and text.endswith(">"):
        text = text[1:-1].split("|", 1)[0]
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _queued(what: str, connection_id: int | None) -> str:
    if connection_id is None:
        return f"{what}: saved."
    return f"{what}: queued for the PSA. This card updates when it is delivered."
