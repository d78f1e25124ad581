"""Alert ingestion: authenticate the source, parse its format, record each event once, then apply it.

    POST /webhooks/alerts/{key}  ->  AlertIntake.ingest(key, headers, body)
      1. the source by its public key; its secret (X-Deskbridge-Secret or Authorization: Bearer) compared in
         constant time with the decrypted stored one; unknown key and wrong secret are the same refusal;
      2. the body parsed by the source's format (connectors/rmm, handed in) into canonical AlertEvents;
      3. one transaction records every event as an AlertReceipt, unique on (source, dedup key, action,
         occurrence): a sender's retry of a delivery is a duplicate and changes nothing;
      4. pending receipts of the source are applied in order by one processor at a time (a lease on the
         source row, so several instances never apply the same alert twice; a request that finds the lease
         taken leaves its receipts to the holder, which looks again after releasing it).
Applying (correlate.py) creates or updates tickets through TicketService, so the outbox syncs them to the PSA.
"""

from __future__ import annotations

import hmac
import json
import logging
import uuid
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import col, select

from connectors.alerts import AlertEvent, AlertFormatError, AlertParser
from core.errors import DeskbridgeError, InvalidInput
from core.intake.correlate import Correlator
from core.intake.sources import AlertSourceService
from core.tickets import TicketService
from store.db import Database, Scope
from store.sql import dialect_insert
from store.tables import Alert, AlertReceipt, AlertSource
from store.types import utcnow

log = logging.getLogger("deskbridge.intake.alerts")

SECRET_HEADER = "x-deskbridge-secret"  # noqa: S105 - a header name
LEASE = timedelta(seconds=60)
BATCH = 200


class AlertRefused(DeskbridgeError):
    """The request is not from the source it names (unknown key, missing or wrong secret, disabled)."""


@dataclass(frozen=True, slots=True)
class EventOutcome:
    dedup_key: str
    action: str
    outcome: str  # created, noted, grouped, triage, stale, resolved, recorded, duplicate, queued
    ticket_id: int | None = None
    ticket_number: int | None = None


@dataclass(frozen=True, slots=True)
class IngestResult:
    status: str  # accepted, duplicate, ignored
    events: tuple[EventOutcome, ...] = ()


def _secret_from(headers: Mapping[str, str]) -> str | None:
    given = headers.get(SECRET_HEADER)
    if given:
        return given.strip()
    auth = headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    return None


def event_record(event: AlertEvent) -> dict[str, Any]:
    """The canonical event as stored on its receipt (JSON-safe)."""
    data = asdict(event)
    data["occurred_at"] = event.occurred_at.isoformat() if event.occurred_at else None
    data["links"] = [list(link) for link in event.links]
    data["details"] = json.loads(json.dumps(dict(event.details), default=str))
    return data


