"""Events API: messages in ticket threads, App Home, channels shared or unshared, uninstalls."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncApp

from bot.slack import blocks as bk
from bot.slack import text as t
from bot.slack.confirm import react
from bot.slack.context import PLATFORM, SlackContext
from bot.slack.files import SlackFiles
from bot.slack.install import WORKSPACE_KEY
from bot.slack.listeners import requests
from bot.slack.listeners.common import bound, has_files, source
from core.chat import card_audience
from core.errors import DeskbridgeError


def register(app: AsyncApp, sc: SlackContext) -> None:
    app.event("message")(sc.after_ack(bound(on_message, sc), slow=has_files))
    app.event("app_home_opened")(sc.after_ack(bound(on_home, sc)))
    app.event("channel_shared")(sc.after_ack(bound(on_sharing_changed, sc)))
    app.event("channel_unshared")(sc.after_ack(bound(on_sharing_changed, sc)))
    app.event("app_uninstalled")(sc.after_ack(bound(on_uninstall, sc)))
    app.event("tokens_revoked")(sc.after_ack(bound(on_uninstall, sc)))


async def on_message(sc: SlackContext, body: dict[str, Any], context: Any, client: Any) -> None:
    """A message in a ticket's thread: written to the ticket (core decides whether it is the ticket's)."""
    event = body.get("event") or {}
    thread_ts, ts = event.get("thread_ts"), event.get("ts")
    top_level = not thread_ts and event.get("subtype") is None
    if (event.get("bot_id") or event.get("subtype") not in (None, "thread_broadcast", "file_share")
            or not (thread_ts or top_level) or (thread_ts and thread_ts == ts) or not event.get("user")):
        return
    team = str(context.team_id or body.get("team_id") or "")
    if top_level:  # an end user asking for help in a customer channel or a DM (bot/slack/listeners/requests.py)
        user = sc.chat_user(context, {"user": {"id": event.get("user"), "team_id": event.get("user_team")}},
                            str(event.get("channel")))
        if event.get("channel_type") == "im":
            await requests.on_direct_message(sc, body, context, client, user)
        else:
            await requests.on_top_level(sc, body, context, client, user)
        return
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
        actor, info = await sc.actor(context, user, client)
        # a contact recognised by e-mail outside their customer's channels (core/chat/end_users.py)
        as_contact = not actor.is_member and not info.is_customer_channel
        # Core decides whether the message is the ticket's (only technicians' are) before any download.
        async with SlackFiles(str(client.base_url), str(context.bot_token or client.token or "")) as slack_files:
            customer_reads = await sc.shared.customer_reads(sc.chat, client, ws, team, channel)
            text = await sc.readable(client, str(event.get("text") or ""))  # as people read it, not mrkdwn
            # a customer's reply is attributed to their PSA contact by their (Slack-verified) e-mail
            email = None if actor.is_member else await sc.email_of(client, user.user_id)
            done = await sc.commands.thread_message(actor, ticket_id, text, author_email=email,
                                                    files=slack_files.describe(event.get("files")),
                                                    customer_reads=customer_reads,
                                                    source=source(channel, str(thread_ts)), as_contact=as_contact,
                                                    card=False)
        if done is None:
            if not actor.is_member and not user.is_external and card_audience(
                    await sc.seen(client, ws, team, channel)) == "tech":
                await tell(t.error_text(t.NOT_A_TECH_THREAD, t.NOT_A_TECH_THREAD_HINT))  # not silently dropped
            return
        if done.problems:  # a file not attached (too large, not downloadable): say so; the rest was written
            await tell("\n".join(t.error_text(bk.esc(p.message), p.hint) for p in done.problems))
        if done.view is None or done.confirmation is None:
            return
        if done.entry_id is not None and actor.is_member and not customer_reads:  # ✅ when it is in the PSA
            if sc.confirmations.wrote(done.entry_id, team, channel, str(ts)):  # in the PSA already
                await react(client, channel, str(ts))
        posts = await sc.chat.posts_for_ticket(ws, ticket_id, PLATFORM)
        card = next((p.card_ts for p in posts if p.channel_id == channel and p.thread_ts == thread_ts), None)
        await sc.confirm_in_thread(client, ws, team, channel, str(thread_ts), card, done.view, done.confirmation,
                                   user_id=user.user_id)
    except DeskbridgeError as exc:
        await tell(t.error_text(exc.message, exc.hint))


async def on_home(sc: SlackContext, body: dict[str, Any], context: Any, client: Any) -> None:
    """App Home: the technician's own queue (or how to link, for someone Deskbridge does not know)."""
    event = body.get("event") or {}
    if event.get("tab") not in (None, "home"):
        return
    user = sc.chat_user(context, {"user": {"id": event.get("user")}}, None)
    try:
        actor, _ = await sc.actor(context, user, client)
        view = bk.home_view(await sc.commands.my_queue(actor)) if actor.member_id else bk.home_view(None)
    except DeskbridgeError:
        view = bk.home_view(None, unlinked=True)
    if sc.homes is not None:  # from now on changes of this technician's queue are published (bot/slack/home.py)
        ws = int(context[WORKSPACE_KEY])  # recorded for every instance (core/chat/home_views.py)
        sc.homes.opened(user.team_id, user.user_id, ws)
        sc.homes.paged(user.team_id, user.user_id, "", None, ws)  # opening shows the first page: refreshes too
        sc.homes.spent(user.team_id)
    await client.views_publish(user_id=user.user_id, view=view)


async def on_uninstall(sc: SlackContext, body: dict[str, Any], context: Any) -> None:
    await sc.chat.delete_installation(PLATFORM, str(context.team_id or body.get("team_id") or ""))


async def on_sharing_changed(sc: SlackContext, body: dict[str, Any], context: Any, client: Any) -> None:
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
