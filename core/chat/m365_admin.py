"""`/deskbridge m365 …` from chat: who may run Microsoft 365 quick actions (reset password, revoke sessions, sync
device). Anyone on the team may list them; only an admin grants or revokes (core/tenant_actions.py checks it
again), never in a customer channel. The technician is named by a chat mention (linked with /deskbridge link) or
by their e-mail."""

from __future__ import annotations

from core.chat import grammar as c
from core.chat.models import ChannelInfo, ChatUser
from core.context import Actor
from core.errors import NotFound, PermissionDenied
from core.tenant_actions import QuickActions
from core.views import MessageView
from core.workspaces import DirectoryService
from store.tables import Member

WHAT = "Microsoft 365 quick actions (reset password, revoke sessions, sync device)"


class ChatM365:
    def __init__(self, quick: QuickActions, directory: DirectoryService) -> None:
        self.quick, self.directory = quick, directory

    async def run(self, actor: Actor, user: ChatUser, info: ChannelInfo, cmd: c.M365Cmd) -> MessageView:
        if not actor.is_member or actor.customer_scope_id is not None or info.visibility == "customer":
            raise PermissionDenied("Microsoft 365 quick-action grants are for technicians, outside customer channels.",
                                   hint="Run /deskbridge m365 in a technicians' channel or a direct message.")
        if cmd.action == "grants":
            rows = await self.quick.grants(actor)
            lines = tuple(f"{m.name}" + (f" <{m.email}>" if m.email else "") + f" · granted by {g.granted_by}"
                          for m, g in rows)
            return MessageView(text=f"Who may run {WHAT}: admins, and {len(rows)} granted technician(s)",
                               lines=lines, hint="An admin changes it: /deskbridge m365 grant @someone · "
                                                 "/deskbridge m365 revoke @someone.")
        if not actor.is_admin:
            raise PermissionDenied("Only a Deskbridge admin can grant or revoke Microsoft 365 quick actions.",
                                   hint="Ask an admin to run /deskbridge m365 grant @you.")
        member = await self._member(actor, user, cmd.who or "")
        assert member.id is not None
        allow = cmd.action == "grant"
        await self.quick.grant(actor, member.id, allow=allow)
        text = f"{member.name} may now run {WHAT}." if allow else f"{member.name} may no longer run {WHAT}."
        return MessageView(text=text, kind="success",
                           hint=None if allow or not member.is_admin else
                           f"{member.name} is an admin, and admins may run them without a grant.")

    async def _member(self, actor: Actor, user: ChatUser, who: str) -> Member:
        typed = who.strip()
        if typed.startswith("<@"):  # a Slack mention: the technician linked to that chat user
            chat_id = typed.removeprefix("<@").rstrip(">").split("|")[0]
            member = await self.directory.member_for_chat_user(actor.workspace_id, platform=user.platform,
                                                              team_id=user.team_id, user_id=chat_id)
            if member is None:
                raise NotFound(f"{typed} has not linked a technician account.",
                               hint="They run /deskbridge link first; or give their e-mail instead of the mention.")
            return member
        member = await self.directory.member_by_email(actor.workspace_id, typed) if "@" in typed else None
        if member is None:
            raise NotFound(f"No technician '{typed[:80]}' in this workspace.",
                           hint="Mention them (@name) once they have linked, or give the e-mail of their "
                                "technician account.")
        return member
