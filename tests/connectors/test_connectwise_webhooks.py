"""ConnectWise callbacks: signature verification (valid, spoiled, foreign key_url), hint mode, housekeeping."""

from __future__ import annotations

import json

import pytest

from connectors.connectwise.auth import api_host_for, tenant_from_settings
from connectors.connectwise.connector import ConnectWiseConnector
from connectors.errors import WebhookRejected
from tests.fakes.connectwise import FakeConnectWise


@pytest.fixture
def fake() -> FakeConnectWise:
    return FakeConnectWise()


async def test_valid_signature_is_verified(fake: FakeConnectWise) -> None:
    cw = ConnectWiseConnector(fake.config(), transport=fake.transport())
    tid = fake.add_ticket("x")["id"]
    headers, body = fake.signed_callback("ticket", "updated", tid)
    event = await cw.parse_webhook(headers, body)
    assert event.verified and event.ticket_external_id == str(tid) and event.action == "updated"
    assert event.event_id == json.loads(body)["MessageId"]
    await cw.parse_webhook(*fake.signed_callback("ticket", "added", tid))
    assert fake.count("GET /system/callbackkeys/{id}") == 1  # key cached per key_url
    await cw.aclose()


async def test_spoiled_signature_and_missing_header_are_rejected(fake: FakeConnectWise) -> None:
    cw = ConnectWiseConnector(fake.config(), transport=fake.transport())
    headers, body = fake.signed_callback("ticket", "updated", 5)
    with pytest.raises(WebhookRejected):
        await cw.parse_webhook(headers, body.replace(b'"updated"', b'"deleted"'))
    with pytest.raises(WebhookRejected):
        await cw.parse_webhook({"content-type": "application/json"}, body)
    with pytest.raises(WebhookRejected):
        await cw.parse_webhook(headers, b"not json")
    await cw.aclose()


async def test_foreign_key_url_host_is_never_fetched(fake: FakeConnectWise) -> None:
    cw = ConnectWiseConnector(fake.config(), transport=fake.transport())
    for url in ("https://evil.example/v2024_1/apis/3.0/system/callbackkeys/1",
                "http://api-na.myconnectwise.net/v2024_1/apis/3.0/system/callbackkeys/1",
                "https://api-na.myconnectwise.net.evil.example/x"):
        headers, body = fake.signed_callback("ticket", "updated", 5, key_url=url)
        with pytest.raises(WebhookRejected, match="key_url"):
            await cw.parse_webhook(headers, body)
    assert fake.count("GET /system/callbackkeys/{id}") == 0
    assert not [r for r in fake.requests if "evil" in r.path]
    await cw.aclose()


async def test_other_company_rejected_and_hint_mode(fake: FakeConnectWise) -> None:
    cw = ConnectWiseConnector(fake.config(webhook_mode="hint"), transport=fake.transport())
    headers, body = fake.signed_callback("ticket", "deleted", 77)
    event = await cw.parse_webhook({}, body)  # no signature needed: a hint to re-fetch
    assert not event.verified and event.ticket_external_id == "77" and event.action == "deleted"
    assert fake.count("GET /system/callbackkeys/{id}") == 0
    other = json.loads(body)
    other["CompanyId"] = "someone_else"
    with pytest.raises(WebhookRejected):
        await cw.parse_webhook({}, json.dumps(other).encode())
    await cw.aclose()


async def test_callbacks_over_loopback(fake: FakeConnectWise) -> None:
    with fake.serve() as root:
        cw = ConnectWiseConnector(fake.config(root))
        event = await cw.parse_webhook(*fake.signed_callback("ticket", "updated", 3))
        assert event.verified
        await cw.aclose()


async def test_ensure_callbacks_housekeeping(fake: FakeConnectWise) -> None:
    cw = ConnectWiseConnector(fake.config(), transport=fake.transport())
    url = "https://bot.msp.example/webhooks/connectwise/1"
    fake.callbacks[1] = {"id": 1, "url": "https://bot.msp.example/old", "type": "ticket", "level": "owner",
                         "objectId": 1}
    fake.callbacks[2] = {"id": 2, "url": "https://someone-else.example/hook", "type": "ticket", "level": "owner",
                         "objectId": 1}
    first = await cw.ensure_callbacks(url)
    assert first["deleted"] == [1] and len(first["added"]) == 1 and 2 in fake.callbacks
    added = fake.callbacks[first["added"][0]]
    assert added["url"] == url and added["type"] == "ticket" and added["level"] == "owner"
    second = await cw.ensure_callbacks(url)
    assert second == {"added": [], "kept": first["added"], "deleted": []}
    assert await cw.remove_callbacks(url) == first["added"] and set(fake.callbacks) == {2}
    await cw.aclose()


def test_hosts_cloud_and_on_prem() -> None:
    assert api_host_for("eu.myconnectwise.net") == ("api-eu.myconnectwise.net", True)
    assert api_host_for("staging.connectwisedev.com") == ("api-staging.connectwisedev.com", True)
    assert api_host_for("cw.msp.example") == ("cw.msp.example", False)
    t = tenant_from_settings({"site": "api-au.myconnectwise.net", "company_id": "x", "client_id": "c"})
    assert t.site_root == "https://au.myconnectwise.net" and t.api_root == "https://api-au.myconnectwise.net"
    onprem = tenant_from_settings({"site": "cw.msp.example", "company_id": "x", "client_id": "c",
                                   "api_base_url": "https://cw.msp.example/v4_6_release/apis/3.0/"})
    assert onprem.codebase == "v4_6_release/" and not onprem.is_cloud
