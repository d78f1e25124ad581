"""CPU of bench/e2e_latency.py split by thread: where a PSA -> chat edit's CPU goes, measured, not guessed.

`time.process_time()` counts every thread of the bench process: Deskbridge's event loop (webhooks, sync,
notifier, Slack client), the SQLite connection threads (aiosqlite runs each connection's statements in a
thread of its own), the fake Slack Web API (its own loop in a thread: not Deskbridge's cost) and the bench's own
helpers (to_thread calls to the fake PSA). `ThreadCpu` reads each live thread's CPU clock at the start and end
of a mode, so a figure can leave out what the fakes spent.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
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


WORKER_MARK = b"bot.refresh_worker"  # the callback refresh worker process (bot/refresh_worker.py)


def worker_cpu() -> dict[int, float]:
    """CPU seconds (user + system) of each live refresh worker process this process started."""
    out: dict[int, float] = {}
    me, tick = os.getpid(), os.sysconf("SC_CLK_TCK")
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if WORKER_MARK not in (proc / "cmdline").read_bytes():
                continue
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == me:  # ppid
            out[int(proc.name)] = (int(fields[11]) + int(fields[12])) / tick  # utime + stime
    return out


class ThreadCpu:
    """CPU seconds per thread group between `start()` and `stop()` (threads born meanwhile count from 0)."""

    def __init__(self) -> None:
        self._start: dict[int, float] = {}
        self._names: dict[int, str] = {}
        self._process = 0.0
        self._worker: dict[int, float] = {}

    def start(self) -> None:
        self._process = time.process_time()
        self._worker = worker_cpu()
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
        worker = sum(cpu - self._worker.get(pid, 0.0) for pid, cpu in worker_cpu().items())
        return {"process_s": round(process, 3), "by_thread_s": {k: round(v, 3) for k, v in sorted(groups.items())},
                "refresh_worker_process_s": round(worker, 3)}


def per_edit(split: dict[str, Any], edits: int) -> dict[str, Any]:
    """The split as ms per edit, with Deskbridge's own share (the process less the fake Slack thread)."""
    n = max(edits, 1)
    ours = split["process_s"] - split["by_thread_s"].get("fake_slack", 0.0)
    worker = split.get("refresh_worker_process_s", 0.0)
    return {"process_ms_per_edit": round(split["process_s"] * 1000 / n, 1),
            "refresh_worker_ms_per_edit": round(worker * 1000 / n, 1),  # 0 when re-reads run in the process
            "with_worker_ms_per_edit": round((split["process_s"] + worker) * 1000 / n, 1),
            "without_fake_slack_ms_per_edit": round(ours * 1000 / n, 1),
            "by_thread_ms_per_edit": {k: round(v * 1000 / n, 1) for k, v in split["by_thread_s"].items()}}
