"""The fake HaloPSA tenant itself behaves as documented (what the later connector and contract suite lean on),
plus the error-body parser on every shape Halo is known to send."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import httpx
import pytest

from connectors.errors import PsaAuthError, PsaNotFound, PsaValidationError
from connectors.halopsa import problems, queries
from connectors.halopsa.client import HaloClient
from tests.connectors.halopsa.conftest import T0, make_client
from tests.fakes.halopsa import FakeHalo
from tests.fakes.halopsa_http import HaloClock


@pytest.mark.parametrize(("body", "message", "code", "fields"), [
    (b'"You do not have access to this Action at the moment"',
     "You do not have access to this Action at the moment", None, {}),
    (b'{"error":"invalid_client","error_description":"Invalid client."}', "Invalid client.", "invalid_client", {}),
    (b'{"ClassName":"System.Exception","Message":"Team \'3\'\\r\\ndoes not exist."}', "Team '3' does not exist.",
     "System.Exception", {}),
    (b'{"title":"One or more validation errors occurred.","errors":{"[0].client_id":["Bad value."]}}',
     "One or more validation errors occurred. (client_id: Bad value.)", None, {"client_id": "Bad value."}),
    (b'{"Result":"Ticket locked"}', "Ticket locked", None, {}),
    (b'["first problem", "second"]', "first problem", None, {}),
    ("Rate Limit Reached – 300 Requests".encode(), "Rate Limit Reached – 300 Requests", None, {}),
    (b"<html><body>502</body></html>", None, None, {}), (b"", None, None, {}), (b'{"a":1,"b":2}', None, None, {}),
])
def test_error_bodies(body: bytes, message: str | None, code: str | None, fields: dict[str, str]) -> None:
    assert problems.parse(body) == problems.Problem(message, code, fields)


def test_long_messages_are_cut() -> None:
    parsed = problems.parse(b'"' + b"x" * 1000 + b'"')
    assert parsed.message is not None and len(parsed.message) == problems.MAX_MESSAGE


async def test_token_endpoint_rules() -> None:
    fake = FakeHalo(clock=HaloClock(T0))
    async with httpx.AsyncClient(transport=fake.transport(), base_url=fake.public_root) as http:
        form = {"grant_type": "client_credentials", "client_id": fake.client_id, "client_secret": fake.client_secret}
        bad_scope = await http.post("/auth/token?tenant=acme", data={**form, "scope": "root"})
        other_tenant = await http.post("/auth/token?tenant=globex", data=form)
        as_json = await http.post("/auth/token?tenant=acme", json=form)
        wrong_grant = await http.post("/auth/token?tenant=acme", data={**form, "grant_type": "password"})
        ok = await http.post("/AUTH/Token?tenant=acme", data=form)  # paths are case-insensitive
    assert [r.json()["error"] for r in (bad_scope, other_tenant, as_json, wrong_grant)] == [
        "invalid_scope", "invalid_client", "invalid_request", "unsupported_grant_type"]
    assert ok.status_code == 200 and ok.json()["token_type"] == "Bearer" and ok.json()["expires_in"] == 3600
    assert all(fake.client_secret not in r.body.decode() for r in fake.requests)  # redacted in the record


async def test_tokens_can_coexist_when_the_tenant_allows_it() -> None:
    fake = FakeHalo(single_token=False, clock=HaloClock(T0))
    a, b = make_client(fake), make_client(fake)
    await a.get_list("Team")
    await b.get_list("Team")
    await a.get_list("Team")
    assert [r.status for r in fake.requests if r.route == "/api/Team"] == [200, 200, 200]
    for c in (a, b):
        await c.aclose()


async def test_ticket_writes_validate_only_sendack_and_custom_fields(fake: FakeHalo, halo: HaloClient) -> None:
    before = len(fake.tickets)
    dry = await halo.post_one("Tickets", {"summary": "Dry run", "client_id": 12, "_validate_only": True})
    assert dry["id"] == 0 and len(fake.tickets) == before
    saved = await halo.post_one("Tickets", {"summary": "Ack me", "client_id": 12, "user_id": 501, "sendack": True,
                                            "customfields": [{"name": "CFSiteNotes", "value": "gate code 1234"},
                                                             {"id": 999, "value": "ignored"}]})
    assert [e["to"] for e in fake.emails] == ["pat@acme.example"]
    full = await halo.get_record("Tickets", saved["id"], queries.ticket())
    values = {f["name"]: f["value"] for f in full["customfields"]}
    assert values == {"CFDeskbridgeRef": None, "CFSiteNotes": "gate code 1234"}
    assert fake.automations[-1] == {"event": "ticket_created", "ticket_id": saved["id"], "fired": True}
    with pytest.raises(PsaNotFound):
        await halo.post_one("Tickets", {"id": 987654, "summary": "no such ticket"})
    await halo.delete("Tickets", saved["id"])
    assert saved["id"] not in [t["id"] for t in await halo.get_all("Tickets", "tickets")]
    deleted = await halo.get_all("Tickets", "tickets", {"deleted": "true"})
    assert saved["id"] in [t["id"] for t in deleted]


async def test_action_lookups_need_the_ticket(fake: FakeHalo, halo: HaloClient) -> None:
    t = fake.add_ticket("x", client_id=12)
    fake.add_note(t["id"], "line 1\nline 2", hidden=False)
    with pytest.raises(PsaNotFound):
        await halo.get_record("Actions", 2)  # no ticket_id: action ids mean nothing alone
    one = await halo.get_record("Actions", 2, queries.action(str(t["id"])))
    assert one["note_html"] == "line 1<br>line 2"
    plain = await halo.get_list("Actions", queries.actions(str(t["id"])), key="actions")
    assert "note_html" not in plain[0] and [a["id"] for a in plain] == [2]  # system action 1 excluded
    with pytest.raises(PsaValidationError):
        await halo.get("Attachment", {"action_id": 2})


async def test_timesheet_events_log_a_time_action(fake: FakeHalo, halo: HaloClient) -> None:
    t = fake.add_ticket("x", client_id=12)
    event = await halo.post_one("TimesheetEvent", {"ticket_id": t["id"], "agent_id": 3, "note": "On site",
                                                   "start_date": "2026-03-02T10:00:00Z",
                                                   "end_date": "2026-03-02T11:30:00Z", "lognewticket": False})
    action = fake.actions[t["id"]][event["action_number"]]
    assert action["timetaken"] == 1.5 and action["hiddenfromuser"] and action["who_agentid"] == 3
    assert [e["id"] for e in await halo.get_list("TimesheetEvent", {"agent_id": 3})] == [event["id"]]


async def test_agents_teams_and_me(halo: HaloClient) -> None:
    default = [a["id"] for a in await halo.get_list("Agent")]
    everyone = [a["id"] for a in await halo.get_list("Agent", {"includedisabled": "true", "includeunassigned": "true",
                                                               "includeapiagents": "true"})]
    assert default == [3, 4] and everyone == [1, 2, 3, 4, 5]
    me = await halo.get("Agent/me")
    assert me["id"] == 2 and me["isapiagent"]
    second_line = await halo.get_list("Agent", {"team_id": 2, "includedisabled": "true"})
    assert [a["name"] for a in second_line] == ["Ana Lead", "Old Timer"]


async def test_webhooks_have_guid_ids_and_notifications_attach_to_them(fake: FakeHalo, halo: HaloClient) -> None:
    hook = await halo.post_one("Webhook", {"name": "Deskbridge ticket hook", "url": "https://db.example/hook",
                                           "authentication_type": 3, "authentication_header": "Token"})
    assert len(hook["id"]) == 36 and hook["active"]
    note = await halo.post_one("Notification", {"webhook_id": hook["id"], "eventno": 61, "delivery_method": 6})
    assert note["eventno"] == 61
    with pytest.raises(PsaValidationError):
        await halo.post_one("Notification", {"webhook_id": "not-a-hook", "eventno": 61})
    await halo.post_one("Webhook", {"id": hook["id"], "basic_password": "hook-secret"})
    t = fake.add_ticket("x", client_id=12)  # new ticket: eventno 3, nobody subscribed
    fake.edit_ticket(t["id"], summary="changed")
    await halo.post_one("Tickets", {"id": t["id"], "summary": "quiet", "_dont_fire_automations": True})
    assert [d["event"] for d in fake.deliveries] == ["ticket_updated"]  # the quiet write sent nothing
    sent = fake.deliveries[0]
    expected = base64.b64encode(hmac.new(b"hook-secret", sent["body"], hashlib.sha256).digest()).decode()
    assert sent["headers"]["token"] == expected and json.loads(sent["body"])["ticket"]["summary"] == "changed"
    assert [h["name"] for h in await halo.get_list("Webhook")] == ["Deskbridge ticket hook"]
    await halo.delete("Webhook", hook["id"].upper())
    assert await halo.get_list("Webhook") == []


async def test_revoked_tokens_and_unknown_paths(fake: FakeHalo, halo: HaloClient) -> None:
    with pytest.raises(PsaNotFound):
        await halo.get("NoSuchThing")
    fake.fail_next(401, times=None, match="GET /api/Team")
    with pytest.raises(PsaAuthError):
        await halo.get_list("Team")
    fake.clear_faults()
    assert await halo.get_list("Team")
