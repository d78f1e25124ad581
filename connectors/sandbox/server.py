"""The sandbox PSA "server": its records, rules, clock, fault switches and persistence.

One `SandboxServer` per sandbox connection per process (see `server_for`): every connector instance of
the same connection talks to the same server, as they would to one PSA tenant. With a `state_path`
the records live in the sandbox's own SQLite file (store.py): every request is one transaction that
first catches up on what other processes wrote, so any number of processes (`serve`, `outbox work`,
the console) share one tenant and keep their writes across restarts; without one it is in memory.

The server speaks its own small dialect (int ids, ISO timestamps, `SandboxApiError` with an HTTP-like
status), and the connector translates, exactly as a real connector does with a real PSA.

Test and demo controls (on the object `server_for(settings)` returns, also `connector.server`):
    set_now(when) / clock            freeze or replace the server clock (every change is stamped with it)
    fail_next(kind, retry_after=, times=)   "auth" 401, "rate_limit" 429, "server_error" 500,
                                     "lost_response" (next write applied, answer lost -> PsaTimeout)
    requests / write_requests        how many API calls arrived
    seed_ticket / touch_ticket / delete_ticket (wrap in `apply`), count_marker(marker)
    webhook_for(ticket_id, action) / drain_webhooks()   signed pushes (see webhooks.py)
People acting inside the PSA (customer replies, status changes): connectors/sandbox/demo.py.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

from connectors.sandbox import seed as seed_data
from connectors.sandbox import webhooks
from connectors.sandbox.dialect import Record, SandboxApiError, iso, parse_ts
from connectors.sandbox.rules import RulesMixin
from connectors.sandbox.store import TABLES, SandboxStore, dump, open_store

T = TypeVar("T")
log = logging.getLogger(__name__)
Clock = Callable[[], datetime]

API_KEY = "sandbox"
DEFAULT_SEED = 42


class Fault(StrEnum):
    """Switchable faults (test controls): each answers the next matching request(s)."""

    AUTH = "auth"  # 401
    RATE_LIMIT = "rate_limit"  # 429 with retry_after
    SERVER_ERROR = "server_error"  # 500
    LOST_RESPONSE = "lost_response"  # writes only: applied, then the answer is lost


@dataclass
class _FaultSlot:
    kind: Fault
    remaining: int
    retry_after: float | None


def _real_clock() -> datetime:
    return datetime.now(UTC)


class SandboxServer(RulesMixin):
    """The in-process PSA tenant. Public methods outside `call` are test and demo controls."""

    def __init__(self, data: dict[str, Any] | None = None, *, store: SandboxStore | None = None,
                 clock: Clock | None = None, webhook_secret: str = "sandbox-webhook-secret") -> None:
        if (data is None) == (store is None):
            raise ValueError("a sandbox server has either its data in memory or a store")
        self._lock = threading.RLock()
        self.store = store
        self.clock: Clock = clock or _real_clock
        self.webhook_secret = webhook_secret
        self.requests = 0
        self.write_requests = 0
        self._faults: list[_FaultSlot] = []
        self.events: list[Record] = []  # changes, newest last (bounded): what webhooks would announce
        self._version = -1  # the store version this process has caught up to
        self._stored: dict[tuple[str, int], str] = {}  # (kind, id) -> JSON as last read or written
        self._load(data if data is not None else {"next_id": 1, **{t: [] for t in TABLES}})
        if store is not None:
            with store.transaction(write=False):
                self._catch_up()

    # ------------------------------------------------------------ state and persistence

    def _load(self, data: dict[str, Any]) -> None:
        self.data = data
        self.by_id: dict[str, dict[int, Record]] = {
            name: {r["id"]: r for r in data[name]}
            for name in TABLES}

    @property
    def path(self) -> Path | None:
        """The sandbox's SQLite file (None in memory)."""
        return None if self.store is None else self.store.path

    def _catch_up(self) -> None:
        """Apply the rows other processes wrote since we last looked (inside a store transaction)."""
        assert self.store is not None
        version = self.store.version()
        if version is None or version == self._version:
            return
        if version < self._version:  # the file was replaced: start over
            self._version, self._stored = -1, {}
            self._load({"next_id": 1, **{t: [] for t in TABLES}})
        replaced: set[str] = set()
        for kind, record in self.store.rows_since(self._version):
            # New dicts, never changed in place: a caller mapping a record it got earlier keeps a whole one.
            if record["id"] in self.by_id[kind]:
                replaced.add(kind)
            else:
                self.data[kind].append(record)
            self.by_id[kind][record["id"]] = record
            self._stored[(kind, record["id"])] = dump(record)
        for kind in replaced:
            self.data[kind] = [self.by_id[kind][r["id"]] for r in self.data[kind]]
        self.data.update(self.store.scalars())
        self._version = version

    def _changed_rows(self) -> list[tuple[str, Record, str]]:
        """Records that differ from what the store holds: (kind, record, JSON)."""
        rows = []
        for kind in TABLES:
            for record in self.data[kind]:
                body = dump(record)
                if self._stored.get((kind, record["id"])) != body:
                    rows.append((kind, record, body))
        return rows

    def _flush(self) -> None:
        """Write what this request changed (inside the write transaction)."""
        assert self.store is not None
        rows = self._changed_rows()
        version = self._version + 1
        self.store.write(version, {k: v for k, v in self.data.items() if k not in TABLES},
                         ((kind, record["id"], body) for kind, record, body in rows))
        for kind, record, body in rows:
            self._stored[(kind, record["id"])] = body
            self.by_id[kind][record["id"]] = record
        self._version = version

    @contextmanager
    def _transaction(self, *, write: bool) -> Iterator[None]:
        """One request against the store (nothing to do in memory): catch up, run, write what changed."""
        if self.store is None:
            yield
            return
        with self.store.transaction(write=write):
            self._catch_up()
            try:
                yield
            except BaseException:
                if self._changed_rows():  # a request that failed half-way: drop its changes, re-read
                    self._version, self._stored = -1, {}
                    self._load({"next_id": 1, **{t: [] for t in TABLES}})
                    self._catch_up()
                raise
            if write:
                self._flush()

    def refresh(self) -> None:
        """Catch up on writes by other processes now (reads through `call` always do)."""
        with self._lock, self._transaction(write=False):
            pass

    # ------------------------------------------------------------ clock

    def now(self) -> datetime:
        """The server's time (milliseconds, UTC)."""
        now = self.clock().astimezone(UTC)
        return now.replace(microsecond=now.microsecond // 1000 * 1000)

    def set_now(self, when: datetime) -> None:
        """Freeze the server clock at `when` (test control)."""
        fixed = when.astimezone(UTC)
        self.clock = lambda: fixed

    def stamp(self, ticket: Record, action: str = "updated", *, at: datetime | None = None) -> None:
        """Advance a ticket's updated_at: the server time, always later than its previous change (or `at`)."""
        now = self.now() if at is None else at.astimezone(UTC)
        previous = ticket.get("updated_at")
        if at is None and previous is not None and now <= parse_ts(previous):
            now = parse_ts(previous) + timedelta(milliseconds=1)
        ticket["updated_at"] = iso(now)
        self.events.append({"entity": "ticket", "action": action, "ticket_id": ticket["id"],
                            "at": ticket["updated_at"]})
        del self.events[:-1000]

    def new_id(self) -> int:
        self.data["next_id"] += 1
        return int(self.data["next_id"]) - 1

    # ------------------------------------------------------------ webhooks (what the sandbox would push)

    def webhook_for(self, ticket_id: int, action: str = "updated") -> tuple[dict[str, str], bytes]:
        """A signed push about one ticket, as the sandbox would send it."""
        return webhooks.build(self.webhook_secret, self.now(), ticket_id, action)

    def drain_webhooks(self) -> list[tuple[dict[str, str], bytes]]:
        """Signed pushes for every change since the last drain (for demos that forward them)."""
        with self._lock:
            events, self.events = self.events, []
        return [self.webhook_for(e["ticket_id"], e["action"]) for e in events]

    # ------------------------------------------------------------ faults (test controls)

    def fail_next(self, kind: Fault | str, *, retry_after: float | None = None, times: int = 1) -> None:
        """Answer the next `times` matching requests with a fault."""
        with self._lock:
            self._faults.append(_FaultSlot(Fault(kind), times, retry_after))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def _take_fault(self, write: bool) -> _FaultSlot | None:
        for slot in self._faults:
            if slot.kind is Fault.LOST_RESPONSE and not write:
                continue
            slot.remaining -= 1
            if slot.remaining <= 0:
                self._faults.remove(slot)
            return slot
        return None

    # ------------------------------------------------------------ the API entry point

    def call(self, api_key: str, fn: Callable[[], T], *, write: bool = False) -> T:
        """Run one API request: auth, faults, the operation, persistence. Raises SandboxApiError."""
        with self._lock:
            self.requests += 1
            self.write_requests += int(write)
            fault = self._take_fault(write)
            if api_key != API_KEY or (fault is not None and fault.kind is Fault.AUTH):
                raise SandboxApiError(401, "Unauthorized", "Invalid API key: this sandbox accepts the key 'sandbox'.")
            if fault is not None and fault.kind is Fault.RATE_LIMIT:
                raise SandboxApiError(429, "TooManyRequests", "Rate limit exceeded, slow down.",
                                      retry_after=fault.retry_after if fault.retry_after is not None else 1.0)
            if fault is not None and fault.kind is Fault.SERVER_ERROR:
                raise SandboxApiError(500, "InternalError", "The sandbox had a (simulated) internal error.")
            with self._transaction(write=write):
                result = fn()
            if fault is not None and fault.kind is Fault.LOST_RESPONSE:
                raise SandboxApiError(504, "ResponseLost", "The write was applied but its response was lost.")
            return result

    def apply(self, fn: Callable[[], T]) -> T:
        """Change the PSA from "inside" (demo helpers, test seeding): no auth, no faults, then persist."""
        with self._lock, self._transaction(write=True):
            return fn()


# ---------------------------------------------------------------- one server per connection per process

_SERVERS: dict[str, SandboxServer] = {}
_REGISTRY_LOCK = threading.Lock()


def server_key(settings: Mapping[str, Any]) -> str:
    """A connection's server key: its state file, or (in memory) its seed and optional `instance` name."""
    path = settings.get("state_path")
    if path:
        return "file:" + str(Path(path).expanduser().resolve())
    return f"memory:{int(settings.get('seed', DEFAULT_SEED))}:{settings.get('instance', '')}"


def server_for(settings: Mapping[str, Any], *, clock: Clock | None = None) -> SandboxServer:
    """The shared server of a sandbox connection: loaded from `state_path`, or generated from `seed`."""
    key = server_key(settings)
    with _REGISTRY_LOCK:
        server = _SERVERS.get(key)
        if server is None:
            server = _open(settings, clock)
            _SERVERS[key] = server
        elif clock is not None:
            server.clock = clock
        return server


def _open(settings: Mapping[str, Any], clock: Clock | None) -> SandboxServer:
    seed = int(settings.get("seed", DEFAULT_SEED))
    secret = str(settings.get("webhook_secret") or "sandbox-webhook-secret")

    def generate() -> dict[str, Any]:
        anchor = (clock or _real_clock)().astimezone(UTC).replace(microsecond=0)
        return seed_data.generate(seed, anchor, tickets=int(settings.get("tickets", 300)))

    raw_path = settings.get("state_path")
    if not raw_path:
        return SandboxServer(generate(), clock=clock, webhook_secret=secret)
    store = open_store(Path(raw_path).expanduser(), generate)
    return SandboxServer(store=store, clock=clock, webhook_secret=secret)


def forget(settings: Mapping[str, Any] | None = None) -> None:
    """Drop one connection's server from this process (all when None); a state file stays on disk."""
    with _REGISTRY_LOCK:
        if settings is None:
            _SERVERS.clear()
        else:
            _SERVERS.pop(server_key(settings), None)
