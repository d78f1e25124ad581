"""Several processes writing at once: no 'database is locked', no lost or duplicated numbers."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import pytest
from sqlmodel import select

from store.db import Database, Scope
from store.enums import EntryKind
from store.tables import TimelineEntry

ROOT = Path(__file__).resolve().parents[2]
PROCS, PER_PROC = 4, 25


@pytest.mark.slow
async def test_concurrent_writer_processes(db: Database, db_url: str, workspace_id: int, tech):
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tests.core._concurrent_writer", db_url, str(workspace_id), str(tech.member_id),
            str(PER_PROC), cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": str(ROOT)})
        for _ in range(PROCS)
    ]
    outs = [await asyncio.wait_for(p.communicate(), timeout=240) for p in procs]
    results = []
    for (stdout, stderr), p in zip(outs, procs, strict=True):
        assert p.returncode == 0, stderr.decode()[-2000:]
        results.append(json.loads(stdout.decode().strip().splitlines()[-1]))
    errors = [e for r in results for e in r["errors"]]
    assert errors == []
    numbers = sorted(n for r in results for n in r["numbers"])
    assert numbers == list(range(1, PROCS * PER_PROC + 1))  # gap-free, no duplicates
    async with db.read(Scope.workspace(workspace_id)) as s:
        entries = (await s.exec(select(TimelineEntry))).all()
    assert sum(1 for e in entries if e.kind == EntryKind.NOTE_INTERNAL) == PROCS * PER_PROC
    assert sum(1 for e in entries if e.kind == EntryKind.STATUS_CHANGE) == PROCS * PER_PROC
