"""bolt listeners, grouped by kind. Each acks at once; everything else runs after the ack on a bounded pool
(bot/slack/work.py). The one exception is a modal submission: its local write (one database transaction,
never a PSA call) runs before the ack so that a refused value shows up as a field error in the modal itself.

Each module has its own `register(app, sc)`; handlers are top-level functions taking the SlackContext
first (`common.bound` hands it to them, so bolt and `after_ack` see only the request arguments).
"""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from bot.slack.context import SlackContext
from bot.slack.listeners import (
    actions,
    alerts,
    commands,
    events,
    forms,
    get_help,
    options,
    requests,
    shortcuts,
    tenant,
)
from bot.slack.listeners.shortcuts import SHORTCUT_ID

__all__ = ["SHORTCUT_ID", "register"]


def register(app: AsyncApp, sc: SlackContext) -> None:
    """Attach every listener to the app."""
    for group in (commands, actions, alerts, forms, options, shortcuts, events, requests, get_help, tenant):
        group.register(app, sc)
