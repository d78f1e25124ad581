"""The customer-visibility rules (core/chat/visibility.py), table by table: pure functions of a channel's
binding and the actor, so every row is one situation a channel can be in."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from core.chat import visibility as v
from core.chat.models import ChannelInfo
from core.context import Actor
from core.errors import PermissionDenied
from core.views import ExternalLink, TicketDetail, TicketSummary, TicketView, ViewAction
from store.enums import Origin, Priority, Stage

ACME, GLOBEX = 1, 2
UNBOUND = ChannelInfo()  # a technicians' channel (or a DM): bound to nothing
DISPATCH = ChannelInfo(kinds=frozenset({"dispatch"}))
ACME_INTERNAL = ChannelInfo(kinds=frozenset({"customer"}), customer_id=ACME, customer_name="Acme", visibility="tech")
ACME_SHARED = ChannelInfo(kinds=frozenset({"customer"}), customer_id=ACME, customer_name="Acme",
                          visibility="customer")
SHARED_UNBOUND = ChannelInfo(visibility="customer")  # shared with another org, bound to no customer

TECH = Actor(workspace_id=1, origin=Origin.SLACK, member_id=7, display="slack:U1", is_member=True)
CONTACT = Actor(workspace_id=1, origin=Origin.SLACK, display="slack:U9", is_member=False, customer_scope_id=ACME)


@pytest.mark.parametrize(("actor", "info", "expected"), [
    (TECH, UNBOUND, "tech"),
    (TECH, ACME_INTERNAL, "tech"),
    (TECH, ACME_SHARED, "customer"),  # what a technician opens there, the customer reads too
    (TECH, SHARED_UNBOUND, "customer"),
    (CONTACT, ACME_INTERNAL, "customer"),  # a non-technician only ever gets the customer view
    (CONTACT, ACME_SHARED, "customer"),
    (CONTACT, UNBOUND, "customer"),
])
def test_audience(actor: Actor, info: ChannelInfo, expected: str) -> None:
    assert v.audience(actor, info) == expected


@pytest.mark.parametrize(("info", "card", "failures", "notes"), [
    # channel          card audience  failed writes  notes shown (public, internal, resolution)
    (UNBOUND, "tech", True, (True, True, True)),
    (DISPATCH, "tech", True, (True, True, True)),
    (ACME_INTERNAL, "tech", True, (True, True, True)),
    (ACME_SHARED, "customer", False, (True, False, False)),
    (SHARED_UNBOUND, "customer", False, (True, False, False)),
])
def test_what_a_channel_is_shown(info: ChannelInfo, card: str, failures: bool, notes: tuple[bool, ...]) -> None:
    assert v.card_audience(info) == card
    assert v.failures_visible_in(info) is failures
    assert tuple(v.note_visible_in(info, kind) for kind in ("public", "internal", "resolution")) == notes


@pytest.mark.parametrize(("info", "shows_tickets", "acme", "globex", "no_customer"), [
    # channel          any cards  ACME ticket  GLOBEX ticket  ticket without customer
    (UNBOUND, True, True, True, True),
    (DISPATCH, True, True, True, True),
    (ACME_INTERNAL, True, True, False, False),  # bound to a customer: that customer's tickets only
    (ACME_SHARED, True, True, False, False),
    (SHARED_UNBOUND, False, False, False, False),  # outsiders read it: nothing until bound to their customer
])
def test_which_tickets_a_channel_may_get(info: ChannelInfo, shows_tickets: bool, acme: bool, globex: bool,
                                         no_customer: bool) -> None:
    assert v.may_show_tickets(info) is shows_tickets
    assert [v.may_post_ticket(info, c) for c in (ACME, GLOBEX, None)] == [acme, globex, no_customer]


@pytest.mark.parametrize(("info", "shared_now", "visibility"), [
    (UNBOUND, False, "tech"),
    (UNBOUND, True, "customer"),  # shared since it was bound (or never bound): outsiders read it
    (ACME_INTERNAL, True, "customer"),
    (ACME_SHARED, False, "customer"),  # a binding that says the customer reads it is never relaxed here
])
def test_seen_with_what_the_platform_says_now(info: ChannelInfo, shared_now: bool, visibility: str) -> None:
    seen = v.seen_with(info, shared=shared_now)
    assert seen.visibility == visibility
    assert (seen.customer_id, seen.kinds) == (info.customer_id, info.kinds)


@pytest.mark.parametrize(("info", "customer", "kind", "audience", "expected"), [
    (UNBOUND, GLOBEX, "note", "tech", None),  # technicians only: everything stays
    (ACME_INTERNAL, ACME, "card", "tech", None),
    (ACME_SHARED, GLOBEX, "card", "customer", v.DELETE),  # another customer's ticket: gone
    (ACME_SHARED, None, "sla", "tech", v.DELETE),
    (ACME_SHARED, ACME, "card", "tech", v.CUSTOMER_CARD),  # their own ticket: the customer's card
    (ACME_SHARED, ACME, "card", "customer", None),
    (ACME_SHARED, ACME, "note", "tech", v.DELETE),  # an internal note of their own ticket: gone
    (ACME_SHARED, ACME, "dead", "tech", v.DELETE),
    (ACME_SHARED, ACME, "note", "customer", None),
    (SHARED_UNBOUND, ACME, "card", "customer", v.DELETE),
])
def test_what_is_redacted_when_a_channels_readers_change(info: ChannelInfo, customer: int | None, kind: str,
                                                         audience: str, expected: str | None) -> None:
    assert v.redaction_for(info, customer_id=customer, kind=kind, audience=audience) == expected


def _card() -> TicketView:
    now = datetime(2026, 1, 5, 12, tzinfo=UTC)
    summary = TicketSummary(id=1, number=1042, subject="VPN down", customer_id=ACME, customer_name="Acme",
                            priority=Priority.HIGH, stage=Stage.NEW, status_name="New", assignee_id=7,
                            assignee_name="Ana", created_at=now, updated_at=now, connection_id=3, sla_remaining_s=60)
    detail = TicketDetail(summary=summary, description="", contact_name=None, board_name="Service Desk",
                          type_name=None, alert_ref="A1", device_ref="D1", contract_ref="K1", external_id="1042",
                          pending_writes=2, dead_writes=1, psa_url="https://psa.example/1042", psa_respond_by=now,
                          psa_resolve_by=now)
    return TicketView(detail=detail, now=now, links=(ExternalLink(kind="psa", label="PSA", url="https://x"),),
                      actions=(ViewAction(action="reply", label="Reply"),), total_minutes=30, sla_remaining_s=60)


def test_a_customer_card_keeps_nothing_internal() -> None:
    card = v.for_customer(_card())
    d = card.detail
    assert card.audience == "customer"
    assert (card.sla_remaining_s, d.summary.sla_remaining_s, card.links, card.actions, card.time_entries,
            card.total_minutes) == (None, None, (), (), (), 0)
    assert (d.board_name, d.device_ref, d.alert_ref, d.contract_ref, d.psa_url, d.psa_respond_by,
            d.psa_resolve_by, d.pending_writes, d.dead_writes) == (None,) * 7 + (0, 0)
    assert (d.summary.subject, d.summary.status_name, d.summary.assignee_name) == ("VPN down", "New", "Ana")


def test_only_admins_pass_require_admin() -> None:
    v.require_admin(Actor(workspace_id=1, origin=Origin.SLACK, display="x", is_admin=True), "bind channels")
    with pytest.raises(PermissionDenied, match="Only Deskbridge admins can bind channels"):
        v.require_admin(TECH, "bind channels")


def test_with_scope_follows_the_channel() -> None:
    assert v.with_scope(TECH, ACME_INTERNAL).customer_scope_id == ACME
    assert v.with_scope(CONTACT, UNBOUND).customer_scope_id is None
