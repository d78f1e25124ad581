"""The sandbox PSA's own SQLite file: one transaction per request, so any number of processes share a tenant.

Schema (the sandbox's, never Deskbridge's database):
    meta(key, value)                  JSON scalars: seed, anchor, next_id, and `version`
    records(kind, id, version, body)  one row per record (kind = "tickets", "notes", ...), body is JSON

`version` counts committed writes; every row a write changes carries that write's version, so a process
that last saw version v catches up by reading the rows with version > v instead of the whole tenant.
Writes run under `BEGIN IMMEDIATE` (SQLite's write lock, WAL journal): read what changed, apply the
request, write the changed rows, commit; a second process waits its turn (busy timeout) and then sees
the first one's rows. Nothing is rewritten wholesale, so nothing is lost between processes.

Before this store the state was a JSON file rewritten under a per-process lock (two processes lost
writes); `open_store` imports such a file once and renames it `*.migrated`.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from connectors.sandbox.dialect import Record

log = logging.getLogger(__name__)

TABLES = ("companies", "contacts", "members", "boards", "statuses", "priorities", "types", "tickets", "notes",
          "time_entries", "attachments")
BUSY_TIMEOUT_MS = 60_000
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS records (kind TEXT NOT NULL, id INTEGER NOT NULL, version INTEGER NOT NULL, "
    "body TEXT NOT NULL, PRIMARY KEY (kind, id))",
    "CREATE INDEX IF NOT EXISTS records_version ON records (version)",
)


def dump(record: Any) -> str:
    """The stored JSON of a record (also its fingerprint: equal text, unchanged record)."""
    return json.dumps(record, separators=(",", ":"), sort_keys=True)


class SandboxStore:
    """One process's connection to a sandbox SQLite file (used under the server's lock)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False,
                                   timeout=BUSY_TIMEOUT_MS / 1000)
        try:
            self._db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute("PRAGMA synchronous = NORMAL")
            for statement in _SCHEMA:
                self._db.execute(statement)
        except sqlite3.DatabaseError:
            self._db.close()
            raise

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def transaction(self, *, write: bool) -> Iterator[None]:
        """One request: `BEGIN IMMEDIATE` (the write lock, taken up front) for writes, a snapshot for reads."""
        self._db.execute("BEGIN IMMEDIATE" if write else "BEGIN")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def version(self) -> int | None:
        """The number of committed writes, or None while the store is still empty."""
        row = self._db.execute("SELECT value FROM meta WHERE key = 'version'").fetchone()
        return None if row is None else int(json.loads(row[0]))

    def scalars(self) -> dict[str, Any]:
        """seed, anchor, next_id (everything in meta but the version)."""
        return {k: json.loads(v) for k, v in self._db.execute("SELECT key, value FROM meta WHERE key != 'version'")}

    def rows_since(self, version: int) -> Iterator[tuple[str, Record]]:
        """(kind, record) of every row written after `version` (all rows for -1), by kind and id."""
        cursor = self._db.execute("SELECT kind, body FROM records WHERE version > ? ORDER BY kind, id", (version,))
        for kind, body in cursor:
            yield kind, json.loads(body)

    def write(self, version: int, scalars: dict[str, Any], rows: Iterable[tuple[str, int, str]]) -> None:
        """Record one write: the new version, the scalars and the changed rows (kind, id, JSON body)."""
        self._db.executemany("INSERT INTO meta (key, value) VALUES (?, ?) "
                             "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                             [("version", json.dumps(version)), *((k, json.dumps(v)) for k, v in scalars.items())])
        self._db.executemany("INSERT INTO records (kind, id, version, body) VALUES (?, ?, ?, ?) "
                             "ON CONFLICT (kind, id) DO UPDATE SET version = excluded.version, body = excluded.body",
                             [(kind, rid, version, body) for kind, rid, body in rows])


def store_path(state_path: Path) -> tuple[Path, Path | None]:
    """The SQLite file for a connection's `state_path`, and the legacy JSON file to import (if any).

    `x/sandbox-state.json` (the old setting) is served from `x/sandbox-state.db`; any other name is the
    SQLite file itself."""
    if state_path.suffix.lower() == ".json":
        return state_path.with_suffix(".db"), state_path
    return state_path, None


def _read_legacy(legacy: Path) -> dict[str, Any] | None:
    """A legacy JSON state, or None (missing; unreadable ones are moved aside with a warning)."""
    if not legacy.exists():
        return None
    try:
        data = json.loads(legacy.read_text())
        if not isinstance(data, dict) or not all(isinstance(data.get(t), list) for t in TABLES):
            raise ValueError("not a sandbox state")
        return data
    except (ValueError, UnicodeDecodeError):
        aside = legacy.with_name(legacy.name + ".corrupt")
        os.replace(legacy, aside)
        log.warning("sandbox state file was unreadable; moved it aside and generated fresh demo data",
                    extra={"path": str(legacy), "moved_to": str(aside)})
        return None


def _connect(path: Path) -> SandboxStore:
    """Open the file; one that is not a SQLite database is moved aside (and a fresh one created)."""
    try:
        store = SandboxStore(path)
        store.version()
        return store
    except sqlite3.DatabaseError:
        aside = path.with_name(path.name + ".corrupt")
        os.replace(path, aside)
        for suffix in ("-wal", "-shm"):
            path.with_name(path.name + suffix).unlink(missing_ok=True)
        log.warning("sandbox database was unreadable; moved it aside and generated fresh demo data",
                    extra={"path": str(path), "moved_to": str(aside)})
        return SandboxStore(path)


def open_store(state_path: Path, generate: Callable[[], dict[str, Any]]) -> SandboxStore:
    """The store of a `state_path`, filled once (from a legacy JSON file, else `generate()`) by whichever
    process gets there first; the others find it filled."""
    path, legacy = store_path(state_path)
    store = _connect(path)
    with store.transaction(write=True):
        if store.version() is not None:
            return store
        data = _read_legacy(legacy) if legacy is not None else None
        migrated = data is not None
        if data is None:
            data = generate()
        scalars = {k: v for k, v in data.items() if k not in TABLES}
        store.write(0, scalars, ((t, r["id"], dump(r)) for t in TABLES for r in data.get(t, [])))
    if migrated and legacy is not None:
        moved = legacy.with_name(legacy.name + ".migrated")
        os.replace(legacy, moved)
        log.info("sandbox state moved from its JSON file into a SQLite file (safe with several processes)",
                 extra={"from": str(legacy), "to": str(path), "old_file_kept_as": str(moved)})
    return store
