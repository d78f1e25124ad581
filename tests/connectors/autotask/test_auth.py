"""Credentials, headers, zone discovery and 401 handling of the Autotask client, against the fake over httpx."""

from __future__ import annotations

import asyncio
import logging

import pytest

from connectors.autotask.auth import (
    AtCredentials,
    Zone,
    ZoneDirectory,
    api_headers,
    credentials_from,
    write_headers,
    zone_from_answer,
)
from connectors.autotask.client import AtClient
from connectors.errors import PsaAuthError, PsaValidationError
from tests.connectors.autotask.conftest import api_requests
from tests.fakes.autotask import FakeAutotask


def test_credentials_name_what_is_missing() -> None:
    with pytest.raises(PsaValidationError) as caught:
        credentials_from({"username": "api@msp.example"}, {"secret": " "})
    assert caught.value.fields == {"integration_code": "required", "secret": "required"}
    with pytest.raises(PsaValidationError) as bad:
        credentials_from({"username": "api-user"}, {"secret": "s", "integration_code": "c"})
    assert "username" in bad.value.fields
    with pytest.raises(PsaValidationError) as imp:
        credentials_from({"username": "a@b.example", "impersonation_resource_id": "bob"},
                         {"secret": "s", "integration_code": "c"})
    assert "impersonation_resource_id" in imp.value.fields


def test_headers_and_secret_never_in_repr(creds: AtCredentials, fake: FakeAutotask) -> None:
    headers = api_headers(creds)
    assert headers["ApiIntegrationCode"] == fake.integration_code and headers["UserName"] == fake.username
    assert headers["Secret"] == fake.secret and headers["Content-Type"] == "application/json"
    assert write_headers(creds) == {} and write_headers(creds, "29682886") == {"ImpersonationResourceId": "29682886"}
    assert fake.secret not in repr(creds) and fake.integration_code not in repr(creds)
    assert fake.secret not in repr(AtClient(creds))


def test_zone_answer_parsing() -> None:
    zone = zone_from_answer({"zoneName": "Z", "url": "https://webservices5.autotask.net/ATServicesRest", "ci": 7})
    assert zone == Zone(url="https://webservices5.autotask.net/ATServicesRest/", name="Z", ci=7)
    assert zone.api_base == "https://webservices5.autotask.net/ATServicesRest/v1.0/"
    assert zone_from_answer({"url": ""}) is None and zone_from_answer(None) is None
    assert zone_from_answer({"url": "ftp://x/"}) is None


async def test_zone_is_discovered_once_without_credentials(fake: FakeAutotask, client: AtClient) -> None:
    for _ in range(3):
        await client.get_item("Companies/0")
    lookups = [r for r in fake.requests if r.key == "GET /zoneInformation"]
    assert len(lookups) == 1 and lookups[0].query == {"user": fake.username} and lookups[0].zone is None
    assert not {"secret", "username", "apiintegrationcode"} & set(lookups[0].headers)
    api = [r for r in fake.requests if r.key != "GET /zoneInformation"]
    assert [r.zone for r in api] == [2, 2, 2] and all(r.headers["secret"] == "***" for r in api)
    assert api[0].path == "/ATServicesRest/v1.0/Companies/0"


async def test_zone_cache_expires_after_its_ttl(fake: FakeAutotask, creds: AtCredentials) -> None:
    now = [0.0]
    zones = ZoneDirectory(creds.username, transport=fake.transport(), ttl=100.0, clock=lambda: now[0])
    first = await zones.zone()
    now[0] = 99.0
    assert await zones.zone() is first and zones.lookups == 1
    now[0] = 101.0
    await zones.zone()
    assert zones.lookups == 2
    await zones.aclose()


async def test_moved_zone_is_rediscovered_once_and_the_request_resent(fake: FakeAutotask,
                                                                        creds: AtCredentials) -> None:
    changes: list[tuple[str | None, str]] = []
    client = AtClient(creds, transport=fake.transport(),
                      on_zone_change=lambda old, new: changes.append((old.url if old else None, new.url)))
    await client.get_item("Companies/0")
    fake.move_zone(5)
    fake.reset_counts()
    tid = await client.create("Tickets", {"companyID": 175, "title": "After the move", "status": 1, "priority": 2})
    assert [(r.key, r.zone) for r in fake.requests] == [
        ("POST /Tickets", 2), ("GET /zoneInformation", None), ("POST /Tickets", 5)]
    assert len([t for t in fake.tables["Tickets"].values() if t["title"] == "After the move"]) == 1
    assert tid in fake.tables["Tickets"]
    assert changes == [(None, "https://webservices2.autotask.net/ATServicesRest/"),
                       ("https://webservices2.autotask.net/ATServicesRest/",
                        "https://webservices5.autotask.net/ATServicesRest/")]
    await client.aclose()


