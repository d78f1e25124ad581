"""Which Slack requests will open a modal on their trigger id (Slack refuses it 3 s after the click), so
their work after the ack runs ahead of work that can wait (bot/slack/work.py). Pure predicates on the
request body; a wrong guess only changes order, never behaviour."""

from __future__ import annotations

from typing import Any

from bot.slack import blocks as bk
from core.chat import grammar

FORM_ACTIONS = frozenset({"reply", "note", "status", "time", "open", "ai_draft_edit", "context"})  # `open`: the ticket modal off-channel; `context`: the M365 context


def command_opens_modal(body: dict[str, Any]) -> bool:
    """`/ticket new ...` opens the create form; every other command answers on its response_url."""
    if not body.get("trigger_id"):
        return False
    try:
        return isinstance(grammar.parse(str(body.get("command", "")), str(body.get("text", ""))), grammar.NewTicket)
    except Exception:  # noqa: BLE001 - an unparsable command is answered with an error, not a modal
        return False


def action_opens_modal(body: dict[str, Any]) -> bool:
    """A button whose answer is a form or the ticket modal (or anything clicked inside a modal)."""
    if not body.get("trigger_id"):
        return False
    if (body.get("view") or {}).get("type") == "modal":
        return True
    action = (body.get("actions") or [{}])[0]
    name = str(action.get("action_id", "")).removeprefix(bk.ACTION_PREFIX)
    return name in FORM_ACTIONS


def shortcut_opens_modal(body: dict[str, Any]) -> bool:
    return bool(body.get("trigger_id"))
