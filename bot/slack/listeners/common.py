"""What the listener groups share: binding the SlackContext to a handler, and small request helpers."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any

from bot.slack import blocks as bk
from bot.slack import text as t
from bot.slack.channels import ChannelUnknown
from bot.slack.context import PLATFORM, SlackContext
from core.errors import InvalidInput
from core.views import FormView, MessageView, QueueView, TicketView


def bound(fn: Callable[..., Awaitable[Any]], sc: SlackContext) -> Callable[..., Awaitable[Any]]:
    """`fn(sc, ...)` as a listener: bolt and `after_ack` inspect the rest of its parameters to pass them."""
    handler = functools.partial(fn, sc)
    handler.__name__ = fn.__name__  # type: ignore[attr-defined]  # bolt and after_ack name listeners by it
    return handler


def source(channel: str, thread_ts: str) -> str:
    """How a note names the Slack thread it was written in (the notifier does not echo it back there)."""
    return f"{PLATFORM}:{channel}:{thread_ts}"


def has_files(body: dict[str, Any]) -> bool:
    """A message carrying files: its work (downloads) runs on the slow pool."""
    return bool((body.get("event") or {}).get("files"))


def on_ephemeral(body: dict[str, Any]) -> bool:
    """A button on an ephemeral message: there is no message ts to thread under or update."""
    container = body.get("container") or {}
    return bool(container.get("is_ephemeral")) or (container.get("type") == "message" and not body.get("message"))


async def is_shared(sc: SlackContext, client: Any, channel: str) -> bool:
    """Slack Connect channels are shared with another org: bound customer channels get customer visibility.
    Asked afresh when binding; a channel Slack won't describe is refused (fail closed)."""
    sc.shared.forget(channel)
    try:
        return await sc.shared.is_shared(client, channel, strict=True)
    except ChannelUnknown as exc:
        raise InvalidInput(t.BIND_CANNOT_SEE_CHANNEL, hint=t.BIND_CANNOT_SEE_CHANNEL_HINT) from exc


async def answer(view: Any, body: dict[str, Any], client: Any, respond: Any, meta: dict[str, Any]) -> None:
    """Show a command's result to the user who ran it (a modal, or an ephemeral message)."""
    if isinstance(view, FormView):
        await client.views_open(trigger_id=body["trigger_id"], view=bk.form_modal(view, meta))
    elif isinstance(view, QueueView):
        await respond(text=view.title, blocks=bk.queue_blocks(view), response_type="ephemeral")
    elif isinstance(view, MessageView):
        await respond(text=bk.message_fallback(view), blocks=bk.message_blocks(view), response_type="ephemeral")
    elif isinstance(view, TicketView):
        await respond(text=bk.ticket_fallback(view), blocks=bk.ticket_blocks(view), response_type="ephemeral")
