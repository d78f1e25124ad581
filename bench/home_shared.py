"""The hot-path cost of "who has their App Home open" read from the store (core/chat/home_views.py), measured
against the per-process state it replaced, in the same run.

What each PSA change costs before it looks for whose Home it touches (bot/slack/notifier.py `_homes`):
`HomeRefresher.fresh()` then `any_open()` and `is_open(team, user)`, at `--rate` changes/s (bench/e2e_latency.py
drives 20 edits/s) for `--seconds`, real time, on a database holding `--homes` Homes open and `--stale` opens
past the 15 min window. Sides, alternating per round:
  - local:    shared=None, the per-process state of session 10 (the baseline: no query at all);
  - shared:   the store, snapshot cached 2 s (this tree): at most one query per 2 s;
  - uncached: the store read on every change (ttl 0): what the cache saves.
Reports CPU µs per change (process time: the machine is shared, wall figures are noisy), queries made, the
ratios shared/local and uncached/local, and the load average. Figures go to bench/results/home_shared.json.

    .venv/bin/python bench/home_shared.py [--rate 20] [--seconds 15] [--rounds 2] [--homes 50] [--stale 2000]
    [--postgres postgresql://postgres@127.0.0.1:5432/postgres]   (a new database there, dropped after;
    default: a SQLite file in a temp directory)
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

ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]  # bench/queue.py shadows queue
sys.path.insert(0, str(ROOT))

from bot.slack.home import HOME_OPEN_S, HomeRefresher  # noqa: E402
from core.chat.home_views import HomeViews  # noqa: E402
from store import migrate  # noqa: E402
from store.db import Database, Scope  # noqa: E402
from store.tables import Workspace  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "home_shared.json"
TEAM = "T_BENCH"


async def seed(db: Database, homes: int, stale: int) -> int:
    async with db.write(Scope.system_wide()) as s:
        ws = Workspace(slug=f"bench-home-{time.time_ns()}", name="bench")
        s.add(ws)
        await s.flush()
        wid = int(ws.id)  # type: ignore[arg-type]
    views = HomeViews(db)
    now = datetime.now(UTC)
    for i in range(stale):  # opened long ago: skipped by every read (the next write deletes them; none here)
        await views.save(wid, "slack", TEAM, f"U_OLD{i}", opened_at=now - timedelta(hours=2), page=None,
                         open_for=10 * 86400)
    for i in range(homes):
        await views.save(wid, "slack", TEAM, f"U_OPEN{i}", opened_at=now, page=("", f"c{i}") if i % 2 else None,
                         open_for=10 * 86400)
    return wid


async def side(db: Database, name: str, rate: float, seconds: float, homes: int) -> dict[str, float]:
    async def nothing(_ws: int, _team: str, _user: str) -> None:
        return None

    views = None if name == "local" else HomeViews(db, ttl=0.0 if name == "uncached" else 2.0)
    refresher = HomeRefresher(nothing, shared=views)
    if views is None:
        for i in range(homes):  # the same Homes, opened in this process
            refresher.opened(TEAM, f"U_OPEN{i}")
    n, hits = int(rate * seconds), 0
    cpu, start = time.process_time(), time.monotonic()
    for i in range(n):
        due = start + i / rate
        if due > time.monotonic():
            await asyncio.sleep(due - time.monotonic())
        await refresher.fresh()
        if refresher.any_open() and refresher.is_open(TEAM, f"U_OPEN{i % (2 * homes)}"):
            hits += 1
    cpu = time.process_time() - cpu
    return {"cpu_us_per_change": cpu / n * 1e6, "queries": 0 if views is None else views.reads, "changes": n,
            "open_found": hits, "wall_s": time.monotonic() - start}


def fresh_postgres(server: str) -> tuple[str, object]:
    """A new database on that PostgreSQL server for this run (dropped after): nothing of the bench stays there."""
    import uuid

    import sqlalchemy as sa
    from sqlalchemy.engine import make_url

    base = make_url(server).set(drivername="postgresql+psycopg")
    name = f"deskbridge_bench_home_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    return base.set(database=name).render_as_string(hide_password=False), drop


async def run(args: argparse.Namespace) -> dict:
    drop = None
    if args.postgres:
        url, drop = fresh_postgres(args.postgres)
    else:
        url = f"sqlite:///{tempfile.mkdtemp(prefix='deskbridge-bench-home-')}/bench.db"
    try:
        return await _run(args, url)
    finally:
        if drop is not None:
            drop()  # type: ignore[operator]


async def _run(args: argparse.Namespace, url: str) -> dict:
    await asyncio.to_thread(migrate.upgrade, url)
    db = Database(url)
    await seed(db, args.homes, args.stale)
    runs: dict[str, list[dict[str, float]]] = {k: [] for k in ("local", "shared", "uncached")}
    for _ in range(args.rounds):
        for name in runs:
            runs[name].append(await side(db, name, args.rate, args.seconds, args.homes))
    await db.dispose()
    out: dict = {"database": "postgresql" if url.startswith("postgresql") else "sqlite"}
    for name, rs in runs.items():
        out[name] = {"cpu_us_per_change": [round(r["cpu_us_per_change"], 1) for r in rs],
                     "cpu_us_median": round(statistics.median(r["cpu_us_per_change"] for r in rs), 1),
                     "queries_per_run": [r["queries"] for r in rs], "changes_per_run": rs[0]["changes"],
                     "open_found_per_run": [r["open_found"] for r in rs]}
    base = out["local"]["cpu_us_median"] or 1e-9
    out["ratio_shared_vs_local_cpu"] = round(out["shared"]["cpu_us_median"] / base, 2)
    out["ratio_uncached_vs_local_cpu"] = round(out["uncached"]["cpu_us_median"] / base, 2)
    out["note"] = ("open_found must be equal on every side (the same Homes count as open); shared queries per run "
                   "<= seconds / 2 + 1")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rate", type=float, default=20.0, help="changes per second (bench/e2e_latency.py: 20)")
    ap.add_argument("--seconds", type=float, default=15.0)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--homes", type=int, default=50, help="Homes open")
    ap.add_argument("--stale", type=int, default=2000, help="opens past the 15 min window, still stored")
    ap.add_argument("--postgres", default="", metavar="URL",
                    help="run on a new database of this PostgreSQL server, dropped after (default: a SQLite file)")
    ap.add_argument("--out", default=str(RESULTS))
    args = ap.parse_args()
    load0 = os.getloadavg()[0]
    result = asyncio.run(run(args))
    result.update({"rate": args.rate, "seconds": args.seconds, "rounds": args.rounds, "homes": args.homes,
                   "stale": args.stale, "open_window_s": HOME_OPEN_S,
                   "load_avg_1m": [round(load0, 2), round(os.getloadavg()[0], 2)],
                   "when": datetime.now(UTC).isoformat(timespec="seconds")})
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
