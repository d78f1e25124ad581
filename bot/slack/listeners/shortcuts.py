"""The message shortcut: a ticket from a message (its first line the subject, the message the description)."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncApp

from bot.slack import text as t
from bot.slack import urgency
from bot.slack.context import SlackContext
from bot.slack.listeners import requests
from bot.slack.listeners.common import bound
from core.errors import DeskbridgeError, PermissionDenied

SHORTCUT_ID = "create_ticket_from_message"


def register(app: AsyncApp, sc: SlackContext) -> None:
    app.shortcut(SHORTCUT_ID)(sc.after_ack(bound(ticket_from_message, sc), urgent=urgency.shortcut_opens_modal))


async def ticket_from_message(sc: SlackContext, body: dict[str, Any], context: Any, client: Any,
                              respond: Any) -> None:
    msg = body.get("message") or {}
    channel = (body.get("channel") or {}).get("id")
    user = sc.chat_user(context, body, channel)
    try:
        actor, info = await sc.actor(context, user, client)
        text = await sc.readable(client, str(msg.get("text") or ""))  # as people read it, not mrkdwn
        if not actor.is_member and info.is_customer_channel and channel and text.strip():
            # an end user: that message is their request (one ticket per message, whoever asks again)
            line = await requests.from_words(sc, context, client, actor, user, channel, text,
                                             ts=str(msg.get("thread_ts") or msg.get("ts")))
            if line is not None:
                await respond(text=line, response_type="ephemeral")
                return
        if not actor.is_member:
            raise PermissionDenied("Only technicians can create tickets from messages.",
                                   hint="Technicians: link your chat account with /deskbridge link. Customers: "
                                        "ask your MSP.")
        subject = text.strip().splitlines()[0] if text.strip() else ""  # the form fits it to the PSA
        root = msg.get("thread_ts") or msg.get("ts")
        await sc.open_form(client, body["trigger_id"],
                           lambda: sc.views.new_ticket_form(actor, subject=subject, description=text[:3000]),
                           {"channel": channel, "source_ts": root, "response_url": body.get("response_url")},
                           title=t.SHORTCUT_TITLE)
    except DeskbridgeError as exc:
        await sc.reply_error(respond, exc, body=body, client=client)
