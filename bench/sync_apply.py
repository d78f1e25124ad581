"""CPU of the sync apply path alone: `SyncEngine.process` (and below) for the batches a callback refresh writes.

Issue 20 item 1: at 20 edits/s with callbacks the refresh pool's apply (`RefreshPool._work` in
bench/e2e_profile.py) was the event loop's largest task. This bench isolates it: the fake ConnectWise (in-process
transport) gets the e2e bench's edits (status, reassignment, customer note, new ticket, in turn), the changed
tickets and their children are read from it through the real connector *outside* the timed part, then
`engine.process(..., emit=True, force=True)` (what `refresh_tickets` runs) is timed on the prefetched records:
process CPU (every thread: the event loop and the SQLite connection threads) and the loop thread's own CPU, per
ticket. A second pass re-applies every batch unchanged (a coalesced "one more" refresh of a ticket already
current), also timed.

    .venv/bin/python bench/sync_apply.py                         # ~30 s, SQLite file in a temp dir
    .venv/bin/python bench/sync_apply.py --code /work/wt-base    # another tree's product code, same bench
    .venv/bin/python bench/sync_apply.py --db-url postgresql://postgres@127.0.0.1:5432/postgres   # its own db
    .venv/bin/python bench/sync_apply.py --cprofile /tmp/apply.prof   # cProfile of the timed part (loop thread)

Prints one JSON document (`--out FILE` writes it too).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
if "--code" in sys.argv:
    from bench._e2e_ab import shim

    sys.path.insert(0, shim(sys.argv[sys.argv.index("--code") + 1]))

import argparse  # noqa: E402
import asyncio  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from collections.abc import Sequence  # noqa: E402
from typing import Any  # noqa: E402

import sqlalchemy as sa  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

KINDS = ("status", "assign", "note", "new")
STATUSES = ("In Progress", "Waiting Customer", "New")


class Replay:
    """A connector answering child reads from records read before the timed part (no HTTP in the timing)."""

    def __init__(self, real: Any, children: dict[str, Any]) -> None:
        self.capabilities = real.capabilities
        self.kind = real.kind
        self._children = children

    async def list_notes(self, ext: str) -> Sequence[Any]:
        return self._children[ext].notes

    async def list_time_entries(self, ext: str) -> Sequence[Any]:
        return self._children[ext].time_entries

    async def list_attachments(self, ext: str) -> Sequence[Any]:
        return self._children[ext].attachments


def _pg_database(base: str) -> tuple[str, Any]:
    """A fresh PostgreSQL database for this run (dropped at the end)."""
    url = make_url(base).set(drivername="postgresql+psycopg")
    name = f"deskbridge_apply_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(sa.text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as c:
            c.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    return url.set(database=name).render_as_string(hide_password=False), drop


async def run(args: argparse.Namespace) -> dict[str, Any]:
    from connectors.registry import Registry
    from core.connections import ConnectionService
    from core.notify import RecordingNotifier
    from core.sync.engine import SyncEngine
    from core.workspaces import WorkspaceService
    from store import migrate
    from store.crypto import CredentialCipher, generate_key
    from store.db import Database
    from tests.core.sync.test_engine import seed
    from tests.fakes.connectwise import FakeConnectWise

    tmp = tempfile.mkdtemp(prefix="sync_apply_")
    drop = None
    if args.db_url:
        url, drop = _pg_database(args.db_url)
    else:
        url = f"sqlite:///{tmp}/apply.db"
    migrate.upgrade(url)
    db = Database(url)
    try:
        ws = await WorkspaceService(db).create(slug="bench", name="Bench MSP")
        assert ws.id is not None
        fake = FakeConnectWise()
        ids = seed(fake, args.tickets)
        members = sorted(fake.members)[1:]
        registry = Registry(transport=fake.transport())
        connections = ConnectionService(db, cipher=CredentialCipher.from_keys([generate_key()]),
                                        checker=registry.check, factory=registry.build, known_kinds=registry.kinds())
        conn, _ = await connections.add(ws.id, kind="connectwise", name="cw", settings=fake.settings(page_size=100),
                                        credentials=fake.credentials())
        notifier = RecordingNotifier()
        engine = SyncEngine(db, connections, notifier, clock=lambda: fake.clock.now)
        await engine.run(conn.id)  # type: ignore[arg-type]
        row = await engine.connection(conn.id)  # type: ignore[arg-type]
        psa = connections.shared(row)
        target = engine.target(row, psa)

        batches: list[tuple[list[Any], Replay]] = []
        n = 0
        for _ in range(args.batches):
            exts: list[str] = []
            for _ in range(args.batch):
                kind, n = KINDS[n % len(KINDS)], n + 1
                tid = ids[(n * 7) % len(ids)]
                if kind == "status":
                    fake.edit_ticket(tid, status={"name": STATUSES[n % len(STATUSES)]})
                elif kind == "assign":
                    fake.edit_ticket(tid, owner={"id": members[n % len(members)]})
                elif kind == "note":
                    fake.add_note(tid, f"customer reply n{n}x", contact_id=sorted(fake.contacts)[n % 3])
                else:
                    tid = fake.add_ticket(f"Bench new ticket n{n}x", board={"id": min(fake.boards)})["id"]
                    ids.append(tid)
                exts.append(str(tid))
                fake.clock.advance(1)
            exts = list(dict.fromkeys(exts))
            tickets = list(await psa.get_tickets(exts))  # type: ignore[attr-defined]
            children, _gone = await engine.fetch_children(psa, exts, {})
            batches.append((tickets, Replay(psa, children)))
        await psa.aclose()

        def timed() -> tuple[float, float]:
            return time.process_time(), time.thread_time()

        async def apply_all(label: str) -> dict[str, Any]:
            per: list[float] = []
            loop_total = proc_total = 0.0
            count = 0
            events = len(notifier.events)
            for tickets, replay in batches:
                p0, t0 = timed()
                await engine.process(replay, target, tickets, {}, emit=True, force=True)  # type: ignore[arg-type]
                p1, t1 = timed()
                proc_total += p1 - p0
                loop_total += t1 - t0
                count += len(tickets)
                per.append((p1 - p0) * 1000 / max(len(tickets), 1))
            return {"pass": label, "tickets": count, "batches": len(batches),
                    "process_cpu_ms_per_ticket": round(proc_total * 1000 / count, 3),
                    "loop_cpu_ms_per_ticket": round(loop_total * 1000 / count, 3),
                    "median_batch_process_ms_per_ticket": round(statistics.median(per), 3),
                    "events": len(notifier.events) - events}

        prof = None
        if args.cprofile:
            import cProfile

            prof = cProfile.Profile()
            prof.enable()
        first = await apply_all("changed")
        again = await apply_all("unchanged (forced again)")
        if prof is not None:
            prof.disable()
            prof.dump_stats(args.cprofile)
        await connections.aclose()
        return {"db": "postgresql" if args.db_url else "sqlite", "batch": args.batch, "batches": args.batches,
                "seed_tickets": args.tickets, "code": args.code or "this tree",
                "load_average_1m": os.getloadavg()[0], "passes": [first, again]}
    finally:
        await db.dispose()
        if drop is not None:
            drop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tickets", type=int, default=60, help="tickets seeded (and synced) before the edits")
    ap.add_argument("--batch", type=int, default=5, help="edits per refresh batch")
    ap.add_argument("--batches", type=int, default=60)
    ap.add_argument("--db-url", help="PostgreSQL server URL (a database is created and dropped); default SQLite")
    ap.add_argument("--code", help="run this directory's product code with this tree's bench")
    ap.add_argument("--cprofile", help="cProfile of the timed passes written here")
    ap.add_argument("--out", help="also write the JSON here")
    args = ap.parse_args()
    load0 = os.getloadavg()[0]
    result = asyncio.run(run(args))
    result["load_average_1m_before"] = load0
    text = json.dumps(result, indent=1)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
