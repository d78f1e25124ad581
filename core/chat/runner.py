"""Runs parsed chat commands: every chat surface calls this one module, so `/tickets mine` means the same
in Slack, Teams and the console.

`ChatRunner.run` looks the command's type up in a dispatch table; queue requests are answered here
(names resolved inside the actor's scope), admin commands by admin.py, writes by writes.py. Results are
view models (core/views.py); errors are DeskbridgeError with message and hint (text.error_view).
"""

from __future__ import annotations

import difflib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import select

from core.ai.draft_choices import DraftChoices
from core.ai.service import AiService
from core.alert_webhooks import AlertWebhookService
from core.chat import grammar as c
from core.chat.admin import ChatAdmin
from core.chat.ai_admin import ChatAi
from core.chat.files import ChatFile
from core.chat.m365_admin import ChatM365
from core.chat.models import ChannelInfo, ChatUser
from core.chat.service import ChatService, ChatViews
from core.chat.sla_info import PageSla
from core.chat.text import SLASH, CommandStyle, filters_text, help_lines
from core.chat.visibility import audience
from core.chat.writes import ChatWrites, Submitted, ThreadWrite
from core.context import Actor
from core.errors import InvalidFilter, InvalidInput, NotFound, PermissionDenied
from core.numbers import whole
from core.outbox.admin import OutboxAdmin
from core.queue import UNASSIGNED, QueueFilter, QueueService
from core.tenant_actions import QuickActions
from core.tickets import TicketService
from core.views import QUEUE_COLUMNS, AiDraftView, FormView, MessageView, QueueView, TicketView
from core.workspaces import DirectoryService, WorkspaceService
from store.db import Database
from store.tables import Member

View = QueueView | TicketView | FormView | MessageView


@dataclass(frozen=True, slots=True, kw_only=True)
class Request:
    """One parsed command and who runs it where."""

    actor: Actor
    user: ChatUser
    info: ChannelInfo
    cmd: c.Command
    verified_email: str | None = None
    shared_channel: bool = False
    style: CommandStyle = SLASH


Handler = Callable[[Request], Awaitable[View]]


