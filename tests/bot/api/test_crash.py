"""Idempotency survives a SIGKILL: an instance is killed while its requests have committed their work but not
recorded their responses (and while others have not committed at all). Another instance then answers every
retried key: committed ones replay their result, uncommitted ones run once, nothing is written twice, and no
key stays stuck longer than its lease. Real uvicorn child process, real database (SQLite file or PostgreSQL)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlmodel import select

from store.crypto import generate_key
from store.db import Scope
from store.tables import IdempotencyKey
from tests.bot.api.conftest import PREFIX, assert_problem, make_api

ROOT = Path(__file__).resolve().parents[3]
CREATES, COMMENTS = 8, 4
# Both instances hold keys for LEASE seconds between beats (every LEASE / 3). It was 1 s: a child process
# starved for a second on a loaded machine would lose its keys while still alive, and this test would fail.
LEASE = 5.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _wait_until_up(base: str, child: asyncio.subprocess.Process) -> None:
    deadline = time.monotonic() + 30
    async with httpx.AsyncClient() as c:
        while True:
            assert child.returncode is None, "the crash server exited"
            try:
                if (await c.get(f"{base}/healthz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the crash server did not start"
            await asyncio.sleep(0.1)


@pytest.mark.slow
async def test_sigkill_between_commit_and_response_every_retry_replays(db_url: str, tmp_path: Path):
    secret = generate_key()
    api, _ = await make_api(db_url, tmp_path, secret_key=secret)
    child = None
    try:
        n = (await api.ticket("Existing"))["number"]
        api.container.idempotency.lease = timedelta(seconds=LEASE)
        port = _free_port()
        cfg = {"database_url": db_url, "secret_key": secret, "port": port, "lease": LEASE, "tmp": str(tmp_path)}
        child = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tests.bot.api._crash_server", json.dumps(cfg), cwd=ROOT,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
        base = f"http://127.0.0.1:{port}"
        await _wait_until_up(base, child)
        headers = api.auth("write")
        requests = [("POST", "/tickets", {"subject": f"Crash {i}"}, f"create-{i}") for i in range(CREATES)]
        requests += [("POST", f"/tickets/{n}/comments", {"body": f"Note {i}"}, f"comment-{i}") for i in range(COMMENTS)]
        async with httpx.AsyncClient(base_url=base, timeout=60) as doomed:
            tasks = [asyncio.create_task(doomed.request(m, PREFIX + p, json=b, headers={**headers,
                                                                                         "Idempotency-Key": k}))
                     for m, p, b, k in requests]
            states: Counter[str] = Counter()
            deadline = time.monotonic() + 120  # "eventually", on a loaded machine
            while states != Counter(committed=CREATES, inflight=COMMENTS):
                assert time.monotonic() < deadline, f"the requests did not reach their crash points: {states}"
                await asyncio.sleep(0.1)
                async with api.container.db.read(Scope.workspace(api.ws)) as s:
                    states = Counter(r.state for r in (await s.exec(select(IdempotencyKey))).all())
            # While the instance lives it holds its keys: another instance says wait, and for how long.
            busy = await api.post("/tickets", {"subject": "Crash 0"}, headers={"Idempotency-Key": "create-0"})
            assert_problem(busy, 409)
            assert 1 <= int(busy.headers["retry-after"]) <= LEASE
            os.kill(child.pid, signal.SIGKILL)
            await asyncio.wait_for(child.wait(), 10)
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        await asyncio.sleep(LEASE + 0.2)  # the dead instance's leases lapse
        first = {}
        for method, path, body, key in requests:
            r = await api.client.request(method, PREFIX + path, json=body, headers={**headers, "Idempotency-Key": key})
            assert r.status_code == 201, (key, r.text)
            first[key] = r.json()
            if key.startswith("create"):  # committed before the crash: rebuilt, not run again
                assert r.headers["idempotent-replayed"] == "true" and r.json()["subject"] == body["subject"]
                assert r.headers["location"].endswith(f"/tickets/id:{r.json()['id']}")
            else:  # never committed: runs now, once
                assert r.json()["body"] == body["body"]
        for method, path, body, key in requests:  # and from now on every retry is a plain replay
            r = await api.client.request(method, PREFIX + path, json=body, headers={**headers, "Idempotency-Key": key})
            assert (r.status_code, r.json(), r.headers["idempotent-replayed"]) == (201, first[key], "true")

        listed = (await api.get("/tickets?stage=all&limit=100")).json()["items"]
        assert sorted(t["subject"] for t in listed) == sorted(["Existing"] + [f"Crash {i}" for i in range(CREATES)])
        comments = (await api.get(f"/tickets/{n}")).json()["comments"]
        assert sorted(c["body"] for c in comments) == [f"Note {i}" for i in range(COMMENTS)]
    finally:
        if child is not None and child.returncode is None:
            child.kill()
            await asyncio.wait_for(child.wait(), 10)
        await api.client.aclose()
        await api.container.aclose()
