"""A held write click's outcome reaches its card fast (bot/teams/redraws.py): in its conversation it goes before
every delivery redraw still waiting, and a waiting redraw of the same card joins it (one update carries both).
When Teams will not open a personal chat for a refusal where the customer reads, the clicker is @mentioned in a
technicians' dispatch channel. Signed activities through `/api/messages`, the real SDK's Bot Connector client,
the loopback connector; the channel's pacer is filled first so that redraws wait (as in a burst) and their order
shows."""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from typing import Any

from tests.bot.teams.conftest import CHANNEL, TECH, text_of
from tests.bot.teams.test_threads import make_admin, open_thread
from tests.bot.teams.test_write_hold import (
    BAD_TIME,
    TIME,
    _customer_channel_card,
    click,
    hold_everything,
    time_ops,
    updates_of,
)

DISPATCH = "19:dispatch@thread.tacv2"


def pacer_full(h: Any, conversation: str = CHANNEL, wait_s: float = 4.0) -> None:
    """The channel's next operation waits about `wait_s` (its 2 s window holds 8: bot/teams/poster.py), the ones
    after it not (a loaded machine still gets what the test asks done within that time)."""
    h.c.teams.poster.pacer._sent[conversation] = deque([time.monotonic() + wait_s - 2.0] * 8)


async def three_cards(h: Any) -> tuple[dict[int, str], dict[int, int]]:
    cards, ids = {}, {}
    for number in (5002, 5003, 5001):
        thread, tid = await open_thread(h, number)
        cards[number], ids[number] = thread.split(";messageid=")[1], tid
    return cards, ids


def card_updates(h: Any, cards: dict[int, str]) -> list[int]:
    by_id = {aid: n for n, aid in cards.items()}
    return [by_id[c.activity_id] for c in h.fake.calls if c.op == "update" and c.activity_id in by_id]


async def test_a_held_outcome_goes_first_and_joins_its_cards_waiting_delivery_redraw(teams):
    cards, ids = await three_cards(teams)
    hold_everything(teams)
    teams.fake.clear()
    pacer_full(teams)
    notifier = teams.c.teams.notifier
    for number in (5002, 5003, 5001):  # three deliveries: a redraw of each card waits for the channel's pacer
        await notifier.refresh_cards(teams.ws, ids[number])
    resp = await teams.send(click(teams, cards[5001], TIME), settle=False)
    assert "Saving your time entry on #5001" in resp.text
    await teams.settle()
    # the click's card went first, and its waiting delivery redraw was the same update: one update of that card
    assert card_updates(teams, cards) == [5001, 5002, 5003]
    (update,) = updates_of(teams, cards[5001])
    assert "1 write(s) queued for the PSA." in json.dumps(update) and "Saving" not in json.dumps(update)
    assert "#5001 VPN down" in text_of(update)
    assert notifier.redraws.merged == 1
    assert len(await time_ops(teams)) == 1


async def test_redraws_of_one_card_asked_while_it_waits_are_one_update_built_when_sent(teams):
    cards, ids = await three_cards(teams)
    teams.fake.clear()
    pacer_full(teams)
    notifier = teams.c.teams.notifier
    for _ in range(5):  # five deliveries of the same ticket while the channel's pacer is full
        await notifier.refresh_cards(teams.ws, ids[5003])
    await notifier.refresh_cards(teams.ws, ids[5002])
    await teams.settle()
    assert card_updates(teams, cards) == [5003, 5002]  # one update of each card, in the order first asked
    assert notifier.redraws.merged == 4


async def test_other_conversations_are_not_held_by_a_paced_one(teams):
    cards, ids = await three_cards(teams)
    await teams.say("ticket 5002", conversation="19:other@thread.tacv2")
    other = next(reversed(teams.fake.conversations["19:other@thread.tacv2"]))
    teams.fake.clear()
    pacer_full(teams)
    start = time.monotonic()
    await teams.c.teams.notifier.refresh_cards(teams.ws, ids[5002])  # its card in each channel
    while not any(c.op == "update" and c.activity_id == other for c in teams.fake.calls):
        assert time.monotonic() - start < 3.0, "the other channel's card waited for this channel's pacer"
        await asyncio.sleep(0.01)
    assert updates_of(teams, cards[5002]) == []  # still paced here
    await teams.settle()
    assert len(updates_of(teams, cards[5002])) == 1


async def test_a_refusal_teams_will_not_open_a_chat_for_is_told_in_dispatch_with_a_mention(teams):
    await make_admin(teams)
    await teams.say("bind dispatch", conversation=DISPATCH)
    card_id = await _customer_channel_card(teams)
    hold_everything(teams)
    teams.fake.clear()
    teams.fake.fail("conversation", status=403, retry_after=None)  # no 1:1 chat for Bob
    await teams.send(click(teams, card_id, BAD_TIME))
    told = [c for c in teams.fake.of("create") if "was not saved" in str(c.body)]
    assert [c.conversation_id for c in told] == [DISPATCH]  # never the customer's channel
    text = told[0].body["text"]
    assert text.startswith("<at>aad-bob</at> Your time entry on #5001 was not saved: 'banana' is not a duration.")
    assert "What you wrote:" in text and "Reseated the RAM and ran memtest" in text  # nothing lost
    (mention,) = [e for e in told[0].body["entities"] if e["type"] == "mention"]
    assert mention["mentioned"]["id"] == f"29:{TECH}"
    (update,) = updates_of(teams, card_id)  # the customer's card: the ticket again, no error on it
    assert "banana" not in str(update) and "not saved" not in str(update) and "Saving" not in str(update)
    assert await time_ops(teams) == []
