"""The benches' event-loop trace (bot/looptrace.py): off unless started; started, it records the loop thread's
id, garbage collections, samples of the loop, and a request's stages, in monotonic time."""

from __future__ import annotations

import asyncio
import gc
import json
import os
import threading
import time

from bot import looptrace


def test_marks_are_nothing_while_tracing_is_off(tmp_path) -> None:
    assert looptrace._tracer is None
    looptrace.begin_request()
    looptrace.mark("token")
    looptrace.event("collect gen1")
    assert list(tmp_path.iterdir()) == []


async def test_a_started_trace_records_the_loop_gc_samples_and_request_stages(tmp_path) -> None:
    path = tmp_path / "loop.jsonl"
    t0 = time.monotonic()
    assert looptrace.start(path) is not None
    try:
        async def request() -> None:
            looptrace.begin_request()
            await asyncio.sleep(0.01)
            looptrace.mark("token")

        await asyncio.gather(request(), request())
        gc.collect(1)
        busy = time.monotonic() + 0.05
        while time.monotonic() < busy:  # the loop busy in this test's frame
            pass
        looptrace.event("job")
    finally:
        looptrace.stop()
    records = [json.loads(line) for line in path.read_text().splitlines()]
    start = records[0]
    assert start["k"] == "start" and start["pid"] == os.getpid() and start["tid"] == threading.get_native_id()
    assert all(r["t"] >= t0 for r in records)
    assert any(r["k"] == "gc" and r["gen"] == 1 and r["ms"] >= 0 for r in records)
    marks = [r for r in records if r["k"] == "m"]
    assert sorted(r["s"] for r in marks) == ["begin", "begin", "token", "token"]
    assert len({r["r"] for r in marks}) == 2  # two requests, each its own id
    samples = [r for r in records if r["k"] == "s"]
    assert any(not s["idle"] and "test_looptrace" in s["ours"] for s in samples)
    assert any(r["k"] == "e" and r["s"] == "job" for r in records)
    assert looptrace._tracer is None
