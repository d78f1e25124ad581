"""Recording alert deliveries: their receipts, once each, group-committed (step 3 of core/intake/alerts.py).

Each delivery's events become AlertReceipts, unique on (source, dedup key, action, occurrence), so a sender's
retry is a duplicate and changes nothing; the same transaction tries to take the source's lease.

Group commit (`together`): deliveries that arrive while one is being recorded wait in line, and the first in
line records all of them in one transaction per workspace (in a storm: one transaction per handful of
deliveries instead of one each, and no per-delivery BEGIN/COMMIT in SQLite's one-writer queue). Each request
still answers only once its own receipts are committed, with its own outcome. If a group's transaction
fails, each of its deliveries is recorded alone, so a bad one fails only its own request (its sender gets a
500 and retries); a recorder cancelled midway leaves the rest to the next in line.

Sources are authenticated from memory (`kept`, alerts.py); the recording transaction reads each source's row
(locked on PostgreSQL, in id order) and refuses deliveries whose source was disabled or got a new secret
since, and forgets it, so a disable or a rotation takes effect at the next delivery on every instance.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from connectors.alerts import AlertEvent
from core.errors import DeskbridgeError
from core.intake.correlate import LEASE
from store.db import Database, Scope
from store.sql import dialect_insert, table_of
from store.tables import Alert, AlertReceipt, AlertSource

log = logging.getLogger("deskbridge.intake.alerts")

SECRET_HEADER = "x-deskbridge-secret"  # noqa: S105 - a header name


class AlertRefused(DeskbridgeError):
    """The request is not from the source it names (unknown key, missing or wrong secret, disabled)."""


def unknown_or_wrong() -> AlertRefused:
    return AlertRefused("Unknown alert source or wrong secret.",
                        hint=f"Send the source's secret in the {SECRET_HEADER} header to its own URL "
                             "(`deskbridge intake sources` lists them).")


def disabled(source: AlertSource) -> AlertRefused:
    return AlertRefused(f"The alert source '{source.name}' is disabled.",
                        hint="Enable it on the admin page Intake (/admin/intake) or with "
                             "`deskbridge intake set <source> enabled on`.")


def event_record(event: AlertEvent) -> dict[str, Any]:
    """The canonical event as stored on its receipt (JSON-safe)."""
    data = asdict(event)
    data["occurred_at"] = event.occurred_at.isoformat() if event.occurred_at else None
    data["links"] = [list(link) for link in event.links]
    data["details"] = json.loads(json.dumps(dict(event.details), default=str))
    return data


def _record_statements(dialect: str) -> tuple[Any, Any, Any]:
    """`record`'s statements, built once (each delivery only binds its values): the alert upsert returning its
    id (a no-op update on conflict, so that RETURNING names the existing alert), the receipt insert returning
    its id or nothing for a duplicate, and the sources' rows as they are now (locked on PostgreSQL)."""
    alerts, receipts, sources = table_of(Alert), table_of(AlertReceipt), table_of(AlertSource)
    upsert = dialect_insert(dialect, alerts)
    upsert = upsert.on_conflict_do_update(index_elements=["source_id", "dedup_key"],
                                          set_={"dedup_key": upsert.excluded.dedup_key}).returning(alerts.c.id)
    receipt = dialect_insert(dialect, receipts).on_conflict_do_nothing(
        index_elements=["source_id", "dedup_key", "action", "occurrence"]).returning(receipts.c.id)
    source_rows = sa.select(sources.c.id, sources.c.enabled, sources.c.secret_ciphertext).where(
        sources.c.id.in_(sa.bindparam("ids", expanding=True))).order_by(sources.c.id)
    if dialect != "sqlite":
        source_rows = source_rows.with_for_update()
    return upsert, receipt, source_rows


Recorded = tuple[list[tuple[int | None, AlertEvent]], bool]  # (receipt id or None per event, lease taken)


@dataclass(eq=False)
class _Waiting:
    """A delivery waiting for its group's recording transaction."""

    source: AlertSource
    events: list[AlertEvent]
    claim: str
    done: asyncio.Future[tuple[list[tuple[int | None, AlertEvent]], bool]]


