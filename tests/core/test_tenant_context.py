"""TenantContextService on real SQLite with the Graph fake behind real GraphClients (DirectoryPool):
the quick view, graceful degradation per piece, parallel fetch, the brief cache, and isolation."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from connectors.m365 import DirectoryPool
from core.context import Actor
from core.errors import InvalidInput, PermissionDenied
from core.m365_tenants import M365TenantService
from core.tenant_context import TenantContextService
from store.db import Database, Scope
from store.enums import Priority, Stage
from store.tables import Contact, Customer, Ticket
from tests.fakes.graph import GRAPH, LOGIN, FakeGraph, seed_acme

ACME_TENANT, GLOBEX_TENANT = "0b5d8f4e-1c2a-4c3b-9d8e-7f6a5b4c3d2e", "globex.onmicrosoft.com"


class Clock:
    now = 100.0

    def __call__(self) -> float:
        return self.now


async def _ticket(db: Database, ws: int, customer: Customer, email: str | None, *, contact_customer: int | None = None,
                  number: int = 1) -> int:
    async with db.write(Scope.workspace(ws)) as s:
        contact = Contact(workspace_id=ws, customer_id=contact_customer or customer.id, name="C", email=email)
        s.add(contact)
        await s.flush()
        t = Ticket(workspace_id=ws, number=number, subject="Cannot sign in", customer_id=customer.id,
                   contact_id=contact.id, priority=Priority.HIGH.value, priority_rank=Priority.HIGH.rank,
                   stage=Stage.NEW.value)
        s.add(t)
        await s.flush()
        assert t.id is not None
        return t.id


@pytest.fixture
async def setup(db: Database, workspace_id: int):
    graph = FakeGraph()
    seed_acme(graph, ACME_TENANT)
    globex = graph.tenant(GLOBEX_TENANT)
    globex.users.append({"id": "g-jane", "displayName": "Jane at Globex", "userPrincipalName": "jane@acme.example",
                         "mail": "jane@acme.example", "accountEnabled": True, "onPremisesSyncEnabled": False})
    async with db.write(Scope.workspace(workspace_id)) as s:
        acme = Customer(workspace_id=workspace_id, identifier="ACME", name="Acme")
        glob = Customer(workspace_id=workspace_id, identifier="GLOBEX", name="Globex")
        bare = Customer(workspace_id=workspace_id, identifier="BARE", name="No tenant")
        s.add_all([acme, glob, bare])
    tenants = M365TenantService(db)
    await tenants.connect(workspace_id, acme, ACME_TENANT)
    await tenants.connect(workspace_id, glob, GLOBEX_TENANT)
    waits: list[float] = []

    async def sleep(seconds: float) -> None:  # Retry-After is honoured, without real waiting
        waits.append(seconds)

    pool = DirectoryPool(client_id=graph.client_id, client_secret=graph.client_secret, graph_url=GRAPH,
                         login_url=LOGIN, transport=graph.transport, sleep=sleep)
    clock = Clock()
    service = TenantContextService(db, tenants=tenants, directories=pool, ttl=60, clock=clock)
    yield graph, service, clock, {"ACME": acme, "GLOBEX": glob, "BARE": bare}
    await service.aclose()


async def test_user_quick_view(db, workspace_id, tech, setup) -> None:
    graph, service, _, customers = setup
    ticket = await _ticket(db, workspace_id, customers["ACME"], "Jane@Acme.example")
    view = await service.user_view(tech, ticket)
    assert view.tenant_id == ACME_TENANT and view.notes == ()
    assert view.user is not None and (view.user.display_name, view.user.upn, view.user.enabled,
                                      view.user.on_prem_synced) == ("Jane Doe", "jane@acme.example", True, False)
    assert view.last_sign_in == datetime(2026, 12, 6, 8, 15, tzinfo=UTC)
    assert view.mfa is not None and view.mfa.registered and "mobilePhone" in view.mfa.methods
    assert view.licences is not None and "Microsoft 365 Business Premium" in [x.name for x in view.licences]
    assert view.devices is not None and [(d.name, d.compliance, d.encrypted) for d in view.devices][2] == (
        "ACME-LT-2", "noncompliant", False)


async def test_missing_licence_and_permission_become_notes(db, workspace_id, tech, setup) -> None:
    graph, service, _, customers = setup
    t = graph.tenants[ACME_TENANT]
    t.premium = False
    t.permissions.discard("DeviceManagementManagedDevices.Read.All")
    view = await service.user_view(tech, await _ticket(db, workspace_id, customers["ACME"], "jane@acme.example"))
    assert view.user is not None and view.licences is not None
    assert view.last_sign_in is None and view.devices is None
    assert view.mfa is not None and view.mfa.registered is None  # fell back to the methods list
    assert view.notes == ("Sign-in: needs Entra ID P1 in this tenant.",
                          "Devices: the Deskbridge app lacks the Graph permission DeviceManagementManagedDevices.Read.All.")


async def test_no_intune_and_unknown_user_and_no_tenant(db, workspace_id, tech, setup) -> None:
    graph, service, _, customers = setup
    graph.tenants[ACME_TENANT].intune = False
    view = await service.user_view(tech, await _ticket(db, workspace_id, customers["ACME"], "jane@acme.example"))
    assert view.devices is None and view.notes == ("Devices: needs Intune in this tenant.",)
    view = await service.user_view(tech, await _ticket(db, workspace_id, customers["ACME"], "ghost@acme.example",
                                                       number=2))
    assert view.user is None and "No user ghost@acme.example" in view.notes[0]
    calls = len(graph.calls)
    view = await service.user_view(tech, await _ticket(db, workspace_id, customers["BARE"], "x@bare.example",
                                                       number=3))
    assert view.tenant_id is None and "connect-m365" in view.notes[0] and len(graph.calls) == calls


async def test_throttling_is_a_note_and_is_not_cached(db, workspace_id, tech, setup) -> None:
    graph, service, _, customers = setup
    ticket = await _ticket(db, workspace_id, customers["ACME"], "jane@acme.example")
    graph.throttle(4)  # the first try and its three retries
    view = await service.user_view(tech, ticket)
    assert view.user is None and view.notes == ("User: Microsoft 365 did not answer; try again shortly.",)
    assert (await service.user_view(tech, ticket)).user is not None  # not served from the cache


async def test_pieces_are_fetched_in_parallel_and_cached_briefly(db, workspace_id, tech, setup) -> None:
    graph, service, clock, customers = setup
    ticket = await _ticket(db, workspace_id, customers["ACME"], "jane@acme.example")
    graph.delay = 0.2
    first, second = await asyncio.gather(service.user_view(tech, ticket), service.user_view(tech, ticket))
    # the user, then four pieces side by side (Graph held four at once), not one by one. Counted, not timed: a
    # 0.9 s stopwatch here failed on a loaded machine.
    assert graph.max_inflight >= 4, graph.calls
    assert first == second and first.user is second.user  # the concurrent request joined the same fetch
    assert sum(1 for c in graph.calls if c[1].endswith("/jane@acme.example")) == 1
    calls = len(graph.calls)
    await service.user_view(tech, ticket)
    assert len(graph.calls) == calls  # cached
    clock.now += 61
    await service.user_view(tech, ticket)
    assert len(graph.calls) > calls  # expired


async def test_customers_and_customer_channels_see_nothing(db, workspace_id, tech, setup) -> None:
    graph, service, _, customers = setup
    ticket = await _ticket(db, workspace_id, customers["ACME"], "jane@acme.example")
    end_user = replace(tech, is_member=False, member_id=None)
    with pytest.raises(PermissionDenied):
        await service.user_view(end_user, ticket)
    with pytest.raises(PermissionDenied):
        await service.user_view(tech.scoped_to_customer(customers["ACME"].id), ticket)
    assert graph.calls == [] and graph.token_requests == 0


async def test_never_another_customers_tenant(db, workspace_id, tech, setup) -> None:
    graph, service, _, customers = setup
    # The same e-mail in two tenants: each ticket reads its own customer's tenant, never the other's cache.
    acme = await service.user_view(tech, await _ticket(db, workspace_id, customers["ACME"], "jane@acme.example"))
    glob = await service.user_view(tech, await _ticket(db, workspace_id, customers["GLOBEX"], "jane@acme.example",
                                                       number=2))
    assert (acme.tenant_id, acme.user.id) == (ACME_TENANT, "u-jane")  # type: ignore[union-attr]
    assert (glob.tenant_id, glob.user.id) == (GLOBEX_TENANT, "g-jane")  # type: ignore[union-attr]
    # A GLOBEX ticket whose contact is an ACME contact is refused outright.
    mixed = await _ticket(db, workspace_id, customers["GLOBEX"], "jane@acme.example",
                          contact_customer=customers["ACME"].id, number=3)
    calls = len(graph.calls)
    with pytest.raises(PermissionDenied):
        await service.user_view(tech, mixed)
    assert len(graph.calls) == calls


async def test_a_ticket_of_another_workspace_is_not_found(db, workspace_id, other_workspace_id, tech, setup) -> None:
    _, service, _, customers = setup
    ticket = await _ticket(db, workspace_id, customers["ACME"], "jane@acme.example")
    outsider = Actor(workspace_id=other_workspace_id, origin=tech.origin, member_id=None, display="x")
    from core.errors import NotFound

    with pytest.raises(NotFound):
        await service.user_view(outsider, ticket)


async def test_tokens_are_shared_by_instances_through_the_database(db, workspace_id, tech, setup) -> None:
    from core.psa_tokens import DatabaseTokenCache
    from store.crypto import CredentialCipher, generate_key

    graph, _, _, customers = setup
    cipher = CredentialCipher.from_keys([generate_key()])
    ticket = await _ticket(db, workspace_id, customers["ACME"], "jane@acme.example")
    instances = []
    for name in ("a", "b"):  # two instances: own pools and caches, one database
        pool = DirectoryPool(client_id=graph.client_id, client_secret=graph.client_secret, graph_url=GRAPH,
                             login_url=LOGIN, transport=graph.transport,
                             token_cache=DatabaseTokenCache(db, cipher, holder=name))
        instances.append(TenantContextService(db, tenants=M365TenantService(db), directories=pool))
    try:
        views = await asyncio.gather(*(i.user_view(tech, ticket) for i in instances))
        assert all(v.user is not None for v in views)
        assert graph.token_requests == 1
    finally:
        for i in instances:
            await i.aclose()


async def test_the_cache_stays_bounded(db, workspace_id, tech, setup, monkeypatch) -> None:
    import core.tenant_context as tc

    graph, service, _, customers = setup
    monkeypatch.setattr(tc, "CACHE_MAX", 2)
    tickets = [await _ticket(db, workspace_id, customers["ACME"], email, number=n)
               for n, email in enumerate(("jane@acme.example", "bob@acme.example", "carol@acme.example"), 1)]
    for t in tickets:
        await service.user_view(tech, t)
    assert len(service._cache) == 2
    calls = len(graph.calls)
    await service.user_view(tech, tickets[2])  # the newest is still cached
    assert len(graph.calls) == calls
    await service.user_view(tech, tickets[0])  # the oldest was dropped
    assert len(graph.calls) > calls


async def test_the_tickets_device_reference_picks_its_intune_device_and_a_choice_overrides(
        db, workspace_id, tech, setup) -> None:
    _, service, _, customers = setup
    ticket = await _ticket(db, workspace_id, customers["ACME"], "jane@acme.example")
    async with db.write(Scope.workspace(workspace_id)) as s:
        t = await s.get(Ticket, ticket)
        t.device_ref = "acme-lt-1"  # as the RMM names it
        s.add(t)
    view = await service.user_view(tech, ticket)
    assert view.device_id == "d-1" and not view.chosen
    chosen = await service.choose(tech, ticket, "jane@acme.example", device_id="d-2")
    assert chosen.device_id == "d-2" and chosen.chosen
    with pytest.raises(InvalidInput, match="not one of the user's Intune devices"):
        await service.choose(tech, ticket, "jane@acme.example", device_id="d-9")
    with pytest.raises(InvalidInput, match="No user ghost@acme.example"):
        await service.choose(tech, ticket, "ghost@acme.example")
    assert (await service.user_view(tech, ticket)).device_id == "d-2"  # refusals changed nothing


async def test_similar_tickets_never_hold_up_the_context(db: Database, workspace_id: int, tech: Actor) -> None:
    """Similar tickets come from AI assist within a budget: slow or failing, the context gets none (and no error);
    a customer channel gets nothing, before AI assist is asked."""
    from types import SimpleNamespace

    service = TenantContextService(db, tenants=M365TenantService(db), directories=None)
    assert await service.similar(tech, 1) == ()  # AI assist not built
    asked: list[int | None] = []

    class Ai:
        delay, fail = 0.0, False

        async def similar(self, actor, *, ticket_id=None, text=None, k=3):  # type: ignore[no-untyped-def]
            asked.append(ticket_id)
            await asyncio.sleep(self.delay)
            if self.fail:
                raise RuntimeError("index broken")
            doc = SimpleNamespace(ticket_id=9, number=4001, closed_at=None, text="VPN down again\nbody")
            return SimpleNamespace(hits=(SimpleNamespace(doc=doc, score=0.61),))

    service.ai = ai = Ai()
    [hit] = await service.similar(tech, 1)
    assert (hit.ref, hit.subject, hit.score) == ("#4001", "VPN down again", 0.61) and asked == [1]
    ai.delay, service.similar_budget = 120.0, 0.05  # an AI far too slow: the budget gives up on it (waiting for it
    assert await asyncio.wait_for(service.similar(tech, 1), 60) == ()  # would time out here; not a stopwatch)
    ai.delay, ai.fail = 0.0, True
    assert await service.similar(tech, 1) == ()
    with pytest.raises(PermissionDenied):
        await service.similar(tech.scoped_to_customer(1), 1)
    assert len(asked) == 3
