"""The sandbox PSA with several processes (issue 17 item 8): two `deskbridge outbox work` processes deliver
200 notes into one sandbox file while this process writes to it too; every write the outbox marked done
is in the sandbox exactly once (with the old JSON file, 58 of 200 were lost)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlmodel import select

from connectors.base import ConnectionConfig, NewNote, NoteVisibility
from connectors.sandbox.connector import SandboxConnector
from connectors.sandbox.server import forget, server_for
from core.outbox.ops import AddNote, enqueue
from store.crypto import CredentialCipher, generate_key
from store.db import Database, Scope
from store.tables import OutboxOp, PsaConnection, Ticket

ROOT = Path(__file__).resolve().parents[2]
WORKERS, TICKETS, PER_TICKET, OURS, DEADLINE = 2, 20, 10, 40, 200.0  # DEADLINE: "eventually" (the loop ends when done)


def _env(db_url: str, key: str, tmp: Path, name: str) -> dict[str, str]:
    return {
        **os.environ, "PYTHONPATH": str(ROOT),
        "DESKBRIDGE_DATABASE_URL": db_url, "DESKBRIDGE_SECRET_KEY": key, "DESKBRIDGE_AUTO_MIGRATE": "false",
        "DESKBRIDGE_SECRET_KEY_FILE": str(tmp / "unused.key"), "DESKBRIDGE_INSTANCE_ID": name,
        "DESKBRIDGE_LOG_LEVEL": "ERROR", "DESKBRIDGE_OUTBOX_CONCURRENCY": "4", "DESKBRIDGE_OUTBOX_POLL_SECONDS": "0.1",
        "DESKBRIDGE_OUTBOX_BACKOFF_BASE_SECONDS": "0.2", "DESKBRIDGE_OUTBOX_BACKOFF_CAP_SECONDS": "1.0",
    }


async def _open_ops(db: Database) -> int:
    async with db.read(Scope.system_wide()) as s:
        return int((await s.exec(select(sa.func.count()).select_from(OutboxOp).where(
            OutboxOp.status.in_(["pending", "inflight", "blocked"])))).one())  # type: ignore[attr-defined]


@pytest.mark.slow
@pytest.mark.timeout(420)
async def test_two_worker_processes_and_this_one_lose_and_duplicate_nothing(
        db: Database, db_url: str, workspace_id: int, tmp_path: Path) -> None:
    settings = {"seed": 11, "tickets": 150, "state_path": str(tmp_path / "sandbox.db")}
    server = server_for(settings)
    open_ids = [t["id"] for t in server.data["tickets"] if not t["closed_at"]][:TICKETS]
    assert len(open_ids) == TICKETS
    key = generate_key()
    cipher = CredentialCipher.from_keys([key])
    async with db.write(Scope.workspace(workspace_id)) as s:
        conn = PsaConnection(workspace_id=workspace_id, kind="sandbox", name="sandbox", settings=settings,
                             credentials_ciphertext=cipher.encrypt({"api_key": "sandbox"}, workspace_id=workspace_id,
                                                                   kind="sandbox"))
        s.add(conn)
        await s.flush()
        tickets = [Ticket(workspace_id=workspace_id, connection_id=conn.id, external_id=str(ext), number=ext,
                          subject=f"t{ext}", priority="medium", stage="new") for ext in open_ids]
        s.add_all(tickets)
        await s.flush()
        for j in range(PER_TICKET):
            for t in tickets:
                enqueue(s, workspace_id=workspace_id, connection_id=conn.id, ticket_id=t.id, actor="procs-test",
                        payload=AddNote(text=f"op {t.external_id}/{j}", visibility="internal"))

    envs = [_env(db_url, key, tmp_path, f"w{i}") for i in range(WORKERS)]
    procs = [await asyncio.create_subprocess_exec(sys.executable, "-m", "bot.cli", "outbox", "work", cwd=ROOT,
                                                  env=e, stdout=asyncio.subprocess.DEVNULL,
                                                  stderr=asyncio.subprocess.PIPE) for e in envs]
    ours = SandboxConnector(ConnectionConfig(connection_id=conn.id or 0, workspace_id=workspace_id, kind="sandbox",
                                             settings=settings, credentials={"api_key": "sandbox"}))
    started = time.monotonic()
    try:
        for i in range(OURS):  # a third writer (the console, a sync) at the same time
            await ours.add_note(NewNote(ticket_external_id=str(open_ids[i % TICKETS]), text=f"ours {i}",
                                        visibility=NoteVisibility.INTERNAL, marker=f"ours-{i}"))
            await asyncio.sleep(0.02)
        while time.monotonic() - started < DEADLINE:
            if not await _open_ops(db):
                break
            await asyncio.sleep(0.2)
    finally:
        for p in procs:
            if p.returncode is None:
                p.send_signal(signal.SIGTERM)
        errors = [(await asyncio.wait_for(p.communicate(), 30))[1].decode() for p in procs]

    async with db.read(Scope.system_wide()) as s:
        ops = list((await s.exec(select(OutboxOp))).all())
    assert len(ops) == TICKETS * PER_TICKET
    assert [o.status for o in ops if o.status != "done"] == [], f"stderr: {[e[-1500:] for e in errors]}"
    forget(settings)
    fresh = server_for(settings)  # what the file holds, read anew
    texts = Counter(n["text"] for n in fresh.data["notes"] if n["text"].startswith(("op ", "ours ")))
    expected = {o.payload["text"] for o in ops} | {f"ours {i}" for i in range(OURS)}
    assert set(texts) - expected == set(), "phantom notes"
    assert sorted(expected - set(texts)) == [], "lost writes"
    assert {t: n for t, n in texts.items() if n > 1} == {}, "duplicated writes"
    for o in ops:  # the id the outbox recorded is the note the sandbox holds
        note = fresh.by_id["notes"][int(o.result["external_id"])]
        assert note["text"] == o.payload["text"]
    forget(settings)
