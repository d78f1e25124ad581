"""Alert ingestion: authenticate the source, parse its format, record each event once, then apply it.

    POST /webhooks/alerts/{key}  ->  AlertIntake.ingest(key, headers, body)
      1. the source by its public key; its secret (X-Deskbridge-Secret or Authorization: Bearer) compared in
         constant time with the decrypted stored one; unknown key and wrong secret are the same refusal. A
         source once read is kept in memory, and step 3 checks it against its row (still enabled, same
         secret) in the recording transaction, so a disable or a rotation refuses the next delivery;
      2. the body parsed by the source's format (connectors/rmm, handed in) into canonical AlertEvents;
      3. one transaction records every event as an AlertReceipt and tries to take the source's lease (one
         processor per source, any instance); deliveries arriving together share that transaction (group
         commit, recording.py);
      4. the lease holder applies the source's pending receipts in chunks, each chunk one transaction
         (correlate.py), and releases the lease in the commit of the chunk that drains the source. A request
         that finds the lease taken answers "queued": the holder sees its receipts (below).
Why no receipt is left behind: a recording transaction and a chunk both start by locking the source row
(SQLite: one writer; PostgreSQL: SELECT … FOR UPDATE / the lease UPDATE), so a recording either commits
before a chunk looks for pending receipts (the chunk sees them) or after it (then the lease is free, or
held by a processor whose next chunk sees them). `sweep` (scheduler) applies what a crashed holder left
once its lease expires.
Applying creates or updates tickets through TicketService, so the outbox syncs them to the PSA.
"""

from __future__ import annotations

import hmac
import json
import logging
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import select

from connectors.alerts import AlertEvent, AlertFormatError, AlertParser
from core.context import Actor
from core.errors import InvalidInput
from core.intake.correlate import Applied, Correlator
from core.intake.recording import SECRET_HEADER, AlertRefused, Recorder, disabled, unknown_or_wrong
from core.intake.sources import AlertSourceService
from core.notify import AlertNeedsTicket
from core.tickets import TicketService
from store.db import Database, Scope
from store.tables import Alert, AlertReceipt, AlertSource
from store.types import utcnow

log = logging.getLogger("deskbridge.intake.alerts")

__all__ = ["SECRET_HEADER", "AlertIntake", "AlertRefused", "EventOutcome", "IngestResult"]

CHUNK = 50  # receipts per apply transaction (SQLite's write lock is held for one chunk)


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


