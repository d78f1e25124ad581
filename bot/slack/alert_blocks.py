"""Block Kit for an alert that made no ticket: the alert, a customer picker and "Create ticket" (pure)."""

from __future__ import annotations

from typing import Any

from bot.slack.blocks import _context, _cut, _md, _plain, esc, select_options
from core.views import AlertOfferView

ALERT_BLOCK, ALERT_CUSTOMER, ALERT_CREATE = "dbalert", "dbalert:customer", "dbalert:create"


def alert_offer_blocks(view: AlertOfferView) -> list[dict[str, Any]]:
    """An alert that made no ticket: what it is, a customer picker and "Create ticket" (core/intake/offers.py)."""
    blocks: list[dict[str, Any]] = [{"type": "section", "text": _md(f"*{esc(_cut(view.title, 300))}*")}]
    if view.lines or view.hint:
        blocks.append(_context(*(esc(line) for line in view.lines), esc(view.hint)))
    elements: list[dict[str, Any]] = []
    if view.customers:
        elements.append({"type": "static_select", "action_id": ALERT_CUSTOMER,
                         "placeholder": _plain("Customer"), "options": select_options(view.customers)[:100]})
    elements.append({"type": "button", "action_id": ALERT_CREATE, "text": _plain("Create ticket"),
                     "style": "primary", "value": str(view.alert_id)})
    blocks.append({"type": "actions", "block_id": ALERT_BLOCK, "elements": elements})
    return blocks


def alert_offer_fallback(view: AlertOfferView) -> str:
    return esc(_cut(view.title, 300))
