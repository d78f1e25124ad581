"""Tenant context benchmark (issue 23): the time to build a ticket's Microsoft 365 context section, and what the
Context button costs a card.

Setup: a migrated SQLite database, one customer with a tenant, N tickets each about another user, and the Graph
fake (tests/fakes/graph.py, behind the real GraphClient through an httpx transport) answering every call after
DELAY_S (150 ms, the issue's figure) with pages big enough that each piece is one call.

Measured in the same run:
- parallel, cold: TenantContextService.user_view for a user not yet cached (the user, then sign-in, MFA,
  licences and devices side by side);
- sequential baseline, cold: the same five Graph reads one after another through the same directory;
- cached: user_view again within the cache's lifetime;
- card: ChatViews.ticket (the card a technician gets) with the Context check and documentation links wired (no
  platform configured) vs the same card without them, to show the first card is not slowed.

    .venv/bin/python bench/context_card.py [--quick]    # writes bench/results/context_card.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# bench/queue.py would shadow the standard library's queue module: import from the repository root only.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))

from connectors.m365 import DirectoryPool  # noqa: E402
from core.chat import ChatViews  # noqa: E402
from core.connections import ConnectionService  # noqa: E402
from core.context import Actor  # noqa: E402
from core.m365_tenants import M365TenantService  # noqa: E402
from core.tenant_context import TenantContextService  # noqa: E402
from core.tickets import TicketService  # noqa: E402
from core.workspaces import DirectoryService, WorkspaceService  # noqa: E402
from store import migrate  # noqa: E402
from store.crypto import CredentialCipher, generate_key  # noqa: E402
from store.db import Database, Scope  # noqa: E402
from store.enums import Origin  # noqa: E402
from store.tables import Contact, Customer, Ticket  # noqa: E402
from tests.fakes.graph import GRAPH, LOGIN, FakeGraph  # noqa: E402

DELAY_S = 0.150
TENANT = "0b5d8f4e-1c2a-4c3b-9d8e-7f6a5b4c3d2e"


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


def summary(values: list[float]) -> dict[str, float]:
    return {"n": len(values), "p50_ms": round(statistics.median(values) * 1000, 1),
            "p95_ms": round(pct(values, 0.95) * 1000, 1), "max_ms": round(max(values) * 1000, 1)}


def seed_graph(graph: FakeGraph, users: int) -> None:
    t = graph.tenant(TENANT)
    for i in range(users):
        uid = f"u-{i}"
        t.users.append({"id": uid, "displayName": f"User {i}", "userPrincipalName": f"user{i}@acme.example",
                        "mail": f"user{i}@acme.example", "accountEnabled": True, "onPremisesSyncEnabled": False,
                        "signInActivity": {"lastSignInDateTime": "2026-12-06T08:15:00Z"}})
        t.registration[uid] = {"id": uid, "isMfaRegistered": True, "methodsRegistered": ["microsoftAuthenticatorPush"]}
        t.licences[uid] = ["SPB"]
        t.devices[uid] = [{"id": f"d-{i}", "deviceName": f"LT-{i}", "operatingSystem": "Windows",
                           "osVersion": "10.0.22631", "complianceState": "compliant",
                           "lastSyncDateTime": "2026-12-06T10:00:00Z", "isEncrypted": True}]


async def setup(url: str, users: int) -> tuple[Database, int, list[int], Actor]:
    db = Database(url)
    ws = (await WorkspaceService(db).create(slug="bench", name="Bench")).id
    assert ws is not None
    member = await DirectoryService(db).add_member(ws, name="Ana Tech", email="ana@msp.example")
    tech = Actor(workspace_id=ws, origin=Origin.SLACK, member_id=member.id, display="slack:U1 (Ana)")
    ids = []
    async with db.write(Scope.workspace(ws)) as s:
        acme = Customer(workspace_id=ws, identifier="ACME", name="Acme")
        s.add(acme)
        await s.flush()
        for i in range(users):
            c = Contact(workspace_id=ws, customer_id=acme.id, name=f"User {i}", email=f"user{i}@acme.example")
            s.add(c)
            await s.flush()
            t = Ticket(workspace_id=ws, number=1000 + i, customer_id=acme.id, contact_id=c.id, subject="Help",
                       priority="high", priority_rank=1, stage="new")
            s.add(t)
            await s.flush()
            ids.append(t.id)  # type: ignore[arg-type]
    await M365TenantService(db).connect(ws, acme, TENANT)
    return db, ws, ids, tech


async def sequential(directory, email: str) -> None:
    user = await directory.user(email)
    await directory.last_sign_in(user.id)
    await directory.mfa(user.id)
    await directory.licences(user.id)
    await directory.devices(user.id)


async def run(users: int, rounds: int) -> dict:
    graph = FakeGraph(page_size=50, delay=DELAY_S)
    seed_graph(graph, users)
    tmp = tempfile.mkdtemp()
    url = f"sqlite:///{tmp}/bench.db"
    await asyncio.to_thread(migrate.upgrade, url)
    db, ws, ids, tech = await setup(url, users)
    pool = DirectoryPool(client_id=graph.client_id, client_secret=graph.client_secret, graph_url=GRAPH,
                         login_url=LOGIN, transport=graph.transport)
    tenants = M365TenantService(db)
    service = TenantContextService(db, tenants=tenants, directories=pool, ttl=600)
    await service.user_view(tech, ids[0])  # the token, minted once per tenant, is not what is measured
    par, seq, cached = [], [], []
    directory = pool(TENANT)
    for i in range(1, min(users, rounds + 1)):
        t0 = time.perf_counter()
        view = await service.user_view(tech, ids[i])
        par.append(time.perf_counter() - t0)
        assert view.user is not None and view.devices and not view.notes, view.notes
        t0 = time.perf_counter()
        await sequential(directory, f"user{i}@acme.example")
        seq.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        await service.user_view(tech, ids[i])
        cached.append(time.perf_counter() - t0)
    cards = await card_costs(db, ws, tech, service, ids, rounds)
    await service.aclose()
    await db.dispose()
    p, s = summary(par), summary(seq)
    return {
        "graph_delay_ms": DELAY_S * 1000, "users": users,
        "context_parallel_cold": p, "context_sequential_cold_baseline": s,
        "context_cached": summary(cached),
        "speedup_p50_sequential_over_parallel": round(s["p50_ms"] / p["p50_ms"], 2),
        "target_p95_under_1s_met": p["p95_ms"] < 1000,
        **cards,
    }


async def card_costs(db: Database, ws: int, tech: Actor, service: TenantContextService, ids: list[int],
                     rounds: int) -> dict:
    """The card with the Context check and (unconfigured) documentation links vs the card without them."""
    from core.docs_links import DocsService

    cipher = CredentialCipher.from_keys([generate_key()])
    tickets = TicketService(db)
    connections = ConnectionService(db, cipher=cipher, checker=None, factory=None,  # type: ignore[arg-type]
                                    known_kinds=())
    docs = DocsService(db, cipher=cipher, factory=lambda *a: None)  # type: ignore[arg-type,return-value]
    plain = ChatViews(db, tickets=tickets, connections=connections)
    wired = ChatViews(db, tickets=tickets, connections=connections, tenant_context=service.available,
                      docs=docs.card_links)
    with_ctx, without = [], []
    await wired.ticket(tech, f"id:{ids[0]}")  # first use of each: not what is compared
    await plain.ticket(tech, f"id:{ids[0]}")
    for i in range(rounds):
        ref = f"id:{ids[i % len(ids)]}"
        order = [(wired, with_ctx), (plain, without)]
        for views, out in order if i % 2 == 0 else order[::-1]:  # alternate which goes first
            t0 = time.perf_counter()
            view = await views.ticket(tech, ref)
            out.append(time.perf_counter() - t0)
            assert (views is wired) == any(a.action == "context" for a in view.actions)
    a, b = summary(with_ctx), summary(without)
    return {"card_with_context_button": a, "card_without_baseline": b,
            "card_ratio_p50_with_over_without": round(a["p50_ms"] / b["p50_ms"], 2)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="fewer rounds (about 20 s)")
    args = ap.parse_args()
    users, rounds = (31, 30) if args.quick else (101, 100)
    t0 = time.perf_counter()
    result = asyncio.run(run(users, rounds))
    result.update({"rounds": rounds, "wall_s": round(time.perf_counter() - t0, 1), "python": platform.python_version(),
                   "machine": f"{platform.machine()}, {__import__('os').cpu_count()} cores",
                   "load_avg_1_5_15": [round(x, 1) for x in __import__("os").getloadavg()]})
    out = ROOT / "bench" / "results" / "context_card.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
