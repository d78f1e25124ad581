"""Escalation-risk scoring time per 10,000 open tickets (core/ai/risk.py), against a same-run baseline.

A migrated SQLite file gets one workspace with 20 customers, 5,000 closed tickets whose SLA outcome is
known (the PSA's resolve-by date; every third one breached, with noise), 10,000 open tickets and two
assignment entries on each of 3,000 of them (the reassignment feature reads the timeline). The model is
trained once. Then, each repeated `--rounds` times (median reported):

- baseline: reading the same 10,000 open tickets' rows (the least any scoring pass must do);
- full pass: `RiskService.score(changed_only=False)`: features, scores, reasons, all scores written;
- steady pass: `score()` when nothing changed (the per-minute job's usual cost);
- changed pass: `score()` after 100 tickets changed.

Ratios are pass / baseline in this run. Figures go to bench/results/ai_risk.json.

    .venv/bin/python bench/ai_risk.py [--open 10000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
# bench/ holds a queue.py, which would shadow the standard library's `queue`; keep bench/ off the path.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))

from core.ai.risk import RiskService  # noqa: E402
from core.workspaces import WorkspaceService  # noqa: E402
from store import migrate  # noqa: E402
from store.db import Database, Scope  # noqa: E402
from store.enums import EntryKind, Stage  # noqa: E402
from store.tables import Customer, Ticket  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "ai_risk.json"
NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
PRIOS = ["critical", "high", "medium", "low"]


async def seed(db: Database, n_open: int, n_closed: int) -> int:
    ws = (await WorkspaceService(db).create(slug="bench", name="Bench MSP")).id
    assert ws is not None
    rnd = random.Random(11)
    async with db.write(Scope.workspace(ws)) as s:
        customers = [Customer(workspace_id=ws, identifier=f"C{i}", name=f"Customer {i}") for i in range(20)]
        s.add_all(customers)
        await s.flush()
    cids = [c.id for c in customers]
    t0 = NOW - timedelta(days=200)
    closed, opened = [], []
    for i in range(n_closed):
        created = t0 + timedelta(minutes=50 * i)
        prio = rnd.choice(PRIOS)
        breach = (prio in ("critical", "high")) != (rnd.random() < 0.2)
        closed.append({"workspace_id": ws, "number": i + 1, "subject": f"closed {i}", "priority": prio,
                       "priority_rank": PRIOS.index(prio), "stage": Stage.CLOSED.value, "customer_id": rnd.choice(cids),
                       "source": rnd.choice(["email", "portal", "phone"]), "created_at": created,
                       "updated_at": created + timedelta(hours=6), "closed_at": created + timedelta(hours=6),
                       "psa_resolve_by": created + timedelta(hours=4 if breach else 9), "version": 1})
    for i in range(n_open):
        created = NOW - timedelta(minutes=rnd.randint(10, 60 * 24 * 5))
        prio = rnd.choice(PRIOS)
        opened.append({"workspace_id": ws, "number": 100_000 + i, "subject": f"open {i}", "priority": prio,
                       "priority_rank": PRIOS.index(prio), "stage": rnd.choice(["new", "in_progress", "waiting"]),
                       "customer_id": rnd.choice(cids), "source": rnd.choice(["email", "portal", "phone"]),
                       "created_at": created, "updated_at": created + timedelta(minutes=5), "version": 1})
    async with db.write(Scope.workspace(ws)) as s:
        for rows in (closed, opened):
            for start in range(0, len(rows), 2000):
                await s.execute(sa.insert(Ticket), rows[start:start + 2000])
        ids = (await s.execute(sa.select(Ticket.id).where(Ticket.number >= 100_000).limit(3000))).scalars().all()
        entries = [{"workspace_id": ws, "ticket_id": tid, "kind": EntryKind.ASSIGNMENT.value, "origin": "psa",
                    "body": "", "data": {}, "occurred_at": NOW - timedelta(hours=k), "recorded_at": NOW}
                   for tid in ids for k in (1, 2)]
        from store.tables import TimelineEntry

        for start in range(0, len(entries), 2000):
            await s.execute(sa.insert(TimelineEntry), entries[start:start + 2000])
    return ws


async def timed(fn) -> tuple[float, object]:  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    out = await fn()
    return time.perf_counter() - started, out


async def run(n_open: int, n_closed: int, rounds: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
        migrate.upgrade(url)
        db = Database(url)
        try:
            ws = await seed(db, n_open, n_closed)
            risk = RiskService(db, clock=lambda: NOW)
            train_s, (version, metrics) = await timed(lambda: risk.train(ws))
            base, full, steady, changed = [], [], [], []
            rnd = random.Random(5)
            for _ in range(rounds):
                base.append((await timed(lambda: risk._rows(ws, Ticket.is_open.is_(True))))[0])  # type: ignore[attr-defined]
                t, scored = await timed(lambda: risk.score(ws, changed_only=False))
                assert scored == n_open, scored
                full.append(t)
                t, scored = await timed(lambda: risk.score(ws))
                assert scored == 0, scored
                steady.append(t)
                async with db.write(Scope.workspace(ws)) as s:
                    ids = (await s.execute(sa.select(Ticket.id).where(Ticket.number >= 100_000))).scalars().all()
                    pick = rnd.sample(list(ids), 100)
                    await s.execute(sa.update(Ticket).where(Ticket.id.in_(pick)).values(version=Ticket.version + 1))  # type: ignore[union-attr]
                t, scored = await timed(lambda: risk.score(ws))
                assert scored == 100, scored
                changed.append(t)
        finally:
            await db.dispose()
    med = {k: statistics.median(v) for k, v in (("baseline", base), ("full", full), ("steady", steady),
                                                ("changed_100", changed))}
    per10k = 10_000 / n_open
    return {
        "what": "escalation-risk scoring of open tickets (core/ai/risk.py), SQLite, median of rounds",
        "data": "synthetic tickets made by this script (seeded): a speed figure only; the model's quality is "
                "measured on the UCI incident log in bench/results/ai.json (escalation)",
        "split": "none needed: nothing here is scored against a label",
        "open_tickets": n_open, "closed_history": n_closed, "rounds": rounds,
        "model": {"version": version, "trained_on": metrics["trained_on"], "train_seconds": round(train_s, 2)},
        "seconds_per_10k_open": {k: round(v * per10k, 3) for k, v in med.items()},
        "ratio_to_baseline": {k: round(v / med["baseline"], 2) for k, v in med.items() if k != "baseline"},
        "baseline": "reading the same open tickets' rows (RiskService._rows), measured in this run",
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                    "load_avg_1m": round(os.getloadavg()[0], 2)},
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--open", type=int, default=10_000)
    parser.add_argument("--closed", type=int, default=5_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    result = asyncio.run(run(args.open, args.closed, args.rounds))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
