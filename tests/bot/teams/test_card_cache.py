"""A card's refresh ("open", asked for each time someone looks at it) may be answered with a kept card
(core/chat/card_cache.py), only for the same viewer, ticket and audience while the ticket is unchanged: a
technician's kept card never reaches a customer channel; a write, a new note or a sync change shows at once;
simultaneous refreshes share one build; a redelivered refresh is answered with the card again."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from store.db import Scope
from store.tables import Ticket, TimelineEntry
from tests.bot.teams.conftest import CHANNEL, STRANGER, text_of
from tests.bot.teams.test_commands import assert_valid_card, invoke
from tests.bot.teams.test_threads import make_admin

CUSTOMER_CHANNEL = "19:acme-shared@thread.tacv2"
INTERNAL = "internal: the customer's firewall is ours to fix"


async def ticket_id(h, number: int) -> int:
    async with h.c.db.read(Scope.workspace(h.ws)) as s:
        return int((await s.exec(sa.select(Ticket.id).where(Ticket.number == number))).scalar_one())


async def add_note(h, number: int, kind: str, body: str) -> None:
    tid = await ticket_id(h, number)
    async with h.c.db.write(Scope.workspace(h.ws)) as s:
        s.add(TimelineEntry(workspace_id=h.ws, ticket_id=tid, kind=kind, origin="psa", body=body,
                            author_name="Pat PSA"))


async def card_text(h, number: int, **kw) -> str:
    _, resp = await invoke(h, {"action": "open", "ref": str(number)}, **kw)
    assert resp.status_code == 200, resp.text
    card = resp.json()["value"]
    assert_valid_card(card)
    return text_of({"value": card})


def cache(h):
    return h.c.chat_views.cards.cache


@pytest.fixture(autouse=True)
async def histories_read(teams):
    """The tickets' PSA histories were read (a synced desk): a ticket whose history is unread is never kept,
    its card reads the history first."""
    async with teams.c.db.write(Scope.workspace(teams.ws)) as s:
        await s.execute(sa.update(Ticket).values(history_at=datetime.now(UTC)))


async def test_a_kept_technician_card_never_answers_in_a_customer_channel(teams):
    await add_note(teams, 5001, "note_internal", INTERNAL)
    await make_admin(teams)
    await teams.say("bind customer ACME shared", conversation=CUSTOMER_CHANNEL)
    assert "customer's people read this channel" in teams.last_text()
    tech = await card_text(teams, 5001)
    assert INTERNAL in tech  # the technician's card, now kept
    hits = cache(teams).hits
    assert INTERNAL in await card_text(teams, 5001)
    assert cache(teams).hits == hits + 1  # answered from the kept card
    # The same technician, same ticket, moments later, in the channel the customer reads: the customer's card.
    shown = await card_text(teams, 5001, conversation=CUSTOMER_CHANNEL)
    assert "#5001 VPN down" in shown and INTERNAL not in shown and "SLA" not in shown
    again = await card_text(teams, 5001, conversation=CUSTOMER_CHANNEL)
    assert INTERNAL not in again and "Internal note" not in again
    # A customer's own person there: the customer's card too, never the technician's kept one.
    assert INTERNAL not in await card_text(teams, 5001, conversation=CUSTOMER_CHANNEL, user=STRANGER)
    assert INTERNAL in await card_text(teams, 5001)  # and the technician's channel still gets theirs


async def test_a_write_a_note_or_a_sync_change_shows_on_the_next_refresh(teams):
    assert "Assignee: Bob Tech" not in await card_text(teams, 5002)
    _, resp = await invoke(teams, {"action": "assign_me", "ref": "5002"})
    assert resp.status_code == 200
    after = await card_text(teams, 5002)
    assert "Assignee: Bob Tech" in after and "queued" in after  # the write, not the kept card
    await add_note(teams, 5002, "note_public", "The PSA says: new power supply ordered.")
    assert "new power supply ordered" in await card_text(teams, 5002)
    async with teams.c.db.write(Scope.workspace(teams.ws)) as s:  # what a sync does to the ticket row
        await s.execute(sa.update(Ticket).where(Ticket.number == 5002).values(subject="Printer on fire"))
    assert "Printer on fire" in await card_text(teams, 5002)


async def test_a_ticket_whose_history_is_unread_is_never_kept(teams):
    async with teams.c.db.write(Scope.workspace(teams.ws)) as s:
        await s.execute(sa.update(Ticket).where(Ticket.number == 5001).values(history_at=None))
    misses = cache(teams).misses
    await card_text(teams, 5001)
    await card_text(teams, 5001)
    assert cache(teams).misses == misses + 2


async def test_a_kept_card_is_rebuilt_after_its_time(teams):
    kept = cache(teams)
    now = [1000.0]
    kept._clock = lambda: now[0]
    await card_text(teams, 5001)
    misses = kept.misses
    now[0] += kept.ttl_s - 1
    await card_text(teams, 5001)
    assert kept.misses == misses  # still fresh
    now[0] += 2  # past the time: SLA time left, "ago" and AI suggestions are drawn again
    await card_text(teams, 5001)
    assert kept.misses == misses + 1


async def test_simultaneous_refreshes_share_one_build_and_a_redelivery_gets_the_card(teams):
    misses = cache(teams).misses
    bodies = [teams.activity(kind="invoke", name="adaptiveCard/action", value={
        "action": {"type": "Action.Execute", "verb": "deskbridge", "data": {"action": "open", "ref": "5003"}},
        "trigger": "automatic"}) for _ in range(20)]
    answers = await asyncio.gather(*(teams.send(b, settle=False) for b in bodies))
    for r in answers:
        assert r.status_code == 200, r.text
        assert "#5003" in text_of({"value": r.json()["value"]}), r.json()
    assert cache(teams).misses == misses + 1  # one build for twenty refreshes
    again = await teams.send(bodies[0])  # Teams redelivers a refresh it saw no answer to: it gets the card
    assert again.status_code == 200 and "#5003" in text_of({"value": again.json()["value"]})
    assert CHANNEL in bodies[0]["conversation"]["id"]


def recorded(kept) -> dict:
    jobs: dict = {}

    def defer(key, job) -> bool:
        jobs.setdefault(key, job)
        return True

    kept.defer = defer
    return jobs


async def test_a_kept_card_past_half_its_time_is_rebuilt_ahead_and_then_answers(teams):
    kept = cache(teams)
    now = [1000.0]
    kept._clock = lambda: now[0]
    jobs = recorded(kept)
    await card_text(teams, 5001)
    misses = kept.misses
    now[0] += kept.ttl_s / 2 - 1
    await card_text(teams, 5001)
    assert jobs == {}  # not yet half its time
    now[0] += 2
    await card_text(teams, 5001)
    assert len(jobs) == 1 and kept.misses == misses  # answered from the kept card; a rebuild waits
    await next(iter(jobs.values()))()
    assert kept.rebuilt_ahead == 1
    now[0] += kept.ttl_s / 2 + 1  # past the first card's time, within the rebuilt card's
    assert "#5001" in await card_text(teams, 5001)
    assert kept.misses == misses  # no build inside the request


async def test_a_rebuild_ahead_never_replaces_a_card_whose_ticket_changed(teams):
    kept = cache(teams)
    now = [1000.0]
    kept._clock = lambda: now[0]
    jobs = recorded(kept)
    await card_text(teams, 5001)
    now[0] += kept.ttl_s / 2 + 1
    await card_text(teams, 5001)
    assert len(jobs) == 1
    await add_note(teams, 5001, "note_internal", "a PSA note written after the card was kept")
    await next(iter(jobs.values()))()
    assert kept.rebuilt_ahead == 0  # the fingerprint moved: the next refresh builds
    misses = kept.misses
    assert "a PSA note written after the card was kept" in await card_text(teams, 5001)
    assert kept.misses == misses + 1


async def test_without_a_quiet_time_runner_nothing_is_rebuilt_ahead(teams):
    kept = cache(teams)
    now = [1000.0]
    kept._clock = lambda: now[0]
    kept.defer = None
    await card_text(teams, 5001)
    misses = kept.misses
    now[0] += kept.ttl_s + 1
    await card_text(teams, 5001)
    assert kept.misses == misses + 1 and kept.rebuilt_ahead == 0


async def test_a_kept_cards_answer_is_rendered_once_and_a_change_renders_again(teams, monkeypatch):
    from bot.teams import listeners

    rendered: list[int] = []
    real = listeners.cards.any_card

    def counting(view):
        rendered.append(1)
        return real(view)

    monkeypatch.setattr(listeners.cards, "any_card", counting)
    first = await invoke(teams, {"action": "open", "ref": "5001"})
    answers = [await invoke(teams, {"action": "open", "ref": "5001"}) for _ in range(5)]
    assert len(rendered) == 1  # six refreshes of a kept card: one render
    for _, resp in answers:
        assert resp.status_code == 200 and resp.headers["content-type"] == "application/json"
        assert resp.content == first[1].content
    await add_note(teams, 5001, "note_public", "the printer works again")
    _, changed = await invoke(teams, {"action": "open", "ref": "5001"})
    assert len(rendered) == 2 and "the printer works again" in changed.text
