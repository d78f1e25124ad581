"""The pinned "Get help" message in customer channels (words and record in core/intake/help_post.py).

`ensure` runs after `/deskbridge bind customer …`: it updates the channel's Get help message if there is one
(a re-bind never posts a second), else posts one and pins it. `remove` deletes it after the customer is
unbound. Clicking "Get help" opens a one-field form for the person who clicked (technicians are pointed to
`/ticket new`); sending it opens their request exactly as their own message would (core/intake/requests.py):
one ticket per form whatever Slack redelivers, the card posted in the channel (its thread is the ticket's),
and they are told privately what happened. If the ticket cannot be opened, they are told why and their
words are shown back to them, so nothing they wrote is lost.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError

from bot.slack import text as t
from bot.slack.context import PLATFORM, SlackContext
from bot.slack.install import WORKSPACE_KEY
from bot.slack.listeners import requests
from bot.slack.listeners.common import bound
from core.chat import ChatUser
from core.errors import DeskbridgeError
from core.intake import help_post as h

log = logging.getLogger("deskbridge.slack.help")

OPEN, SUBMIT = "dbhelp:open", "dbhelp:submit"
GONE = ("message_not_found", "cant_update_message", "channel_not_found", "is_archived")


def register(app: AsyncApp, sc: SlackContext) -> None:
    app.action(OPEN)(sc.after_ack(bound(on_click, sc), urgent=lambda body: bool(body.get("trigger_id"))))
    app.view(SUBMIT)(bound(on_submit, sc))


def message_blocks() -> list[dict[str, Any]]:
    return [{"type": "section", "text": {"type": "mrkdwn", "text": h.TEXT}},
            {"type": "actions", "elements": [{"type": "button", "action_id": OPEN, "style": "primary",
                                              "text": {"type": "plain_text", "text": h.BUTTON}, "value": "help"}]}]


def form(channel: str) -> dict[str, Any]:
    return {"type": "modal", "callback_id": SUBMIT, "private_metadata": json.dumps({"channel": channel}),
            "title": {"type": "plain_text", "text": h.FORM_TITLE},
            "submit": {"type": "plain_text", "text": h.FORM_SUBMIT},
            "close": {"type": "plain_text", "text": "Cancel"},
            "blocks": [{"type": "input", "block_id": "text", "label": {"type": "plain_text", "text": h.FORM_LABEL},
                        "element": {"type": "plain_text_input", "action_id": "text", "multiline": True,
                                    "max_length": h.MAX_CHARS,
                                    "placeholder": {"type": "plain_text", "text": h.FORM_PLACEHOLDER}}}]}


# ------------------------------------------------------------ the pinned message


async def ensure(sc: SlackContext, client: Any, ws: int, team: str, channel: str,
                 tell: Callable[[str], Awaitable[None]]) -> None:
    """After a customer bind: the channel's Get help message, updated in place or posted and pinned."""
    if sc.requests is None or sc.help_posts is None:
        return
    info = await sc.chat.channel(ws, PLATFORM, team, channel)
    if info.customer_id is None or await sc.requests.mode(ws) == "off":
        return
    posts, blocks = sc.help_posts, message_blocks()
    current = await posts.current(ws, PLATFORM, team, channel)
    if current is not None:
        try:
            await client.chat_update(channel=channel, ts=current.message_ts, text=h.FALLBACK, blocks=blocks)
        except SlackApiError as exc:
            if exc.response.get("error") not in GONE:
                raise
            await posts.gone(ws, current.post_id)  # someone deleted it: post it again below
        else:
            if current.customer_id != info.customer_id:
                await posts.moved(ws, current.post_id, info.customer_id)
            await _pin(client, channel, current.message_ts, tell)
            return
    posted = await client.chat_postMessage(channel=channel, text=h.FALLBACK, blocks=blocks)
    ts = str(posted["ts"])
    if not await posts.remember(ws, PLATFORM, team, channel, ts, info.customer_id):
        await client.chat_delete(channel=channel, ts=ts)  # another bind's message came first: keep one
        return
    await _pin(client, channel, ts, tell)


async def _pin(client: Any, channel: str, ts: str, tell: Callable[[str], Awaitable[None]]) -> None:
    try:
        await client.pins_add(channel=channel, timestamp=ts)
    except SlackApiError as exc:
        error = str(exc.response.get("error") or "error")
        if error != "already_pinned":
            log.warning("get-help message not pinned", extra={"channel": channel, "error": error})
            await tell(h.NOT_PINNED.format(error=error))


