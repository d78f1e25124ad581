"""Admin and setup commands from chat: linking accounts, channel bindings, the outbox, workspace settings."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from core import alert_webhooks
from core.chat import grammar as c
from core.chat.models import ChannelInfo, ChatUser
from core.chat.service import ChatService
from core.chat.text import shown
from core.chat.visibility import require_admin
from core.context import Actor
from core.errors import InvalidInput, PermissionDenied
from core.outbox.admin import OutboxAdmin
from core.views import MessageView
from core.workspaces import TEMPLATE_EXAMPLES, URL_TEMPLATES, WORKSPACE_OPTIONS, WorkspaceService
from store.db import Database
from store.tables import Workspace


class ChatAdmin:
    """`/deskbridge link|bind|unbind|bindings|outbox|settings`."""

    def __init__(self, db: Database, *, chat: ChatService, workspaces: WorkspaceService,
                 outbox_admin: OutboxAdmin | None = None) -> None:
        self.db = db
        self.chat = chat
        self.workspaces = workspaces
        self.outbox_admin = outbox_admin

    async def bind(self, actor: Actor, user: ChatUser, cmd: c.Bind, *, shared_channel: bool) -> MessageView:
        got = await self.chat.bind(actor, user, cmd.kind, cmd.customer, shared=shared_channel or cmd.shared)
        what = f"customer {got.customer_name}" if cmd.kind == "customer" else f"{cmd.kind} alerts"
        extra = " Everything here is now limited to that customer." if cmd.kind == "customer" else ""
        if got.visibility == "customer":
            extra += (" The customer's people read this channel: cards here are the customer's view, only "
                      "public notes appear, and internal details stay out.")
        return MessageView(text=f"This channel is bound to {what}.{extra}", kind="success")

    async def unbind(self, actor: Actor, user: ChatUser, cmd: c.Unbind) -> MessageView:
        n = await self.chat.unbind(actor, user, cmd.kind)
        return MessageView(text=f"Removed {n} binding(s) from this channel.", kind="success")

    @staticmethod
    def bindings(actor: Actor, info: ChannelInfo) -> MessageView:
        if not actor.is_member and not actor.is_admin:
            raise PermissionDenied("Only technicians can see this channel's bindings.",
                                   hint="Technicians: link your chat account with /deskbridge link. Customers: ask your MSP.")
        kinds = ", ".join(sorted(info.kinds)) or "nothing"
        cust = f" (customer: {info.customer_name}, {info.visibility} visibility)" if info.customer_name else ""
        return MessageView(text=f"This channel is bound to {kinds}{cust}.")

    async def link(self, actor: Actor, user: ChatUser, cmd: c.Link, verified_email: str | None) -> MessageView:
        if cmd.user and cmd.user != user.user_id:
            require_admin(actor, "link other people's accounts")
            if not cmd.email:
                raise InvalidInput("Whose e-mail?", hint="Use /deskbridge link @someone their@email.")
            other = replace(user, user_id=cmd.user, user_team_id=None, name=None)
            member = await self.chat.link_user(actor.workspace_id, other, cmd.email)
            return MessageView(text=f"Linked to technician {member.name}.", kind="success", about_user=cmd.user)
        email = (verified_email or "").lower() or None
        if cmd.email and cmd.email.lower() != email:
            if not actor.is_admin:  # anyone else links only with the e-mail their chat platform verified
                raise PermissionDenied("You can only link yourself with the e-mail of your own chat profile.",
                                       hint="Run /deskbridge link without an address, or ask an admin.")
            email = cmd.email.lower()  # an admin's PSA address may differ from their chat profile's
        if not email:
            raise InvalidInput("Your chat profile has no e-mail I can read.",
                               hint="Run /deskbridge link you@your-psa-address, or ask an admin.")
        if actor.is_admin and not await self.chat.has_admin(actor.workspace_id):
            # the chat workspace's admin, before Deskbridge has an admin: becomes the first one
            member, created = await self.chat.link_first_admin(actor.workspace_id, user, email)
            made = " (created as a technician: there is no PSA yet)" if created else ""
            return MessageView(text=f"You are linked to technician {member.name}{made} and are Deskbridge's first "
                                    "admin.", kind="success",
                               hint="Next: /deskbridge link @someone their@email for colleagues (people whose chat "
                                    "e-mail matches a technician are linked on their first command), /deskbridge "
                                    "bind customer ACME in a customer's channel, /deskbridge bind sla for warnings.")
        member = await self.chat.link_user(actor.workspace_id, user, email)
        return MessageView(text=f"You are linked to technician {member.name}. Try /tickets mine.", kind="success")

    async def outbox(self, actor: Actor, cmd: c.Outbox) -> MessageView:
        if not actor.is_member:
            raise PermissionDenied("Only technicians can see the outbox.",
                                   hint="Technicians: link your chat account with /deskbridge link. Customers: ask your MSP.")
        if self.outbox_admin is None:
            raise InvalidInput("The outbox admin is not available in this build.",
                               hint="Use the `deskbridge outbox` command line instead.")
        if cmd.action == "list":
            page = await self.outbox_admin.list_ops(actor.workspace_id, "dead", limit=20)
            lines = tuple(f"op {o.id} · {o.kind} · ticket #{o.ticket_number} · {o.attempts}/{o.max_attempts} "
                          f"attempts · {o.last_error or ''}".rstrip(" ·") for o in page.items)
            return MessageView(text=f"{len(lines)} dead write(s)." if lines else "No dead writes.", lines=lines,
                               hint="Redrive one with /deskbridge outbox redrive <op>." if lines else None)
        assert cmd.op_id is not None
        if cmd.action == "show":
            detail = await self.outbox_admin.get_op(actor.workspace_id, cmd.op_id)
            lines = tuple(f"attempt {a.attempt}: {a.outcome} {a.response_status or ''} {a.error or ''}".strip()
                          for a in detail.audit)
            shown = detail.op
            return MessageView(text=f"op {shown.id} · {shown.kind} · {shown.status} · ticket #{shown.ticket_number}",
                               lines=lines)
        require_admin(actor, f"{cmd.action} outbox writes")
        if cmd.action == "redrive":
            op = await self.outbox_admin.redrive(actor.workspace_id, cmd.op_id, actor)
            return MessageView(text=f"op {op.id} is queued again.", kind="success")
        op = await self.outbox_admin.discard(actor.workspace_id, cmd.op_id, actor,
                                             f"discarded from chat by {actor.display}")
        return MessageView(text=f"op {op.id} was discarded; it will not be sent.", kind="success")

    async def settings(self, actor: Actor, cmd: c.SettingsCmd) -> MessageView:
        if not actor.is_member and not actor.is_admin:  # link templates and the webhook's host are internal
            raise PermissionDenied("Only technicians can see Deskbridge's settings.",
                                   hint="Technicians: link your chat account with /deskbridge link. Customers: ask your MSP.")
        if cmd.key is None:
            current = await self.workspaces.settings(actor.workspace_id)
            lines = [f"timezone = {await self.workspaces.timezone_of(actor.workspace_id)}"]
            lines += [f"{k} = {shown(current.get(k))}" for k in WORKSPACE_OPTIONS]
            hook = alert_webhooks.info(await self._raw_settings(actor))
            lines.append("alert action webhook = " + (hook.display_url if hook else
                                                       "(not set: cards offer no Acknowledge/Resolve buttons)"))
            return MessageView(text="Workspace settings", lines=tuple(lines),
                               hint="Change one with /deskbridge settings <name> <value> (admins); `off` clears a "
                                    "link. The alert webhook is set with `deskbridge rmm set-webhook`.")
        require_admin(actor, "change settings")
        if cmd.key == "timezone":  # a column, not an option: the day technicians and admins mean by a date
            if cmd.value is None:
                raise InvalidInput("Which time zone?", hint="Use /deskbridge settings timezone America/New_York.")
            zone = await self.workspaces.set_timezone(actor.workspace_id, cmd.value)
            return MessageView(text=f"timezone is now {zone}.", kind="success",
                               hint="SLA calendars keep their own zones: `deskbridge sla calendar set NAME --tz ZONE`.")
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


def _chat_url(text: str) -> str:
    """A URL as typed in chat: Slack may wrap it as <url> or <url|label> and escapes &, < and > (only those:
    a general HTML unescape would turn a query's `&copy=1` into `©=1`)."""
    text = text.strip()
    if text.startswith("<") and text.endswith(">"):
        text = text[1:-1].split("|", 1)[0]
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
