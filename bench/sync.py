"""Sync engine throughput: N tickets (each with notes) pulled from the fake ConnectWise over loopback (issue 4).

The fake runs in a child process on 127.0.0.1 (so its HTTP handling does not share our GIL); the engine
runs here against a SQLite file, exactly as `deskbridge sync run` does. Measured in one run:

  1. first sync (everything new): wall time, tickets/s, timeline rows/s, API calls vs the minimum
     (ceil(N/1000) list pages + one notes, one time-entry and one attachment list per ticket);
  2. incremental sync with 1% of tickets changed (an edit and a new note each): same figures;
  3. incremental sync with nothing changed: API calls (must be exactly one list call);
  4. the store alone: bulk upsert (INSERT … ON CONFLICT DO UPDATE, changed rows only) against a per-row
     ORM merge (SELECT by external id, then update or add) on the same machine, rows/s and the ratio.

    .venv/bin/python bench/sync.py [--tickets 50000] [--notes 2] [--concurrency 16]

Figures go to bench/results/sync.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import multiprocessing as mp
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# Run as a script, bench/ comes first on sys.path and bench/queue.py would shadow the stdlib `queue`.
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]

import sqlalchemy as sa  # noqa: E402
from sqlmodel import select  # noqa: E402

from connectors.registry import Registry  # noqa: E402
from core.connections import ConnectionService  # noqa: E402
from core.sync.engine import SyncEngine  # noqa: E402
from core.sync.service import SyncService  # noqa: E402
from core.sync.upsert import TICKET_COLUMNS, upsert_tickets  # noqa: E402
from core.workspaces import WorkspaceService  # noqa: E402
from store import migrate  # noqa: E402
from store.crypto import CredentialCipher, generate_key  # noqa: E402
from store.db import Database, Scope  # noqa: E402
from store.tables import Ticket, TimelineEntry  # noqa: E402

# ---------------------------------------------------------------- the fake PSA, in a child process


def _fake_process(pipe: Any, tickets: int, notes: int) -> None:
    from tests.fakes import connectwise_routes as routes
    from tests.fakes.connectwise import FakeConnectWise

    fake = FakeConnectWise()
    fake.record_bodies = False
    fake.bulk_tickets(tickets)
    contact = min(fake.contacts)
    for tid in list(fake.tickets):
        for k in range(notes):
            routes.create_note(fake, tid, {"text": f"note {k} on {tid}", "detailDescriptionFlag": k % 2 == 0,
                                           "internalAnalysisFlag": k % 2 == 1, "processNotifications": False,
                                           **({"contact": {"id": contact}} if k == 0 else {})}, direct=True)
    with fake.serve() as root:
        pipe.send({"settings": fake.settings(root=root), "credentials": fake.credentials()})
        while True:
            cmd, arg = pipe.recv()
            if cmd == "stop":
                return
            if cmd == "counts":
                pipe.send(dict(fake.counts))
            elif cmd == "reset":
                fake.reset_counts()
                pipe.send(True)
            elif cmd == "change":  # `arg` tickets: an edit and a new customer note each
                fake.clock.advance(3600)
                ids = sorted(fake.tickets)[:: max(1, len(fake.tickets) // arg)][:arg]
                for tid in ids:
                    fake.edit_ticket(tid, summary=f"changed {tid}")
                    fake.add_note(tid, "customer replied", contact_id=contact)
                fake.clock.advance(3600)
                pipe.send(len(ids))


# ---------------------------------------------------------------- sync runs


async def _sync_bench(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    parent, child = mp.Pipe()
    proc = mp.get_context("spawn").Process(target=_fake_process, args=(child, args.tickets, args.notes), daemon=True)
    t0 = time.perf_counter()
    proc.start()
    wiring = parent.recv()
    seed_s = time.perf_counter() - t0

    def ask(cmd: str, arg: Any = None) -> Any:
        parent.send((cmd, arg))
        return parent.recv()

    url = f"sqlite:///{tmp / 'sync.db'}"
    migrate.upgrade(url)
    db = Database(url)
    ws = await WorkspaceService(db).create(slug="bench", name="Bench")
    registry = Registry()
    connections = ConnectionService(db, cipher=CredentialCipher.from_keys([generate_key()]), checker=registry.check,
                                    factory=registry.build, known_kinds=registry.kinds())
    conn, _ = await connections.add(ws.id, kind="connectwise", name="cw", settings=wiring["settings"],  # type: ignore[arg-type]
                                    credentials=wiring["credentials"])
    engine = SyncEngine(db, connections, instance_id="bench", child_concurrency=args.concurrency)
    sync = SyncService(engine)
    await sync.refresh_picklists(conn.id)  # type: ignore[arg-type]
    out: dict[str, Any] = {"seed_fake_s": round(seed_s, 1)}

    async def measured(label: str, changed: int) -> dict[str, Any]:
        ask("reset")
        start = time.perf_counter()
        outcome = await engine.run(conn.id)  # type: ignore[arg-type]
        wall = time.perf_counter() - start
        counts = ask("counts")
        api = sum(v for k, v in counts.items() if k != "GET /login/companyinfo")
        minimum = (math.ceil(max(changed, 1) / 1000) + 3 * changed) if changed else 1
        rows = outcome.counts.get("created", 0) + outcome.counts.get("updated", 0)
        timeline = sum(outcome.counts.get(k, 0) for k in ("notes_added", "time_entries_added", "attachments_added"))
        res = {"status": outcome.status, "wall_s": round(wall, 2), "tickets_written": rows,
               "timeline_rows_written": timeline, "tickets_per_s": round(rows / wall, 1) if wall else None,
               "rows_per_s": round((rows + timeline) / wall, 1) if wall else None,
               "api_calls": api, "api_calls_min": minimum, "api_calls_by_route": counts,
               "list_calls": counts.get("GET /service/tickets", 0)}
        print(f"{label:<26} {wall:8.1f} s  {rows:>7} tickets  {timeline:>7} timeline rows  "
              f"{res['rows_per_s']:>9} rows/s  api {api}/{minimum} min", flush=True)
        return res

    out["first_sync"] = await measured("first sync", args.tickets)
    changed = ask("change", max(1, args.tickets // 100))
    out["incremental_1pct"] = await measured("incremental (1% changed)", changed)
    out["incremental_1pct"]["changed_at_psa"] = changed
    out["incremental_nothing"] = await measured("incremental (no change)", 0)
    async with db.read(Scope.workspace(ws.id)) as s:  # type: ignore[arg-type]
        out["stored"] = {"tickets": (await s.execute(sa.select(sa.func.count()).select_from(Ticket))).scalar(),
                         "timeline": (await s.execute(sa.select(sa.func.count()).select_from(TimelineEntry))).scalar()}
    parent.send(("stop", None))
    proc.join(timeout=10)
    await db.dispose()
    return out


# ---------------------------------------------------------------- store alone: bulk upsert vs per-row ORM merge


def _rows(n: int, ws: int, cid: int, gen: int) -> list[dict[str, Any]]:
    now = datetime(2025, 1, 6, tzinfo=UTC)
    base = {c: None for c in TICKET_COLUMNS}
    return [{**base, "workspace_id": ws, "number": i, "connection_id": cid, "external_id": str(i),
             "subject": f"ticket {i} gen {gen}", "description": "x" * 200, "priority": "medium", "priority_rank": 2,
             "stage": "new", "psa_status_id": "10", "psa_status_name": "New", "source": "psa",
             "created_at": now, "updated_at": now, "psa_updated_at": now, "psa_hash": f"h{gen}-{i}",
             "version": gen} for i in range(1, n + 1)]


async def _upsert_bench(tmp: Path, bulk_n: int, orm_n: int) -> dict[str, Any]:
    url = f"sqlite:///{tmp / 'upsert.db'}"
    migrate.upgrade(url)
    db = Database(url)
    ws = await WorkspaceService(db).create(slug="bench", name="Bench")
    from store.tables import PsaConnection

    async with db.write(Scope.workspace(ws.id)) as s:  # type: ignore[arg-type]
        a, b = PsaConnection(workspace_id=ws.id, kind="connectwise", name="a"), PsaConnection(
            workspace_id=ws.id, kind="connectwise", name="b")
        s.add_all([a, b])
    scope = Scope.workspace(ws.id)  # type: ignore[arg-type]

    async def bulk(gen: int) -> float:
        rows = _rows(bulk_n, ws.id, a.id, gen)  # type: ignore[arg-type]
        start = time.perf_counter()
        async with db.write(scope) as s:
            res = await upsert_tickets(s, rows)
        assert len(res.written) == bulk_n, (len(res.written), len(res.fenced), res.bad)
        return time.perf_counter() - start

    async def per_row(gen: int) -> float:
        rows = _rows(orm_n, ws.id, b.id, gen)  # type: ignore[arg-type]
        start = time.perf_counter()
        async with db.write(scope) as s:
            for row in rows:
                got = (await s.exec(select(Ticket).where(Ticket.connection_id == b.id,
                                                         Ticket.external_id == row["external_id"]))).first()
                values = {k: v for k, v in row.items() if k != "number"} | {"number": row["number"] + 10_000_000}
                if got is None:
                    s.add(Ticket(**values))
                elif got.psa_hash != row["psa_hash"]:
                    for k, v in values.items():
                        setattr(got, k, v)
                await s.flush()
        return time.perf_counter() - start

    b_ins, b_upd = await bulk(1), await bulk(2)
    o_ins, o_upd = await per_row(1), await per_row(2)
    await db.dispose()
    bulk_rps = 2 * bulk_n / (b_ins + b_upd)
    orm_rps = 2 * orm_n / (o_ins + o_upd)
    res = {"bulk_rows": bulk_n, "bulk_insert_s": round(b_ins, 3), "bulk_update_s": round(b_upd, 3),
           "bulk_rows_per_s": round(bulk_rps), "orm_rows": orm_n, "orm_insert_s": round(o_ins, 3),
           "orm_update_s": round(o_upd, 3), "orm_rows_per_s": round(orm_rps), "speedup": round(bulk_rps / orm_rps, 1)}
    print(f"{'store: bulk upsert':<26} {res['bulk_rows_per_s']:>9} rows/s   per-row ORM merge "
          f"{res['orm_rows_per_s']:>6} rows/s   x{res['speedup']}", flush=True)
    return res


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tickets", type=int, default=10_000,
                    help="50,000 works but the first sync then takes ~6+ minutes here (see the module docstring)")
    ap.add_argument("--notes", type=int, default=2, help="notes per ticket in the fake")
    ap.add_argument("--concurrency", type=int, default=16, help="child fetches in flight")
    ap.add_argument("--bulk-rows", type=int, default=20_000)
    ap.add_argument("--orm-rows", type=int, default=2_000)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "sync.json"))
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        upsert = await _upsert_bench(tmp, args.bulk_rows, args.orm_rows)
        runs = await _sync_bench(args, tmp)
    result = {"benchmark": "sync", "tickets": args.tickets, "notes_per_ticket": args.notes,
              "child_concurrency": args.concurrency, "database": "sqlite (file, WAL)",
              "transport": "HTTP on 127.0.0.1, fake ConnectWise in a child process", **runs, "store_upsert": upsert,
              "measured_at": datetime.now(UTC).isoformat(timespec="seconds")}
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")  # noqa: ASYNC240 - once, at the end
    print(f"wrote {args.out}")


if __name__ == "__main__":
    asyncio.run(main())
