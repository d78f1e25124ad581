"""Slack modals submitted with what a person (or a hand-made payload past Slack's client checks) can send: nothing,
blanks, zero-width characters, far too much, Slack markup. The real bolt app with signed requests: the modal answers
with an error under the field that says what to do, nothing is written, and what is written is exactly the words
(no live @channel in anything the bot posts)."""

from __future__ import annotations

import json

import pytest

from tests.bot.slack.conftest import TEAM, TECH
from tests.bot.slack.test_slack_app import ops


def _submission(view: dict, values: dict) -> dict:
    return {"type": "view_submission", "team": {"id": TEAM}, "user": {"id": TECH, "team_id": TEAM},
            "view": {**view, "state": {"values": values}}}


@pytest.mark.parametrize("text", [None, "", "   \n\t ", "\u200b\u200d\ufeff", "\x00\x07", "x" * 30_001])
async def test_a_note_modal_with_nothing_or_too_much_says_so_under_the_field(slack, text):
    await slack.interactive(slack.action_payload("note", "5001", message_ts="1.1"))
    view = slack.last_view()
    resp = await slack.interactive(_submission(view, {"text": {"v": {"type": "plain_text_input", "value": text}}}))
    assert resp.status_code == 200
    body = resp.json()
    assert body.get("response_action") == "errors", body
    [(field, message)] = body["errors"].items()
    assert field == "text" and len(message) <= 150 and message.strip(), body  # Slack shows 150 characters
    if text and len(text) > 1000:
        assert "30,000" in message or "shorten" in message.lower(), message
    assert await ops(slack) == []


@pytest.mark.parametrize("minutes", [None, "", "0", "-5", "99999", "1e9", "30m" * 50])
async def test_a_time_modal_with_odd_minutes_writes_nothing_and_says_how(slack, minutes):
    await slack.interactive(slack.action_payload("time", "5001", message_ts="1.1"))
    view = slack.last_view()
    resp = await slack.interactive(_submission(view, {"minutes": {"v": {"type": "plain_text_input", "value": minutes}}}))
    body = resp.json()
    assert body.get("response_action") == "errors" and "minutes" in body["errors"], body
    assert "30m" in body["errors"]["minutes"] or "between" in body["errors"]["minutes"], body
    assert await ops(slack) == []


async def test_minutes_in_arabic_indic_digits_are_the_number_written(slack):
    """"٣٠" is 30 to whoever typed it: logged as 30 minutes, not refused and not misread."""
    await slack.interactive(slack.action_payload("time", "5001", message_ts="1.1"))
    view = slack.last_view()
    resp = await slack.interactive(_submission(view, {"minutes": {"v": {"type": "plain_text_input", "value": "٣٠"}}}))
    assert resp.status_code == 200 and resp.text == "", resp.text
    assert [o.payload["minutes"] for o in await ops(slack)] == [30]


async def test_slack_markup_in_a_note_is_written_as_typed_and_never_pings(slack):
    await slack.interactive(slack.action_payload("note", "5001", message_ts="1.1"))
    view = slack.last_view()
    text = "<!channel> <@U999> <https://evil.example|Reset here> *bold* & done"
    slack.fake.clear()
    resp = await slack.interactive(_submission(view, {"text": {"v": {"type": "plain_text_input", "value": text}}}))
    assert resp.status_code == 200 and resp.text == "", resp.text
    assert [o.payload["text"] for o in await ops(slack)] == [text]
    for call in slack.fake.calls:
        if call.method in ("chat.postMessage", "chat.postEphemeral", "chat.update"):
            sent = json.dumps(call.args)
            assert "<!channel>" not in sent and "<@U999>" not in sent and "<https://evil.example|" not in sent, sent
