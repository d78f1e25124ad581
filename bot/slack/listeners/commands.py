"""Slash commands: /tickets, /ticket and /deskbridge (parsed by core's one grammar)."""

from __future__ import annotations

import re
from typing import Any

from slack_bolt.async_app import AsyncApp

from bot.slack import blocks as bk
from bot.slack import urgency
from bot.slack.context import SlackContext
from bot.slack.install import WORKSPACE_KEY
from bot.slack.listeners import get_help, requests
from bot.slack.listeners.common import answer, bound, is_shared
from core.chat import audience, grammar
from core.errors import DeskbridgeError, InvalidInput
from core.views import FormView

ADMIN_COMMANDS = (grammar.Bind, grammar.Unbind, grammar.Bindings, grammar.Outbox, grammar.SettingsCmd, grammar.Link)
COMMANDS = ("/tickets", "/ticket", "/deskbridge")


# One listener for the three: bolt tries listeners in order and builds every argument a matcher could ask for at
# each try (~15 µs), so three listeners here cost every click and event two more tries before its own.
COMMAND_PATTERN = re.compile("^(" + "|".join(re.escape(name) for name in COMMANDS) + r")\Z")


def register(app: AsyncApp, sc: SlackContext) -> None:
    app.command(COMMAND_PATTERN)(sc.after_ack(bound(run_command, sc), urgent=urgency.command_opens_modal))


async def run_command(sc: SlackContext, body: dict[str, Any], context: Any, client: Any, respond: Any) -> None:
    channel = body.get("channel_id")
    user = sc.chat_user(context, body, channel)
    try:
        cmd = grammar.parse(body.get("command", ""), body.get("text", ""))
        if isinstance(cmd, grammar.Help):  # for everyone: help is how an unknown user learns to link
            helped = sc.commands.help()
            await respond(text=bk.message_fallback(helped), blocks=bk.message_blocks(helped),
                          response_type="ephemeral")
            return
        actor, info = await sc.actor(context, user, client, need_admin=isinstance(cmd, ADMIN_COMMANDS))
        ws = int(context[WORKSPACE_KEY])
        if isinstance(cmd, grammar.NewTicket) and not actor.is_member and info.is_customer_channel and channel:
            # an end user asking for help in their customer's channel (bot/slack/listeners/requests.py)
            if not cmd.subject.strip():
                raise InvalidInput("Write what you need help with after /ticket new.",
                                   hint="For example: /ticket new The printer on floor 2 is jammed")
            line = await requests.from_words(sc, context, client, actor, user, channel, cmd.subject, ts=None,
                                             key=f"slack:{channel}:command-{body.get('trigger_id')}")
            if line is not None:
                await respond(text=line, response_type="ephemeral")
                return
        if isinstance(cmd, grammar.NewTicket):
            new_cmd = cmd

            async def build() -> FormView:
                form = await sc.commands.run(actor, user, info, new_cmd)
                assert isinstance(form, FormView)
                return form

            await sc.open_form(client, body["trigger_id"], build,
                               {"channel": channel, "response_url": body.get("response_url")}, title="New ticket")
            return
        if isinstance(cmd, grammar.ShowTicket):
            card = await sc.views.ticket(actor, cmd.ref, audience=audience(actor, info))
            if user.is_dm or not channel or not (actor.is_member or info.is_customer_channel):
                await respond(text=bk.ticket_fallback(card), blocks=bk.ticket_blocks(card),
                              response_type="ephemeral")
            else:
                await sc.post_card(client, ws, user.team_id, channel, card, respond=respond)
            return
        # verified e-mail: linking a technician, or an end user's own tickets ("mine", by their contact)
        wants_email = isinstance(cmd, grammar.Link) or (
            isinstance(cmd, grammar.ListTickets) and cmd.assignee == "mine" and not actor.is_member)
        email = await sc.email_of(client, user.user_id) if wants_email else None
        shared = False
        if isinstance(cmd, grammar.Bind) and channel:
            shared = await is_shared(sc, client, channel)
        view = await sc.commands.run(actor, user, info, cmd, verified_email=email, shared_channel=shared)
        await answer(view, body, client, respond, {"channel": channel})
        if isinstance(cmd, grammar.Bind) and channel:
            async def tell(text: str) -> None:
                await respond(text=text, response_type="ephemeral", replace_original=False)

            if cmd.kind == "customer":  # the pinned "Get help" message, before redaction looks at the posts
                await get_help.ensure(sc, client, ws, user.team_id, channel, tell)
            await sc.redact_if_customer_reads(client, ws, user.team_id, channel, tell)
        if isinstance(cmd, grammar.Unbind) and channel and cmd.kind in (None, "customer"):
            await get_help.remove(sc, client, ws, user.team_id, channel)
    except DeskbridgeError as exc:
        await sc.reply_error(respond, exc)