async def test_concurrent_401s_after_a_move_look_the_zone_up_once(fake: FakeAutotask, client: AtClient) -> None:
    await client.get_item("Companies/0")
    fake.move_zone(7)
    fake.slow(0.02, match="GET /Companies")
    results = await asyncio.gather(*(client.get_item(f"Companies/{cid}") for cid in (175, 176, 177)))
    assert [r["id"] for r in results] == [175, 176, 177]
    assert fake.count("GET /zoneInformation") == 2  # the first lookup and one rediscovery


async def test_persistent_401_is_an_auth_error_and_never_retried(fake: FakeAutotask) -> None:
    creds = credentials_from(fake.settings(), {**fake.credentials(), "secret": "wrong-secret"})
    client = AtClient(creds, transport=fake.transport())
    with pytest.raises(PsaAuthError) as caught:
        await client.query_all("Tickets")
    err = caught.value
    assert err.status == 401 and not err.retryable and "credentials" in err.message
    assert "wrong-secret" not in str(err) and fake.integration_code not in str(err)
    assert api_requests(fake) == ["POST /Tickets/query"] and fake.count("GET /zoneInformation") == 2
    with pytest.raises(PsaAuthError):
        await client.get_item("Tickets/1")
    assert api_requests(fake) == ["POST /Tickets/query", "GET /Tickets/{id}"]
    await client.aclose()


async def test_revoked_then_restored_access_works_again(fake: FakeAutotask, client: AtClient) -> None:
    fake.revoke_auth()
    with pytest.raises(PsaAuthError):
        await client.get_item("Companies/0")
    fake.restore_auth()
    assert (await client.get_item("Companies/0"))["companyName"] == "Deskbridge Test MSP"


async def test_unknown_user_fails_at_the_zone_lookup(fake: FakeAutotask) -> None:
    creds = credentials_from({"username": "nobody@msp.example"}, fake.credentials())
    client = AtClient(creds, transport=fake.transport())
    with pytest.raises(PsaAuthError) as caught:
        await client.get_item("Companies/0")
    assert caught.value.code == "UnknownApiUser" and "nobody@msp.example" in caught.value.message
    assert caught.value.status == 500 and api_requests(fake) == []
    await client.aclose()


async def test_wrong_integration_code_answers_500_and_is_an_auth_error(fake: FakeAutotask) -> None:
    creds = credentials_from(fake.settings(), {**fake.credentials(), "integration_code": "NOT-OURS"})
    client = AtClient(creds, transport=fake.transport())
    with pytest.raises(PsaAuthError) as caught:
        await client.get_item("Companies/0")
    assert caught.value.status == 500 and not caught.value.retryable
    await client.aclose()


async def test_fixed_zone_url_skips_discovery_and_rediscovery(fake: FakeAutotask, creds: AtCredentials) -> None:
    client = AtClient(creds, transport=fake.transport(), zone_url="https://webservices2.autotask.net/atservicesrest")
    assert (await client.get_item("Companies/175"))["companyName"] == "Acme Corp"
    fake.move_zone(3)
    with pytest.raises(PsaAuthError):
        await client.get_item("Companies/175")
    assert fake.count("GET /zoneInformation") == 0
    await client.aclose()


async def test_impersonation_header_is_sent_on_writes_only(fake: FakeAutotask) -> None:
    bob = fake.tech_id
    creds = credentials_from(fake.settings(impersonation_resource_id=str(bob)), fake.credentials())
    client = AtClient(creds, transport=fake.transport())
    tid = await client.create("Tickets", {"companyID": 175, "title": "As Bob", "status": 1, "priority": 2})
    await client.get_item(f"Tickets/{tid}")
    sent = {r.key: r.headers for r in fake.requests}
    assert sent["POST /Tickets"]["impersonationresourceid"] == str(bob)
    assert "impersonationresourceid" not in sent["GET /Tickets/{id}"]
    ticket = fake.tables["Tickets"][tid]
    assert ticket["creatorResourceID"] == bob and ticket["impersonatorCreatorResourceID"] == fake.api_resource_id
    await client.create(f"Tickets/{tid}/Notes", {"description": "x", "noteType": 2, "publish": 2},
                        impersonate=str(fake.api_resource_id))
    note = next(n for n in fake.tables["TicketNotes"].values() if n["ticketID"] == tid)
    assert note["creatorResourceID"] == fake.api_resource_id and note["impersonatorCreatorResourceID"] is None
    await client.aclose()


async def test_no_secret_in_logs(fake: FakeAutotask, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    creds = credentials_from(fake.settings(), {**fake.credentials(), "secret": "leaky-secret-value"})
    client = AtClient(creds, transport=fake.transport())
    with pytest.raises(PsaAuthError):
        await client.get_item("Companies/0")
    assert caplog.records and "leaky-secret-value" not in caplog.text and fake.integration_code not in caplog.text
    await client.aclose()
