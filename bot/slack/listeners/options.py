"""Typeahead options of external selects (block_suggestion), answered in the ack."""

from __future__ import annotations

import json
import re
from typing import Any

from slack_bolt.async_app import AsyncApp

from bot.slack import blocks as bk
from bot.slack.context import SlackContext
from bot.slack.listeners.common import bound
from core.errors import DeskbridgeError
from core.views import FormOption


def register(app: AsyncApp, sc: SlackContext) -> None:
    app.options(re.compile(f"^{bk.SEARCH_PREFIX}"))(bound(search_options, sc))


async def search_options(sc: SlackContext, ack: Any, body: dict[str, Any], context: Any, client: Any) -> None:
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
