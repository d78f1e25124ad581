"""Signed Slack requests with odd values (an old card, a hand-made payload, a new Slack client): Slack always
gets its 200, and the person is told something (never silence, never a traceback)."""

from __future__ import annotations

import json

import pytest

from tests.bot.slack.conftest import CHANNEL

HUGE = "99999999999999999999999"
VALUES = [
    ("open", HUGE), ("open", f"id:{HUGE}"), ("open", ""), ("open", "50\x0001"), ("open", "[1, 2]"),
    ("reply", HUGE), ("reply", "{}"), ("status", "id:-1"), ("assign", HUGE), ("time", "x" * 3000),
    ("ai_draft", HUGE), ("ai_draft_approve", "abc"), ("ai_draft_approve", HUGE), ("ai_draft_edit", "[]"),
    ("ai_accept_category", "not json"), ("ai_accept_category", '{"t": "x", "c": 5}'), ("ai_undo_category", "[]"),
    ("ctx_reset", '{"t": "x"}'), ("ctx_reset", "[]"), ("ctx_sync", "null"), ("context", HUGE),
    ("page", "not-a-cursor"), ("page", '{"c": 5}'), ("no_such_action", "x"),
]


def _told(h) -> str:
    """Everything the person was shown after the click: response_url posts, ephemerals, messages, modals."""
    out = [json.dumps(w) for w in h.fake.webhooks]
    out += [json.dumps(c.args) for c in h.fake.calls if c.method in (
        "chat.postEphemeral", "chat.postMessage", "views.open", "views.push", "views.update", "views.publish")]
    return "\n".join(out)


@pytest.mark.parametrize(("action", "value"), VALUES)
async def test_an_odd_button_value_is_answered_and_never_fails(slack, action, value):
    slack.fake.clear()
    resp = await slack.interactive(slack.action_payload(action, value, message_ts="1700000000.000100"))
    assert resp.status_code == 200
    told = _told(slack)
    assert told, f"{action}={value!r}: the person was told nothing"
    assert "Traceback" not in told and "Exception" not in told


@pytest.mark.parametrize("text", [HUGE, f"id:{HUGE}", "#" + HUGE, "cw-" + HUGE, "\x00", "new " + "x" * 5000])
async def test_odd_ticket_refs_in_the_slash_command(slack, text):
    slack.fake.clear()
    resp = await slack.slash("/ticket", text, channel=CHANNEL)
    assert resp.status_code == 200
    told = _told(slack) + resp.text
    assert told.strip() and "Traceback" not in told


async def test_a_button_this_version_does_not_know_says_what_to_do(slack):
    """A card drawn by an older (or newer) Deskbridge carries a button this one does not know."""
    slack.fake.clear()
    await slack.interactive(slack.action_payload("escalate_to_vendor", "5001", message_ts="1700000000.000100"))
    told = _told(slack)
    assert "escalate_to_vendor" in told and "/ticket 5001" in told  # the way to get current buttons
