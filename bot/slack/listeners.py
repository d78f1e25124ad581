"""bolt listeners. Each acks at once; everything else runs after the ack on a bounded pool (bot/slack/work.py).

The one exception is a modal submission: its local write (one database transaction, never a PSA
call) runs before the ack so that a refused value shows up as a field error in the modal itself.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from dataclasses import replace
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError

from bot.slack import blocks as bk
from bot.slack import text as t
from bot.slack import urgency
from bot.slack.channels import ChannelUnknown
from bot.slack.context import PLATFORM, SlackContext
from bot.slack.files import SlackFiles
from bot.slack.install import WORKSPACE_KEY
from core import commands as grammar
from core.chat import audience, card_audience
from core.errors import DeskbridgeError, InvalidInput, PermissionDenied
from core.views import FormOption, FormView, MessageView, QueueView, TicketView

log = logging.getLogger("deskbridge.slack")

ADMIN_COMMANDS = (grammar.Bind, grammar.Unbind, grammar.Bindings, grammar.Outbox, grammar.SettingsCmd, grammar.Link)
URL_ACTIONS = ("open_psa", "open_rmm", "open_runbook")
FIELD_BLOCKS = {"note": "text", "time note": "notes", "minutes": "minutes", "filter": "text"}
SHORTCUT_ID = "create_ticket_from_message"
SUBMIT_BUDGET_S = 2.0  # a modal submission waits this long for its write before acking (Slack allows 3 s)


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
                view = await sc.views.ticket(actor, cmd.ref, audience=audience(actor, info))
                if user.is_dm or not channel:
                    await respond(text=bk.ticket_fallback(view), blocks=bk.ticket_blocks(view),
                                  response_type="ephemeral")
                else:
                    await sc.post_card(client, ws, user.team_id, channel, view, respond=respond)
                return
            email = await sc.email_of(client, user.user_id) if isinstance(cmd, grammar.Link) else None
            shared = False
            if isinstance(cmd, grammar.Bind) and channel:
                shared = await _is_shared(sc, client, channel)
            view = await sc.commands.run(actor, user, info, cmd, verified_email=email, shared_channel=shared)
            await _answer(view, body, context, client, respond, {"channel": channel})
            if isinstance(cmd, grammar.Bind) and channel:
                async def tell(text: str) -> None:
                    await respond(text=text, response_type="ephemeral", replace_original=False)

                await sc.redact_if_customer_reads(client, ws, user.team_id, channel, tell)
        except DeskbridgeError as exc:
            await sc.reply_error(respond, exc)

    for name in ("/tickets", "/ticket", "/deskbridge"):
        app.command(name)(sc.after_ack(run_command, urgent=urgency.command_opens_modal))

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
        in_modal = (body.get("view") or {}).get("type") == "modal"  # a ticket opened from App Home
        try:
            actor, info = await sc.actor(context, user, client)
            ws = int(context[WORKSPACE_KEY])
            if name in URL_ACTIONS:
                if not action.get("url"):
                    await respond(text=t.NO_LINK, response_type="ephemeral", replace_original=False)
                return
            if name == "open":
                if channel and not user.is_dm and (body.get("container") or {}).get("type") != "view":
                    view = await sc.views.ticket(actor, value, audience=audience(actor, info))
                    await sc.post_card(client, ws, user.team_id, channel, view, respond=respond)
                    return

                async def ticket_modal() -> dict[str, Any]:
                    return bk.ticket_modal(await sc.views.ticket(actor, value, audience=audience(actor, info)))

                await sc.open_modal(client, body["trigger_id"], ticket_modal, title="Ticket", push=in_modal)
                return
            if name == "page":
                data = json.loads(value)
                cmd = grammar.parse_filters(data.get("f", ""))
                view = await sc.commands.queue(actor, replace(cmd, cursor=data.get("c")), info=info)
                if from_home:  # App Home has no response_url: re-publish the tab with the next page
                    await client.views_publish(user_id=user.user_id, view=bk.home_view(view))
                else:
                    await respond(text=view.title, blocks=bk.queue_blocks(view), replace_original=True)
                return
            ephemeral = _on_ephemeral(body)
            meta = {"channel": channel, "card_ts": None if ephemeral else message.get("ts"),
                    "thread_ts": None if ephemeral else (message.get("thread_ts") or message.get("ts"))}
            if ephemeral and body.get("response_url"):
                meta["response_url"] = body["response_url"]  # to update that card after the form is sent
            if name in ("reply", "note", "status", "time"):
                async def build() -> FormView:
                    if name == "status":
                        return await sc.views.status_form(actor, value, context=meta)
                    if name == "time":
                        return await sc.views.time_form(actor, value, context=meta)
                    return await sc.views.reply_form(actor, value, context=meta,
                                                     visibility="public" if name == "reply" else "internal")

                await sc.open_form(client, body["trigger_id"], build, meta, title=t.FORM_TITLES[name], push=in_modal)
                return
            done = await sc.commands.action(actor, name, value)
            if channel and meta["thread_ts"]:
                await sc.confirm_in_thread(client, ws, user.team_id, channel, meta["thread_ts"], meta["card_ts"],
                                           done.view, done.confirmation, user_id=user.user_id)
            elif in_modal:  # the ticket modal shows the new state and what was done
                v = body["view"]
                await client.views_update(view_id=v.get("id"), hash=v.get("hash"),
                                          view=bk.ticket_modal(replace(done.view, notice=done.confirmation)))
            else:  # an ephemeral card (or a DM): it has no thread, so the card itself says what was done
                card = replace(done.view, notice=done.confirmation)
                await respond(text=bk.ticket_fallback(card), blocks=bk.ticket_blocks(card), replace_original=True)
        except (DeskbridgeError, ValueError, KeyError) as exc:
            err = exc if isinstance(exc, DeskbridgeError) else InvalidInput(
                "That button's data was not understood.", hint="Run the command again.")
            if from_home:  # no response_url on App Home: show the error at the top of the tab
                await client.views_publish(user_id=user.user_id, view=bk.home_error_view(err.message, err.hint))
            elif in_modal:  # nor in a modal: stack the error on top of it
                await client.views_push(trigger_id=body["trigger_id"],
                                        view=bk.error_modal("Deskbridge", err.message, err.hint))
            else:
                await sc.reply_error(respond, err)

    app.action(re.compile(f"^{bk.ACTION_PREFIX}"))(sc.after_ack(run_action, urgent=urgency.action_opens_modal))

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

        async def write() -> Any:
            # Before the ack: database only (the user was resolved when the modal was opened).
            actor, info = await sc.actor(context, user, client, slack_lookups=False)
            thread = meta.get("thread_ts") or meta.get("card_ts")
            return await sc.commands.submit(actor, form, values,
                                            ticket_ref=str(meta["ticket"]) if meta.get("ticket") else None,
                                            audience=audience(actor, info),
                                            source=_source(channel, thread) if channel and thread else None)

        # The write normally takes milliseconds and a refused value becomes a field error in the modal. If the
        # database is slow (a long write lock), the ack cannot wait: Slack gives up after 3 s and the user, seeing
        # an error, would submit again and write twice. So after SUBMIT_BUDGET_S the modal turns into "Saving…"
        # and the outcome (or the refusal, with the user's text so nothing is lost) replaces it when known.
        task = asyncio.ensure_future(write())
        finished, _ = await asyncio.wait({task}, timeout=SUBMIT_BUDGET_S)
        if not finished:
            await ack(response_action="update", view=bk.saving_modal(view))
            sc.background(_finish_slow_submit(task, view, values, meta, user, ws, client))
            return
        try:
            done = task.result()
        except DeskbridgeError as exc:
            blocks = [b.get("block_id") for b in view.get("blocks") or [] if b.get("block_id")]
            field = getattr(exc, "field", None)
            target = FIELD_BLOCKS.get(field or "", field)
            target = target if target in blocks else (blocks[0] if blocks else "text")
            await ack(response_action="errors", errors={target: t.error_text(exc.message, exc.hint)[:2000]})
            return
        await ack()
        sc.background(_after_submit(done, form, meta, user, ws, client))

    async def _after_submit(done: Any, form: str, meta: dict[str, Any], user: Any, ws: int, client: Any) -> None:
        """Say what was done where the form came from: the ticket's thread, or the ephemeral card itself."""
        channel = meta.get("channel")
        if channel and form == "new_ticket":
            url = meta.get("response_url")

            async def privately(**message: Any) -> None:  # the card could not go into the channel: tell its creator
                if not url or not await sc.respond_to(url, **message):
                    log.warning("new ticket's card could not be shown to its creator", extra={"channel": channel})

            await sc.post_card(client, ws, user.team_id, channel, done.view, thread_ts=meta.get("source_ts"),
                               respond=privately)
            return
        thread_ts = meta.get("thread_ts") or meta.get("card_ts")
        if channel and thread_ts:
            await sc.confirm_in_thread(client, ws, user.team_id, channel, thread_ts, meta.get("card_ts"),
                                       done.view, done.confirmation, user_id=user.user_id)
        elif meta.get("response_url"):
            card = replace(done.view, notice=done.confirmation)
            await sc.respond_to(meta["response_url"], text=bk.ticket_fallback(card), blocks=bk.ticket_blocks(card),
                                replace_original=True)

    async def _finish_slow_submit(task: Any, view: dict[str, Any], values: dict[str, str], meta: dict[str, Any],
                                  user: Any, ws: int, client: Any) -> None:
        form = str(view.get("callback_id", "")).removeprefix(bk.FORM_PREFIX)
        try:
            done = await task
        except Exception as exc:  # refused, or failed unexpectedly: either way the modal must not stay "Saving…"
            if isinstance(exc, DeskbridgeError):
                message, hint = exc.message, exc.hint
            else:
                log.exception("slow form submission failed")
                message, hint = t.SUBMIT_CRASHED, t.SUBMIT_CRASHED_HINT
            try:
                await client.views_update(view_id=view.get("id"), view=bk.submit_failed_modal(
                    view, message, hint, values))
            except SlackApiError:  # the user closed the modal: tell them where they were, with their text
                if meta.get("channel"):
                    await client.chat_postEphemeral(channel=meta["channel"], user=user.user_id,
                                                    text=t.submit_failed(message, hint, values))
            return
        try:
            await client.views_update(view_id=view.get("id"), view=bk.submit_done_modal(view, done.confirmation))
        except SlackApiError:
            log.info("slow form's modal was closed before it finished")
        await _after_submit(done, form, meta, user, ws, client)

    app.view(re.compile(f"^{bk.FORM_PREFIX}"))(submit_form)

    async def search_options(ack: Any, body: dict[str, Any], context: Any, client: Any) -> None:
        """An external_select's typeahead (block_suggestion): answered in the ack, so within Slack's 3 s.

        No Slack API call: the user is resolved from our database only (cached: after the first keystroke the
        search is the one query), in the channel the modal was opened from (its private_metadata, which only
        we write). Whoever may not pick customers (a contact, an unknown user) gets no options; in a customer
        channel only that customer is offered.
        """
        source = str(body.get("action_id", "")).removeprefix(bk.SEARCH_PREFIX)
        query = str(body.get("value") or "")
        try:
            meta = json.loads((body.get("view") or {}).get("private_metadata") or "{}")
        except ValueError:
            meta = {}
        channel = meta.get("channel") if isinstance(meta, dict) else None
        user = sc.chat_user(context, body, str(channel) if channel else None)
        options: list[FormOption] = []
        try:
            actor, _ = await sc.actor(context, user, client, slack_lookups=False)
            if source == "customers":
                options = await sc.views.customer_options(actor, query)
        except DeskbridgeError:
            options = []
        await ack(options=bk.select_options(options))

    app.options(re.compile(f"^{bk.SEARCH_PREFIX}"))(search_options)

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
            root = msg.get("thread_ts") or msg.get("ts")
            await sc.open_form(client, body["trigger_id"],
                               lambda: sc.views.new_ticket_form(actor, subject=subject, description=text[:3000]),
                               {"channel": channel, "source_ts": root, "response_url": body.get("response_url")},
                               title=t.SHORTCUT_TITLE)
        except DeskbridgeError as exc:
            await sc.reply_error(respond, exc, body=body, client=client)

    app.shortcut(SHORTCUT_ID)(sc.after_ack(ticket_from_message, urgent=urgency.shortcut_opens_modal))

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
                customer_reads = await sc.shared.customer_reads(sc.chat, client, ws, team, channel)
                done = await sc.commands.thread_message(actor, ticket_id, str(event.get("text") or ""),
                                                        files=slack_files.describe(event.get("files")),
                                                        customer_reads=customer_reads,
                                                        source=_source(channel, str(thread_ts)))
            if done is None:
                if not actor.is_member and not user.is_external and card_audience(
                        await sc.seen(client, ws, team, channel)) == "tech":
                    await tell(t.error_text(t.NOT_A_TECH_THREAD, t.NOT_A_TECH_THREAD_HINT))  # not silently dropped
                return
            if done.problems:  # a file not attached (too large, not downloadable): say so; the rest was written
                await tell("\n".join(t.error_text(bk.esc(p.message), p.hint) for p in done.problems))
            if done.view is None or done.confirmation is None:
                return
            posts = await sc.chat.posts_for_ticket(ws, ticket_id, PLATFORM)
            card = next((p.card_ts for p in posts if p.channel_id == channel and p.thread_ts == thread_ts), None)
            await sc.confirm_in_thread(client, ws, team, channel, str(thread_ts), card, done.view, done.confirmation,
                                       user_id=user.user_id)
        except DeskbridgeError as exc:
            await tell(t.error_text(exc.message, exc.hint))

    app.event("message")(sc.after_ack(on_message, slow=_has_files))

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

    async def on_sharing_changed(body: dict[str, Any], context: Any, client: Any) -> None:
        """A channel was shared with (or unshared from) another organisation: ask Slack again before posting,
        and once outsiders read it, sweep what the bot posted there before (Slack Connect shows history)."""
        event = body.get("event") or {}
        channel = event.get("channel")
        if not channel:
            return
        sc.shared.forget(str(channel))
        if event.get("type") == "channel_shared":
            await sc.redact_if_customer_reads(client, int(context[WORKSPACE_KEY]),
                                              str(context.team_id or body.get("team_id") or ""), str(channel))

    app.event("channel_shared")(sc.after_ack(on_sharing_changed))
    app.event("channel_unshared")(sc.after_ack(on_sharing_changed))

    app.event("app_uninstalled")(sc.after_ack(on_uninstall))
    app.event("tokens_revoked")(sc.after_ack(on_uninstall))


def _source(channel: str, thread_ts: str) -> str:
    """How a note names the Slack thread it was written in (the notifier does not echo it back there)."""
    return f"{PLATFORM}:{channel}:{thread_ts}"


def _has_files(body: dict[str, Any]) -> bool:
    """A message carrying files: its work (downloads) runs on the slow pool."""
    return bool((body.get("event") or {}).get("files"))


def _on_ephemeral(body: dict[str, Any]) -> bool:
    """A button on an ephemeral message: there is no message ts to thread under or update."""
    container = body.get("container") or {}
    return bool(container.get("is_ephemeral")) or (container.get("type") == "message" and not body.get("message"))


async def _is_shared(sc: SlackContext, client: Any, channel: str) -> bool:
    """Slack Connect channels are shared with another org: bound customer channels get customer visibility.
    Asked afresh when binding; a channel Slack won't describe is refused (fail closed)."""
    sc.shared.forget(channel)
    try:
        return await sc.shared.is_shared(client, channel, strict=True)
    except ChannelUnknown as exc:
        raise InvalidInput(t.BIND_CANNOT_SEE_CHANNEL, hint=t.BIND_CANNOT_SEE_CHANNEL_HINT) from exc
