"""bolt listeners. Each acks at once; everything else runs after the ack on a bounded pool (bot/slack/work.py).

The one exception is a modal submission: its local write (one database transaction, never a PSA
call) runs before the ack so that a refused value shows up as a field error in the modal itself.
"""

from __future__ import annotations

import json
import re
from typing import Any

from slack_bolt.async_app import AsyncApp

from bot.slack import blocks as bk
from bot.slack import text as t
from bot.slack.context import PLATFORM, SlackContext
from bot.slack.files import SlackFiles
from bot.slack.install import WORKSPACE_KEY
from core import commands as grammar
from core.errors import DeskbridgeError, InvalidInput, PermissionDenied
from core.views import FormView, MessageView, QueueView, TicketView

ADMIN_COMMANDS = (grammar.Bind, grammar.Unbind, grammar.Outbox, grammar.SettingsCmd, grammar.Link)
URL_ACTIONS = ("open_psa", "open_rmm", "open_runbook")
FIELD_BLOCKS = {"note": "text", "time note": "notes", "minutes": "minutes", "filter": "text"}
SHORTCUT_ID = "create_ticket_from_message"


def register(app: AsyncApp, sc: SlackContext) -> None:
    """Attach every listener to the app."""

    # ------------------------------------------------------------ slash commands

    async def run_command(body: dict[str, Any], context: Any, client: Any, respond: Any) -> None:
        channel = body.get("channel_id")
        user = sc.chat_user(context, body, channel)
        try:
            cmd = grammar.parse(body.get("command", ""), body.get("text", ""))
            actor, info = await sc.actor(context, user, client, need_admin=isinstance(cmd, ADMIN_COMMANDS))
            ws = int(context[WORKSPACE_KEY])
            if isinstance(cmd, grammar.ShowTicket):
                view = await sc.views.ticket(actor, cmd.ref, audience=_audience(actor, info))
                if user.is_dm or not channel:
                    await respond(text=bk.ticket_fallback(view), blocks=bk.ticket_blocks(view),
                                  response_type="ephemeral")
                else:
                    await sc.post_card(client, ws, user.team_id, channel, view, respond=respond)
                return
            email = await sc.email_of(client, user.user_id) if isinstance(cmd, grammar.Link) else None
            shared = False
            if isinstance(cmd, grammar.Bind) and channel:
                shared = await _is_shared(client, channel)
            view = await sc.commands.run(actor, user, info, cmd, verified_email=email, shared_channel=shared)
            await _answer(view, body, context, client, respond, {"channel": channel})
        except DeskbridgeError as exc:
            await sc.reply_error(respond, exc)

    for name in ("/tickets", "/ticket", "/deskbridge"):
        app.command(name)(sc.after_ack(run_command))

    async def _answer(view: Any, body: dict[str, Any], context: Any, client: Any, respond: Any,
                      meta: dict[str, Any]) -> None:
        if isinstance(view, FormView):
            await client.views_open(trigger_id=body["trigger_id"], view=bk.form_modal(view, meta))
        elif isinstance(view, QueueView):
            await respond(text=view.title, blocks=bk.queue_blocks(view), response_type="ephemeral")
        elif isinstance(view, MessageView):
            await respond(text=bk.message_fallback(view), blocks=bk.message_blocks(view), response_type="ephemeral")
        elif isinstance(view, TicketView):
            await respond(text=bk.ticket_fallback(view), blocks=bk.ticket_blocks(view), response_type="ephemeral")

    # ------------------------------------------------------------ buttons

    async def run_action(body: dict[str, Any], context: Any, client: Any, respond: Any) -> None:
        action = (body.get("actions") or [{}])[0]
        name = str(action.get("action_id", "")).removeprefix(bk.ACTION_PREFIX)
        value = str(action.get("value") or "")
        channel = (body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id")
        message = body.get("message") or {}
        team = str(context.team_id or "")
        if not await sc.chat.first_time(f"slack-action:{team}",
                                                     f"{action.get('action_ts')}:{body.get('trigger_id')}"):
            return
        user = sc.chat_user(context, body, channel)
        from_home = (body.get("view") or {}).get("type") == "home"
        try:
            actor, info = await sc.actor(context, user, client)
            ws = int(context[WORKSPACE_KEY])
            if name in URL_ACTIONS:
                if not action.get("url"):
                    await respond(text=t.NO_LINK, response_type="ephemeral", replace_original=False)
                return
            if name == "open":
                view = await sc.views.ticket(actor, value, audience=_audience(actor, info))
                if channel and not user.is_dm and (body.get("container") or {}).get("type") != "view":
                    await sc.post_card(client, ws, user.team_id, channel, view, respond=respond)
                else:
                    await client.views_open(trigger_id=body["trigger_id"], view={
                        "type": "modal", "title": bk._plain(f"Ticket {view.summary.display_number}", 24),
                        "close": bk._plain("Close", 24), "blocks": bk.ticket_blocks(view)})
                return
            if name == "page":
                data = json.loads(value)
                cmd = grammar.parse_filters(data.get("f", ""))
                from dataclasses import replace

                view = await sc.commands.queue(actor, replace(cmd, cursor=data.get("c")), info=info)
                if from_home:  # App Home has no response_url: re-publish the tab with the next page
                    await client.views_publish(user_id=user.user_id, view=bk.home_view(view))
                else:
                    await respond(text=view.title, blocks=bk.queue_blocks(view), replace_original=True)
                return
            meta = {"channel": channel, "card_ts": message.get("ts"),
                    "thread_ts": message.get("thread_ts") or message.get("ts")}
            if name in ("reply", "note", "status", "time"):
                if name == "status":
                    form = await sc.views.status_form(actor, value, context=meta)
                elif name == "time":
                    form = await sc.views.time_form(actor, value, context=meta)
                else:
                    form = await sc.views.reply_form(actor, value, context=meta,
                                                     visibility="public" if name == "reply" else "internal")
                await client.views_open(trigger_id=body["trigger_id"], view=bk.form_modal(form, meta))
                return
            done = await sc.commands.action(actor, name, value)
            if channel and meta["thread_ts"]:
                await sc.confirm_in_thread(client, ws, user.team_id, channel, meta["thread_ts"], meta["card_ts"],
                                           done.view, done.confirmation)
        except (DeskbridgeError, ValueError, KeyError) as exc:
            err = exc if isinstance(exc, DeskbridgeError) else InvalidInput(
                "That button's data was not understood.", hint="Run the command again.")
            if from_home:  # no response_url on App Home: show the error at the top of the tab
                await client.views_publish(user_id=user.user_id, view=bk.home_error_view(err.message, err.hint))
            else:
                await sc.reply_error(respond, err)

    app.action(re.compile(f"^{bk.ACTION_PREFIX}"))(sc.after_ack(run_action))

    # ------------------------------------------------------------ modals

    async def submit_form(ack: Any, body: dict[str, Any], context: Any, client: Any) -> None:
        view = body.get("view") or {}
        try:
            meta = json.loads(view.get("private_metadata") or "{}")
        except ValueError:
            meta = {}
        form = str(view.get("callback_id", "")).removeprefix(bk.FORM_PREFIX)
        values = bk.form_values((view.get("state") or {}).get("values") or {})
        channel = meta.get("channel")
        user = sc.chat_user(context, body, channel)
        ws = int(context[WORKSPACE_KEY])
        try:
            # Before the ack: database only (the user was resolved when the modal was opened).
            actor, info = await sc.actor(context, user, client, slack_lookups=False)
            done = await sc.commands.submit(actor, form, values,
                                            ticket_ref=str(meta["ticket"]) if meta.get("ticket") else None,
                                            audience=_audience(actor, info))
        except DeskbridgeError as exc:
            blocks = [b.get("block_id") for b in view.get("blocks") or [] if b.get("block_id")]
            field = getattr(exc, "field", None)
            target = FIELD_BLOCKS.get(field or "", field)
            target = target if target in blocks else (blocks[0] if blocks else "text")
            await ack(response_action="errors", errors={target: t.error_text(exc.message, exc.hint)[:2000]})
            return
        await ack()
        if not channel:
            return
        if form == "new_ticket":
            sc.background(sc.post_card(client, ws, user.team_id, channel, done.view,
                                       thread_ts=meta.get("source_ts")))
            return
        thread_ts = meta.get("thread_ts") or meta.get("card_ts")
        if thread_ts:
            sc.background(sc.confirm_in_thread(client, ws, user.team_id, channel, thread_ts, meta.get("card_ts"),
                                               done.view, done.confirmation))

    app.view(re.compile(f"^{bk.FORM_PREFIX}"))(submit_form)

    # ------------------------------------------------------------ message shortcut

    async def ticket_from_message(body: dict[str, Any], context: Any, client: Any, respond: Any) -> None:
        msg = body.get("message") or {}
        channel = (body.get("channel") or {}).get("id")
        user = sc.chat_user(context, body, channel)
        try:
            actor, _ = await sc.actor(context, user, client)
            if not actor.is_member:
                raise PermissionDenied("Only technicians can create tickets from messages.")
            text = str(msg.get("text") or "")
            subject = text.strip().splitlines()[0] if text.strip() else ""  # the form fits it to the PSA
            form = await sc.views.new_ticket_form(actor, subject=subject, description=text[:3000])
            root = msg.get("thread_ts") or msg.get("ts")
            await client.views_open(trigger_id=body["trigger_id"],
                                    view=bk.form_modal(form, {"channel": channel, "source_ts": root}))
        except DeskbridgeError as exc:
            await sc.reply_error(respond, exc)

    app.shortcut(SHORTCUT_ID)(sc.after_ack(ticket_from_message))

    # ------------------------------------------------------------ events

    async def on_message(body: dict[str, Any], context: Any, client: Any) -> None:
        event = body.get("event") or {}
        thread_ts, ts = event.get("thread_ts"), event.get("ts")
        if (event.get("bot_id") or event.get("subtype") not in (None, "thread_broadcast", "file_share") or not thread_ts
                or thread_ts == ts or not event.get("user")):
            return
        team = str(context.team_id or body.get("team_id") or "")
        if not await sc.chat.first_time(f"slack:{team}", str(body.get("event_id") or ts)):
            return  # a retry of an event we already took
        ws = int(context[WORKSPACE_KEY])
        channel = str(event.get("channel"))
        ticket_id = await sc.chat.ticket_for_thread(ws, PLATFORM, channel, str(thread_ts))
        if ticket_id is None:
            return
        user = sc.chat_user(context, {"user": {"id": event.get("user"), "team_id": event.get("user_team")}}, channel)

        async def tell(text: str) -> None:
            await client.chat_postEphemeral(channel=channel, user=str(event.get("user")), thread_ts=thread_ts,
                                            text=text)

        try:
            actor, _ = await sc.actor(context, user, client)
            # Core decides whether the message is the ticket's (only technicians' are) before any download.
            async with SlackFiles(str(client.base_url), str(context.bot_token or client.token or "")) as slack_files:
                done = await sc.commands.thread_message(actor, ticket_id, str(event.get("text") or ""),
                                                        files=slack_files.describe(event.get("files")))
            if done is None:
                return
            if done.problems:  # a file not attached (too large, not downloadable): say so; the rest was written
                await tell("\n".join(t.error_text(bk.esc(p.message), p.hint) for p in done.problems))
            if done.view is None or done.confirmation is None:
                return
            posts = await sc.chat.posts_for_ticket(ws, ticket_id, PLATFORM)
            card = next((p.card_ts for p in posts if p.channel_id == channel and p.thread_ts == thread_ts), None)
            await sc.confirm_in_thread(client, ws, team, channel, str(thread_ts), card, done.view, done.confirmation)
        except DeskbridgeError as exc:
            await tell(t.error_text(exc.message, exc.hint))

    app.event("message")(sc.after_ack(on_message))

    async def on_home(body: dict[str, Any], context: Any, client: Any) -> None:
        event = body.get("event") or {}
        if event.get("tab") not in (None, "home"):
            return
        user = sc.chat_user(context, {"user": {"id": event.get("user")}}, None)
        try:
            actor, _ = await sc.actor(context, user, client)
            view = bk.home_view(await sc.commands.my_queue(actor)) if actor.member_id else bk.home_view(None)
        except DeskbridgeError:
            view = bk.home_view(None, unlinked=True)
        await client.views_publish(user_id=user.user_id, view=view)

    app.event("app_home_opened")(sc.after_ack(on_home))

    async def on_uninstall(body: dict[str, Any], context: Any) -> None:
        await sc.chat.delete_installation(PLATFORM, str(context.team_id or body.get("team_id") or ""))

    app.event("app_uninstalled")(sc.after_ack(on_uninstall))
    app.event("tokens_revoked")(sc.after_ack(on_uninstall))


def _audience(actor: Any, info: Any) -> str:
    return "customer" if (not actor.is_member or info.visibility == "customer") else "tech"


async def _is_shared(client: Any, channel: str) -> bool:
    """Slack Connect channels are shared with another org: bound customer channels get customer visibility."""
    try:
        resp = await client.conversations_info(channel=channel)
    except Exception as exc:  # noqa: BLE001 - fail closed: an unknown channel could be shared with a customer
        raise InvalidInput(t.BIND_CANNOT_SEE_CHANNEL, hint=t.BIND_CANNOT_SEE_CHANNEL_HINT) from exc
    ch = resp.get("channel") or {}
    return bool(ch.get("is_ext_shared") or ch.get("is_shared") or ch.get("is_pending_ext_shared"))
