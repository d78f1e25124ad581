"""First sync: time to a usable queue, phased against the old every-history path in the same run (issue 20 item 3).

The fake ConnectWise runs in a child process on 127.0.0.1 with N tickets (every `--open-every`-th open, the
rest closed; each with `--notes` notes). The engine syncs here into a fresh SQLite file per mode:

  baseline  `SyncEngine(eager_history=True)`: the children (notes, time, documents) of every ticket, open or
            closed, are read page by page before the next page (what a first sync did before phases); the
            last open ticket is listed when the last page is written, so time-to-queue ~ the whole run.
  phased    the default engine: phase 1 lists every ticket with its header fields and SLA dates (the queue is
            usable when it ends), phase 2 reads the open tickets' histories, closed ones wait to be opened.
            Then `--opens` closed tickets are opened through TicketService.get (their history read on demand).

Figures per mode: seconds until every open ticket is listed (checked against the store), the whole run, API
calls by route against pages + open x 3, the store's counts; the phased mode also the on-demand opens
(latency, calls). Ratios phased/baseline go in the results.

    .venv/bin/python bench/first_sync.py [--tickets 50000] [--open-every 10] [--notes 2] [--concurrency 16]
                                         [--baseline-budget-s 150]  (0: run the old path to the end)

Figures go to bench/results/first_sync.json.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import math
import multiprocessing as mp
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]

import sqlalchemy as sa  # noqa: E402

from connectors.registry import Registry  # noqa: E402
from core.connections import ConnectionService  # noqa: E402
from core.context import Actor  # noqa: E402
from core.sync.engine import Progress, SyncEngine  # noqa: E402
from core.sync.service import SyncService  # noqa: E402
from core.tickets import TicketService  # noqa: E402
from core.workspaces import WorkspaceService  # noqa: E402
from store import migrate  # noqa: E402
from store.crypto import CredentialCipher, generate_key  # noqa: E402
from store.db import Database, Scope  # noqa: E402
from store.enums import Origin  # noqa: E402
from store.tables import Ticket, TimelineEntry  # noqa: E402

CHILD_ROUTES = ("GET /service/tickets/{id}/notes", "GET /time/entries", "GET /system/documents")


def _fake_process(pipe: Any, tickets: int, open_every: int, notes: int) -> None:
    from tests.fakes import connectwise_routes as routes
    from tests.fakes.connectwise import FakeConnectWise

    fake = FakeConnectWise()
    fake.record_bodies = False
    fake.bulk_tickets(tickets, open_every=open_every)
    contact = min(fake.contacts)
    for tid in list(fake.tickets):
        for k in range(notes):
            routes.create_note(fake, tid, {"text": f"note {k} on {tid}", "detailDescriptionFlag": k % 2 == 0,
                                           "internalAnalysisFlag": k % 2 == 1, "processNotifications": False,
                                           **({"contact": {"id": contact}} if k == 0 else {})}, direct=True)
    fake.requests = _Nothing()  # type: ignore[assignment]  # 150k recorded requests would only cost memory
    with fake.serve() as root:
        pipe.send({"settings": fake.settings(root=root), "credentials": fake.credentials(),
                   "open": sum(1 for t in fake.tickets.values() if not t["closedFlag"])})
        while True:
            cmd, _ = pipe.recv()
            if cmd == "stop":
                return
            if cmd == "counts":
                pipe.send(dict(fake.counts))
            elif cmd == "reset":
                fake.reset_counts()
                pipe.send(True)


class _Nothing(list):  # type: ignore[type-arg]
    def append(self, _: Any) -> None:
        return None


async def _open_count(db: Database, ws: int) -> int:
    async with db.read(Scope.workspace(ws)) as s:
        t = Ticket.__table__
        return int((await s.execute(sa.select(sa.func.count()).select_from(t).where(
            t.c.is_open.is_(True)))).scalar() or 0)


async def _mode(label: str, tmp: Path, wiring: dict[str, Any], ask: Any, args: argparse.Namespace, *,
                eager: bool) -> dict[str, Any]:
    url = f"sqlite:///{tmp / f'{label}.db'}"
    migrate.upgrade(url)
    db = Database(url)
    ws = await WorkspaceService(db).create(slug="bench", name="Bench")
    registry = Registry()
    connections = ConnectionService(db, cipher=CredentialCipher.from_keys([generate_key()]), checker=registry.check,
                                    factory=registry.build, known_kinds=registry.kinds())
    conn, _ = await connections.add(ws.id, kind="connectwise", name="cw", settings=wiring["settings"],  # type: ignore[arg-type]
                                    credentials=wiring["credentials"])
    sync = SyncService(SyncEngine(db, connections, instance_id="bench", child_concurrency=args.concurrency,
                                  eager_history=eager))
    await sync.refresh_picklists(conn.id)  # type: ignore[arg-type]
    ask("reset")
    marks: dict[str, float] = {}
    start = time.perf_counter()

    def progress(p: Progress) -> None:
        now = time.perf_counter() - start
        marks["last_page"] = now if p.phase == "tickets" else marks.get("last_page", now)
        if p.phase == "history":
            marks.setdefault("queue_ready", now)

    profiler = cProfile.Profile() if args.profile and not eager else None
    if profiler:
        profiler.enable()
    pages_seen = {"n": 0}

    def counting(p: Progress) -> None:
        pages_seen["n"] = p.pages
        progress(p)

    task = asyncio.ensure_future(sync.engine.run(conn.id, progress=counting))  # type: ignore[arg-type]
    budget = (args.baseline_budget_s or None) if eager else None
    done, _ = await asyncio.wait([task], timeout=budget)
    if not done:  # the old path at this size takes far longer than the bench may: stop, extrapolate linearly
        task.cancel()
        wall = time.perf_counter() - start
        counts = ask("counts")
        pages_total = math.ceil(args.tickets / 1000)
        calls_total = pages_total + args.tickets * len(CHILD_ROUTES)
        calls_done = sum(v for k, v in counts.items() if k != "GET /login/companyinfo")
        est = wall * calls_total / max(1, calls_done)  # by calls made: pages finish in bursts
        print(f"{label:<9} stopped after {wall:.0f} s at page {pages_seen['n']}/{pages_total}: the whole run "
              f"(and the last open ticket listed) extrapolated to {est:.0f} s", flush=True)
        await connections.aclose()
        await db.dispose()
        return {"status": "stopped at the time budget (extrapolated linearly from the calls made)",
                "pages_written": pages_seen["n"], "pages_total": pages_total, "measured_s": round(wall, 1),
                "every_open_ticket_listed_s": round(est, 1), "run_s": round(est, 1), "extrapolated": True,
                "api_calls_so_far": calls_done, "api_calls": calls_total, "api_calls_by_route": counts}
    outcome = task.result()
    wall = time.perf_counter() - start
    if profiler:
        profiler.disable()
        profiler.dump_stats(args.profile)
    counts = ask("counts")
    api = sum(v for k, v in counts.items() if k != "GET /login/companyinfo")
    pages = counts.get("GET /service/tickets", 0)
    open_listed = await _open_count(db, ws.id)  # type: ignore[arg-type]
    queue_s = marks.get("queue_ready", marks.get("last_page", wall))
    res: dict[str, Any] = {
        "status": outcome.status, "error": outcome.error, "every_open_ticket_listed_s": round(queue_s, 2),
        "open_tickets_listed": open_listed, "run_s": round(wall, 2), "api_calls": api,
        "api_calls_target": pages + wiring["open"] * len(CHILD_ROUTES), "api_calls_by_route": counts,
        "run_counts": {k: v for k, v in outcome.counts.items() if v}}
    async with db.read(Scope.workspace(ws.id)) as s:  # type: ignore[arg-type]
        res["stored"] = {"tickets": (await s.execute(sa.select(sa.func.count()).select_from(Ticket))).scalar(),
                         "timeline": (await s.execute(sa.select(sa.func.count()).select_from(TimelineEntry))).scalar()}
    print(f"{label:<9} queue ready {queue_s:7.1f} s   run {wall:7.1f} s   api {api:>7} "
          f"(pages + open x 3 = {res['api_calls_target']})   open listed {open_listed}", flush=True)
    if not eager and args.opens:
        res["on_demand"] = await _opens(db, ws.id, sync, ask, args.opens)  # type: ignore[arg-type]
    await connections.aclose()
    await db.dispose()
    return res


async def _opens(db: Database, ws: int, sync: SyncService, ask: Any, n: int) -> dict[str, Any]:
    """Open `n` closed tickets one after another, as technicians would (history read on demand)."""
    async with db.read(Scope.workspace(ws)) as s:
        t = Ticket.__table__
        numbers = list((await s.execute(sa.select(t.c.number).where(t.c.is_open.is_(False)).order_by(
            t.c.id).limit(n))).scalars())
    service = TicketService(db, history=sync.load_history)
    actor = Actor(workspace_id=ws, origin=Origin.SLACK, display="bench")
    ask("reset")
    took, shown = [], 0
    for number in numbers:
        t0 = time.perf_counter()
        detail = await service.get(actor, number)
        took.append(time.perf_counter() - t0)
        shown += len(detail.timeline) > 0 and not detail.history_unread
    counts = ask("counts")
    took.sort()
    res = {"opened": len(numbers), "with_history": shown, "p50_ms": round(statistics.median(took) * 1000, 1),
           "p95_ms": round(took[max(0, math.ceil(len(took) * 0.95) - 1)] * 1000, 1),
           "api_calls": sum(counts.get(r, 0) for r in CHILD_ROUTES)}
    print(f"on demand {len(numbers)} closed tickets opened: p50 {res['p50_ms']} ms, p95 {res['p95_ms']} ms, "
          f"{res['api_calls']} calls, {shown} with history", flush=True)
    return res


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tickets", type=int, default=50_000)
    ap.add_argument("--open-every", type=int, default=10, help="every k-th ticket is open (10: 10%% open)")
    ap.add_argument("--notes", type=int, default=2, help="notes per ticket in the fake")
    ap.add_argument("--concurrency", type=int, default=16, help="child fetches in flight")
    ap.add_argument("--opens", type=int, default=50, help="closed tickets opened after the phased sync")
    ap.add_argument("--baseline-budget-s", type=float, default=150.0,
                    help="stop the baseline after this many seconds and extrapolate (its 50,000-ticket run takes "
                         "~30 min on a loaded machine); 0 runs it to the end")
    ap.add_argument("--profile", help="write a cProfile of the phased run to this file")
    ap.add_argument("--skip-baseline", action="store_true", help="phased mode only (no ratio)")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "first_sync.json"))
    args = ap.parse_args()
    parent, child = mp.Pipe()
    proc = mp.get_context("spawn").Process(target=_fake_process, args=(child, args.tickets, args.open_every,
                                                                         args.notes), daemon=True)
    proc.start()
    wiring = parent.recv()

    def ask(cmd: str, arg: Any = None) -> Any:
        parent.send((cmd, arg))
        return parent.recv()

    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        baseline = None if args.skip_baseline else await _mode("baseline", tmp, wiring, ask, args, eager=True)
        phased = await _mode("phased", tmp, wiring, ask, args, eager=False)
    parent.send(("stop", None))
    proc.join(timeout=10)
    result: dict[str, Any] = {
        "benchmark": "first_sync", "tickets": args.tickets, "open_tickets": wiring["open"],
        "notes_per_ticket": args.notes, "child_concurrency": args.concurrency, "database": "sqlite (file, WAL)",
        "transport": "HTTP on 127.0.0.1, fake ConnectWise in a child process",
        "target": "every open ticket listed < 60 s; calls ~ pages + open tickets x 3",
        "baseline_every_history": baseline, "phased": phased,
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()], "cpus": os.cpu_count(),
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds")}
    if baseline:
        result["ratios"] = {
            "queue_ready_speedup": round(baseline["every_open_ticket_listed_s"] / phased["every_open_ticket_listed_s"], 1),
            "api_calls_ratio": round(phased["api_calls"] / baseline["api_calls"], 3),
            "baseline_extrapolated": bool(baseline.get("extrapolated"))}
        print(f"queue ready x{result['ratios']['queue_ready_speedup']} sooner, "
              f"{result['ratios']['api_calls_ratio']:.1%} of the calls", flush=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")  # noqa: ASYNC240 - once, at the end
    print(f"wrote {args.out}")


if __name__ == "__main__":
    asyncio.run(main())
