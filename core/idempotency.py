"""Idempotency keys for the REST API, with Stripe's semantics (reliability-sla.md §2.2), safe across crashes.

    claim(key, request)  INSERT … ON CONFLICT DO NOTHING on UNIQUE(workspace_id, key): atomic, never
                         SELECT-then-INSERT. The winner runs the work; everyone else gets:
                           same request, response saved        -> Replay (status + body, as first sent)
                           different method/path/body          -> IdempotencyMismatch (422)
                           first request still running         -> KeyBusy (409 + Retry-After; nothing ran)
    held(claim)          while the work runs, the claim's lease (LEASE) is renewed every LEASE/3, and the first
                         write transaction that commits inside the work flips the key to `committed` in that
                         same transaction, recording what it created (ticket and timeline entry ids).
                         So after a crash (SIGKILL, power loss) a retry, as soon as the lease lapses, gets:
                           the work never committed  -> a fresh Claim: the work runs (once)
                           the work committed        -> a Claim with `rebuild` set: the caller rebuilds the
                                                        response from the recorded ids, never runs the work again
    complete / release   save the response (service errors included: the endpoint ran), or give the key up when
                         the work failed (deleted if nothing committed, else its lease lapses at once).
    prune                keys are kept at least 24 h, then deleted by housekeeping.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import math
import re
from collections.abc import AsyncIterator, Callable
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.orm import Session
from sqlmodel import select

from core.errors import Conflict, InvalidInput
from store.db import Database, Scope
from store.sql import dialect_insert
from store.tables import IdempotencyKey, Ticket, TimelineEntry
from store.types import utcnow

RETENTION = timedelta(hours=24)
LEASE = timedelta(seconds=10)
MAX_KEY_CHARS = 255
_VALID_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")  # visible ASCII, like a UUID or any client token
_LAPSED = datetime(2000, 1, 1, tzinfo=UTC)


class IdempotencyMismatch(InvalidInput):
    """The key was first used for a different request."""


class KeyBusy(Conflict):
    """The first request with this key is still running (or recording its response): retry after a while."""

    def __init__(self, message: str, *, hint: str, retry_after: int) -> None:
        super().__init__(message, hint=hint)
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class Claim:
    """This request owns the key: it runs the work, or (`rebuild` set) rebuilds the committed work's response."""

    workspace_id: int
    record_id: int
    key: str
    rebuild: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Replay:
    """The saved response of the first request with this key."""

    status: int
    body: dict[str, Any]