class AlertIntake:
    """Receives alert webhooks and turns them into tickets (see module doc)."""

    def __init__(self, db: Database, *, sources: AlertSourceService, tickets: TicketService,
                 parsers: Mapping[str, AlertParser], clock: Callable[[], datetime] = utcnow,
                 chunk: int = CHUNK) -> None:
        self.db, self.sources, self.parsers, self._clock = db, sources, dict(parsers), clock
        self.chunk = chunk  # receipts per apply transaction (bench/alert_storm.py measures 1 as its baseline)
        self._secrets: dict[tuple[int, bytes], str] = {}
        self.recorder = Recorder(db, clock=clock)
        self.correlator = Correlator(db, tickets=tickets, clock=clock)

    # ------------------------------------------------------------ ingest

    async def ingest(self, key: str, headers: Mapping[str, str], body: bytes) -> IngestResult:
        """Authenticate, parse, record and apply one delivery (see module doc)."""
        source = await self._authenticate(key, headers)
        try:
            decoded = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):  # RecursionError: nested too deep
            raise InvalidInput("The body is not JSON.", hint="Send one alert event as a JSON object.") from None
        parser = self.parsers.get(source.kind)
        if parser is None:
            raise InvalidInput(f"This server cannot read the '{source.kind}' format.",
                               hint="Add a source of a kind it reads (events_v2, ninjaone or datto) with "
                                    "`deskbridge intake add-source NAME --kind KIND` and send there.")
        try:
            events = parser(decoded, body)
        except AlertFormatError as exc:
            raise InvalidInput(exc.message, hint=exc.hint or None) from None
        if not events:  # nothing is recorded, so nothing checks a kept source: read it now
            await self._authenticate(key, headers, fresh=True)
            return IngestResult("ignored")
        token = uuid.uuid4().hex[:16]
        recorded, claimed = await self.recorder.together(source, events, token)
        done = await self._drain(source, token) if claimed else {}
        status = "duplicate" if all(rid is None for rid, _ in recorded) else "accepted"
        return IngestResult(status, tuple(self._outcomes(recorded, done)))

    async def _authenticate(self, key: str, headers: Mapping[str, str], *, fresh: bool = False) -> AlertSource:
        """The source the request names, if its secret is right. Known sources are kept in memory, so a storm
        reads no source per delivery; the recording transaction checks the kept one against its row (enabled,
        same secret) and refuses a delivery whose source was disabled or rotated meanwhile, so a disable or a
        rotation takes effect at once, on every instance. A secret that does not match the kept source is
        checked against a fresh read before it is refused (the source may have been rotated to it)."""
        given = _secret_from(headers)
        if not given:
            raise unknown_or_wrong()
        kept = None if fresh else self.recorder.kept.get(key[:64])
        if kept is not None and self._matches(kept, given):
            return kept
        async with self.db.read(Scope.system_wide()) as session:  # the key names the workspace
            source = (await session.exec(select(AlertSource).where(AlertSource.key == key[:64]))).first()
        self.recorder.kept.pop(key[:64], None)
        if source is None or not self._matches(source, given):
            raise unknown_or_wrong()
        if not source.enabled:
            raise disabled(source)
        if len(self.recorder.kept) > 1000:
            self.recorder.kept.clear()
        self.recorder.kept[key[:64]] = source
        return source

    def _matches(self, source: AlertSource, given: str) -> bool:
        return hmac.compare_digest(given.encode(), self._secret(source).encode())

    def _secret(self, source: AlertSource) -> str:
        """The source's secret, decrypted once per stored ciphertext (a rotation stores a new one)."""
        key = (int(source.id), bytes(source.secret_ciphertext))  # type: ignore[arg-type]
        if key not in self._secrets:
            if len(self._secrets) > 1000:
                self._secrets.clear()
            self._secrets[key] = self.sources.secret_of(source)
        return self._secrets[key]

    @staticmethod
    def _outcomes(recorded: list[tuple[int | None, AlertEvent]], done: Mapping[int, Applied]) -> list[EventOutcome]:
        """Each event's outcome: what this request applied, "queued" for what the lease holder will apply."""
        out = []
        for rid, ev in recorded:
            if rid is None:
                out.append(EventOutcome(ev.dedup_key, ev.action, "duplicate"))
            elif rid in done:
                d = done[rid]
                out.append(EventOutcome(ev.dedup_key, ev.action, d.outcome, d.ticket_id, d.ticket_number))
            else:
                out.append(EventOutcome(ev.dedup_key, ev.action, "queued"))
        return out

    # ------------------------------------------------------------ apply

    async def process(self, workspace_id: int, source_id: int) -> int:
        """Apply the source's pending receipts if no one else is; returns how many this call applied."""
        token = uuid.uuid4().hex[:16]
        async with self.db.write(Scope.workspace(workspace_id)) as session:
            source = await session.get(AlertSource, source_id)
            if source is None or not await self.recorder.claim_in(session, source_id, token):
                return 0
        return len(await self._drain(source, token))

    async def _drain(self, source: AlertSource, token: str) -> dict[int, Applied]:
        """Holding the lease `token`: apply chunks until one drains the source (and releases the lease)."""
        ws, sid = source.workspace_id, int(source.id)  # type: ignore[arg-type]
        done: dict[int, Applied] = {}
        try:
            while True:
                chunk = await self.correlator.apply_chunk(ws, sid, source.name, token, self.chunk)
                if chunk is None:  # the lease expired and someone else holds it now
                    return done
                done.update((a.receipt_id, a) for a in chunk[0])
                await self._tell(a.needs_ticket for a in chunk[0])
                if chunk[1]:
                    return done
        except BaseException:
            await self._release(ws, sid, token)  # what is left is applied by the next request or the sweep
            raise

    async def _tell(self, events: Iterable[AlertNeedsTicket | None]) -> None:
        """Alerts that made no ticket, told to the chat surfaces after their chunk committed (never raises)."""
        notifier = self.correlator.tickets.notifier
        for event in events:
            if event is not None and notifier is not None:
                try:
                    await notifier.notify(event)
                except Exception:  # noqa: BLE001 - the alert is in triage whatever chat does with the news
                    log.exception("alert triage notice failed")

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

    async def create_ticket(self, actor: Actor, alert_id: int, customer_id: int | None = None) -> tuple[int, int | None]:
        """"Create ticket from this alert" (correlate.py `create_for`): (ticket id, number)."""
        ticket = await self.correlator.create_for(actor, alert_id, customer_id)
        return int(ticket.id), ticket.number  # type: ignore[arg-type]

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

    async def _release(self, ws: int, sid: int, token: str) -> None:
        async with self.db.write(Scope.workspace(ws)) as session:
            await session.execute(sa.update(AlertSource).where(
                AlertSource.id == sid, AlertSource.claimed_by == token)  # type: ignore[arg-type]
                .values(claimed_by=None, claimed_until=None))
