"""The sandbox PSA "server": its records, rules, clock, fault switches and persistence.

One `SandboxServer` per sandbox connection per process (see `server_for`): every connector instance of
the same connection talks to the same server, as they would to one PSA tenant. With a `state_path`
the records are written to that JSON file after every change (atomically) and re-read when another
process changed the file, so `make run` keeps its writes across restarts; without one it is in memory.

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

import json
import logging
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

from connectors.sandbox import seed as seed_data
from connectors.sandbox import webhooks
from connectors.sandbox.dialect import Record, SandboxApiError, iso, parse_ts
from connectors.sandbox.rules import RulesMixin

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


def _signature(path: Path) -> tuple[int, int, int]:
    """Identifies one version of the state file (each save replaces the file: a new inode)."""
    st = path.stat()
    return st.st_ino, st.st_mtime_ns, st.st_size


def _real_clock() -> datetime:
    return datetime.now(UTC)


class SandboxServer(RulesMixin):
    """The in-process PSA tenant. Public methods outside `call` are test and demo controls."""

    def __init__(self, data: dict[str, Any], *, path: Path | None = None, clock: Clock | None = None,
                 webhook_secret: str = "sandbox-webhook-secret") -> None:
        self._lock = threading.RLock()
        self.path = path
        self.clock: Clock = clock or _real_clock
        self.webhook_secret = webhook_secret
        self.requests = 0
        self.write_requests = 0
        self._faults: list[_FaultSlot] = []
        self._file_sig: tuple[int, int, int] | None = None
        self.events: list[Record] = []  # changes, newest last (bounded): what webhooks would announce
        self._load(data)

    # ------------------------------------------------------------ state and persistence

    def _load(self, data: dict[str, Any]) -> None:
        self.data = data
        self.by_id: dict[str, dict[int, Record]] = {
            name: {r["id"]: r for r in data[name]}
            for name in ("companies", "contacts", "members", "boards", "statuses", "priorities", "types", "tickets")
        }

    def save(self) -> None:
        """Write the state file atomically (no-op in memory)."""
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(self.data, separators=(",", ":")))
        os.replace(tmp, self.path)
        self._file_sig = _signature(self.path)

    def _refresh(self) -> None:
        """Re-read the state file when another process changed it."""
        if self.path is None or not self.path.exists():
            return
        sig = _signature(self.path)
        if sig != self._file_sig:
            self._load(json.loads(self.path.read_text()))
            self._file_sig = sig

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
            self._refresh()
            fault = self._take_fault(write)
            if api_key != API_KEY or (fault is not None and fault.kind is Fault.AUTH):
                raise SandboxApiError(401, "Unauthorized", "Invalid API key: this sandbox accepts the key 'sandbox'.")
            if fault is not None and fault.kind is Fault.RATE_LIMIT:
                raise SandboxApiError(429, "TooManyRequests", "Rate limit exceeded, slow down.",
                                      retry_after=fault.retry_after if fault.retry_after is not None else 1.0)
            if fault is not None and fault.kind is Fault.SERVER_ERROR:
                raise SandboxApiError(500, "InternalError", "The sandbox had a (simulated) internal error.")
            result = fn()
            if write:
                self.save()
            if fault is not None and fault.kind is Fault.LOST_RESPONSE:
                raise SandboxApiError(504, "ResponseLost", "The write was applied but its response was lost.")
            return result

    def apply(self, fn: Callable[[], T]) -> T:
        """Change the PSA from "inside" (demo helpers, test seeding): no auth, no faults, then persist."""
        with self._lock:
            self._refresh()
            result = fn()
            self.save()
            return result


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
    raw_path = settings.get("state_path")
    path = Path(raw_path).expanduser() if raw_path else None
    if path is not None and path.exists():
        try:
            data = json.loads(path.read_text())
            server = SandboxServer(data, path=path, clock=clock, webhook_secret=secret)
            server._file_sig = _signature(path)
            return server
        except (ValueError, KeyError, TypeError):
            aside = path.with_name(path.name + ".corrupt")
            os.replace(path, aside)
            log.warning("sandbox state file was unreadable; moved it aside and generated fresh demo data",
                        extra={"path": str(path), "moved_to": str(aside)})
    anchor = (clock or _real_clock)().astimezone(UTC).replace(microsecond=0)
    data = seed_data.generate(seed, anchor, tickets=int(settings.get("tickets", 300)))
    server = SandboxServer(data, path=path, clock=clock, webhook_secret=secret)
    server.save()
    return server


def forget(settings: Mapping[str, Any] | None = None) -> None:
    """Drop one connection's server from this process (all when None); a state file stays on disk."""
    with _REGISTRY_LOCK:
        if settings is None:
            _SERVERS.clear()
        else:
            _SERVERS.pop(server_key(settings), None)
