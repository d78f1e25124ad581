"""Card updates in two lanes under a spent chat.update budget, against the fake Slack Web API (real
AsyncWebClient, real time, a small budget so the test is quick): the card a technician just acted on goes
before bulk refreshes of other cards, which wait (collapsing per card) and are never lost."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from bot.slack.outbound import SlackOutbound
from bot.slack.poster import make_client
from tests.fakes.slack_api import FakeSlackApi

RATE_PER_S, BURST = 10.0, 8  # reserve for urgent updates: 8 // 4 = 2 tokens


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlackApi]:
    fake = await FakeSlackApi().start()
    try:
        yield fake
    finally:
        await fake.stop()


def blocks(text: str) -> list[dict[str, Any]]:
    return [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]


def sent(fake: FakeSlackApi) -> list[str]:
    return [c.args["text"] for c in fake.of("chat.update")]


async def wait_for(fake: FakeSlackApi, n: int, within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while len(fake.of("chat.update")) < n:
        assert time.monotonic() < deadline, f"only {len(fake.of('chat.update'))} of {n} updates arrived"
        await asyncio.sleep(0.01)


async def test_the_card_someone_acted_on_goes_before_bulk_refreshes(slack: FakeSlackApi):
    out = SlackOutbound(updates_per_minute=RATE_PER_S * 60, update_burst=BURST, update_interval=0.2)
    client = make_client(slack.api_url, "xoxb-test-token")
    for i in range(12):  # a PSA-side storm: 12 cards in 12 channels refreshed at once
        out.update(client, f"C{i}", f"{i}.1", text=f"bulk {i}", blocks=blocks(f"bulk {i}"))
    await wait_for(slack, BURST - 2)
    await asyncio.sleep(0.05)
    assert len(slack.of("chat.update")) == BURST - 2  # bulk stops at the reserve: the budget is spent for it
    out.update(client, "C11", "11.1", text="bulk 11 newer", blocks=blocks("v2"))  # still waiting: collapses
    t0 = time.monotonic()
    # A technician clicks: their card in a channel with nothing queued, and a card whose bulk refresh waits.
    out.update(client, "C20", "20.1", text="clicked", blocks=blocks("clicked"), urgent=True)
    out.update(client, "C9", "9.1", text="bulk 9 in the PSA", blocks=blocks("in the PSA"), urgent=True)
    await wait_for(slack, BURST)
    assert time.monotonic() - t0 < 0.3  # from the reserve, at once (the queued bulk ones wait ~0.1 s each)
    assert sorted(sent(slack)[BURST - 2:]) == ["bulk 9 in the PSA", "clicked"]  # before any waiting bulk one
    await out.drain()
    texts = sent(slack)
    assert sorted(texts[BURST:]) == sorted(["bulk 6", "bulk 7", "bulk 8", "bulk 10", "bulk 11 newer"])
    assert "bulk 9" not in texts and "bulk 11" not in texts  # one update per card, with its newest content
    assert out.queued == 0 and out.dropped_updates == 0
    # Within the budget throughout: k updates span at least (k - burst) / rate seconds (SAFETY-free bucket).
    at = [c.at for c in slack.of("chat.update")]
    for i in range(len(at)):
        for j in range(i + BURST, len(at)):
            assert at[j] - at[i] >= (j - i + 1 - BURST) / RATE_PER_S - 0.05


async def test_an_urgent_update_waits_its_channels_pace_but_not_behind_its_bulk_updates(slack: FakeSlackApi):
    out = SlackOutbound(updates_per_minute=RATE_PER_S * 60, update_burst=BURST, update_interval=0.5)
    client = make_client(slack.api_url, "xoxb-test-token")
    for i in range(4):  # four bulk refreshes of cards in one channel: one each 0.5 s
        out.update(client, "C1", f"{i}.1", text=f"bulk {i}", blocks=blocks(f"bulk {i}"))
    await wait_for(slack, 1)
    out.update(client, "C1", "9.1", text="clicked", blocks=blocks("clicked"), urgent=True)
    await out.drain()
    assert sent(slack) == ["bulk 0", "clicked", "bulk 1", "bulk 2", "bulk 3"]
    gaps = [b.at - a.at for a, b in zip(slack.of("chat.update"), slack.of("chat.update")[1:], strict=False)]
    assert min(gaps) >= 0.5 - 0.02  # the channel's pace is kept for both lanes
