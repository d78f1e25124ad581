"""Pure similar-ticket index and suggested resolutions: scoping before scoring, the floor, attribution."""

from __future__ import annotations

from datetime import UTC, datetime

from core.ai import resolution
from core.ai.similar import Doc, Hit, SimilarIndex

D = datetime(2026, 3, 12, tzinfo=UTC)


def docs() -> list[Doc]:
    return [
        Doc(1, 10, "VPN drops every hour on laptop", 101, D, "Updated the VPN client to 5.2", "Ana"),
        Doc(2, 20, "VPN drops every hour on laptop", 201, D, "Globex secret: replaced router", "Bo"),
        Doc(3, 10, "Printer jam on floor 2", 102, D, "Cleared the tray"),
        Doc(4, 10, "VPN disconnects hourly", 103, datetime(2026, 4, 1, tzinfo=UTC), "Updated VPN client"),
    ]


def test_a_customer_scope_never_reaches_another_customers_ticket():
    index = SimilarIndex().build(docs())
    hits = index.search("vpn drops every hour", customers={10}, k=3)
    assert hits and all(h.doc.customer_id == 10 for h in hits)
    assert 2 not in {h.doc.ticket_id for h in hits}
    assert index.search("vpn drops every hour", customers={99}) == []


def test_all_customers_for_a_cross_customer_technician_and_the_floor_hides_weak_matches():
    index = SimilarIndex().build(docs())
    ids = [h.doc.ticket_id for h in index.search("vpn drops every hour laptop", customers=None, k=3)]
    assert set(ids[:2]) == {1, 2}
    assert index.search("quarterly invoice", customers=None) == []  # no shared words: nothing, not noise
    assert index.search("vpn", customers=None, floor=0.99) == []


def test_incremental_add_skips_known_tickets_and_excludes_the_query_ticket():
    index = SimilarIndex().build(docs()[:2])
    assert index.add(docs()) == 2 and len(index) == 4
    hits = index.search("printer jam", customers={10}, exclude=(3,))
    assert 3 not in {h.doc.ticket_id for h in hits}
    assert index.add([Doc(5, 10, "Fire alarm panel fault")]) == 1  # unseen words: a new vocabulary
    assert index.search("alarm panel", customers={10})[0].doc.ticket_id == 5


def test_resolutions_are_verbatim_attributed_newest_first_among_ties_and_flag_disagreement():
    a, b, c = docs()[0], docs()[3], docs()[2]
    r = resolution.suggest([Hit(a, 0.71), Hit(b, 0.69), Hit(c, 0.4)])
    assert r.items[0].ticket_id == 4  # near-tie: the newer one first
    assert r.items[1].text == "Updated the VPN client to 5.2"
    assert r.items[1].attribution == "from #101, 12 Mar 2026, by Ana, 0.71"
    assert r.disagree  # "Cleared the tray" shares nothing with the VPN fix
    assert not resolution.suggest([Hit(a, 0.7), Hit(b, 0.6)]).disagree
    assert resolution.suggest([Hit(Doc(9, 1, "x"), 0.9)]).items == ()
