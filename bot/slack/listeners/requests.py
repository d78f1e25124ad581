"""End users asking for help in a customer channel (rules in core/intake/requests.py; this only translates).

A top-level message there from someone who is not a technician either gets a private offer ("Open a ticket"
/ "No thanks") or, when the workspace chose `create`, a ticket at once; the ticket's card is posted in the
message's thread, which becomes the ticket's thread. A message too long to carry in the offer's button is
opened at once (its words are never cut). A DM with the bot from a contact (recognised by their Slack
e-mail; core/chat/end_users.py binds the DM to their customer) works the same way; anyone else is told
whom to ask. Past the person's hourly limit their words go to their open ticket or are held (core), and
they are told which.
"""

from __future__ import annotations

import json
from typing import Any

from slack_bolt.async_app import AsyncApp

from bot.slack import text as t
from bot.slack.context import PLATFORM, SlackContext
from bot.slack.install import WORKSPACE_KEY
from bot.slack.listeners.common import bound
from core.chat import ChatUser
from core.chat.text import over_limit_text
from core.context import Actor
from core.errors import DeskbridgeError

OPEN, DISMISS = "dbreq:open", "dbreq:dismiss"
MAX_VALUE = 1900  # Slack caps a button value at 2,000 characters


def register(app: AsyncApp, sc: SlackContext) -> None:
    app.action(OPEN)(sc.after_ack(bound(on_open, sc)))
    app.action(DISMISS)(sc.after_ack(bound(on_dismiss, sc)))


async def _who(client: Any, user_id: str) -> tuple[str | None, str | None]:
    """The person's e-mail and name as Slack has them (for matching a contact)."""
    try:
        info = await client.users_info(user=user_id)
    except Exception:  # noqa: BLE001 - matching by e-mail is a nicety; the ticket is opened without it
        return None, None
    profile = (info.get("user") or {}).get("profile") or {}
    return profile.get("email"), profile.get("real_name") or profile.get("display_name")


async def on_top_level(sc: SlackContext, body: dict[str, Any], context: Any, client: Any, user: ChatUser) -> None:
    """A message outside any thread, in any channel the bot is in."""
    event = body.get("event") or {}
    channel, ts = str(event.get("channel")), str(event.get("ts"))
    requests = sc.requests
    ws, team = int(context[WORKSPACE_KEY]), str(context.team_id or "")
    if requests is None or (await sc.chat.channel(ws, PLATFORM, team, channel)).customer_id is None:
        return  # only customer channels (a cached lookup: no Slack call for ordinary channel chatter)
    if not await sc.chat.first_time(f"slack:{team}", str(body.get("event_id") or ts)):
        return  # a retry of an event we already took
    try:
        actor, info = await sc.actor(context, user, client)
    except DeskbridgeError:
        return  # an unbound channel and a person Deskbridge does not know: not a customer channel
    text = await sc.readable(client, str(event.get("text") or ""))
    await _request(sc, context, client, actor, user, channel, ts, info.customer_id, text)


async def on_direct_message(sc: SlackContext, body: dict[str, Any], context: Any, client: Any,
                            user: ChatUser) -> None:
    """A message to the bot in a DM: a contact's request, as in their customer's channel."""
    event = body.get("event") or {}
    channel, ts = str(event.get("channel")), str(event.get("ts"))
    team = str(context.team_id or "")
    if sc.requests is None or not await sc.chat.first_time(f"slack:{team}", str(body.get("event_id") or ts)):
        return
    try:
        actor, info = await sc.actor(context, user, client)
    except DeskbridgeError:
        await client.chat_postMessage(channel=channel, thread_ts=ts,
                                      text=t.error_text(t.DM_NOT_A_CONTACT, t.DM_NOT_A_CONTACT_HINT))
        return
    if actor.is_member or not info.is_customer_channel:
        return  # technicians' DMs are theirs (commands answer them); only a contact's DM is bound
    text = await sc.readable(client, str(event.get("text") or ""))
    await _request(sc, context, client, actor, user, channel, ts, info.customer_id, text)


