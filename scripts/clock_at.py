#!/usr/bin/env python3
"""Run tests with the wall clock at a chosen instant: every test starts at it, then the clock runs on.

A test that passes at noon and fails at 00:30 UTC (or on a Saturday, on 31 December, on a DST change) depends
on the time it runs. This puts each test at the instant you name, through libfaketime (apt: faketime), so such
a test fails here every time instead of in CI once a day:

    scripts/clock_at.py 2026-12-12T00:30:00Z tests/bot/admin/test_record_pages.py -q

Arguments after the instant go to pytest. Only SQLite runs are meaningful (PostgreSQL's now() is the server's).
libfaketime notes: the monotonic clock stays faked (FAKETIME_DONT_FAKE_MONOTONIC breaks time.sleep on Python
3.11+); the offset is rewritten before each test and read on every call (FAKETIME_NO_CACHE), about 5 us a call.
This file is also the pytest plugin (`-p scripts.clock_at`) that rewrites the offset.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

LIB = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"
_offset = [0.0]


def pytest_runtest_setup(item: object) -> None:
    """Before each test: the offset that puts "now" at the target (the real time is the faked one minus it)."""
    real = time.time() - _offset[0]
    off = float(os.environ["CLOCK_AT_TARGET"]) - real
    path = os.environ["FAKETIME_TIMESTAMP_FILE"]
    with open(path + ".tmp", "w") as f:
        f.write(f"{off:+.3f}\n")
    os.replace(path + ".tmp", path)
    _offset[0] = off


def main(argv: list[str]) -> int:
    if len(argv) < 2 or not Path(LIB).exists():
        print(__doc__ if len(argv) < 2 else f"{LIB} is missing: apt-get install faketime", file=sys.stderr)
        return 2
    target = datetime.fromisoformat(argv[1].replace("Z", "+00:00"))
    if target.tzinfo is None:
        print("Give the instant with its offset, e.g. 2026-12-12T00:30:00Z.", file=sys.stderr)
        return 2
    root = Path(__file__).resolve().parent.parent
    stamp = Path(tempfile.mkdtemp(prefix="clock-at-")) / "offset"
    stamp.write_text("+0\n")
    env = {**os.environ, "LD_PRELOAD": LIB, "FAKETIME_TIMESTAMP_FILE": str(stamp), "FAKETIME_NO_CACHE": "1",
           "CLOCK_AT_TARGET": str(target.timestamp()), "PYTHONPATH": str(root)}
    python = root / ".venv" / "bin" / "python"
    args = [str(python), "-m", "pytest", "-p", "scripts.clock_at", "-p", "no:cacheprovider", *argv[2:]]
    os.chdir(root)
    os.execve(str(python), args, env)
    return 0  # not reached


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
