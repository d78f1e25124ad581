"""Where the server's event loop spent its time, for benches (bench/teams_invoke.py): off unless
DESKBRIDGE_LOOP_TRACE_FILE names a file (then `serve` writes JSON lines to it; nothing else reads it).

What it records, every time stamped with `time.monotonic()` (CLOCK_MONOTONIC: the same clock in every process
on the machine, so a bench can lay the records over its own request windows):
- `{"k": "start"}`: the process id and the event loop thread's native id (a bench reads that thread's CPU from
  /proc/PID/task/TID/stat to split the loop's CPU from the worker threads');
- `{"k": "gc"}`: every garbage collection (generation, pause in ms, objects collected);
- `{"k": "s"}`: a sample of the loop thread every `interval_s` (default 1 ms, when the sampler gets the GIL):
  "idle" when the loop waits for I/O, otherwise the outermost frame (the task: a request, the sync job, the
  outbox worker...) and the innermost frame in our packages; plus the busy other threads' innermost frames;
- `{"k": "m"}`: marks a request makes on its way (`mark("token")`): its id, the stage, the time;
- `{"k": "e"}`: things done outside requests (`event("collect gen1")`, by bot/idle.py).
Records are buffered and written by the sampler thread twice a second: the loop never writes the file.
With the variable unset, `mark` is one global check and nothing else runs.
"""

from __future__ import annotations

import gc
import itertools
import json
import os
import sys
import threading
import time
from contextvars import ContextVar
from pathlib import Path
from types import FrameType
from typing import Any

_OURS = tuple(f"{os.sep}{p}{os.sep}" for p in ("bot", "core", "store", "connectors"))
_IDLE_FUNCS = frozenset({"run_until_complete", "run_forever", "run", "select", "wait", "get", "_worker",
                         "sleep", "accept", "_bootstrap_inner", "_bootstrap", "poll", "recv", "readinto"})
_request: ContextVar[int | None] = ContextVar("looptrace_request", default=None)
_ids = itertools.count(1)
_tracer: Tracer | None = None


def begin_request() -> None:
    """Give the current request (task) an id for its marks (no-op when tracing is off)."""
    if _tracer is not None:
        _request.set(next(_ids))
        _tracer.mark("begin")


def mark(stage: str) -> None:
    """Record that the current request reached `stage` (no-op when tracing is off)."""
    if _tracer is not None:
        _tracer.mark(stage)


def event(name: str) -> None:
    """Record something the process did outside a request (e.g. bot/idle.py's quiet-time work)."""
    if _tracer is not None:
        _tracer._emit({"k": "e", "t": time.monotonic(), "s": name})


def _where(frame: FrameType | None) -> tuple[str, str, str]:
    """(outermost frame, innermost frame of ours, innermost frame) as `file:function`."""
    inner = ours = outer = ""
    while frame is not None:
        code = frame.f_code
        name = f"{Path(code.co_filename).stem}:{code.co_name}"
        if not inner:
            inner = name
        if not ours and any(p in code.co_filename for p in _OURS):
            ours = f"{name}:{frame.f_lineno}"
        if code.co_name not in ("run_until_complete", "run_forever", "run", "_run_once", "<module>", "main",
                                "serve", "invoke", "__call__", "callback"):
            outer = name
        frame = frame.f_back
    return outer, ours, inner


class Tracer:
    def __init__(self, path: Path, *, interval_s: float = 0.001) -> None:
        self.path = path
        self.interval_s = interval_s
        self.loop_thread = threading.get_ident()
        self._buf: list[str] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._gc_start = 0.0
        self._thread = threading.Thread(target=self._run, name="deskbridge-looptrace", daemon=True)

    def start(self) -> None:
        self.path.write_text("")
        self._emit({"k": "start", "t": time.monotonic(), "pid": os.getpid(), "tid": threading.get_native_id()})
        gc.callbacks.append(self._gc)
        self._thread.start()

    def stop(self) -> None:
        if self._gc in gc.callbacks:
            gc.callbacks.remove(self._gc)
        self._stop.set()
        self._thread.join(2)
        self._flush()

    def mark(self, stage: str) -> None:
        self._emit({"k": "m", "t": time.monotonic(), "r": _request.get(), "s": stage})

    def _gc(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._gc_start = time.monotonic()
            return
        now = time.monotonic()
        self._emit({"k": "gc", "t": self._gc_start, "ms": round((now - self._gc_start) * 1000, 3),
                    "gen": info.get("generation"), "collected": info.get("collected")})

    def _emit(self, record: dict[str, Any]) -> None:
        line = json.dumps(record)
        with self._lock:
            self._buf.append(line)

    def _flush(self) -> None:
        with self._lock:
            lines, self._buf = self._buf, []
        if lines:
            with self.path.open("a") as f:
                f.write("\n".join(lines) + "\n")

    def _run(self) -> None:
        last_flush = time.monotonic()
        me = threading.get_ident()
        while not self._stop.wait(self.interval_s):
            frames = sys._current_frames()
            now = time.monotonic()
            outer, ours, inner = _where(frames.get(self.loop_thread))
            idle = inner.split(":")[-1] in ("run_until_complete", "run_forever", "run", "select")
            others = []
            for tid, frame in frames.items():
                if tid in (me, self.loop_thread):
                    continue
                _, o_ours, o_inner = _where(frame)
                if o_inner.split(":")[-1] not in _IDLE_FUNCS:
                    others.append(o_ours or o_inner)
            self._emit({"k": "s", "t": now, "idle": idle, "outer": outer, "ours": ours, "inner": inner,
                        "threads": others})
            if now - last_flush > 0.5:
                self._flush()
                last_flush = now


def start(path: Path | None) -> Tracer | None:
    """Start tracing into `path` from the event loop's thread (None: tracing stays off)."""
    global _tracer
    if path is None or _tracer is not None:
        return None
    _tracer = Tracer(path)
    _tracer.start()
    return _tracer


def stop() -> None:
    global _tracer
    if _tracer is not None:
        _tracer.stop()
        _tracer = None
