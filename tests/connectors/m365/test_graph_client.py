"""GraphClient and M365Directory against the httpx-transport Graph fake: tokens, paging, 429, error classes."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest

from connectors.m365 import GraphClient, M365Directory, admin_consent_url
from connectors.tenant import (
    DirectoryAuthError,
    DirectoryNotFound,
    DirectoryThrottled,
    LicenceMissing,
    PermissionMissing,
)
from connectors.tokens import InMemoryTokenCache
from tests.fakes.graph import GRAPH, LOGIN, FakeGraph, seed_acme


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def graph() -> FakeGraph:
    g = FakeGraph()
    seed_acme(g)
    return g


def make(graph: FakeGraph, tenant: str = "acme-tenant-0001", **kw) -> GraphClient:
    kw.setdefault("client_secret", graph.client_secret)
    return GraphClient(tenant_id=tenant, client_id=graph.client_id, graph_url=GRAPH, login_url=LOGIN,
                       transport=graph.transport, **kw)


async def test_token_is_minted_once_and_reused_until_expiry(graph: FakeGraph) -> None:
    clock = Clock()
    client = make(graph, clock=clock, token_cache=InMemoryTokenCache(clock))
    d = M365Directory(client)
    await d.user("jane@acme.example")
    await d.user("bob@acme.example")
    assert graph.token_requests == 1
    clock.now += 3599 - 121  # still inside the renewal margin
    await d.user("jane@acme.example")
    assert graph.token_requests == 1
    clock.now += 2  # past expires_in - skew: a new token
    await d.user("jane@acme.example")
    assert graph.token_requests == 2


async def test_token_cache_is_shared_between_clients_of_one_tenant(graph: FakeGraph) -> None:
    cache = InMemoryTokenCache()
    await M365Directory(make(graph, token_cache=cache)).user("jane@acme.example")
    await M365Directory(make(graph, token_cache=cache)).user("jane@acme.example")
    assert graph.token_requests == 1


async def test_a_revoked_token_is_replaced_once(graph: FakeGraph) -> None:
    d = M365Directory(make(graph))
    await d.user("jane@acme.example")
    graph.expire_tokens()
    assert (await d.user("jane@acme.example")).id == "u-jane"
    assert graph.token_requests == 2


async def test_wrong_secret_and_unconsented_tenant_are_auth_errors_without_the_secret(graph: FakeGraph,
                                                                                    caplog) -> None:
    caplog.set_level(logging.DEBUG)
    with pytest.raises(DirectoryAuthError) as bad:
        await M365Directory(make(graph, client_secret="nope-secret-xyz")).user("jane@acme.example")
    assert "invalid_client" in bad.value.message and "nope-secret-xyz" not in bad.value.message
    graph.tenant("other-tenant", consented=False)
    with pytest.raises(DirectoryAuthError, match="consent"):
        await M365Directory(make(graph, tenant="other-tenant")).user("x@other.example")
    assert "nope-secret-xyz" not in caplog.text and graph.client_secret not in caplog.text
    assert graph.client_secret not in repr(make(graph))


async def test_user_is_mapped(graph: FakeGraph) -> None:
    d = M365Directory(make(graph))
    jane = await d.user("Jane@acme.example")
    assert (jane.id, jane.display_name, jane.upn, jane.enabled, jane.on_prem_synced) == (
        "u-jane", "Jane Doe", "jane@acme.example", True, False)
    bob = await d.user("u-bob")
    assert (bob.enabled, bob.on_prem_synced) == (False, True)
    assert await d.last_sign_in("u-jane") == datetime(2026, 12, 6, 8, 15, tzinfo=UTC)
    assert await d.last_sign_in("u-bob") is None
    with pytest.raises(DirectoryNotFound):
        await d.user("nobody@acme.example")
    carol = await d.user("Carol@acme.example")  # not her UPN: found by mail
    assert (carol.id, carol.upn) == ("u-carol", "carol.poe@acmecorp.onmicrosoft.com")
    assert graph.calls[-2:] == [("GET", "/v1.0/users/Carol@acme.example"), ("GET", "/v1.0/users")]
    with pytest.raises(DirectoryNotFound):
        await d.user("o'brien@acme.example")  # quoted safely, and still not found


async def test_paging_follows_next_link_to_the_end(graph: FakeGraph) -> None:
    d = M365Directory(make(graph))
    devices = await d.devices("u-jane")
    assert [x.name for x in devices] == ["ACME-LT-0", "ACME-LT-1", "ACME-LT-2"]
    assert sum(1 for _, p in graph.calls if p.endswith("/managedDevices")) == 2  # page size 2: two pages
    assert devices[2].compliance == "noncompliant" and devices[2].encrypted is False
    assert devices[0].last_sync == datetime(2026, 12, 1, 10, tzinfo=UTC)
    lic = await d.licences("u-jane")
    assert [x.name for x in lic] == ["Microsoft 365 Business Premium", "Power BI (free)", "WEIRD_NEW_SKU"]


async def test_429_waits_retry_after_then_succeeds(graph: FakeGraph) -> None:
    waits: list[float] = []

    async def sleep(s: float) -> None:
        waits.append(s)

    graph.throttle(2, retry_after="7")
    d = M365Directory(make(graph, sleep=sleep))
    assert (await d.user("jane@acme.example")).id == "u-jane"
    assert waits == [7.0, 7.0]


async def test_429_beyond_the_retries_is_throttled(graph: FakeGraph) -> None:
    async def sleep(s: float) -> None:
        pass

    graph.throttle(5, retry_after="11")
    with pytest.raises(DirectoryThrottled) as exc:
        await M365Directory(make(graph, sleep=sleep, max_retries=2)).user("jane@acme.example")
    assert exc.value.retry_after == 11.0
    assert len([c for c in graph.calls if c[1].startswith("/v1.0/users/")]) == 3


async def test_missing_permission_is_permission_missing(graph: FakeGraph) -> None:
    graph.tenants["acme-tenant-0001"].permissions.discard("DeviceManagementManagedDevices.Read.All")
    with pytest.raises(PermissionMissing) as exc:
        await M365Directory(make(graph)).devices("u-jane")
    assert exc.value.status == 403 and exc.value.code == "Authorization_RequestDenied"


async def test_tenant_without_p1_is_licence_missing_for_sign_ins(graph: FakeGraph) -> None:
    graph.tenants["acme-tenant-0001"].premium = False
    d = M365Directory(make(graph))
    with pytest.raises(LicenceMissing) as exc:
        await d.last_sign_in("u-jane")
    assert exc.value.product == "Entra ID P1"
    mfa = await d.mfa("u-jane")  # falls back to the methods list
    assert mfa.registered is None and mfa.methods == ("microsoftAuthenticatorPush",)


async def test_tenant_without_intune_is_licence_missing(graph: FakeGraph) -> None:
    graph.tenants["acme-tenant-0001"].intune = False
    with pytest.raises(LicenceMissing) as exc:
        await M365Directory(make(graph)).devices("u-jane")
    assert exc.value.product == "Intune"


async def test_mfa_report(graph: FakeGraph) -> None:
    mfa = await M365Directory(make(graph)).mfa("u-jane")
    assert mfa.registered is True and mfa.methods == ("microsoftAuthenticatorPush", "mobilePhone")
    carol = await M365Directory(make(graph)).mfa("u-carol")  # not in the report yet: the methods list
    assert (carol.registered, carol.methods) == (None, ())


def test_admin_consent_url() -> None:
    url = admin_consent_url("acme-tenant-0001", "deskbridge-app")
    assert url == ("https://login.microsoftonline.com/acme-tenant-0001/v2.0/adminconsent?client_id=deskbridge-app"
                   "&scope=https%3A%2F%2Fgraph.microsoft.com%2F.default")
