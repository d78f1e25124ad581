"""The public endpoints that are not the REST API (PSA webhooks, alert intake) on the real app: odd path values
and bodies are refused with the endpoint's own error and a next step, never a 500."""

from __future__ import annotations

import pytest

from tests.bot.api.conftest import Api

ODD_IDS = ["99999999999999999999999", "9223372036854775808", "2147483648", "0", "-1", "abc", "1e3", "%C2%B2", "٣"]


@pytest.mark.parametrize("conn", ODD_IDS)
async def test_a_psa_webhook_to_an_odd_connection_id_is_a_404_with_a_hint(api: Api, conn: str):
    r = await api.client.post(f"/webhooks/{conn}/cw", content=b"{}", headers={"content-type": "application/json"})
    assert r.status_code == 404, r.text
    body = r.json()
    assert body["status"] == "error" and "not found" in body["error"] and body["hint"]


async def test_a_body_too_large_for_the_api_says_a_way_the_api_offers(api: Api):
    """The REST API has no attachment endpoint: the 413 says how long the text may be instead."""
    big = {"subject": "Big", "description": "x" * 1_100_000}
    for send in (lambda: api.post("/tickets", big),
                 lambda: api.client.post("/api/msp-portal/tickets", content=b"{" + b" " * 1_100_000 + b"}",
                                         headers={**api.auth(), "content-type": "application/json"})):
        r = await send()
        assert r.status_code == 413, r.text
        hint = r.json()["hint"]
        assert "attachment" not in hint and "100,000 characters" in hint, hint


@pytest.mark.parametrize("ref", ["abc", "id:abc", "12-", "%00", "1.5"])
async def test_a_path_that_names_no_ticket_says_how_tickets_are_named(api: Api, ref: str):
    r = await api.get(f"/tickets/{ref}")
    assert r.status_code == 422, r.text
    body = r.json()
    assert "pattern" not in body["detail"] and "does not name a ticket" in body["detail"]
    assert "1042" in body["hint"] and "id:17" in body["hint"] and "cw-1042" in body["hint"]


@pytest.mark.parametrize(("content", "ctype"), [(b"{", "application/json"), (b"[]", "application/json"),
                                                (b"subject=x", "application/x-www-form-urlencoded")])
async def test_a_body_that_is_not_a_json_object_says_to_send_one(api: Api, content: bytes, ctype: str):
    r = await api.client.post("/api/msp-portal/tickets", content=content,
                              headers={**api.auth(), "content-type": ctype})
    assert r.status_code in (400, 422), r.text
    assert "JSON object" in r.json()["hint"], r.json()


ODD_ALERT_BODIES = [b"[]", b"null", b"5", b'"x"', b"[{}]", b'{"payload": []}', b'{"payload": {"summary": 5}}',
                    b'{"event_action": ["trigger"]}', b'{"activityTime": "soon", "deviceId": {}}',
                    b'{"statusCode": null, "seriesUid": []}', b'{"alertUid": 5, "timestamp": "x"}',
                    b'{"dedup_key": {"a": 1}, "event_action": "trigger", "payload": {"summary": "s", "source": [],'
                    b' "severity": "critical", "timestamp": "not a time"}}',
                    b"{\"payload\": {\"summary\": \"\\u0000\\ud800\", \"severity\": \"critical\"}}",
                    b"[" * 5000 + b"]" * 5000, b"\xff\xfe"]


@pytest.mark.parametrize("kind", ["events_v2", "ninjaone", "datto"])
async def test_odd_alert_bodies_are_refused_or_triaged_never_a_500(api: Api, kind: str):
    await api.container.directory.add_customer(api.ws, identifier="ACME", name="Acme Corp")
    info, secret = await api.container.alert_sources.add(api.ws, name=f"src-{kind}", kind=kind)
    for raw in ODD_ALERT_BODIES:
        r = await api.client.post(info.path, content=raw, headers={"X-Deskbridge-Secret": secret,
                                                                   "content-type": "application/json"})
        assert r.status_code < 500, (kind, raw[:60], r.status_code, r.text[:200])
        if r.status_code >= 400:
            assert r.json().get("hint"), (kind, raw[:60], r.text[:200])


async def test_deeply_nested_json_to_a_psa_webhook_is_a_400(api: Api):
    from tests.factories import psa_backed
    setup = await psa_backed(api.container.db, api.ws)
    r = await api.client.post(f"/webhooks/{setup.connection_id}/x", content=b"[" * 5000 + b"]" * 5000,
                              headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["hint"], (r.status_code, r.text[:200])
