"""Who may see what in chat: the customer-visibility rules, the main security surface of every chat surface.

Pure functions of a channel's binding (`ChannelInfo`) and the actor; no I/O. A channel outsiders read
("customer" visibility) gets the customer's view of its own customer's tickets and nothing else.
Tested table by table in tests/core/chat/test_visibility.py.
"""

from __future__ import annotations

from dataclasses import replace

from core.chat.models import ChannelInfo
from core.context import Actor
from core.errors import PermissionDenied
from core.views import TicketView

DELETE = "delete"
CUSTOMER_CARD = "customer_card"


def audience(actor: Actor, info: ChannelInfo) -> str:
    """Who a view is for: "customer" (no internal notes, time, SLA, devices, write plumbing) or "tech".

    A non-technician only ever gets the customer view, and so does everyone in a channel shared with the
    customer (what a technician opens there, the customer reads too).
    """
    return "customer" if (not actor.is_member or info.visibility == "customer") else "tech"


def seen_with(info: ChannelInfo, *, shared: bool) -> ChannelInfo:
    """A channel as it is now: one shared with another organisation (Slack Connect, a Teams shared channel)
    is read by outsiders, whatever its binding said when it was made (it may have been shared since)."""
    return replace(info, visibility="customer") if shared and info.visibility != "customer" else info


def may_show_tickets(info: ChannelInfo) -> bool:
    """Ticket cards may be posted into a channel outsiders read only once it is bound to their customer:
    otherwise any customer's ticket could be shown to another customer's people."""
    return info.visibility != "customer" or info.customer_id is not None


def may_post_ticket(info: ChannelInfo, customer_id: int | None) -> bool:
    """Whether anything of a ticket of `customer_id` (its card and card updates, notes, failed writes, SLA
    warnings, dispatch) may be posted into a channel, by its binding *now*, not when its thread began.

    A channel bound to a customer gets that customer's tickets only, even in threads it had before it was
    bound; a channel outsiders read gets nothing until it is bound to their customer.
    """
    if info.customer_id is not None:
        return customer_id == info.customer_id
    return may_show_tickets(info)


def card_audience(info: ChannelInfo) -> str:
    """The audience of a card posted into a channel, whoever caused the post (sync, outbox, a technician)."""
    return "customer" if info.visibility == "customer" else "tech"


def note_visible_in(info: ChannelInfo, visibility: str) -> bool:
    """Whether a PSA note is mirrored into a channel: a channel shared with the customer gets public notes only."""
    return info.visibility != "customer" or visibility == "public"


def failures_visible_in(info: ChannelInfo) -> bool:
    """Whether a failed write (and the PSA's error text) is told in a channel: never where the customer reads."""
    return info.visibility != "customer"


def require_admin(actor: Actor, what: str) -> None:
    """Bindings, links of other people, settings and outbox repairs are for Deskbridge admins only."""
    if not actor.is_admin:
        raise PermissionDenied(f"Only Deskbridge admins can {what}.",
                               hint="Ask an admin (a technician marked admin, or a workspace admin).")


def with_scope(actor: Actor, info: ChannelInfo) -> Actor:
    """The actor scoped to the channel's customer (used when a channel binding changes mid-request)."""
    return replace(actor, customer_scope_id=info.customer_id)


SUPPORT = "Support"  # what a customer reads as the author of the MSP's own automated writes
_CHAT = ("slack:", "teams:")


def customer_author(name: str | None) -> str:
    """An author's name as a customer may read it: a person's name, never a chat user id ("slack:U123 (Ann)"
    -> "Ann") or an API key's, the system's or the AI's name (-> "Support"). An e-mail sender stays their address."""
    name = (name or "").strip()
    if name.startswith(_CHAT):
        inner = name[name.find("(") + 1:-1].strip() if name.endswith(")") and "(" in name else ""
        return inner or "Someone from your team"
    if name.startswith("email:"):
        return name.removeprefix("email:") or SUPPORT
    if not name or name == "system" or name.startswith(("apikey:", "ai:", "api:", "system:")):
        return SUPPORT
    return name


def for_customer(view: TicketView) -> TicketView:
    """What a customer may see of a ticket card: the conversation they are part of, status and who works on it.

    Everything that is the MSP's own business goes: internal notes and time (already left out), SLA figures,
    the board, the PSA's category and custom fields (card facts), devices, alerts, contracts, the PSA's deep link and runbooks, and the write plumbing (queued or
    dead writes and their errors, and a reply's own "queued" / "not in the PSA" mark). Files: only those that are public (a technician's file in an internal thread
    is internal; a PSA file whose visibility the PSA does not tell stays internal too). Applied last, so a field added to the card later stays internal by default
    only if it is added here too: keep this list in step with TicketView.
    """
    detail = replace(view.detail, summary=replace(view.summary, sla_remaining_s=None), board_name=None,
                     device_ref=None, alert_ref=None, contract_ref=None, pending_writes=0, dead_writes=0,
                     psa_url=None, psa_respond_by=None, psa_resolve_by=None, category_name=None,
                     subcategory_name=None, custom_fields={})
    files = tuple(a for a in view.attachments if a.data.get("visibility") == "public")
    said = tuple(replace(c, queued=False, failed=False, author=customer_author(c.author))  # no plumbing, no ids
                 for c in view.conversation)
    return replace(view, detail=detail, sla_remaining_s=None, links=(), actions=(), time_entries=(), attachments=files,
                   conversation=said, total_minutes=0, audience="customer", ai=None, facts=(), alerts=())


def redaction_for(info: ChannelInfo, *, customer_id: int | None, kind: str, audience: str) -> str | None:
    """What must happen to a bot post in a channel as it is read now (None: it may stay).

    Outsiders read the channel: anything of a ticket that is not their customer's goes, and so does every
    internal post of their own tickets; a technician's card of their ticket becomes the customer's card.
    """
    if info.visibility != "customer":
        return None
    if info.customer_id is None or customer_id != info.customer_id:
        return DELETE
    if audience == "customer":
        return None
    return CUSTOMER_CARD if kind == "card" else DELETE
