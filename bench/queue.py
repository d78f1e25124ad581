"""Queue latency on 1,000,000 tickets across 500 customers (issue: Foundation).

Measures, on SQLite and on PostgreSQL, the first page (25 rows) of
  - a customer's open queue (the default view),
  - a customer's queue filtered to one stage (stage:waiting),
  - a technician's "mine" view,
through QueueService (the code every surface calls) and, side by side on the same connection pool and
the same indexes, a hand-written SQL query returning the same rows and names. Reports p50/p99 and the
ratio service/hand-written. Figures go to bench/results/queue.json.

    .venv/bin/python bench/queue.py [--tickets 1000000] [--iterations 300] [--db sqlite,postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sqlite3
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
# This file is named like the stdlib's `queue`; keep bench/ off the path so imports find the real one.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))

from core.context import Actor  # noqa: E402
from core.queue import QueueFilter, QueueService  # noqa: E402
from store import migrate  # noqa: E402
from store.db import Database  # noqa: E402
from store.enums import Origin, Priority, Stage  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "queue.json"
PG_ADMIN = os.environ.get("DESKBRIDGE_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
STAGES = ["new", "in_progress", "waiting", "resolved", "closed", "closed", "closed", "closed", "closed", "resolved"]
PRIOS = list(Priority)
T0 = datetime(2024, 11, 1, tzinfo=UTC)

HAND_SQL = """
SELECT t.id, t.number, t.subject, t.priority, t.stage, t.psa_status_name, t.created_at, t.updated_at,
       c.name AS customer_name, m.name AS member_name
