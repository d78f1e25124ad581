"""`deskbridge background`: the scheduler and outbox worker in their own process (split deployment)."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from store.crypto import generate_key


@pytest.mark.slow
def test_background_process_syncs_and_stops_cleanly(tmp_path: Path):
    db = tmp_path / "bg.db"
    env = {**os.environ, "DESKBRIDGE_DATABASE_URL": f"sqlite:///{db}", "DESKBRIDGE_SECRET_KEY": generate_key(),
           "DESKBRIDGE_SECRET_KEY_FILE": str(tmp_path / "k"), "DESKBRIDGE_LOG_LEVEL": "ERROR",
           "DESKBRIDGE_SYNC_INTERVAL_SECONDS": "5"}
    env.pop("DESKBRIDGE_TEST_DATABASE_URL", None)
    exe = Path(sys.executable).parent / "deskbridge"
    proc = subprocess.Popen([str(exe), "background"], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        synced = 0
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and not synced:
            time.sleep(0.5)
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:] if proc.stderr else ""
            try:
                with sqlite3.connect(db) as conn:
                    synced = conn.execute("SELECT count(*) FROM sync_run WHERE kind = 'incremental' "
                                          "AND status = 'ok'").fetchone()[0]
            except sqlite3.OperationalError:
                continue  # not migrated yet
        assert synced >= 1, "no sync ran in the background process"
        with sqlite3.connect(db) as conn:
            assert conn.execute("SELECT count(*) FROM ticket").fetchone()[0] > 0
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            out, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert proc.returncode == 0, err.decode()[-2000:]
    assert b"background work running" in err