def request_hash(method: str, path: str, body: Any) -> str:
    """A fingerprint of the request: method, path and the JSON body with its keys sorted."""
    raw = json.dumps([method.upper(), path, body], sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(raw.encode()).hexdigest()


def check_key(key: str) -> str:
    """The key as given, or InvalidInput when it is empty, too long or not visible ASCII."""
    if not _VALID_KEY.match(key):
        raise InvalidInput("The Idempotency-Key header must be 1-255 visible ASCII characters.",
                           hint="Send a fresh UUID (v4) per logical request, e.g. from uuid.uuid4().",
                           field="Idempotency-Key")
    return key


_bound: ContextVar[Claim | None] = ContextVar("deskbridge_idempotency_claim", default=None)


def _ours(session: Session, claim: Claim | None) -> bool:
    if claim is None or session.info.get("read_only"):
        return False
    scope = session.info.get("scope")
    return scope is not None and (scope.system or scope.workspace_id == claim.workspace_id)


def _track_inserts(session: Session, _flush_context: Any) -> None:
    """after_flush hook: remember the tickets and timeline entries the bound work inserted."""
    if not _ours(session, _bound.get()):
        return
    made = session.info.setdefault("idempotency_made", {"tickets": [], "entries": []})
    for obj in session.new:
        if isinstance(obj, Ticket) and obj.id is not None:
            made["tickets"].append(obj.id)
        elif isinstance(obj, TimelineEntry) and obj.id is not None:
            made["entries"].append(obj.id)


def _flip_on_commit(session: Session) -> None:
    """before_commit hook: mark the bound key `committed` inside the work's own transaction, with what it made."""
    claim = _bound.get()
    if not _ours(session, claim):
        return
    assert claim is not None
    session.flush()  # rows still pending are inserted now, so their ids are recorded too
    made = session.info.pop("idempotency_made", None) or {"tickets": [], "entries": []}
    table = IdempotencyKey.__table__  # type: ignore[attr-defined]
    session.connection().execute(
        sa.update(table).where(table.c.id == claim.record_id, table.c.state == "inflight")
        .values(state="committed", response_body={"rebuild": made}))


def _install_hooks() -> None:
    if not event.contains(Session, "after_flush", _track_inserts):
        event.listen(Session, "after_flush", _track_inserts)
    if not event.contains(Session, "before_commit", _flip_on_commit):
        event.listen(Session, "before_commit", _flip_on_commit)


class IdempotencyService:
    def __init__(self, db: Database, *, clock: Callable[[], datetime] = utcnow, lease: timedelta = LEASE) -> None:
        self.db = db
        self._clock = clock
        self.lease = lease
        _install_hooks()

    async def claim(self, workspace_id: int, key: str, fingerprint: str) -> Claim | Replay:
        """Claim `key` for this request, or say what the first request with it got (see module doc)."""
        check_key(key)
        now = self._clock()
        stmt = dialect_insert(self.db.dialect, IdempotencyKey).values(
            workspace_id=workspace_id, key=key, request_hash=fingerprint, state="inflight", created_at=now,
            locked_at=now)
        stmt = stmt.on_conflict_do_nothing(index_elements=["workspace_id", "key"]).returning(IdempotencyKey.id)
        async with self.db.write(Scope.workspace(workspace_id)) as session:
            new_id = (await session.execute(stmt)).scalar_one_or_none()
            if new_id is not None:
                return Claim(workspace_id, int(new_id), key)
            row = (await session.exec(select(IdempotencyKey).where(IdempotencyKey.key == key))).one()
            if row.request_hash != fingerprint:
                raise IdempotencyMismatch(
                    "This Idempotency-Key was already used for a different request.",
                    hint="Use a new key for a new request; reuse a key only to retry the exact same request.",
                    field="Idempotency-Key")
            if row.state == "done" and row.response_status is not None:
                return Replay(row.response_status, dict(row.response_body or {}))
            left = (row.locked_at + self.lease - now).total_seconds()
            if left <= 0:
                # The instance that held the key is gone (its lease lapsed): take the key over.
                res = await session.execute(
                    sa.update(IdempotencyKey)
                    .where(IdempotencyKey.id == row.id, IdempotencyKey.state == row.state,  # type: ignore[arg-type]
                           IdempotencyKey.locked_at == row.locked_at)  # type: ignore[arg-type]
                    .values(locked_at=now))
                if res.rowcount:  # type: ignore[attr-defined]
                    if row.state == "inflight":
                        return Claim(workspace_id, row.id, key)  # type: ignore[arg-type]
                    made = dict((row.response_body or {}).get("rebuild") or {})
                    return Claim(workspace_id, row.id, key, rebuild=made)  # type: ignore[arg-type]
            wait = max(1, math.ceil(left))
            if row.state == "committed":
                raise KeyBusy("The first request with this Idempotency-Key has completed; its response is being "
                              "recorded.", hint=f"Retry with the same key in {wait} s to get that response.",
                              retry_after=wait)
            raise KeyBusy("A request with this Idempotency-Key is still being processed.",
                          hint=f"Retry with the same key in {wait} s; nothing was done twice.", retry_after=wait)

    @contextlib.asynccontextmanager
    async def held(self, claim: Claim) -> AsyncIterator[None]:
        """While the work runs: renew the claim's lease, and flip it to `committed` with the work's commit."""
        beat = asyncio.create_task(self._heartbeat(claim), name="idempotency-lease")
        token = _bound.set(claim)
        try:
            yield
        finally:
            _bound.reset(token)
            beat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beat

    async def _heartbeat(self, claim: Claim) -> None:
        _bound.set(None)  # this task's own writes are not the work's
        while True:
            await asyncio.sleep(self.lease.total_seconds() / 3)
            async with self.db.write(Scope.workspace(claim.workspace_id)) as session:
                await session.execute(
                    sa.update(IdempotencyKey).where(IdempotencyKey.id == claim.record_id,  # type: ignore[arg-type]
                                                    IdempotencyKey.state != "done")  # type: ignore[arg-type]
                    .values(locked_at=self._clock()))

    async def complete(self, claim: Claim, status: int, body: dict[str, Any]) -> None:
        """Save the response the first request got; later requests with the key replay it."""
        async with self.db.write(Scope.workspace(claim.workspace_id)) as session:
            await session.execute(
                sa.update(IdempotencyKey).where(IdempotencyKey.id == claim.record_id)  # type: ignore[arg-type]
                .values(state="done", response_status=status, response_body=body))

    async def release(self, claim: Claim) -> None:
        """Give the key up after the work failed: forgotten if nothing committed (a retry runs the work), else
        its lease lapses at once (a retry rebuilds the committed work's response)."""
        async with self.db.write(Scope.workspace(claim.workspace_id)) as session:
            await session.execute(
                sa.delete(IdempotencyKey).where(IdempotencyKey.id == claim.record_id,  # type: ignore[arg-type]
                                                IdempotencyKey.state == "inflight"))  # type: ignore[arg-type]
            await session.execute(
                sa.update(IdempotencyKey).where(IdempotencyKey.id == claim.record_id,  # type: ignore[arg-type]
                                                IdempotencyKey.state == "committed")  # type: ignore[arg-type]
                .values(locked_at=_LAPSED))

    async def prune(self, now: datetime, *, older_than: timedelta = RETENTION) -> int:
        """Housekeeping: delete keys older than the retention (never less than 24 h)."""
        cutoff = now - max(older_than, RETENTION)
        # System scope: housekeeping runs once for every workspace.
        async with self.db.write(Scope.system_wide()) as session:
            res = await session.execute(sa.delete(IdempotencyKey).where(IdempotencyKey.created_at < cutoff))  # type: ignore[arg-type]
        return int(res.rowcount or 0)  # type: ignore[attr-defined]