class ChatRunner:
    def __init__(self, db: Database, *, chat: ChatService, views: ChatViews, queue: QueueService,
                 tickets: TicketService, directory: DirectoryService, workspaces: WorkspaceService,
                 alerts: AlertWebhookService, outbox_admin: OutboxAdmin | None = None,
                 clock: Callable[[], datetime] | None = None, ai: AiService | None = None,
                 quick_actions: QuickActions | None = None) -> None:
        self.db = db
        self.m365 = ChatM365(quick_actions, directory) if quick_actions is not None else None
        self.ai = ChatAi(ai, drafts=DraftChoices(db, ai=ai, tickets=tickets)) if ai is not None else None
        self.chat = chat
        self.views = views
        self.queue_service = queue
        self.tickets = tickets
        self.directory = directory
        self.workspaces = workspaces
        self.admin = ChatAdmin(db, chat=chat, workspaces=workspaces, outbox_admin=outbox_admin)
        self.writes = ChatWrites(db, views=views, tickets=tickets, alerts=alerts, end_users=chat.end_users)
        self._handlers: dict[type[Any], Handler] = {
            c.ListTickets: self._list_tickets,
            c.ShowTicket: self._show_ticket,
            c.NewTicket: self._new_ticket,
            c.Help: self._help,
            c.MyQueue: self._my_queue,
            c.Link: self._link,
            c.Bind: self._bind,
            c.Unbind: self._unbind,
            c.Bindings: self._bindings,
            c.Outbox: self._outbox,
            c.SettingsCmd: self._settings,
            c.AiCmd: self._ai,
            c.M365Cmd: self._m365,
        }

    @property
    def outbox_admin(self) -> OutboxAdmin | None:
        return self.admin.outbox_admin

    # ------------------------------------------------------------ commands

    async def run(self, actor: Actor, user: ChatUser, info: ChannelInfo, cmd: c.Command, *,
                  verified_email: str | None = None, shared_channel: bool = False,
                  style: CommandStyle = SLASH) -> View:
        """Run one parsed command; surfaces render whatever comes back (help in the surface's command `style`)."""
        handler = self._handlers.get(type(cmd))
        if handler is None:
            raise InvalidInput("I don't know that command.", hint=style.restyle("Try /deskbridge help."))
        return await handler(Request(actor=actor, user=user, info=info, cmd=cmd, verified_email=verified_email,
                                     shared_channel=shared_channel, style=style))

    async def _list_tickets(self, r: Request) -> View:
        assert isinstance(r.cmd, c.ListTickets)
        if r.cmd.assignee == "mine" and not r.actor.is_member:  # an end user's own tickets, by their contact
            if not r.verified_email:
                raise InvalidFilter("Your e-mail could not be read, so your own tickets cannot be found.",
                                    hint="Leave out 'mine' to see your company's open tickets here.")
            ids = await self.chat.end_users.their_tickets(r.actor, r.verified_email)
            return await self.queue(r.actor, replace(r.cmd, assignee=None), info=r.info, only_ids=ids,
                                    title="Your tickets")
        return await self.queue(r.actor, r.cmd, info=r.info)

    async def _show_ticket(self, r: Request) -> View:
        assert isinstance(r.cmd, c.ShowTicket)
        return await self.views.ticket(r.actor, r.cmd.ref, audience=audience(r.actor, r.info))

    async def _new_ticket(self, r: Request) -> View:
        assert isinstance(r.cmd, c.NewTicket)
        if not r.actor.is_member:
            raise PermissionDenied("Only technicians can create tickets here.",
                                   hint="Ask your MSP's technician to open one for you.")
        return await self.views.new_ticket_form(r.actor, subject=r.cmd.subject)

    async def _help(self, r: Request) -> View:
        return self.help(r.style)

    @staticmethod
    def help(style: CommandStyle = SLASH) -> MessageView:
        """The command list: for anyone, linked or not (it is how people find out how to link), written as the
        surface's users type commands (`/deskbridge link` in Slack, `@Deskbridge link` in Teams)."""
        return MessageView(text="Deskbridge commands", lines=help_lines(style),
                           hint=style.restyle("New here? Technicians run /deskbridge link; setting Deskbridge up, a "
                                              "chat workspace admin runs /deskbridge link to become its first admin."))

    async def _my_queue(self, r: Request) -> View:
        assert isinstance(r.cmd, c.MyQueue)
        if r.actor.member_id is None:
            raise InvalidFilter("Deskbridge doesn't know which technician you are yet, so you have no queue.",
                                hint=r.style.restyle("Run /deskbridge link to link your chat account by e-mail."))
        return await self.my_queue(r.actor, cursor=r.cmd.cursor)

    async def _m365(self, r: Request) -> View:
        assert isinstance(r.cmd, c.M365Cmd)
        if self.m365 is None:
            raise InvalidInput("Microsoft 365 quick actions are not set up on this Deskbridge.",
                               hint="Grant them with `deskbridge customer m365-grant EMAIL` where it runs.")
        return await self.m365.run(r.actor, r.user, r.info, r.cmd)

    async def _link(self, r: Request) -> View:
        assert isinstance(r.cmd, c.Link)
        return await self.admin.link(r.actor, r.user, r.cmd, r.verified_email)

    async def _bind(self, r: Request) -> View:
        assert isinstance(r.cmd, c.Bind)
        return await self.admin.bind(r.actor, r.user, r.cmd, shared_channel=r.shared_channel)

    async def _unbind(self, r: Request) -> View:
        assert isinstance(r.cmd, c.Unbind)
        return await self.admin.unbind(r.actor, r.user, r.cmd)

    async def _bindings(self, r: Request) -> View:
        return self.admin.bindings(r.actor, r.info)

    async def _outbox(self, r: Request) -> View:
        assert isinstance(r.cmd, c.Outbox)
        return await self.admin.outbox(r.actor, r.cmd)

    async def _settings(self, r: Request) -> View:
        assert isinstance(r.cmd, c.SettingsCmd)
        return await self.admin.settings(r.actor, r.cmd)

    async def _ai(self, r: Request) -> View:
        assert isinstance(r.cmd, c.AiCmd)
        if self.ai is None:
            raise InvalidInput("AI assist is not available on this server.",
                               hint="Ask the admin who runs Deskbridge; the rest of the commands work as usual.")
        return await self.ai.run(r.actor, r.info, r.cmd)

    # ------------------------------------------------------------ queue

    async def queue(self, actor: Actor, cmd: c.ListTickets, *, info: ChannelInfo | None = None,
                    limit: int = 15, title: str = "Tickets", only_ids: tuple[int, ...] | None = None) -> QueueView:
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
        if only_ids is not None:
            ids = tuple(i for i in only_ids if ids is None or i in ids)
        f = QueueFilter(stages=cmd.stages, statuses=cmd.statuses, customer_id=customer_id, assignee=assignee,
                        priorities=cmd.priorities, min_age=cmd.min_age, max_age=cmd.max_age, text=cmd.text,
                        ticket_ids=ids, sort=cmd.sort, include_closed=cmd.include_closed)
        sla = self.views.sla
        if actor.is_member and isinstance(sla, PageSla):  # the page and its SLA data in one read (one hop)
            page_sla = sla

            async def remaining_of(loaded: Any) -> dict[int, float]:
                return await page_sla.remaining_loaded(actor.workspace_id, loaded, now)

            page, _ = await self.queue_service.list_with(actor, f, sla.load_for_page, limit=limit, cursor=cmd.cursor,
                                                         with_total=True, remaining=remaining_of)
            rows = page.items  # summaries made with their SLA figures
            columns = QUEUE_COLUMNS
        elif actor.is_member:
            page = await self.queue_service.list(actor, f, limit=limit, cursor=cmd.cursor, with_total=True)
            remaining = await sla.remaining(actor.workspace_id, [t.id for t in page.items], now)
            rows = tuple(replace(t, sla_remaining_s=remaining.get(t.id, t.sla_remaining_s)) for t in page.items)
            columns = QUEUE_COLUMNS
        else:  # SLA figures are the MSP's business: a customer's queue has no SLA column
            page = await self.queue_service.list(actor, f, limit=limit, cursor=cmd.cursor, with_total=True)
            rows = tuple(replace(t, sla_remaining_s=None) for t in page.items)
            columns = tuple(col for col in QUEUE_COLUMNS if col[0] != "sla")
        scope_note = f"Customer channel: {info.customer_name}" if info and info.customer_name else None
        return QueueView(title=title, rows=rows, now=now, filters_text=filters_text(cmd), scope_note=scope_note,
                         next_cursor=page.next_cursor, total=page.total, columns=columns,
                         empty_text="No tickets match." if filters_text(cmd) else "No open tickets. Nice.")

    async def my_queue(self, actor: Actor, limit: int = 20, *, cursor: str | None = None) -> QueueView:
        """The technician's own open tickets, most urgent first (Slack's App Home, Teams' personal chat)."""
        view = await self.queue(actor, c.ListTickets(assignee="mine", sort=c.QueueSort.PRIORITY, cursor=cursor),
                                limit=limit, title="My tickets")
        return replace(view, kind="my_queue", empty_text="No open tickets are assigned to you. Nice.")

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
            raise PermissionDenied("Only technicians can filter by assignee.",
                                   hint="Leave out assignee: (or mine) to see this channel's tickets.")
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

    # ------------------------------------------------------------ writes (core/chat/writes.py)

    async def submit(self, actor: Actor, form: str, values: dict[str, str], *,
                     ticket_ref: str | None = None, audience: str = "tech", source: str | None = None) -> Submitted:
        """Apply a submitted form (new_ticket, reply, status, time); the write is queued for the PSA."""
        return await self.writes.submit(actor, form, values, ticket_ref=ticket_ref, audience=audience, source=source)

    async def thread_message(self, actor: Actor, ticket_id: int, text: str,
                             files: Sequence[ChatFile] = (), *, customer_reads: bool = False,
                             source: str | None = None, author_email: str | None = None,
                             as_contact: bool = False, card: bool = True) -> ThreadWrite | None:
        """A message in a ticket's thread: a technician's, or a customer's in their own channel or, as a
        contact recognised by e-mail, in any thread of their customer's ticket (see ChatWrites.thread_message)."""
        return await self.writes.thread_message(actor, ticket_id, text, files, customer_reads=customer_reads,
                                                source=source, author_email=author_email, as_contact=as_contact,
                                                card=card)

    def _drafts(self) -> DraftChoices:
        if self.ai is None or self.ai.drafts is None:
            raise InvalidInput("AI assist is not running on this instance.",
                               hint="Ask an admin to check `deskbridge ai status`; until then, write the reply yourself.")
        return self.ai.drafts

    async def draft_offer(self, actor: Actor, ref: str) -> AiDraftView:
        """A reply draft for the ticket, shown to the technician who asked (Approve / Edit / Discard)."""
        return await self._drafts().offer(actor, ref)

    async def draft_edit(self, actor: Actor, draft_id: str, *, context: dict[str, Any] | None = None) -> FormView:
        """The reply form with the draft's text in it (the choice "edited" is logged)."""
        ref, text = await self._drafts().edit(actor, whole(draft_id) or -1)
        return await self.views.reply_form(actor, ref, visibility="public", context=context, text=text)

    async def action(self, actor: Actor, action: str, ref: str, *, card: bool = True) -> Submitted:
        """One-click card actions: assign_me, alert_ack, alert_resolve, and AI assist's (ai_…); `card=False`:
        see ChatWrites.thread_message."""
        if action.startswith("ai_"):
            if self.ai is None:
                raise InvalidInput("AI assist is not running on this instance.",
                               hint="Ask an admin to check `deskbridge ai status`; until then, write the reply yourself.")
            ticket, confirmation, changed = await self.ai.card_action(actor, action, ref)
            view = await self.views.ticket_after_ai(actor, ticket)
            if changed and view.summary.connection_id is not None:
                confirmation += " It goes to the PSA in a moment."
            return Submitted(view, confirmation, changed=changed)
        return await self.writes.action(actor, action, ref, card=card)


# The name surfaces used before the package split.
ChatCommands = ChatRunner
