"""`bench/e2e_latency.py --trace`: where a write from chat spends its time on the way to the PSA.

Wraps (in this process only, for the chat -> PSA phase) the outbox's claim, mark_sent and record, and every
SQLite write transaction (time waiting for this process's write turn, time holding it). Per op: enqueued
(the op row's created_at) -> claimed -> marked sent (just before the PSA call) -> recorded. A profiling aid:
the wrappers add a few microseconds per call, nothing that changes what is measured.
"""

from __future__ import annotations

import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC
from pathlib import Path
from typing import Any


def _pcts(values: list[float]) -> dict[str, Any]:
    if not values:
        return {"n": 0}
    v = sorted(values)

    def p(q: float) -> float:
        return round(v[min(len(v) - 1, max(0, round(q / 100 * len(v)) - 1))] * 1000, 1)

    return {"n": len(v), "p50_ms": p(50), "p95_ms": p(95), "p99_ms": p(99), "mean_ms": round(sum(v) / len(v) * 1000, 1)}


class Trace:
    def __init__(self) -> None:
        self.on = False
        self.ops: dict[int, dict[str, float]] = {}
        self.writes: list[tuple[float, float, str]] = []  # (wait for the turn, held, first caller)
        self.claims: list[tuple[float, float, int]] = []  # (start, end, ops claimed)
        self._undo: list[tuple[Any, str, Any]] = []
        self.bursts: list[float] = []  # when each burst of chat requests was written (monotonic)

    def install(self) -> None:
        import core.outbox.queries as q
        import core.outbox.worker as w
        from store.db import Database

        trace = self
        claim, mark_sent, record, write = q.claim, q.mark_sent, w.record, Database.write

        async def t_claim(*a: Any, **k: Any) -> Any:
            t0 = time.monotonic()
            got = await claim(*a, **k)
            t1 = time.monotonic()
            if trace.on:
                trace.claims.append((t0, t1, len(got)))
                for c in got:
                    trace.ops.setdefault(int(c.op.id), {}).update(
                        created=_mono(c.op.created_at), claimed=t1, kind=hash(c.op.kind))
            return got

        async def t_mark(db: Any, op: Any, **k: Any) -> Any:
            ok = await mark_sent(db, op, **k)
            if trace.on:
                trace.ops.setdefault(int(op.id), {})["marked"] = time.monotonic()
            return ok

        async def t_record(db: Any, op: Any, *a: Any, **k: Any) -> Any:
            got = await record(db, op, *a, **k)
            if trace.on:
                trace.ops.setdefault(int(op.id), {})["recorded"] = time.monotonic()
            return got

        @asynccontextmanager
        async def t_write(db: Any, scope: Any) -> AsyncIterator[Any]:
            t0 = time.monotonic()
            async with write(db, scope) as session:
                t1 = time.monotonic()  # this process's write turn taken, the transaction begun
                yield session
            if trace.on:
                caller = _caller(sys._getframe(1))
                trace.writes.append((t1 - t0, time.monotonic() - t1, caller))

        for owner, name, fn in ((q, "claim", t_claim), (q, "mark_sent", t_mark), (w, "record", t_record),
                                (Database, "write", t_write)):
            self._undo.append((owner, name, getattr(owner, name)))
            setattr(owner, name, fn)

    def uninstall(self) -> None:
        for owner, name, fn in reversed(self._undo):
            setattr(owner, name, fn)
        self._undo.clear()

    def summary(self) -> dict[str, Any]:
        stages: dict[str, list[float]] = {"request_written_to_enqueued": [], "enqueued_to_claimed": [], "claimed_to_marked": [],
                                          "marked_to_recorded (PSA call + record)": []}
        for o in self.ops.values():
            if {"created", "claimed", "marked", "recorded"} <= o.keys():
                sent = max((b for b in self.bursts if b <= o["created"]), default=None)
                if sent is not None:
                    stages["request_written_to_enqueued"].append(o["created"] - sent)
                stages["enqueued_to_claimed"].append(o["claimed"] - o["created"])
                stages["claimed_to_marked"].append(o["marked"] - o["claimed"])
                stages["marked_to_recorded (PSA call + record)"].append(o["recorded"] - o["marked"])
        by_caller: dict[str, list[tuple[float, float]]] = {}
        for wait, held, caller in self.writes:
            by_caller.setdefault(caller, []).append((wait, held))
        return {
            "ops": len(self.ops), "stages": {k: _pcts(v) for k, v in stages.items()},
            "claims": {"calls": len(self.claims), "empty": sum(1 for c in self.claims if not c[2]),
                       "duration": _pcts([c[1] - c[0] for c in self.claims])},
            "write_transactions": {"n": len(self.writes), "turn_wait": _pcts([w[0] for w in self.writes]),
                                   "held": _pcts([w[1] for w in self.writes]),
                                   "by_caller": {k: {"n": len(v), "wait": _pcts([x[0] for x in v]),
                                                     "held": _pcts([x[1] for x in v])}
                                                 for k, v in sorted(by_caller.items(), key=lambda kv: -len(kv[1]))}},
        }


def _mono(wall: Any) -> float:
    """A stored UTC datetime on this process's monotonic clock."""
    if wall.tzinfo is None:
        wall = wall.replace(tzinfo=UTC)
    return time.monotonic() - (time.time() - wall.timestamp())


def _caller(frame: Any) -> str:
    """The first function up the stack outside contextlib, this module and the Database (who wrote)."""
    for _ in range(10):
        if frame is None:
            break
        name = frame.f_code.co_filename
        if "contextlib" not in name and "_e2e_trace" not in name and not name.endswith("store/db.py"):
            return f"{Path(name).stem}.{frame.f_code.co_name}"
        frame = frame.f_back
    return "?"