class AlertIntake:
    """Receives alert webhooks and turns them into tickets (see module doc)."""

    def __init__(self, db: Database, *, sources: AlertSourceService, tickets: TicketService,
                 parsers: Mapping[str, AlertParser], clock: Callable[[], datetime] = utcnow) -> None:
        self.db, self.sources, self.parsers, self._clock = db, sources, dict(parsers), clock
        self.correlator = Correlator(db, tickets=tickets, clock=clock)

    # ------------------------------------------------------------ ingest

    async def ingest(self, key: str, headers: Mapping[str, str], body: bytes) -> IngestResult:
        """Authenticate, parse, record and apply one delivery (see module doc)."""
        source = await self._authenticate(key, headers)
        try:
            decoded = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise InvalidInput("The body is not JSON.", hint="Send one alert event as a JSON object.") from None
        parser = self.parsers.get(source.kind)
        if parser is None:
            raise InvalidInput(f"This server cannot read the '{source.kind}' format.")
        try:
            events = parser(decoded, body)
        except AlertFormatError as exc:
            raise InvalidInput(exc.message, hint=exc.hint or None) from None
        if not events:
            return IngestResult("ignored")
        recorded = await self.record(source, events)
        await self.process(source.workspace_id, source.id)  # type: ignore[arg-type]
        outcomes = await self._outcomes(source.workspace_id, recorded)
        status = "duplicate" if all(rid is None for rid, _ in recorded) else "accepted"
        return IngestResult(status, tuple(outcomes))

    async def _authenticate(self, key: str, headers: Mapping[str, str]) -> AlertSource:
        refused = AlertRefused("Unknown alert source or wrong secret.",
                               hint=f"Send the source's secret in the {SECRET_HEADER} header to its own URL "
                                    "(`deskbridge intake sources` lists them).")
        given = _secret_from(headers)
        async with self.db.read(Scope.system_wide()) as session:  # the key names the workspace
            source = (await session.exec(select(AlertSource).where(AlertSource.key == key[:64]))).first()
        if source is None or not given:
            raise refused
        if not hmac.compare_digest(given.encode(), self.sources.secret_of(source).encode()):
            raise refused
        if not source.enabled:
            raise AlertRefused(f"The alert source '{source.name}' is disabled.",
                               hint="Enable it with `deskbridge intake set <source> enabled on`.")
        return source

    async def record(self, source: AlertSource, events: list[AlertEvent]) -> list[tuple[int | None, AlertEvent]]:
        """Record events as receipts in one transaction; (receipt id or None for a duplicate, event)."""
        ws, sid = source.workspace_id, source.id
        now = self._clock()
        out: list[tuple[int | None, AlertEvent]] = []
        async with self.db.write(Scope.workspace(ws)) as session:
            for ev in events:
                ins = dialect_insert(self.db.dialect, Alert).values(
                    workspace_id=ws, source_id=sid, dedup_key=ev.dedup_key, status="new", summary=ev.summary[:1024],
                    severity=ev.severity, device_key=ev.device_key, device_name=ev.device_name, triggers=0,
                    first_at=now).on_conflict_do_nothing(index_elements=["source_id", "dedup_key"])
                await session.execute(ins)
                alert_id = (await session.execute(sa.select(Alert.id).where(  # type: ignore[call-overload]
                    Alert.source_id == sid, Alert.dedup_key == ev.dedup_key))).scalar_one()
                rec = dialect_insert(self.db.dialect, AlertReceipt).values(
                    workspace_id=ws, source_id=sid, alert_id=alert_id, dedup_key=ev.dedup_key, action=ev.action,
                    occurrence=ev.occurrence[:64], occurred_at=ev.occurred_at, event=event_record(ev),
                    received_at=now,
                ).on_conflict_do_nothing(
                    index_elements=["source_id", "dedup_key", "action", "occurrence"]).returning(AlertReceipt.id)
                out.append(((await session.execute(rec)).scalar_one_or_none(), ev))
        return out

    async def _outcomes(self, ws: int, recorded: list[tuple[int | None, AlertEvent]]) -> list[EventOutcome]:
        ids = [rid for rid, _ in recorded if rid is not None]
        async with self.db.read(Scope.workspace(ws)) as session:
            rows = {r.id: r for r in (await session.exec(
                select(AlertReceipt).where(AlertReceipt.id.in_(ids)))).all()} if ids else {}  # type: ignore[union-attr]
            numbers = await self.correlator.numbers(session, {r.ticket_id for r in rows.values() if r.ticket_id})
        out = []
        for rid, ev in recorded:
            row = rows.get(rid) if rid is not None else None
            if row is None:
                out.append(EventOutcome(ev.dedup_key, ev.action, "duplicate"))
                continue
            outcome = row.outcome if row.applied_at else "queued"
            out.append(EventOutcome(ev.dedup_key, ev.action, outcome or "recorded", row.ticket_id,
                                    numbers.get(row.ticket_id) if row.ticket_id else None))
        return out

    # ------------------------------------------------------------ apply

    async def process(self, workspace_id: int, source_id: int) -> int:
        """Apply the source's pending receipts if no one else is; returns how many this call applied."""
        applied = 0
        while True:
            token = uuid.uuid4().hex[:16]
            if not await self._claim(workspace_id, source_id, token):
                return applied
            try:
                while True:
                    batch = await self._pending(workspace_id, source_id)
                    for receipt_id in batch:
                        await self.correlator.apply(workspace_id, receipt_id)
                        applied += 1
                    if len(batch) < BATCH:  # drained (what arrives meanwhile is found after the release)
                        break
                    await self._claim(workspace_id, source_id, token, renew=True)
            finally:
                await self._release(workspace_id, source_id, token)
            if not await self._pending(workspace_id, source_id, limit=1):
                return applied

    async def sweep(self) -> int:
        """Apply what a crashed processor left (scheduler job): every source with pending receipts."""
        async with self.db.read(Scope.system_wide()) as session:
            pairs = (await session.execute(
                sa.select(AlertReceipt.workspace_id, AlertReceipt.source_id)  # type: ignore[call-overload]
                .where(AlertReceipt.applied_at.is_(None)).distinct())).all()  # type: ignore[union-attr]
        total = 0
        for ws, sid in pairs:
            total += await self.process(int(ws), int(sid))
        return total

    async def retry_triage(self, workspace_id: int) -> int:
        """Apply triaged alerts again (after a mapping was added); returns how many were retried."""
        async with self.db.write(Scope.workspace(workspace_id)) as session:
            rows = (await session.exec(select(AlertReceipt).where(
                AlertReceipt.outcome == "triage",
                AlertReceipt.alert_id.in_(select(Alert.id).where(Alert.status == "triage"))))).all()  # type: ignore[attr-defined]
            for row in rows:
                row.applied_at, row.outcome = None, None
            sources = {row.source_id for row in rows}
        for sid in sources:
            await self.process(workspace_id, sid)
        return len(rows)

    async def _pending(self, ws: int, sid: int, limit: int = BATCH) -> list[int]:
        async with self.db.read(Scope.workspace(ws)) as session:
            return list((await session.exec(
                select(AlertReceipt.id).where(AlertReceipt.source_id == sid,
                                              AlertReceipt.applied_at.is_(None))  # type: ignore[union-attr]
                .order_by(AlertReceipt.id).limit(limit))).all())  # type: ignore[arg-type]

    async def _claim(self, ws: int, sid: int, token: str, *, renew: bool = False) -> bool:
        now = self._clock()
        cond = (col(AlertSource.claimed_by) == token) if renew else sa.or_(
            col(AlertSource.claimed_until).is_(None), col(AlertSource.claimed_until) < now)
        async with self.db.write(Scope.workspace(ws)) as session:
            res = await session.execute(sa.update(AlertSource).where(AlertSource.id == sid, cond)  # type: ignore[arg-type]
                                        .values(claimed_by=token, claimed_until=now + LEASE))
            return bool(res.rowcount)  # type: ignore[attr-defined]

    async def _release(self, ws: int, sid: int, token: str) -> None:
        async with self.db.write(Scope.workspace(ws)) as session:
            await session.execute(sa.update(AlertSource).where(
                AlertSource.id == sid, AlertSource.claimed_by == token)  # type: ignore[arg-type]
                .values(claimed_by=None, claimed_until=None))
