"""Outbox throughput and rate-limit adherence (issue 5).

Against the fake ConnectWise (in-process httpx transport) with 50 ms added to every PSA answer:

1. ops/s through the outbox worker (claim -> deliver -> record, SQLite file by default) with 1 and 4
   delivery slots, each against a baseline measured in the same run: the same note writes made directly
   through the connector with the same concurrency (no database, no outbox).
2. Rate-limit adherence: the fake answers 429 + Retry-After whenever a request exceeds a server-side
   token bucket (rate R, burst 2); the connection is configured with the same R. Reports the achieved
   rate as a share of R and the number of 429s (target: >= 90 % of R, zero 429s).

    .venv/bin/python bench/outbox.py [--ops 200] [--rate 20] [--db sqlite,postgres]

Writes bench/results/outbox.json and prints a short table. Loopback/in-process only; bounded (~1 min).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from sqlmodel import select

ROOT = Path(__file__).resolve().parents[1]
# bench/queue.py shadows the stdlib's `queue`; keep bench/ off the path.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))

from connectors.base import ConnectionConfig, NewNote, NoteVisibility  # noqa: E402
from connectors.connectwise.connector import ConnectWiseConnector  # noqa: E402
from core.connections import ConnectionService  # noqa: E402
from core.notify import NullNotifier  # noqa: E402
from core.outbox.ops import AddNote, enqueue, new_marker  # noqa: E402
from core.outbox.worker import OutboxWorker, WorkerConfig  # noqa: E402
from core.workspaces import WorkspaceService  # noqa: E402
from store import migrate  # noqa: E402
from store.crypto import CredentialCipher, generate_key  # noqa: E402
from store.db import Database, Scope  # noqa: E402
from store.tables import OutboxOp, PsaConnection, Ticket  # noqa: E402
from tests.fakes.connectwise import FakeConnectWise  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "outbox.json"
LATENCY = 0.050
PG_ADMIN = os.environ.get("DESKBRIDGE_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


class RateLimitedTransport(httpx.AsyncBaseTransport):
    """The PSA's own limiter in front of the fake: a token bucket; over it -> 429 with Retry-After."""

    def __init__(self, inner: httpx.AsyncBaseTransport, rate: float | None, burst: float = 2.0) -> None:
        self.inner, self.rate, self.burst = inner, rate, burst
        self.tokens, self.updated = burst, time.monotonic()
        self.throttled = 0
        self.writes: list[float] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        # Codebase discovery (/login/companyinfo) is an unauthenticated login endpoint, not the rate-limited API.
        if self.rate is not None and "/login/companyinfo" not in request.url.path:
            now = time.monotonic()
            self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
            self.updated = now
            if self.tokens < 1:
                self.throttled += 1
                wait = (1 - self.tokens) / self.rate
                return httpx.Response(429, headers={"Retry-After": f"{max(1, round(wait))}"},
                                      json={"code": "TooManyRequests", "message": "Rate limit exceeded"},
                                      request=request)
            self.tokens -= 1
        if request.method != "GET":
            self.writes.append(time.monotonic())
        return await self.inner.handle_async_request(request)


async def _database(kind: str) -> tuple[Database, str, Any]:
    if kind == "sqlite":
        tmp = tempfile.TemporaryDirectory()
        url = f"sqlite:///{tmp.name}/bench.db"
        await asyncio.to_thread(migrate.upgrade, url)
        return Database(url), url, tmp
    from sqlalchemy.engine import make_url

    base = make_url(PG_ADMIN).set(drivername="postgresql+psycopg")
    name = f"deskbridge_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = base.set(database=name).render_as_string(hide_password=False)
    await asyncio.to_thread(migrate.upgrade, url)

    class Drop:
        def cleanup(self) -> None:
            with admin.connect() as c:
                c.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()

    return Database(url), url, Drop()


