"""M365Directory's activity, installed apps and quick-action writes against the httpx-transport Graph fake, and
the debug request log that names users by a hash, never by their UPN."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest

from connectors.m365 import GraphClient, M365Directory
from connectors.tenant import DirectoryError, LicenceMissing, PermissionMissing
from tests.fakes.graph import GRAPH, LOGIN, FakeGraph, seed_acme

TENANT = "acme-tenant-0001"


@pytest.fixture
def graph() -> FakeGraph:
    g = FakeGraph()
    seed_acme(g, TENANT)
    return g


@pytest.fixture
async def d(graph: FakeGraph):
    async def no_sleep(_: float) -> None:
        return None

    client = GraphClient(tenant_id=TENANT, client_id=graph.client_id, client_secret=graph.client_secret,
                         graph_url=GRAPH, login_url=LOGIN, transport=graph.transport, sleep=no_sleep)
    yield M365Directory(client)
    await client.aclose()


async def test_sign_ins_newest_first_and_p1_required(graph, d) -> None:
    rows = await d.sign_ins("u-jane", top=4)
    assert [r.at for r in rows] == [datetime(2026, 12, 6, h, tzinfo=UTC) for h in (5, 4, 3, 2)]
    assert rows[2].ok is False and rows[2].failure == "Invalid username or password."
    assert rows[0].location == "Leeds, GB" and rows[0].client == "Windows10" and rows[0].ip == "203.0.113.5"
    graph.tenants[TENANT].premium = False
    with pytest.raises(LicenceMissing) as e:
        await d.sign_ins("u-jane")
    assert e.value.product == "Entra ID P1"
    audits = await d.audits("u-jane")  # directory audits need no P1
    assert [(a.activity, a.by) for a in audits] == [("Reset user password", "Deskbridge"),
                                                    ("Update user", "admin@acme.example")]


async def test_detected_apps_follow_pages_sorted(graph, d) -> None:
    apps = await d.detected_apps("d-0")
    assert [(a.name, a.version) for a in apps] == [("7-Zip", "23.01"), ("Google Chrome", "131.0.6778.86"),
                                                   ("Microsoft Teams", "24295.605")]
    assert sum(1 for c in graph.calls if c[1].endswith("/detectedApps")) == 2  # page size 2: two pages
    graph.tenants[TENANT].intune = False
    with pytest.raises(LicenceMissing, match="Intune"):
        await d.detected_apps("d-0")


async def test_writes_and_their_refusals(graph, d) -> None:
    t = graph.tenants[TENANT]
    await d.reset_password("u-jane", "Xy7!abcdEFGH2345")
    await d.revoke_sessions("u-jane")
    await d.sync_device("d-1")
    assert [w[:2] for w in t.writes] == [("passwordProfile", "u-jane"), ("revokeSignInSessions", "u-jane"),
                                         ("syncDevice", "d-1")]
    with pytest.raises(DirectoryError, match="400") as e:  # synced from on-premises: Graph says 400
        await d.reset_password("u-bob", "Xy7!abcdEFGH2345")
    assert not isinstance(e.value, PermissionMissing)
    t.permissions.discard("DeviceManagementManagedDevices.PrivilegedOperations.All")
    with pytest.raises(PermissionMissing):
        await d.sync_device("d-1")
    graph.throttle(2, "0")
    await d.revoke_sessions("u-jane")  # 429 twice, then done: Retry-After honoured by the client
    assert len(t.writes) == 4


async def test_debug_log_names_users_by_hash(graph, d, caplog) -> None:
    caplog.set_level(logging.DEBUG, logger="deskbridge.psa.http")
    await d.user("jane@acme.example")
    paths = [r.path for r in caplog.records if r.name == "deskbridge.psa.http" and r.host == "graph.fake"]
    assert paths and all("jane" not in p and "@" not in p for p in paths)
    assert paths[0].startswith("/v1.0/users/upn-")