class Recorder:
    """Records deliveries (module doc); `kept` holds the sources authenticated from memory, by key."""

    def __init__(self, db: Database, *, clock: Callable[[], datetime]) -> None:
        self.db, self._clock = db, clock
        self._statements = _record_statements(db.dialect)
        self.kept: dict[str, AlertSource] = {}  # key -> the source as last read (checked when recording)
        self._waiting: list[_Waiting] = []  # deliveries waiting to be recorded together
        self._group_turn = asyncio.Lock()

    async def record(self, source: AlertSource, events: list[AlertEvent], *,
                     claim: str | None = None) -> tuple[list[tuple[int | None, AlertEvent]], bool]:
        """Record events as receipts in one transaction: ([(receipt id or None for a duplicate, event)], whether
        the source's lease was taken with `claim` in the same transaction)."""
        async with self.db.write(Scope.workspace(source.workspace_id)) as session:
            refused = (await self._check_sources(session, [source])).get(int(source.id))  # type: ignore[arg-type]
            if refused is not None:
                raise refused
            out = await self._record_in(session, source, events)
            claimed = await self.claim_in(session, source.id, claim) if claim else False  # type: ignore[arg-type]
        return out, claimed

    async def together(self, source: AlertSource, events: list[AlertEvent],
                               claim: str) -> tuple[list[tuple[int | None, AlertEvent]], bool]:
        """`record`, group-committed with the deliveries that arrive meanwhile (module doc)."""
        mine = _Waiting(source, events, claim, asyncio.get_running_loop().create_future())
        self._waiting.append(mine)
        async with self._group_turn:  # FIFO: the first in line records everyone waiting, later ones find theirs done
            if not mine.done.done():
                group, self._waiting = self._waiting, []
                try:
                    await self._record_group(group)
                finally:  # cancelled midway (the client went away): the next in line records the rest
                    self._waiting[:0] = [w for w in group if not w.done.done()]
        return mine.done.result()

    async def _record_group(self, group: list[_Waiting]) -> None:
        """One write transaction per workspace for a group of deliveries; the first delivery of each source
        that finds the lease free takes it. If that transaction fails, each of its deliveries is recorded
        alone, so one bad delivery fails only itself (its sender gets a 500 and retries)."""
        by_ws: dict[int, list[_Waiting]] = {}
        for w in group:
            by_ws.setdefault(w.source.workspace_id, []).append(w)
        for ws, items in by_ws.items():
            try:
                results = await self._record_workspace(ws, items)
            except Exception as exc:
                if len(items) == 1:
                    items[0].done.set_exception(exc)
                    continue
                log.warning("a group of alert deliveries failed together; recording each alone", exc_info=True)
                for w in items:
                    try:
                        w.done.set_result(await self.record(w.source, w.events, claim=w.claim))
                    except Exception as one:  # noqa: BLE001 - told to that delivery's request
                        w.done.set_exception(one)
                continue
            for w, result in zip(items, results, strict=True):
                if isinstance(result, AlertRefused):
                    w.done.set_exception(result)
                else:
                    w.done.set_result(result)

    async def _record_workspace(self, ws: int, items: list[_Waiting]) -> list[Recorded | AlertRefused]:
        """One transaction for the workspace's deliveries: each one's receipts and lease, or its refusal."""
        out: list[Recorded | AlertRefused] = []
        async with self.db.write(Scope.workspace(ws)) as session:
            refused = await self._check_sources(session, [w.source for w in items])
            taken: set[int] = set()
            for w in items:
                sid = int(w.source.id)  # type: ignore[arg-type]
                if sid in refused:
                    out.append(refused[sid])
                    continue
                recorded = await self._record_in(session, w.source, w.events)
                mine = sid not in taken and await self.claim_in(session, sid, w.claim)
                if mine:
                    taken.add(sid)
                out.append((recorded, mine))
        return out

    async def _check_sources(self, session: AsyncSession, sources: Iterable[AlertSource]) -> dict[int, AlertRefused]:
        """Lock the source rows (PostgreSQL, in id order; SQLite's one writer already serializes this with
        chunks, module doc) and compare each with the source its requests were authenticated against: a source
        disabled or given a new secret since refuses them (and is read afresh next time)."""
        kept = {int(s.id): s for s in sources}  # type: ignore[arg-type]
        rows = (await session.execute(self._statements[2], {"ids": sorted(kept)})).all()
        found = {int(r.id): r for r in rows}
        refused: dict[int, AlertRefused] = {}
        for sid, source in kept.items():
            row = found.get(sid)
            if row is None or bytes(row.secret_ciphertext) != bytes(source.secret_ciphertext):
                refused[sid] = unknown_or_wrong()
            elif not row.enabled:
                refused[sid] = disabled(source)
            if sid in refused:
                self.kept.pop(source.key, None)
        return refused

    async def _record_in(self, session: AsyncSession, source: AlertSource,
                         events: list[AlertEvent]) -> list[tuple[int | None, AlertEvent]]:
        """The receipts of one delivery, in the caller's transaction."""
        ws, sid = source.workspace_id, source.id
        now = self._clock()
        out: list[tuple[int | None, AlertEvent]] = []
        alert_ins, receipt_ins, _ = self._statements
        for ev in events:
            alert_id = (await session.execute(alert_ins, {
                "workspace_id": ws, "source_id": sid, "dedup_key": ev.dedup_key, "status": "new",
                "summary": ev.summary[:1024], "severity": ev.severity, "device_key": ev.device_key,
                "device_name": ev.device_name, "triggers": 0, "first_at": now})).scalar_one()
            rid = (await session.execute(receipt_ins, {
                "workspace_id": ws, "source_id": sid, "alert_id": alert_id, "dedup_key": ev.dedup_key,
                "action": ev.action, "occurrence": ev.occurrence[:64], "occurred_at": ev.occurred_at,
                "event": event_record(ev), "received_at": now})).scalar_one_or_none()
            out.append((rid, ev))
        return out

    async def claim_in(self, session: AsyncSession, sid: int, token: str) -> bool:
        """Take the source's lease with `token` if it is free (in the caller's transaction)."""
        now = self._clock()
        free = sa.or_(col(AlertSource.claimed_until).is_(None), col(AlertSource.claimed_until) < now)
        res = await session.execute(sa.update(AlertSource).where(AlertSource.id == sid, free)  # type: ignore[arg-type]
                                    .values(claimed_by=token, claimed_until=now + LEASE))
        return bool(res.rowcount)  # type: ignore[attr-defined]