async def _seed(db: Database, fake: FakeConnectWise, cipher: CredentialCipher, ops: int, settings: dict[str, Any],
                tickets: int = 50) -> int:
    ws = await WorkspaceService(db).create(slug=f"b{uuid.uuid4().hex[:6]}", name="bench")
    assert ws.id is not None
    board, company = next(iter(fake.boards)), next(iter(fake.companies))
    async with db.write(Scope.workspace(ws.id)) as s:
        conn = PsaConnection(workspace_id=ws.id, kind="connectwise", name="cw",
                             settings={**fake.settings(default_board_id=board), **settings},
                             credentials_ciphertext=cipher.encrypt(fake.credentials(), workspace_id=ws.id,
                                                                   kind="connectwise"))
        s.add(conn)
        await s.flush()
        rows = []
        for i in range(tickets):
            ext = fake.add_ticket(f"bench {i}", company={"id": company}, board={"id": board})["id"]
            t = Ticket(workspace_id=ws.id, connection_id=conn.id, external_id=str(ext), number=ext,
                       subject=f"bench {i}", priority="medium", stage="new")
            s.add(t)
            rows.append(t)
        await s.flush()
        for i in range(ops):
            t = rows[i % tickets]
            enqueue(s, workspace_id=ws.id, connection_id=conn.id, ticket_id=t.id, actor="bench",
                    payload=AddNote(text=f"bench note {i}", visibility="internal"))
    return ws.id


async def _open(db: Database) -> int:
    async with db.read(Scope.system_wide()) as s:
        return int((await s.exec(select(sa.func.count()).select_from(OutboxOp).where(
            OutboxOp.status.in_(["pending", "inflight"])))).one())  # type: ignore[attr-defined]


async def run_worker(kind: str, *, ops: int, slots: int, rate: float | None) -> dict[str, Any]:
    """Drain `ops` notes through an OutboxWorker; returns ops/s, 429s and the achieved write rate."""
    db, _url, tmp = await _database(kind)
    fake = FakeConnectWise()
    fake.record_bodies = False
    fake.slow(LATENCY)
    limiter = RateLimitedTransport(fake.transport(), rate)
    cipher = CredentialCipher.from_keys([generate_key()])
    conn_settings: dict[str, Any] = {"max_concurrency": slots}
    conn_settings.update({"rate_limit_per_second": rate, "rate_burst": 1} if rate else
                         {"rate_limit_per_second": 10_000, "rate_burst": 100})
    try:
        await _seed(db, fake, cipher, ops, conn_settings)
        connections = ConnectionService(db, cipher=cipher, checker=None,  # type: ignore[arg-type]
                                        factory=lambda cfg: ConnectWiseConnector(cfg, transport=limiter, timeout=5),
                                        known_kinds=frozenset({"connectwise"}))
        worker = OutboxWorker(db, connections, NullNotifier(),
                              config=WorkerConfig(concurrency=slots, lease_seconds=60, settle_seconds=10,
                                                  client_timeout=5, poll_seconds=0.05))
        t0 = time.monotonic()
        task = asyncio.create_task(worker.run())
        while await _open(db):  # noqa: ASYNC110 - polling the database is the point
            await asyncio.sleep(0.05)
        took = time.monotonic() - t0
        worker.stop()
        await task
        notes = sum(1 for n in fake.notes.values() if "[db:" in n["text"])
        assert notes == ops, f"expected {ops} notes at the fake, found {notes}"
        w = limiter.writes
        achieved = (len(w) - 1) / (w[-1] - w[0]) if len(w) > 1 else 0.0
        return {"ops": ops, "slots": slots, "seconds": round(took, 3), "ops_per_s": round(ops / took, 2),
                "throttled_429": limiter.throttled, "write_rate_per_s": round(achieved, 2)}
    finally:
        await db.dispose()
        await asyncio.to_thread(tmp.cleanup)


