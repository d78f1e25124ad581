"""Ticket search beyond ASCII on SQLite: the cost of folding every letter (`unicode_lower`, a Python function per
row) against SQLite's own lower() (A-Z only, and so wrong for ÉCOLE/école), measured in the same run.

On a SQLite file with --tickets open tickets of one workspace, through QueueService.list (what REST and chat call),
first page of 25 with the total (the chat's /tickets asks for it), rounds alternating:
  - ascii:   "printer"  (unchanged path: SQLite's lower(); the baseline of the run),
  - folded:  "ÉCOLE"    (this tree: unicode_lower -> db_lower),
  - builtin: "ÉCOLE"    (the old statement, SQLite's lower(): what it cost before, finding nothing).
Reports CPU ms per search (process time) and wall p50/p95, the ratios folded/builtin and folded/ascii, and the
load average. Figures go to bench/results/search_fold.json.

    .venv/bin/python bench/search_fold.py [--tickets 50000] [--iterations 10] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]  # bench/queue.py shadows queue
sys.path.insert(0, str(ROOT))

import core.queue as queue_mod  # noqa: E402
from core.context import Actor  # noqa: E402
from core.queue import QueueFilter, QueueService  # noqa: E402
from store import migrate  # noqa: E402
from store.db import Database, Scope  # noqa: E402
from store.enums import Origin, Priority, Stage  # noqa: E402
from store.sql import unicode_lower  # noqa: E402
from store.tables import Customer, Member, Ticket, Workspace  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "search_fold.json"
WORDS = ["printer", "vpn", "outlook", "École", "écran", "Zürich", "laptop", "wifi", "Принтер", "backup"]


async def seed(db: Database, n: int) -> tuple[int, int]:
    now = datetime.now(UTC)
    async with db.write(Scope.system_wide()) as s:
        ws = Workspace(slug="bench", name="bench")
        s.add(ws)
        await s.flush()
        wid = int(ws.id)  # type: ignore[arg-type]
    async with db.write(Scope.workspace(wid)) as s:
        cust = Customer(workspace_id=wid, identifier="ACME", name="Acme")
        member = Member(workspace_id=wid, name="Tech", email="tech@msp.example")
        s.add_all([cust, member])
        await s.flush()
        cid, mid = int(cust.id), int(member.id)  # type: ignore[arg-type]
    for start in range(0, n, 5000):
        rows = [{"workspace_id": wid, "number": i + 1,
                 "subject": f"{WORDS[i % len(WORDS)]} issue {i} at site {i % 97}", "customer_id": cid,
                 "priority": Priority.MEDIUM.value, "priority_rank": Priority.MEDIUM.rank, "stage": Stage.NEW.value,
                 "created_at": now - timedelta(minutes=i), "updated_at": now - timedelta(seconds=i)}
                for i in range(start, min(n, start + 5000))]
        async with db.write(Scope.workspace(wid)) as s:
            await s.execute(sa.insert(Ticket), rows)  # a bulk insert (exec() takes no rows)
    return wid, mid


async def measure(svc: QueueService, actor: Actor, text: str, iterations: int) -> tuple[float, list[float], int]:
    walls, cpu0, total = [], time.process_time(), 0
    for _ in range(iterations):
        t0 = time.perf_counter()
        page = await svc.list(actor, QueueFilter(text=text), limit=25, with_total=True)
        walls.append(time.perf_counter() - t0)
        total = page.total or 0
    return (time.process_time() - cpu0) / iterations * 1000, walls, total


async def run(args: argparse.Namespace) -> dict:
    tmp = tempfile.mkdtemp(prefix="deskbridge-bench-fold-")
    url = f"sqlite:///{tmp}/bench.db"
    migrate.upgrade(url)
    db = Database(url)
    wid, mid = await seed(db, args.tickets)
    actor = Actor(workspace_id=wid, origin=Origin.API, member_id=mid, is_member=True, display="bench")
    svc = QueueService(db)
    sides: dict[str, dict[str, list]] = {k: {"cpu_ms": [], "wall": [], "total": []} for k in ("ascii", "folded", "builtin")}
    for _ in range(args.rounds):
        for side in ("ascii", "folded", "builtin"):
            queue_mod.unicode_lower = sa.func.lower if side == "builtin" else unicode_lower  # type: ignore[assignment]
            queue_mod._shaped_statement.cache_clear()
            queue_mod._counted.cache_clear()
            await measure(svc, actor, "printer" if side == "ascii" else "ÉCOLE", 2)  # warm
            cpu, walls, total = await measure(svc, actor, "printer" if side == "ascii" else "ÉCOLE", args.iterations)
            sides[side]["cpu_ms"].append(cpu)
            sides[side]["wall"] += walls
            sides[side]["total"].append(total)
    queue_mod.unicode_lower = unicode_lower  # type: ignore[assignment]
    await db.dispose()
    out: dict = {}
    for side, v in sides.items():
        w = sorted(v["wall"])
        out[side] = {"cpu_ms_per_search": [round(x, 2) for x in v["cpu_ms"]],
                     "cpu_ms_median": round(statistics.median(v["cpu_ms"]), 2),
                     "wall_p50_ms": round(w[len(w) // 2] * 1000, 2), "wall_p95_ms": round(w[int(len(w) * 0.95)] * 1000, 2),
                     "matched": v["total"][-1]}
    out["ratio_folded_vs_builtin_cpu"] = round(out["folded"]["cpu_ms_median"] / out["builtin"]["cpu_ms_median"], 2)
    out["ratio_folded_vs_ascii_cpu"] = round(out["folded"]["cpu_ms_median"] / out["ascii"]["cpu_ms_median"], 2)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tickets", type=int, default=50_000)
    ap.add_argument("--iterations", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", default=str(RESULTS))
    args = ap.parse_args()
    load0 = os.getloadavg()[0]
    result = asyncio.run(run(args))
    result.update({"tickets": args.tickets, "iterations": args.iterations, "rounds": args.rounds,
                   "load_avg_1m": [round(load0, 2), round(os.getloadavg()[0], 2)],
                   "when": datetime.now(UTC).isoformat(timespec="seconds")})
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