FROM ticket t
LEFT JOIN customer c ON c.id = t.customer_id AND c.workspace_id = :ws
LEFT JOIN member m ON m.id = t.assignee_member_id AND m.workspace_id = :ws
WHERE t.workspace_id = :ws AND t.deleted_at IS NULL AND {cond}
ORDER BY t.created_at, t.id
LIMIT 26
"""


def rows(n: int, customers: int, members: int, seed: int = 7):
    rnd = random.Random(seed)
    span = 730 * 86400
    for i in range(1, n + 1):
        stage = STAGES[rnd.randrange(len(STAGES))]
        p = PRIOS[rnd.randrange(4)]
        created = T0 + timedelta(seconds=rnd.randrange(span))
        assignee = rnd.randrange(1, members + 1) if rnd.random() < 0.85 else None
        yield (1, i, rnd.randrange(1, customers + 1), f"Ticket {i}: {rnd.choice(['VPN', 'printer', 'email', 'laptop'])}",
               "", p.value, p.rank, stage, stage.replace("_", " ").title(), assignee, "psa", created,
               created + timedelta(hours=rnd.randrange(1, 500)), 1)


COLS = ("workspace_id, number, customer_id, subject, description, priority, priority_rank, stage, psa_status_name, "
        "assignee_member_id, source, created_at, updated_at, version")


def seed_sqlite(path: Path, n: int, customers: int, members: int) -> None:
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=OFF")
    with conn:
        conn.execute("INSERT INTO workspace (id, slug, name, timezone, next_ticket_number, settings, created_at) "
                     "VALUES (1, 'bench', 'Bench', 'UTC', 1, '{}', '2024-01-01 00:00:00')")
        conn.executemany("INSERT INTO customer (workspace_id, identifier, name, active, created_at) VALUES "
                         "(1, ?, ?, 1, '2024-01-01 00:00:00')",
                         [(f"C{i:03}", f"Customer {i}") for i in range(1, customers + 1)])
        conn.executemany("INSERT INTO member (workspace_id, name, is_admin, active, created_at) VALUES "
                         "(1, ?, 0, 1, '2024-01-01 00:00:00')", [(f"Tech {i}",) for i in range(1, members + 1)])
        conn.executemany(
            f"INSERT INTO ticket ({COLS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            ((*r[:11], r[11].replace(tzinfo=None).isoformat(" "), r[12].replace(tzinfo=None).isoformat(" "), r[13])
             for r in rows(n, customers, members)))
    conn.execute("ANALYZE")
    conn.close()


def seed_pg(url: str, n: int, customers: int, members: int) -> None:
    import psycopg

    with psycopg.connect(url.replace("postgresql+psycopg", "postgresql"), autocommit=False) as conn:
        with conn.cursor() as cur:
            cur.execute("INSERT INTO workspace (id, slug, name, timezone, next_ticket_number, settings, created_at) "
                        "VALUES (1, 'bench', 'Bench', 'UTC', 1, '{}', now())")
            cur.executemany("INSERT INTO customer (workspace_id, identifier, name, active, created_at) "
                            "VALUES (1, %s, %s, true, now())",
                            [(f"C{i:03}", f"Customer {i}") for i in range(1, customers + 1)])
            cur.executemany("INSERT INTO member (workspace_id, name, is_admin, active, created_at) "
                            "VALUES (1, %s, false, true, now())", [(f"Tech {i}",) for i in range(1, members + 1)])
            with cur.copy(f"COPY ticket ({COLS}) FROM STDIN") as copy:
                for r in rows(n, customers, members):
                    copy.write_row(r)
        conn.commit()
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE ticket")


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


async def measure(db: Database, customers: int, members: int, iterations: int) -> dict:
    queue = QueueService(db)
    rnd = random.Random(11)
    cases = {
        "customer_open_queue": (lambda: QueueFilter(customer_id=rnd.randrange(1, customers + 1)),
                                "t.customer_id = :cid AND t.is_open = true", "cid"),
        "customer_stage_waiting": (lambda: QueueFilter(customer_id=rnd.randrange(1, customers + 1),
                                                       stages=(Stage.WAITING,)),
                                   "t.customer_id = :cid AND t.stage = 'waiting'", "cid"),
        "technician_mine": (None, "t.assignee_member_id = :mid AND t.is_open = true", "mid"),
    }
    out: dict = {}
    for name, (make_filter, cond, param) in cases.items():
        sql = sa.text(HAND_SQL.format(cond=cond))
        svc_times, sql_times = [], []
        for i in range(iterations + 20):
            key = rnd.randrange(1, (customers if param == "cid" else members) + 1)
            actor = Actor(workspace_id=1, origin=Origin.API, member_id=key, display="bench")
            # Interleave the two so cache warmth and machine noise hit both alike.
            t = time.perf_counter()
            if make_filter is None:
                page = await queue.mine(actor, limit=25)
            else:
                f = make_filter()
                f = QueueFilter(customer_id=key, stages=f.stages)
                page = await queue.list(actor, f, limit=25)
            svc = time.perf_counter() - t
            t = time.perf_counter()
            async with db.engine.connect() as conn:
                hand = (await conn.execute(sql, {"ws": 1, param: key})).all()
            raw = time.perf_counter() - t
            assert [p.number for p in page.items] == [r.number for r in hand[:25]], name
            if i >= 20:
                svc_times.append(svc * 1000)
                sql_times.append(raw * 1000)
        out[name] = {
            "service_p50_ms": round(statistics.median(svc_times), 3),
            "service_p99_ms": round(pct(svc_times, 0.99), 3),
            "hand_sql_p50_ms": round(statistics.median(sql_times), 3),
            "hand_sql_p99_ms": round(pct(sql_times, 0.99), 3),
            "ratio_p50": round(statistics.median(svc_times) / statistics.median(sql_times), 2),
        }
    return out


async def explain(db: Database) -> list[str]:
    sql = HAND_SQL.format(cond="t.customer_id = 7 AND t.is_open = true").replace(":ws", "1")
    prefix = "EXPLAIN QUERY PLAN " if db.is_sqlite else "EXPLAIN "
    async with db.engine.connect() as conn:
        return [" ".join(str(c) for c in r) for r in (await conn.execute(sa.text(prefix + sql))).all()]


def prepare(kind: str, args: argparse.Namespace) -> tuple[str, float]:
    """A fresh, seeded database of `kind`; returns its URL and the seeding time."""
    t = time.perf_counter()
    if kind == "sqlite":
        path = Path("/tmp/deskbridge-bench/queue.db")
        path.parent.mkdir(parents=True, exist_ok=True)
        for suffix in ("", "-wal", "-shm"):
            Path(str(path) + suffix).unlink(missing_ok=True)
        url = f"sqlite:///{path}"
        migrate.upgrade(url)
        seed_sqlite(path, args.tickets, args.customers, args.members)
    else:
        admin = sa.create_engine(PG_ADMIN.replace("postgresql://", "postgresql+psycopg://"), isolation_level="AUTOCOMMIT")
        with admin.connect() as c:
            c.execute(sa.text('DROP DATABASE IF EXISTS "deskbridge_bench_queue" WITH (FORCE)'))
            c.execute(sa.text('CREATE DATABASE "deskbridge_bench_queue"'))
        admin.dispose()
        url = PG_ADMIN.rsplit("/", 1)[0] + "/deskbridge_bench_queue"
        migrate.upgrade(url)
        seed_pg(url, args.tickets, args.customers, args.members)
    return url, time.perf_counter() - t


async def run_one(kind: str, url: str, seed_s: float, args: argparse.Namespace) -> dict:
    db = Database(url)
    try:
        figures = await measure(db, args.customers, args.members, args.iterations)
        plan = await explain(db)
    finally:
        await db.dispose()
    if kind == "postgres":
        admin = sa.create_engine(PG_ADMIN.replace("postgresql://", "postgresql+psycopg://"), isolation_level="AUTOCOMMIT")
        with admin.connect() as c:
            c.execute(sa.text('DROP DATABASE IF EXISTS "deskbridge_bench_queue" WITH (FORCE)'))
        admin.dispose()
    return {"seed_seconds": round(seed_s, 1), "cases": figures, "plan_customer_open_queue": plan}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tickets", type=int, default=1_000_000)
    ap.add_argument("--customers", type=int, default=500)
    ap.add_argument("--members", type=int, default=50)
    ap.add_argument("--iterations", type=int, default=300)
    ap.add_argument("--db", default="sqlite,postgres")
    args = ap.parse_args()
    result = {"benchmark": "queue", "tickets": args.tickets, "customers": args.customers, "members": args.members,
              "iterations": args.iterations, "page_size": 25, "target": "p50 < 10 ms; service within 2x of hand SQL",
              "measured_at": datetime.now(UTC).isoformat(timespec="seconds"), "databases": {}}
    for kind in args.db.split(","):
        print(f"== {kind}: seeding {args.tickets:,} tickets ...", flush=True)
        url, seed_s = prepare(kind, args)
        result["databases"][kind] = asyncio.run(run_one(kind, url, seed_s, args))
        for case, f in result["databases"][kind]["cases"].items():
            print(f"  {case:<24} service p50 {f['service_p50_ms']:7.3f} ms  p99 {f['service_p99_ms']:7.3f} ms   "
                  f"hand SQL p50 {f['hand_sql_p50_ms']:7.3f} ms   ratio {f['ratio_p50']:.2f}x")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"written to {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