async def run_direct(*, ops: int, slots: int) -> dict[str, Any]:
    """Baseline: the same note writes straight through the connector, `slots` at a time (no outbox)."""
    fake = FakeConnectWise()
    fake.record_bodies = False
    fake.slow(LATENCY)
    board, company = next(iter(fake.boards)), next(iter(fake.companies))
    ticket = fake.add_ticket("direct", company={"id": company}, board={"id": board})["id"]
    cfg = ConnectionConfig(connection_id=1, workspace_id=1, kind="connectwise",
                           settings=fake.settings(default_board_id=board), credentials=fake.credentials())
    connector = ConnectWiseConnector(cfg, transport=fake.transport(), timeout=5)
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(ops):
        queue.put_nowait(i)

    async def lane() -> None:
        while not queue.empty():
            i = queue.get_nowait()
            await connector.add_note(NewNote(ticket_external_id=str(ticket), text=f"direct {i}",
                                             visibility=NoteVisibility.INTERNAL, marker=new_marker()))

    await connector.check_credentials()  # codebase discovery outside the timing, as the worker's is amortised
    t0 = time.monotonic()
    await asyncio.gather(*(lane() for _ in range(slots)))
    took = time.monotonic() - t0
    await connector.aclose()
    return {"ops": ops, "slots": slots, "seconds": round(took, 3), "ops_per_s": round(ops / took, 2)}


async def bench_db(db: str, ops: int, rate: float) -> dict[str, Any]:
    out: dict[str, Any] = {"throughput": [], "rate_limit": {}}
    for slots in (1, 4):
        n = ops if slots == 1 else ops * 2
        base = await run_direct(ops=n, slots=slots)
        got = await run_worker(db, ops=n, slots=slots, rate=None)
        out["throughput"].append({"slots": slots, "worker": got, "direct_baseline": base,
                                  "ratio_vs_direct": round(got["ops_per_s"] / base["ops_per_s"], 3),
                                  "ideal_ops_per_s": round(slots / LATENCY, 1)})
    rl = await run_worker(db, ops=int(rate * 10), slots=4, rate=rate)  # about ten seconds at the limit
    rl["configured_rate_per_s"] = rate
    rl["share_of_limit"] = round(rl["write_rate_per_s"] / rate, 3)
    out["rate_limit"] = rl
    return out


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ops", type=int, default=200)
    ap.add_argument("--rate", type=float, default=20.0, help="configured (and enforced) requests/second")
    ap.add_argument("--db", default="sqlite,postgres", help="sqlite, postgres or both (comma-separated)")
    args = ap.parse_args()

    out: dict[str, Any] = {"measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
                           "psa_latency_ms": int(LATENCY * 1000), "cpu_count": os.cpu_count(), "runs": {}}
    for db in [d.strip() for d in args.db.split(",") if d.strip()]:
        try:
            out["runs"][db] = await bench_db(db, args.ops, args.rate)
        except Exception as exc:  # noqa: BLE001 - e.g. no PostgreSQL here: say so, keep the other figures
            out["runs"][db] = {"skipped": f"{type(exc).__name__}: {exc}"[:300]}

    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=2) + "\n")
    for db, r in out["runs"].items():
        print(f"outbox bench ({db}, PSA latency {int(LATENCY * 1000)} ms)")
        if "skipped" in r:
            print(f"  skipped: {r['skipped']}")
            continue
        print(f"{'slots':>5} {'worker ops/s':>13} {'direct ops/s':>13} {'ratio':>6} {'ideal':>6}")
        for row in r["throughput"]:
            print(f"{row['slots']:>5} {row['worker']['ops_per_s']:>13} {row['direct_baseline']['ops_per_s']:>13} "
                  f"{row['ratio_vs_direct']:>6} {row['ideal_ops_per_s']:>6}")
        rl = r["rate_limit"]
        print(f"rate limit {rl['configured_rate_per_s']}/s: achieved {rl['write_rate_per_s']}/s = "
              f"{rl['share_of_limit']:.0%} of the limit, {rl['throttled_429']} x 429, {rl['ops']} ops in "
              f"{rl['seconds']} s")


if __name__ == "__main__":
    asyncio.run(main())
