"""CPU of bench/e2e_latency.py split by thread: where a PSA -> chat edit's CPU goes, measured, not guessed.

`time.process_time()` counts every thread of the bench process: Deskbridge's event loop (webhooks, sync,
notifier, Slack client), the SQLite connection threads (aiosqlite runs each connection's statements in a
thread of its own), the fake Slack Web API (its own loop in a thread: not Deskbridge's cost) and the bench's own
helpers (to_thread calls to the fake PSA). `ThreadCpu` reads each live thread's CPU clock at the start and end
of a mode, so a figure can leave out what the fakes spent.
"""

from __future__ import annotations

import threading
import time
from typing import Any

FAKE_THREADS = ("fake-slack",)  # bench/_e2e_setup.py SlackThread


def _cpu(ident: int | None) -> float | None:
    if ident is None:
        return None
    try:
        return time.clock_gettime(time.pthread_getcpuclockid(ident))
    except (OSError, ValueError, OverflowError):
        return None  # the thread ended meanwhile


def _group(name: str) -> str:
    if name == "MainThread":
        return "loop"
    if name in FAKE_THREADS:
        return "fake_slack"
    if name.startswith("Thread-") or name.startswith("asyncio_"):
        return "workers"  # aiosqlite connections, to_thread pool (the bench's PSA pipe), ...
    return name


class ThreadCpu:
    """CPU seconds per thread group between `start()` and `stop()` (threads born meanwhile count from 0)."""

    def __init__(self) -> None:
        self._start: dict[int, float] = {}
        self._names: dict[int, str] = {}
        self._process = 0.0

    def start(self) -> None:
        self._process = time.process_time()
        for t in threading.enumerate():
            cpu = _cpu(t.ident)
            if t.ident is not None and cpu is not None:
                self._start[t.ident] = cpu

    def stop(self) -> dict[str, Any]:
        groups: dict[str, float] = {}
        for t in threading.enumerate():
            cpu = _cpu(t.ident)
            if t.ident is None or cpu is None:
                continue
            spent = cpu - self._start.get(t.ident, 0.0)
            groups[_group(t.name)] = groups.get(_group(t.name), 0.0) + spent
        process = time.process_time() - self._process
        groups["gone_threads_and_rest"] = max(0.0, process - sum(groups.values()))
        return {"process_s": round(process, 3), "by_thread_s": {k: round(v, 3) for k, v in sorted(groups.items())}}


def per_edit(split: dict[str, Any], edits: int) -> dict[str, Any]:
    """The split as ms per edit, with Deskbridge's own share (the process less the fake Slack thread)."""
    n = max(edits, 1)
    ours = split["process_s"] - split["by_thread_s"].get("fake_slack", 0.0)
    return {"process_ms_per_edit": round(split["process_s"] * 1000 / n, 1),
            "without_fake_slack_ms_per_edit": round(ours * 1000 / n, 1),
            "by_thread_ms_per_edit": {k: round(v * 1000 / n, 1) for k, v in split["by_thread_s"].items()}}
