"""Card updates in two lanes under a spent chat.update budget, against the fake Slack Web API (real
AsyncWebClient, real time, a small budget so the test is quick): the card a technician just acted on goes
before bulk refreshes of other cards, which wait (collapsing per card) and are never lost."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest

from bot.slack.outbound import SlackOutbound
from bot.slack.poster import make_client
from core.notify import TicketChanged, WriteDelivered
from tests.bot.slack.conftest import CHANNEL, TEAM
from tests.bot.slack.test_delivery import ticket_id_of
from tests.fakes.slack_api import FakeSlackApi

RATE_PER_S, BURST = 10.0, 8  # with urgent_reserve=2: bulk ones leave 2 tokens to urgent ones


@pytest.fixture
async def slack_api() -> AsyncIterator[FakeSlackApi]:
    fake = await FakeSlackApi().start()
    try:
        yield fake
    finally:
        await fake.stop()


def blocks(text: str) -> list[dict[str, Any]]:
    return [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]


def sent(fake: FakeSlackApi) -> list[str]:
    return [c.args["text"] for c in fake.of("chat.update")]


async def wait_for(fake: FakeSlackApi, n: int, within: float = 30.0) -> None:  # "eventually", on a loaded machine
    deadline = time.monotonic() + within
    while len(fake.of("chat.update")) < n:
        assert time.monotonic() < deadline, f"only {len(fake.of('chat.update'))} of {n} updates arrived: {sent(fake)}"
        await asyncio.sleep(0.01)


async def test_the_card_someone_acted_on_goes_before_bulk_refreshes(slack_api: FakeSlackApi):
    now = [1000.0]  # the budget's clock stands still unless the test moves it: no refill by accident

    async def poll(_seconds: float) -> None:  # the queues look again often; time moves only below
        await asyncio.sleep(0.01)

    out = SlackOutbound(updates_per_minute=RATE_PER_S * 60, update_burst=BURST, update_interval=0.2,
                        urgent_reserve=2, clock=lambda: now[0], sleep=poll)
    client = make_client(slack_api.api_url, "xoxb-test-token")
    for i in range(12):  # a PSA-side storm: 12 cards in 12 channels refreshed at once
        out.update(client, f"C{i}", f"{i}.1", text=f"bulk {i}", blocks=blocks(f"bulk {i}"))
    await wait_for(slack_api, BURST - 2)
    await asyncio.sleep(0.2)
    assert len(slack_api.of("chat.update")) == BURST - 2  # bulk stops at the reserve: spent, as far as it goes
    out.update(client, "C11", "11.1", text="bulk 11 newer", blocks=blocks("v2"))  # still waiting: collapses
    # A technician clicks: their card in a channel with nothing queued, and a card whose bulk refresh waits.
    out.update(client, "C20", "20.1", text="clicked", blocks=blocks("clicked"), urgent=True)
    out.update(client, "C9", "9.1", text="bulk 9 in the PSA", blocks=blocks("in the PSA"), urgent=True)
    await wait_for(slack_api, BURST)  # from the reserve, with no time passing
    await asyncio.sleep(0.2)
    assert sorted(sent(slack_api)[BURST - 2:]) == ["bulk 9 in the PSA", "clicked"]  # and no bulk one
    now[0] += 0.25  # 2.5 tokens: still below the bulk floor (1 + reserve), so nothing more goes
    await asyncio.sleep(0.2)
    assert len(slack_api.of("chat.update")) == BURST
    now[0] += 10.0  # the budget refills: the deferred bulk refreshes go, one per card, newest content
    await out.drain()
    texts = sent(slack_api)
    assert sorted(texts[BURST:]) == sorted(["bulk 6", "bulk 7", "bulk 8", "bulk 10", "bulk 11 newer"])
    assert "bulk 9" not in texts and "bulk 11" not in texts
    assert out.queued == 0 and out.dropped_updates == 0


async def test_an_urgent_update_waits_its_channels_pace_but_not_behind_its_bulk_updates(slack_api: FakeSlackApi):
    out = SlackOutbound(updates_per_minute=RATE_PER_S * 60, update_burst=BURST, update_interval=1.0)
    client = make_client(slack_api.api_url, "xoxb-test-token")
    for i in range(4):  # four bulk refreshes of cards in one channel: one a second
        out.update(client, "C1", f"{i}.1", text=f"bulk {i}", blocks=blocks(f"bulk {i}"))
    await wait_for(slack_api, 1)
    out.update(client, "C1", "9.1", text="clicked", blocks=blocks("clicked"), urgent=True)
    await out.drain()
    # the newest PSA change first among bulk ones (all four were queued within the same instant: queue order
    # decides ties the other way round, so the last queued goes first), the click before the rest
    assert sent(slack_api) == ["bulk 3", "clicked", "bulk 2", "bulk 1", "bulk 0"]
    stamps = [c.at for c in slack_api.of("chat.update")]
    gaps = [b - a for a, b in zip(stamps, stamps[1:], strict=False)]
    # the channel's pace is kept for both lanes. Stamps are arrivals at the fake: one request's trip can take
    # longer than the next one's on a loaded machine, so a single gap may look shorter than the pace by that
    # difference (0.979 s seen at load 15); the span of all five cannot.
    assert min(gaps) >= 0.8
    assert stamps[-1] - stamps[0] >= 4 * 1.0 - 0.05


async def test_a_writes_outcome_is_urgent_and_a_psa_change_is_bulk(slack, monkeypatch: pytest.MonkeyPatch):
    """The notifier's choice of lane: the "in the PSA" refresh after someone's write goes urgent, a change
    made in the PSA refreshes the same card in the bulk lane."""
    ticket_id = await ticket_id_of(slack, 5001)
    await slack.c.chat.record_post(slack.ws, ticket_id=ticket_id, platform="slack", team_id=TEAM, channel_id=CHANNEL,
                                   message_ts="1700000000.000700")
    outbound = slack.c.slack.poster.outbound
    lanes: list[tuple[str, bool]] = []
    real = outbound.update

    def spy(client: Any, channel: str, ts: str, *, urgent: bool = False, **kw: Any) -> Any:
        lanes.append((ts, urgent))
        return real(client, channel, ts, urgent=urgent, **kw)

    monkeypatch.setattr(outbound, "update", spy)
    common = {"workspace_id": slack.ws, "ticket_id": ticket_id, "ticket_number": 5001,
              "occurred_at": datetime.now(UTC)}
    await slack.c.notifier.notify(TicketChanged(**common, origin="psa", changes={"subject": ("a", "b")}))
    await slack.settle()
    await slack.c.notifier.notify(WriteDelivered(**common, origin="slack", op_id=1, kind="add_note"))
    await slack.settle()
    assert lanes == [("1700000000.000700", False), ("1700000000.000700", True)]


async def test_more_urgent_work_than_budget_does_not_hide_a_bulk_refresh_for_ever(slack_api: FakeSlackApi):
    now = [1000.0]

    async def poll(_seconds: float) -> None:
        await asyncio.sleep(0.01)

    out = SlackOutbound(updates_per_minute=60, update_burst=4, update_interval=0, bulk_max_defer=3.0,
                        clock=lambda: now[0], sleep=poll)
    client = make_client(slack_api.api_url, "xoxb-test-token")
    out.update(client, "C_PSA", "1.1", text="changed in the PSA", blocks=blocks("psa"))  # spends 1 of 4
    for i in range(12):  # then a storm of clicks: far more than the budget
        out.update(client, f"C{i}", f"{i}.9", text=f"click {i}", blocks=blocks(f"click {i}"), urgent=True)
    await wait_for(slack_api, 4)
    out.update(client, "C_PSA", "1.1", text="changed again in the PSA", blocks=blocks("psa 2"))  # deferred
    bulk_sent_at = None
    for n in range(5, 14):  # one token a second, each spent before the clock moves on: on a loaded machine a fixed
        now[0] += 1.0  # real-time pause let tokens pile up, and then the order is not what this test is about
        await wait_for(slack_api, n)
        if bulk_sent_at is None and "changed again in the PSA" in sent(slack_api):
            bulk_sent_at = now[0]
    assert bulk_sent_at is not None, sent(slack_api)
    assert bulk_sent_at >= 1003.0  # it yielded to the clicks while it could
    assert sent(slack_api).index("changed again in the PSA") < len(sent(slack_api)) - 1  # not last: it competed
    await out.close(1)


async def test_with_the_default_budget_the_next_token_goes_to_the_waiting_click(slack_api: FakeSlackApi):
    now = [1000.0]

    async def poll(_seconds: float) -> None:
        await asyncio.sleep(0.01)

    out = SlackOutbound(updates_per_minute=60, update_burst=2, clock=lambda: now[0], sleep=poll)  # no reserve
    client = make_client(slack_api.api_url, "xoxb-test-token")
    for i in range(12):  # twelve PSA-side refreshes: two go, ten wait for the budget
        out.update(client, f"C{i}", f"{i}.1", text=f"bulk {i}", blocks=blocks(f"bulk {i}"))
    await wait_for(slack_api, 2)
    out.update(client, "C99", "99.1", text="clicked", blocks=blocks("clicked"), urgent=True)
    for n in (3, 4):  # one token a second
        now[0] += 1.0
        await wait_for(slack_api, n)
        await asyncio.sleep(0.1)
        assert len(slack_api.of("chat.update")) == n  # one per token, no more
    assert sent(slack_api)[2] == "clicked"  # the first token after the click went to it, not to a bulk one
    for _ in range(12):  # the budget refills a token a second: the rest go
        now[0] += 1.0
        await asyncio.sleep(0.05)
    await wait_for(slack_api, 13)
    assert sorted(sent(slack_api)[3:]) == sorted(f"bulk {i}" for i in range(2, 12))
    await out.close(1)


def _held_outbound() -> tuple[SlackOutbound, list[float]]:
    now = [1000.0]

    async def poll(_seconds: float) -> None:  # the queues look again often; time moves only when the test says
        await asyncio.sleep(0.01)

    return SlackOutbound(update_interval=0.0, clock=lambda: now[0], sleep=poll), now


async def test_a_held_card_sends_only_the_outcome_when_it_arrives_within_the_hold(slack_api: FakeSlackApi):
    """Issue 20 item 2: a click's card ("queued") waits for the write's outcome; one chat.update, not two."""
    out, now = _held_outbound()
    client = make_client(slack_api.api_url, "xoxb-test-token")
    out.update(client, CHANNEL, "1.1", text="queued", blocks=blocks("queued"), urgent=True, hold=2.0)
    await asyncio.sleep(0.1)
    assert sent(slack_api) == []  # held: nothing yet
    out.update(client, CHANNEL, "1.1", text="bulk refresh", blocks=blocks("bulk"))  # e.g. the note's refresh
    now[0] += 1.0
    await asyncio.sleep(0.1)
    assert sent(slack_api) == []  # a bulk refresh joins the held update without ending the hold
    out.update(client, CHANNEL, "1.1", text="in the PSA", blocks=blocks("in the PSA"), urgent=True)  # delivered
    await wait_for(slack_api, 1)
    await out.drain()
    assert sent(slack_api) == ["in the PSA"]  # at once, before the hold ends; "queued" never went out
    assert now[0] < 1002.0


async def test_a_held_card_is_sent_when_the_hold_ends_without_an_outcome(slack_api: FakeSlackApi):
    out, now = _held_outbound()
    client = make_client(slack_api.api_url, "xoxb-test-token")
    out.update(client, CHANNEL, "1.1", text="queued", blocks=blocks("queued"), urgent=True, hold=2.0)
    out.update(client, "C_OTHER", "2.1", text="psa change", blocks=blocks("psa change"))  # bulk, elsewhere
    await wait_for(slack_api, 1)
    assert sent(slack_api) == ["psa change"]  # bulk work does not wait behind a held card
    now[0] += 1.9
    await asyncio.sleep(0.1)
    assert sent(slack_api) == ["psa change"]
    now[0] += 0.2
    await wait_for(slack_api, 2)
    await out.drain()
    assert sent(slack_api) == ["psa change", "queued"]  # never lost: the slow write's card shows "queued"
    assert out.queued == 0


async def test_a_card_rendered_when_sent_shows_the_newest_state_once(slack_api: FakeSlackApi):
    """Refreshes carrying a render (bot/slack/outbound.py) collapse while the card waits for the budget and
    are built once, when the update goes: the final state is never dropped, and a burst of PSA changes
    costs one build and one chat.update, not one per change. A render with nothing to show sends nothing
    and gives its token back."""
    now = [1000.0]

    async def poll(_seconds: float) -> None:
        await asyncio.sleep(0.01)

    out = SlackOutbound(updates_per_minute=60.0, update_burst=1, update_interval=0.0, clock=lambda: now[0],
                        sleep=poll)
    client = make_client(slack_api.api_url, "xoxb-test-token")
    out.update(client, "C1", "1.1", text="spends the token", blocks=blocks("x"))
    await wait_for(slack_api, 1)
    state = {"status": "New"}
    builds: list[str] = []

    async def card() -> tuple[str, list[dict[str, Any]]]:
        builds.append(state["status"])
        return f"card {state['status']}", blocks(state["status"])

    for status in ("In Progress", "Waiting Customer", "Scheduled", "Closed"):  # four PSA changes, no token
        state["status"] = status
        out.update(client, "C2", "2.1", render=card)
        await asyncio.sleep(0.03)
    assert len(slack_api.of("chat.update")) == 1 and builds == []  # waiting: nothing built yet
    state["status"] = "Closed, reopened"  # changed again after the last refresh was queued
    now[0] += 1.0  # one token
    await wait_for(slack_api, 2)
    await out.drain()
    assert sent(slack_api) == ["spends the token", "card Closed, reopened"]  # the state of the sending moment
    assert builds == ["Closed, reopened"]

    async def gone() -> None:
        return None

    now[0] += 1.0
    out.update(client, "C3", "3.1", render=gone)  # e.g. the ticket moved to another customer meanwhile
    await out.drain()
    out.update(client, "C4", "4.1", text="next", blocks=blocks("next"))  # the token came back: no wait
    await wait_for(slack_api, 3)
    assert sent(slack_api)[2:] == ["next"]


async def test_a_click_goes_before_waiting_rendered_bulk_refreshes(slack_api: FakeSlackApi):
    """Bulk refreshes built when sent still wait behind a technician's own click: with the budget spent, the
    next token goes to the click, and every deferred card is then built and sent once."""
    now = [1000.0]

    async def poll(_seconds: float) -> None:
        await asyncio.sleep(0.01)

    out = SlackOutbound(updates_per_minute=60.0, update_burst=2, update_interval=0.0, clock=lambda: now[0],
                        sleep=poll)
    client = make_client(slack_api.api_url, "xoxb-test-token")
    builds: list[str] = []

    def card(name: str) -> Any:
        async def render() -> tuple[str, list[dict[str, Any]]]:
            builds.append(name)
            return name, blocks(name)
        return render

    for i in range(6):
        out.update(client, f"C{i}", f"{i}.1", render=card(f"bulk {i}"))
    await wait_for(slack_api, 2)
    await asyncio.sleep(0.1)
    assert len(slack_api.of("chat.update")) == 2  # the burst is spent
    out.update(client, "C9", "9.1", text="clicked", blocks=blocks("clicked"), urgent=True)
    now[0] += 1.0  # one token
    await wait_for(slack_api, 3)
    await asyncio.sleep(0.1)
    assert sent(slack_api)[2] == "clicked" and len(slack_api.of("chat.update")) == 3
    for _ in range(200):  # the budget refills, a token per second of its clock
        if out.idle:
            break
        now[0] += 1.0
        await asyncio.sleep(0.02)
    await out.drain()
    assert sorted(sent(slack_api)) == sorted(["clicked"] + [f"bulk {i}" for i in range(6)])
    assert sorted(builds) == sorted(f"bulk {i}" for i in range(6))  # one build per card


async def test_bulk_refreshes_go_watched_card_first_then_newest_change_and_none_starves(slack_api: FakeSlackApi):
    """More PSA changes than chat.update tokens: the card someone clicked goes first, then the card changed most
    recently; a refresh waiting `bulk_starve` seconds goes before fresher ones; each card shows its newest state."""
    now = [1000.0]

    async def poll(_seconds: float) -> None:
        await asyncio.sleep(0.01)

    out = SlackOutbound(updates_per_minute=60.0, update_burst=2, update_interval=0.0, bulk_starve=30.0,
                        clock=lambda: now[0], sleep=poll)
    client = make_client(slack_api.api_url, "xoxb-test-token")
    for i in range(2):  # the burst is spent
        out.update(client, f"CW{i}", f"w{i}.1", text=f"warm {i}", blocks=blocks("warm"))
    await wait_for(slack_api, 2)
    out.watch("C2", "2.1")  # a technician clicked card 2
    for i in range(5):
        now[0] += 0.1
        out.update(client, f"C{i}", f"{i}.1", text=f"card {i}", blocks=blocks(f"card {i}"))
    now[0] += 0.1
    out.update(client, "C0", "0.1", text="card 0 newer", blocks=blocks("v2"))  # card 0 changed again: newest
    for n in range(3, 6):  # one token at a time
        now[0] += 1.0
        await wait_for(slack_api, n)
        await asyncio.sleep(0.1)
        assert len(slack_api.of("chat.update")) == n  # exactly one per token, never faster
    assert sent(slack_api)[2:] == ["card 2", "card 0 newer", "card 4"]
    now[0] += 40.0  # cards 1 and 3 have waited 40 s: they go before card 5, changed just now
    out.update(client, "C5", "5.1", text="card 5", blocks=blocks("card 5"))
    await wait_for(slack_api, 7)  # the refilled burst: two tokens
    assert sent(slack_api)[5:] == ["card 1", "card 3"]
    now[0] += 1.0
    await asyncio.wait_for(out.drain(), 30)
    assert sent(slack_api)[7:] == ["card 5"]
    assert out.queued == 0 and out.dropped_updates == 0


async def test_a_click_on_a_card_marks_it_watched(slack):
    await slack.slash("/tickets", "mine")
    assert not slack.c.slack.poster.outbound.watched(CHANNEL, "1700000000.000900")
    await slack.interactive(slack.action_payload("page", '{"f":"","c":null}', message_ts="1700000000.000900"))
    assert slack.c.slack.poster.outbound.watched(CHANNEL, "1700000000.000900")