async def remove(sc: SlackContext, client: Any, ws: int, team: str, channel: str) -> None:
    """After the customer is unbound: the Get help message goes (a deleted one is just forgotten)."""
    if sc.help_posts is None:
        return
    current = await sc.help_posts.current(ws, PLATFORM, team, channel)
    if current is None:
        return
    try:
        await client.chat_delete(channel=channel, ts=current.message_ts)
    except SlackApiError as exc:
        if exc.response.get("error") not in GONE:
            raise
    await sc.help_posts.gone(ws, current.post_id)


# ------------------------------------------------------------ the button and its form


async def on_click(sc: SlackContext, body: dict[str, Any], context: Any, client: Any) -> None:
    """Open the form for an end user of the channel's customer; anyone else is told what to do."""
    channel = str((body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id") or "")
    user = sc.chat_user(context, body, channel)
    refusal = await _refusal(sc, context, client, user)
    if refusal is not None:
        await client.chat_postEphemeral(channel=channel, user=user.user_id, text=refusal)
        return

    async def build() -> dict[str, Any]:
        return form(channel)

    await sc.open_modal(client, str(body.get("trigger_id")), build, title=h.FORM_TITLE)


async def _refusal(sc: SlackContext, context: Any, client: Any, user: ChatUser) -> str | None:
    """Why this person may not ask here (with what to do instead), or None."""
    ws = int(context[WORKSPACE_KEY])
    if sc.requests is None or (await sc.chat.channel(ws, PLATFORM, user.team_id, user.channel_id)).customer_id is None:
        return t.error_text(h.NOT_BOUND, h.NOT_BOUND_HINT)
    try:
        actor, info = await sc.actor(context, user, client)
    except DeskbridgeError as exc:
        return t.error_text(exc.message, exc.hint)
    if actor.is_member:
        return t.error_text(h.ONLY_END_USERS, h.ONLY_END_USERS_HINT)
    if info.customer_id is None or not info.is_customer_channel:
        return t.error_text(h.NOT_BOUND, h.NOT_BOUND_HINT)
    if await sc.requests.mode(actor.workspace_id) == "off":
        return t.error_text(h.REQUESTS_OFF, h.REQUESTS_OFF_HINT)
    return None


async def on_submit(sc: SlackContext, ack: Any, body: dict[str, Any], context: Any, client: Any) -> None:
    """The form sent: an empty one stays open with the reason; otherwise it closes and the request is opened
    after the ack (keyed on the form's view id, so a redelivered submission opens nothing twice)."""
    view = body.get("view") or {}
    value = (((view.get("state") or {}).get("values") or {}).get("text") or {}).get("text") or {}
    text = str(value.get("value") or "").strip()
    if not text:
        await ack(response_action="errors", errors={"text": t.error_text(h.EMPTY, h.EMPTY_HINT)})
        return
    await ack()
    try:
        channel = str(json.loads(view.get("private_metadata") or "{}").get("channel") or "")
    except ValueError:
        channel = ""
    user = sc.chat_user(context, body, channel)
    sc.background(_open(sc, context, client, user, channel, text, key=f"{PLATFORM}:{channel}:help-{view.get('id')}"))


async def _open(sc: SlackContext, context: Any, client: Any, user: ChatUser, channel: str, text: str, *,
                key: str) -> None:
    refusal = await _refusal(sc, context, client, user)
    line = refusal
    if refusal is None:
        try:
            actor, _ = await sc.actor(context, user, client)
            line, _ = await requests.open_and_post(sc, context, client, actor, user, channel, None, text, key=key)
        except DeskbridgeError as exc:
            line = t.error_text(exc.message, exc.hint)
            refusal = line
    if refusal is not None:  # nothing was opened: give them their words back, so nothing is lost
        quoted = "\n".join(f"> {row}" for row in text.splitlines())
        line = f"{refusal}\nWhat you wrote:\n{quoted}"
    ws = int(context[WORKSPACE_KEY])
    log.info("get-help form handled", extra={"workspace": ws, "opened": refusal is None})
    await client.chat_postEphemeral(channel=channel, user=user.user_id, text=line)
