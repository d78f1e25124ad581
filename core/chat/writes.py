"""Forms submitted from chat, messages in a ticket's thread and one-click card actions, written through
the ticket service (and so queued for the PSA by the outbox)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from core.alert_webhooks import AlertWebhookService
from core.chat import grammar as c
from core.chat.end_users import EndUsers
from core.chat.files import ChatFile, fetch_file, files_only
from core.chat.forms import NO_CHANGE
from core.chat.service import ChatViews
from core.chat.text import queued, thread_what
from core.context import Actor
from core.errors import DeskbridgeError, InvalidInput, PermissionDenied
from core.tickets import TicketService
from core.views import TicketDetail, TicketView
from store.db import Database


@dataclass(frozen=True, slots=True)
class Submitted:
    """A form or thread write: the updated card and a one-line confirmation ("queued")."""

    view: TicketView
    confirmation: str
    changed: bool = True  # False: nothing needed doing (say so to the person only, never in a shared thread)
    entry_id: int | None = None  # the timeline entry of the one write made (WriteDelivered/WriteDead name it)


@dataclass(frozen=True, slots=True)
class ThreadWrite:
    """What became of a thread message: the card and confirmation if anything was written, and one error
    per part that was not (a file too large for the PSA, a failed download, a note that was refused)."""

    view: TicketView | None
    confirmation: str | None
    problems: tuple[DeskbridgeError, ...] = ()
    entry_id: int | None = None  # a message that made exactly one write: its timeline entry (see Submitted)


class ChatWrites:
    """What a chat user writes: submitted forms, thread messages, card actions."""

    def __init__(self, db: Database, *, views: ChatViews, tickets: TicketService,
                 alerts: AlertWebhookService, end_users: EndUsers) -> None:
        self.db = db
        self.end_users = end_users
        self.views = views
        self.tickets = tickets
        self.alerts = alerts

    async def submit(self, actor: Actor, form: str, values: dict[str, str], *,
                     ticket_ref: str | None = None, audience: str = "tech", source: str | None = None) -> Submitted:
        """Apply a submitted form (new_ticket, reply, status, time); the write is queued for the PSA.
        `source` is the chat thread the form was opened from (its notes are not echoed there)."""
        if form == "new_ticket":
            detail = await self.tickets.create(
                actor, subject=values.get("subject", ""), description=values.get("description", ""),
                customer_id=_form_id(values.get("customer"), "customer"), contact_email=values.get("contact") or None,
                priority=values.get("priority") or "medium", board_external_id=values.get("board") or None,
                type_external_id=values.get("type") or None, type_name=values.get("type") or None,
                extra_fields={k.removeprefix("custom:"): v for k, v in values.items() if k.startswith("custom:")},
                **category_pair(values.get("category")))
            return Submitted(await self.views.ticket_from_detail(actor, detail, audience=audience),
                             queued("Ticket", detail.summary.connection_id))
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
            raise InvalidInput(f"Unknown form '{form[:40]}'.", hint="Open the ticket again and use its buttons.")
        return Submitted(await self.views.ticket_from_detail(actor, detail, audience=audience),
                         queued(what, detail.summary.connection_id))

    async def thread_message(self, actor: Actor, ticket_id: int, text: str,
                             files: Sequence[ChatFile] = (), *, customer_reads: bool = False,
                             source: str | None = None, author_email: str | None = None,
                             as_contact: bool = False, card: bool = True) -> ThreadWrite | None:
        """A technician's message in a ticket's thread: internal note by default, `!public` for a reply,
        `!time 30m …` for time; each file in it becomes an attachment.

        None when the message is not for the ticket: not from a technician (only technicians' thread
        messages are written; customers talk in shared threads too), `!skip` chatter, or nothing in it.
        Nothing is downloaded before that is decided. Each part is written on its own, so a refused file
        never loses the text or the other files; a text-only message that cannot be written raises.
        `as_contact`: the actor is a contact recognised by e-mail (core/chat/end_users.py), whose message in a
        thread of their customer's ticket is their reply wherever the thread is. `card=False`: see _view.
        """
        if not actor.is_member:
            if actor.customer_scope_id is None or actor.customer_scope_id < 0:
                return None
            if as_contact:
                if not await self.end_users.is_their_customers(actor, ticket_id):
                    return None
            elif not customer_reads:
                return None
            return await self.contact_reply(actor, ticket_id, text, files, author_email=author_email,
                                            source=source)
        if customer_reads and (text.strip().split() or [""])[0].lower() in c.INTERNAL_MARKERS:
            raise InvalidInput("The customer reads this thread, so your message cannot become an internal note: "
                               "they have seen it already. Nothing was written to the ticket.",
                               hint="Delete it here if it was not meant for them, and write internal notes with "
                                    "the card's Note button (or in the PSA).")
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
        one = _newest_entry(detail) if what is not None and not files else None  # one write: the newest entry
        return ThreadWrite(await self._view(actor, detail, card), queued(thread_what(what, attached),
                           detail.summary.connection_id), tuple(problems), entry_id=one)

    async def _view(self, actor: Actor, detail: TicketDetail, card: bool) -> TicketView:
        """The card, or with `card=False` the bare ticket: the surface builds the card later, after the write
        (so a burst's writes are not held up by card builds)."""
        return await self.views.ticket_from_detail(actor, detail) if card else self.views.bare(detail)

    async def contact_reply(self, actor: Actor, ticket_id: int, text: str, files: Sequence[ChatFile] = (), *,
                            author_email: str | None = None, source: str | None = None) -> ThreadWrite | None:
        """A customer's message in their ticket's thread (a channel bound to their company): written as
        their public reply, word for word, attributed to their contact where the PSA allows; a ticket that
        was waiting on them goes back to work, as the PSA does when a customer answers. Their files are
        attached as public. Never dropped: what cannot be written is returned as a problem to tell them."""
        number = f"id:{ticket_id}"
        problems: list[DeskbridgeError] = []
        detail = None
        body = text.strip()
        if body:
            try:
                detail = await self.tickets.contact_reply(actor, number, body, contact_email=author_email,
                                                          source=source)
            except DeskbridgeError as exc:
                if not files:
                    raise
                problems.append(exc)
        attached = 0
        if files:
            limit = await self.tickets.attachment_limit(actor, number)
            for f in files:
                try:
                    content = await fetch_file(f, limit)
                    detail = await self.tickets.attach(actor, number, filename=f.name, content=content,
                                                       content_type=f.content_type or "application/octet-stream",
                                                       visibility="public")
                    attached += 1
                except DeskbridgeError as exc:
                    problems.append(exc)
        if detail is None:
            return ThreadWrite(None, None, tuple(problems)) if problems else None
        what = "Your reply was added to the ticket" if body else None
        return ThreadWrite(await self.views.ticket_from_detail(actor, detail),
                           thread_what(what, attached), tuple(problems))

    async def action(self, actor: Actor, action: str, ref: str, *, card: bool = True) -> Submitted:
        """One-click card actions: assign_me, alert_ack, alert_resolve (`card=False`: see _view)."""
        if action == "assign_me":
            if actor.member_id is None:
                raise PermissionDenied("You are not linked to a technician.", hint="Run /deskbridge link first.")
            head = await self.tickets.header(actor, ref)  # the light read: the card is built once, after the write
            if head.summary.assignee_id == actor.member_id:
                return Submitted(await self.views.ticket(actor, ref),
                                 "This ticket is already assigned to you; nothing was changed.", changed=False)
            detail = await self.tickets.assign(actor, ref, actor.member_id)
            who = detail.summary.assignee_name or "you"
            return Submitted(await self._view(actor, detail, card), queued(f"Assigned to {who}", detail.summary.connection_id),
                             entry_id=_newest_entry(detail) if detail.pending_writes else None)
        if action in ("alert_ack", "alert_resolve"):
            verb: Literal["acknowledge", "resolve"] = "acknowledge" if action == "alert_ack" else "resolve"
            await self.alerts.request(actor, ref, verb)
            view = await self.views.ticket(actor, ref)
            return Submitted(view, f"Alert {verb} queued for your RMM's alert webhook. If it fails, "
                                   "`/deskbridge outbox` shows why.")
        raise InvalidInput(f"This button ('{action[:40]}') is not one this Deskbridge knows: the card is from another "
                           "version.", hint=f"Open the ticket again (/ticket {ref[:30]}) for its current buttons.")


def _newest_entry(detail: TicketDetail) -> int | None:
    """The entry a write just made: the ticket row is locked for the write, so no entry of it is newer."""
    return max((i.id for i in detail.timeline), default=None)


def _form_id(value: str | None, field: str) -> int | None:
    """An id a form's dropdown sent back; anything else (a crafted payload) is a field error, not a crash."""
    if not value:
        return None
    v = value.strip()
    if not (v.isascii() and v.isdigit() and len(v) <= 9):
        raise InvalidInput(f"That {field} choice was not understood.", hint=f"Pick the {field} from the list again.",
                           field=field)
    return int(v)


def category_pair(value: str | None) -> dict[str, str | None]:
    """The new-ticket form's category choice ("12/201" from the select, or "Software › E-mail" typed) as
    core's category; core splits it where the PSA's picklists say it fits (core/categories.py), so a
    category whose own name holds a "/" or "›" ("Email/Exchange") is kept whole."""
    text = (value or "").strip()
    return {"category": text, "subcategory": None} if text else {}
