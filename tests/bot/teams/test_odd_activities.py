"""Signed activities of odd shapes at /api/messages (what a buggy client, an old card or a new Teams version
sends): never a 5xx, never a traceback in what the user is shown. The real SDK app behind our front door."""

from __future__ import annotations

from typing import Any

import pytest

from bot.teams import cards
from tests.bot.teams.conftest import CHANNEL

VERB = cards.VERB


def _odd(h) -> list[tuple[str, dict[str, Any]]]:
    def card_action(data: Any, **value: Any) -> dict[str, Any]:
        return h.activity(kind="invoke", conversation=CHANNEL, name="adaptiveCard/action",
                          value={"action": {"type": "Action.Execute", "verb": VERB, "data": data},
                                 "trigger": "manual", **value})

    def search(value: Any) -> dict[str, Any]:
        return h.activity(kind="invoke", conversation=CHANNEL, name="application/search", value=value)

    return [
        ("action data is a list", card_action([1, 2])),
        ("action data is a string", card_action("open 5001")),
        ("action data None", card_action(None)),
        ("unknown action", card_action({"a": "no_such_action", "t": "5001"})),
        ("ticket ref huge", card_action({"a": "open", "t": "99999999999999999999999"})),
        ("ticket ref id huge", card_action({"a": "open", "t": "id:99999999999999999999999"})),
        ("ticket ref NUL", card_action({"a": "open", "t": "50\x0001"})),
        ("form fields odd types", card_action({"a": "submit", "form": "reply", "t": "5001", "text": ["x"],
                                              "visibility": {"x": 1}})),
        ("value not an object", h.activity(kind="invoke", conversation=CHANNEL, name="adaptiveCard/action",
                                           value="x")),
        ("no verb", h.activity(kind="invoke", conversation=CHANNEL, name="adaptiveCard/action",
                               value={"action": {"type": "Action.Execute"}})),
        ("unknown invoke", h.activity(kind="invoke", conversation=CHANNEL, name="no/such", value={})),
        ("search with no text", search({"dataset": "customers"})),
        ("search huge skip", search({"queryText": "a", "queryOptions": {"skip": 10**30, "top": -5},
                                     "dataset": "customers"})),
        ("search odd types", search({"queryText": 5, "queryOptions": "x", "dataset": ["customers"]})),
        ("search unknown dataset", search({"queryText": "a", "dataset": "passwords"})),
        ("message with huge ticket number", h.activity("ticket 99999999999999999999999")),
        ("message with NUL", h.activity("tickets \x00 customer:\x00")),
        ("message with only a quote", h.activity('tickets status:"')),
        ("message text not a string", {**h.activity("x"), "text": 5}),
        ("message with odd entities", {**h.activity("tickets"), "entities": [{"type": "mention"}, 5, None]}),
        ("message with an odd attachment", {**h.activity("tickets"), "attachments": [{"contentType": 5}]}),
        ("conversationUpdate odd members", h.activity(kind="conversationUpdate", membersAdded=[{"x": 1}, "y"])),
        ("messageReaction odd", h.activity(kind="messageReaction", reactionsAdded=[{"type": 5}])),
    ]


CASES = 23


@pytest.mark.parametrize("case", range(CASES))
async def test_odd_signed_activities_never_fail_on_the_server(teams, case):
    name, body = _odd(teams)[case]
    resp = await teams.send(body)
    assert resp.status_code < 500, (name, resp.status_code, resp.text[:300])
    for post in teams.posted():
        shown = str(post)
        assert "Traceback" not in shown and "Exception" not in shown, name


def test_every_case_is_run():
    class H:
        def activity(self, text: str = "", **kw: Any) -> dict[str, Any]:
            return {}
    assert len(_odd(H())) == CASES