async def _request(sc: SlackContext, context: Any, client: Any, actor: Actor, user: ChatUser, channel: str,
                   ts: str, customer_id: int | None, text: str) -> None:
    """Offer a ticket, or open one at once (see module doc)."""
    assert sc.requests is not None
    decision = await sc.requests.on_channel_message(actor, customer_id=customer_id, text=text, in_thread=False)
    if decision.kind == "ignore":
        return
    if decision.kind == "create" or len(text) > MAX_VALUE:
        line, card = await open_and_post(sc, context, client, actor, user, channel, ts, text)
        if not card:  # no card in their thread to show what happened: say it to them
            await client.chat_postEphemeral(channel=channel, user=user.user_id, text=line)
        return
    value = json.dumps({"ts": ts, "text": text})
    await client.chat_postEphemeral(channel=channel, user=user.user_id, text=t.REQUEST_OFFER, blocks=[
        {"type": "section", "text": {"type": "mrkdwn", "text": t.REQUEST_OFFER}},
        {"type": "actions", "elements": [
            {"type": "button", "action_id": OPEN, "text": {"type": "plain_text", "text": t.REQUEST_OPEN_BUTTON},
             "style": "primary", "value": value},
            {"type": "button", "action_id": DISMISS, "text": {"type": "plain_text", "text": t.REQUEST_NO_BUTTON},
             "value": ts}]}])


async def open_and_post(sc: SlackContext, context: Any, client: Any, actor: Actor, user: ChatUser, channel: str,
                         ts: str | None, text: str, *, key: str | None = None) -> tuple[str, bool]:
    """Open the ticket (once per message, or per `key`) and post its card in the message's thread (`ts`; no
    message: in the channel): (the line to tell the user, whether a card was posted)."""
    assert sc.requests is not None
    ws, team = int(context[WORKSPACE_KEY]), str(context.team_id or "")
    email, name = await _who(client, user.user_id)
    opened = await sc.requests.open(actor, text, message_key=key or f"{PLATFORM}:{channel}:{ts}", email=email,
                                    name=name or user.name, user_key=f"{PLATFORM}:{user.home_team}:{user.user_id}")
    if opened.outcome != "opened":
        return over_limit_text(opened.outcome, opened.number, opened.limit), False
    if opened.ticket_id is None:
        return t.REQUEST_ALREADY, False
    view = await sc.views.ticket(actor, f"id:{opened.ticket_id}", audience="customer")
    await sc.post_card(client, ws, team, channel, view, thread_ts=ts)
    return t.request_opened(opened.number, opened.subject), True


async def from_words(sc: SlackContext, context: Any, client: Any, actor: Actor, user: ChatUser, channel: str,
                     text: str, *, ts: str | None, key: str | None = None) -> str | None:
    """An end user's `/ticket new …` (no message: `key` names the command) or message shortcut (`ts`: the
    message, whose thread gets the card) in a customer channel: their request, as if they had written it.
    None when the workspace does not take requests from chat (the caller then refuses as before)."""
    if sc.requests is None:
        return None
    decision = await sc.requests.on_channel_message(actor, customer_id=actor.customer_scope_id, text=text,
                                                    in_thread=False)
    if decision.kind == "ignore":
        return None
    line, _ = await open_and_post(sc, context, client, actor, user, channel, ts, text, key=key)
    return line


async def on_open(sc: SlackContext, body: dict[str, Any], context: Any, client: Any, respond: Any) -> None:
    """The person accepted the offer."""
    action = (body.get("actions") or [{}])[0]
    channel = str((body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id") or "")
    user = sc.chat_user(context, body, channel)
    try:
        data = json.loads(str(action.get("value") or "{}"))
        actor, _ = await sc.actor(context, user, client)
        line, _ = await open_and_post(sc, context, client, actor, user, channel, str(data["ts"]),
                                       str(data["text"]))
    except DeskbridgeError as exc:
        line = t.error_text(exc.message, exc.hint)
    except (ValueError, KeyError, TypeError):
        line = t.error_text("That button's data was not understood.", "Write your message again.")
    await respond(text=line, replace_original=True, response_type="ephemeral")


async def on_dismiss(sc: SlackContext, body: dict[str, Any], context: Any, respond: Any) -> None:
    await respond(delete_original=True)
