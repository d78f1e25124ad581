"""Idempotency keys for the REST API, with Stripe's semantics (reliability-sla.md §2.2).

    claim(key, request)  INSERT … ON CONFLICT DO NOTHING on UNIQUE(workspace_id, key): atomic, never
                         SELECT-then-INSERT. The winner runs the work; everyone else gets:
                           same request, response saved        -> Replay (status + body, as first sent)
                           different method/path/body          -> IdempotencyMismatch (422)
                           first request still running         -> Conflict (409; nothing ran, retry later)
    committed_with_work  while bound, the first write transaction that commits inside the work also flips
                         the key to `committed` in that same transaction. So a key still `inflight` after
                         the lock timeout proves the work never committed, and it may be claimed again;
                         a `committed` key is never run twice.
    complete / release   save the response (service errors included: the endpoint ran), or forget the
                         claim when the work failed before committing (a retry is then safe).
    prune                keys are kept at least 24 h, then deleted by housekeeping.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.orm import Session
from sqlmodel import select

from core.errors import Conflict, InvalidInput
from store.db import Database, Scope
from store.sql import dialect_insert
from store.tables import IdempotencyKey
from store.types import utcnow

RETENTION = timedelta(hours=24)
LOCK_TIMEOUT = timedelta(seconds=60)
MAX_KEY_CHARS = 255
_VALID_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")  # visible ASCII, like a UUID or any client token


class IdempotencyMismatch(InvalidInput):
    """The key was first used for a different request."""


@dataclass(frozen=True, slots=True)
class Claim:
    """This request owns the key and runs the work."""

    workspace_id: int
    record_id: int
    key: str


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


def _flip_on_commit(session: Session) -> None:
    """before_commit hook: mark the bound key `committed` inside the work's own transaction."""
    claim = _bound.get()
    if claim is None or session.info.get("read_only"):
        return
    scope = session.info.get("scope")
    if scope is None or (not scope.system and scope.workspace_id != claim.workspace_id):
        return
    table = IdempotencyKey.__table__  # type: ignore[attr-defined]
    session.connection().execute(
        sa.update(table).where(table.c.id == claim.record_id, table.c.state == "inflight").values(state="committed")
    )


def _install_hook() -> None:
    if not event.contains(Session, "before_commit", _flip_on_commit):
        event.listen(Session, "before_commit", _flip_on_commit)


class IdempotencyService:
    def __init__(self, db: Database, *, clock: Callable[[], datetime] = utcnow,
                 lock_timeout: timedelta = LOCK_TIMEOUT) -> None:
        self.db = db
        self._clock = clock
        self._lock_timeout = lock_timeout
        _install_hook()

    def _insert(self) -> Any:
        return dialect_insert(self.db.dialect, IdempotencyKey)

    async def claim(self, workspace_id: int, key: str, fingerprint: str) -> Claim | Replay:
        """Claim `key` for this request, or say what the first request with it got (see module doc)."""
        check_key(key)
        now = self._clock()
        stmt = self._insert().values(workspace_id=workspace_id, key=key, request_hash=fingerprint, state="inflight",
                                     created_at=now, locked_at=now)
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
            stale = now - row.locked_at >= self._lock_timeout
            if row.state == "inflight" and stale:
                # The earlier attempt died before its work committed (the flip would have said so): retake it.
                res = await session.execute(
                    sa.update(IdempotencyKey)
                    .where(IdempotencyKey.id == row.id, IdempotencyKey.state == "inflight",  # type: ignore[arg-type]
                           IdempotencyKey.locked_at == row.locked_at)  # type: ignore[arg-type]
                    .values(locked_at=now))
                if res.rowcount:  # type: ignore[attr-defined]
                    return Claim(workspace_id, row.id, key)  # type: ignore[arg-type]
            if row.state == "committed" and stale:
                raise Conflict("The first request with this Idempotency-Key completed, but its response was not "
                               "recorded.", hint="Look the result up (e.g. list recent tickets) instead of retrying.")
            raise Conflict("A request with this Idempotency-Key is still being processed.",
                           hint="Wait a moment and retry with the same key; nothing was done twice.")

    @contextmanager
    def committed_with_work(self, claim: Claim) -> Iterator[None]:
        """Bind the claim so the work's own commit marks it `committed` in the same transaction."""
        token = _bound.set(claim)
        try:
            yield
        finally:
            _bound.reset(token)

    async def complete(self, claim: Claim, status: int, body: dict[str, Any]) -> None:
        """Save the response the first request got; later requests with the key replay it."""
        async with self.db.write(Scope.workspace(claim.workspace_id)) as session:
            await session.execute(
                sa.update(IdempotencyKey).where(IdempotencyKey.id == claim.record_id)  # type: ignore[arg-type]
                .values(state="done", response_status=status, response_body=body))

    async def release(self, claim: Claim) -> None:
        """Forget a claim whose work failed before committing, so a retry with the key runs again."""
        async with self.db.write(Scope.workspace(claim.workspace_id)) as session:
            await session.execute(
                sa.delete(IdempotencyKey).where(IdempotencyKey.id == claim.record_id,  # type: ignore[arg-type]
                                                IdempotencyKey.state == "inflight"))  # type: ignore[arg-type]

    async def prune(self, now: datetime, *, older_than: timedelta = RETENTION) -> int:
        """Housekeeping: delete keys older than the retention (never less than 24 h)."""
        cutoff = now - max(older_than, RETENTION)
        # System scope: housekeeping runs once for every workspace.
        async with self.db.write(Scope.system_wide()) as session:
            res = await session.execute(sa.delete(IdempotencyKey).where(IdempotencyKey.created_at < cutoff))  # type: ignore[arg-type]
        return int(res.rowcount or 0)  # type: ignore[attr-defined]
