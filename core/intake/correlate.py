"""Applying recorded alert events: which ticket each creates or joins, and what is written there.

Trigger: a repeat of an alert with an open ticket adds a note to it (flap suppression); a new alert joins
an open ticket of the same device, or, in a storm (the customer already got `storm_threshold` alert
tickets within `group_window_minutes`), the customer's newest open alert ticket; otherwise a ticket is
created for the mapped customer. No customer found: the alert waits in triage (never dropped). A trigger
older than the alert's last resolve (out of order) is recorded as stale.
Resolve: a note on the alert's ticket; with `on_resolve=resolve` the ticket is resolved once every alert
it carries is resolved. A resolve older than the last trigger is stale. Acknowledge: a note.

A chunk of pending receipts is applied in ONE write transaction (core/ticket_batch.py, origin `alert`):
each event in order sees what the earlier ones did (the session flushes before each query), its ticket
writes are the usual row + timeline entry + outbox op, and its receipt is marked applied in the same
commit. So a crash repeats nothing (no second note, no second ticket), and an alert storm costs one
transaction per chunk instead of about ten per event. The chunk starts by renewing the source's lease
(which also locks the source row on PostgreSQL, serializing it with recorders, see alerts.py) and, when
it drains the source, releases the lease in the same commit.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from connectors.alerts import AlertEvent
from core.context import Actor
from core.errors import Conflict, DeskbridgeError, InvalidInput, NotFound, PermissionDenied
from core.hints import LINK_FIRST_HINT
from core.intake.rules import SourceSettings, mapping_candidates, name_candidates, source_settings
from core.notify import AlertNeedsTicket
from core.ticket_batch import TicketBatch, ticket_batch
from core.tickets import TicketService
from store.db import Database
from store.enums import OPEN_STAGES, Origin
from store.tables import Alert, AlertMapping, AlertReceipt, AlertSource, Customer, Ticket

log = logging.getLogger("deskbridge.intake.correlate")

_OPEN = tuple(s.value for s in OPEN_STAGES)
LEASE = timedelta(seconds=60)


def _event(data: dict[str, Any]) -> AlertEvent:
    occurred = data.get("occurred_at")
    return AlertEvent(**{**data, "occurred_at": datetime.fromisoformat(occurred) if occurred else None,
                         "links": tuple(tuple(x) for x in data.get("links") or ())})


def alert_ref(source: AlertSource, dedup_key: str) -> str:
    """What the ticket keeps to name its alert (Ticket.alert_ref)."""
    return f"{source.key}:{dedup_key}"[:200]


def _describe(source: AlertSource, ev: AlertEvent) -> str:
    lines = [ev.summary, "", f"Source: {source.name} ({source.kind})", f"Severity: {ev.severity}"]
    for label, value in (("Device", ev.device_name or ev.device_id), ("Site", ev.site_name or ev.site_id),
                         ("Organization", ev.org_name or ev.org_id), ("Component", ev.component),
                         ("Time", ev.occurred_at.isoformat() if ev.occurred_at else None)):
        if value:
            lines.append(f"{label}: {value}")
    for href, label in ev.links:
        lines.append(f"Link: {label + ' ' if label else ''}{href}")
    lines.append(f"Alert: {ev.dedup_key}")
    return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class Applied:
    """What one receipt did."""

    receipt_id: int
    outcome: str
    ticket_id: int | None
    ticket_number: int | None
    needs_ticket: AlertNeedsTicket | None = None  # told after the commit: the alert went to triage just now


@dataclass
class _Chunk:
    """One chunk's state: its batch, the source, and the tickets it has seen (by id)."""

    batch: TicketBatch
    source: AlertSource
    settings: SourceSettings
    tickets: dict[int, Ticket]
    customers: dict[tuple[Any, ...], int | None] = field(default_factory=dict)  # mapping answers, this chunk

    @property
    def session(self) -> AsyncSession:
        return self.batch.session

    async def ticket(self, ticket_id: int | None) -> Ticket | None:
        if ticket_id is None:
            return None
        if ticket_id not in self.tickets:  # locked like every ticket write (PostgreSQL; SQLite has one writer)
            found = await self.session.get(Ticket, ticket_id, with_for_update=True)
            if found is None:
                return None
            self.tickets[ticket_id] = found
        return self.tickets[ticket_id]


class Correlator:
    def __init__(self, db: Database, *, tickets: TicketService, clock: Callable[[], datetime]) -> None:
        self.db, self.tickets, self._clock = db, tickets, clock

    async def numbers(self, session: AsyncSession, ticket_ids: Iterable[int | None]) -> dict[int, int | None]:
        ids = [t for t in ticket_ids if t]
        if not ids:
            return {}
        rows = (await session.exec(select(col(Ticket.id), col(Ticket.number)).where(col(Ticket.id).in_(ids)))).all()
        return {int(i): n for i, n in rows if i is not None}

    async def apply_chunk(self, ws: int, source_id: int, name: str, token: str,
                          limit: int) -> tuple[list[Applied], bool] | None:
        """Apply up to `limit` pending receipts of the source in one transaction while holding its lease
        `token` (see module doc). Returns (what each did, drained: the lease was released in the same commit),
        or None when the lease is no longer ours."""
        actor = Actor(workspace_id=ws, origin=Origin.ALERT, display=f"alert:{name}")
        async with ticket_batch(self.tickets, actor) as batch:
            session = batch.session
            now = self._clock()
            held = await session.execute(sa.update(AlertSource).where(
                col(AlertSource.id) == source_id, col(AlertSource.claimed_by) == token)
                .values(claimed_until=now + LEASE))
            if not held.rowcount:  # type: ignore[attr-defined]
                return None
            receipts = (await session.exec(select(AlertReceipt).where(
                col(AlertReceipt.source_id) == source_id, col(AlertReceipt.applied_at).is_(None))
                .order_by(col(AlertReceipt.id)).limit(limit))).all()
            source = await session.get(AlertSource, source_id)
            assert source is not None
            alerts = {a.id: a for a in (await session.exec(select(Alert).where(
                col(Alert.id).in_({r.alert_id for r in receipts})))).all()} if receipts else {}
            ticket_ids = {a.ticket_id for a in alerts.values() if a.ticket_id}
            tickets = {t.id: t for t in (await session.exec(select(Ticket).where(
                col(Ticket.id).in_(ticket_ids)).order_by(col(Ticket.id)).with_for_update())).all()} if ticket_ids else {}
            chunk = _Chunk(batch, source, source_settings(source.settings), tickets)  # type: ignore[arg-type]
            done = [await self._apply(chunk, r, alerts[r.alert_id]) for r in receipts]
            drained = len(receipts) < limit
            if drained:
                await session.execute(sa.update(AlertSource).where(
                    col(AlertSource.id) == source_id, col(AlertSource.claimed_by) == token)
                    .values(claimed_by=None, claimed_until=None))
        return done, drained

    async def create_for(self, actor: Actor, alert_id: int, customer_id: int | None = None) -> Ticket:
        """"Create ticket from this alert" (a technician): for an alert in triage or without an open ticket,
        one ticket prefilled from its latest event, linked to it, in one transaction (TicketService's checks
        and outbox op as always). A second click finds the alert on its open ticket: Conflict, nothing twice."""
        if not actor.is_member:
            raise PermissionDenied("Only technicians can create tickets from alerts.", hint=LINK_FIRST_HINT)
        async with ticket_batch(self.tickets, actor) as batch:
            s = batch.session
            alert = await s.get(Alert, alert_id, with_for_update=True)
            if alert is None:
                raise NotFound(f"There is no alert {alert_id}.", hint="The admin page Intake (/admin/intake) and "
                                                                              "`deskbridge intake triage` list them.")
            current = await s.get(Ticket, alert.ticket_id) if alert.ticket_id else None
            if current is not None and current.stage in _OPEN:
                raise Conflict(f"This alert is already on ticket {current.number or f'id:{current.id}'}.",
                               hint="Open that ticket; nothing new was created.")
            customer = customer_id or alert.customer_id
            if customer is None:
                raise InvalidInput("This alert has no customer yet.", field="customer",
                                   hint="Name the customer, or map its device, site or organisation "
                                        "(admin page Intake, or `deskbridge intake map`) so its alerts find it.")
            source = await s.get(AlertSource, alert.source_id)
            assert source is not None
            receipt = (await s.exec(select(AlertReceipt).where(col(AlertReceipt.alert_id) == alert_id)
                                    .order_by(col(AlertReceipt.id).desc()).limit(1))).first()
            ev = _event(receipt.event) if receipt is not None else None
            ticket = await batch.create(
                subject=alert.summary[:255] or f"Alert {alert.dedup_key}"[:255],
                description=alert.summary, customer_id=customer,
                priority=source_settings(source.settings).priority(alert.severity),
                alert_ref=alert_ref(source, alert.dedup_key), device_ref=alert.device_name)
            if ev is not None:  # the RMM's details (device, site, links) are the MSP's: an internal note
                await batch.note(ticket, _describe(source, ev))
            alert.ticket_id, alert.customer_id = ticket.id, customer
            alert.status = {"triage": "triggered", "triage_resolved": "resolved"}.get(alert.status, alert.status)
        return ticket

    async def _apply(self, chunk: _Chunk, receipt: AlertReceipt, alert: Alert) -> Applied:
        """Apply one receipt (see module doc) and mark it applied, in the chunk's transaction."""
        ev = _event(receipt.event)
        ticket = await chunk.ticket(alert.ticket_id)
        changes: dict[str, Any] = {}
        was_triage = alert.status in ("triage", "triage_resolved")
        try:
            if ev.action == "trigger":
                outcome, ticket_id = await self._trigger(chunk, alert, ticket, ev, changes)
            elif ev.action == "resolve":
                outcome, ticket_id = await self._resolve(chunk, alert, ticket, ev, changes)
            else:
                changes["status"] = "acknowledged" if alert.status != "resolved" else alert.status
                ticket_id = ticket.id if ticket and ticket.stage in _OPEN else None
                if ticket and ticket_id:
                    await chunk.batch.note(ticket, f"Alert acknowledged in {chunk.source.name}: {ev.summary}")
                outcome = "noted" if ticket_id else "recorded"
        except DeskbridgeError as exc:  # e.g. the PSA refuses this customer: kept in triage with the reason
            log.warning("alert could not become a ticket", extra={"receipt": receipt.id, "reason": exc.message})
            outcome, ticket_id = "triage", None
            changes = {"status": "triage"}
            receipt.event = {**receipt.event, "error": f"{exc.message} {exc.hint or ''}".strip()}
        for name, value in changes.items():
            setattr(alert, name, value)
        receipt.applied_at, receipt.outcome, receipt.ticket_id = self._clock(), outcome, ticket_id
        number = chunk.tickets[ticket_id].number if ticket_id in chunk.tickets else None
        needs = self._needs_ticket(chunk, alert, ev) if outcome == "triage" and not was_triage else None
        return Applied(receipt.id, outcome, ticket_id, number, needs)  # type: ignore[arg-type]

    def _needs_ticket(self, chunk: _Chunk, alert: Alert, ev: AlertEvent) -> AlertNeedsTicket:
        return AlertNeedsTicket(workspace_id=chunk.source.workspace_id, ticket_id=None, ticket_number=None,
                                origin=Origin.ALERT.value, occurred_at=self._clock(), alert_id=int(alert.id or 0),
                                source_name=chunk.source.name, summary=ev.summary[:500], severity=ev.severity,
                                device=(ev.device_name or ev.device_id or None))

    async def _trigger(self, chunk: _Chunk, alert: Alert, ticket: Ticket | None, ev: AlertEvent,
                       changes: dict[str, Any]) -> tuple[str, int | None]:
        source, batch = chunk.source, chunk.batch
        if ev.occurred_at and alert.resolved_at and ev.occurred_at <= alert.resolved_at:
            if ticket and ticket.stage in _OPEN:
                await batch.note(ticket, f"Late trigger (already resolved): {ev.summary}")
            return "stale", ticket.id if ticket else None
        count = alert.triggers + 1
        changes.update(triggers=count, status="triggered", last_trigger_at=ev.occurred_at or self._clock(),
                       resolved_at=None, summary=ev.summary[:1024], severity=ev.severity)
        if ticket and ticket.stage in _OPEN:
            await batch.note(ticket, f"Alert triggered again ({count} times): {ev.summary}")
            return "noted", ticket.id
        key = (tuple(mapping_candidates(ev)), tuple(name_candidates(ev)))
        if key not in chunk.customers:
            chunk.customers[key] = await self._customer(chunk.session, ev)
        customer_id = chunk.customers[key]
        changes["customer_id"] = customer_id
        if customer_id is None:
            changes["status"] = "triage"
            return "triage", None
        group = await chunk.ticket(await self._group_target(chunk.session, source, chunk.settings, alert, ev,
                                                            customer_id))
        if group is not None:
            where = f" on {ev.device_name}" if ev.device_name else ""
            await batch.note(group, f"Another alert{where} ({source.name}, {ev.severity}): {ev.summary}")
            changes["ticket_id"] = group.id
            return "grouped", group.id
        created = await batch.create(
            subject=ev.summary[:255], description=ev.summary, customer_id=customer_id,
            priority=chunk.settings.priority(ev.severity), alert_ref=alert_ref(source, ev.dedup_key),
            device_ref=(ev.device_name or ev.device_id or None))
        # The description is what the customer reads of the ticket; the RMM's details (source, device, site,
        # organisation, links) are the MSP's business: an internal note, the ticket's first.
        await batch.note(created, _describe(source, ev))
        chunk.tickets[created.id] = created  # type: ignore[index]
        changes["ticket_id"] = created.id
        return "created", created.id

    async def _resolve(self, chunk: _Chunk, alert: Alert, ticket: Ticket | None, ev: AlertEvent,
                       changes: dict[str, Any]) -> tuple[str, int | None]:
        if ev.occurred_at and alert.last_trigger_at and ev.occurred_at < alert.last_trigger_at:
            return "stale", ticket.id if ticket else None  # ends an earlier flap; the alert is triggered again
        changes["resolved_at"] = ev.occurred_at or self._clock()
        changes["status"] = "triage_resolved" if alert.status == "triage" else "resolved"
        if ticket is None or ticket.stage not in _OPEN:
            return "recorded", ticket.id if ticket else None
        await chunk.batch.note(ticket, f"Alert resolved in {chunk.source.name}: {ev.summary}")
        if chunk.settings.on_resolve == "resolve":
            others = (await chunk.session.exec(select(sa.func.count()).select_from(Alert).where(
                col(Alert.ticket_id) == ticket.id, col(Alert.id) != alert.id,
                col(Alert.status).in_(("triggered", "acknowledged"))))).one()
            if not others:
                try:
                    await chunk.batch.status(ticket, "resolved")
                except DeskbridgeError as exc:  # the note stands; the ticket stays open for a technician
                    log.warning("alert ticket not resolved", extra={"ticket": ticket.id, "reason": exc.message})
                    return "noted", ticket.id
                return "resolved", ticket.id
        return "noted", ticket.id

    async def _customer(self, session: AsyncSession, ev: AlertEvent) -> int | None:
        """The customer by mapping rules (RMM ids, then names), then by customer name or identifier."""
        candidates = mapping_candidates(ev)
        if candidates:
            rows = (await session.exec(select(AlertMapping).where(sa.or_(*(
                sa.and_(col(AlertMapping.scope) == s, col(AlertMapping.by) == b, col(AlertMapping.value) == v)
                for s, b, v in candidates))))).all()
            found = {(r.scope, r.by, r.value): r.customer_id for r in rows}
            for cand in candidates:
                if cand in found:
                    return found[cand]
        for name in name_candidates(ev):
            same = sa.or_(sa.func.lower(Customer.name) == name, sa.func.lower(Customer.identifier) == name)
            stmt = select(col(Customer.id)).where(col(Customer.active) == sa.true(), same).limit(2)
            hits = (await session.exec(stmt)).all()
            if len(hits) == 1 and hits[0] is not None:
                return int(hits[0])
        return None

    async def _group_target(self, session: AsyncSession, source: AlertSource, settings: SourceSettings,
                            alert: Alert, ev: AlertEvent, customer_id: int) -> int | None:
        """An open ticket this new alert joins: the same device's, or the customer's newest in a storm."""
        open_ticket = sa.and_(col(Ticket.id) == col(Alert.ticket_id), col(Ticket.stage).in_(_OPEN))
        if ev.device_key:
            same_device = (await session.exec(select(col(Alert.ticket_id)).join(Ticket, open_ticket).where(
                col(Alert.source_id) == source.id, col(Alert.device_key) == ev.device_key, col(Alert.id) != alert.id)
                .order_by(col(Alert.ticket_id).desc()).limit(1))).first()
            if same_device:
                return int(same_device)
        since = self._clock() - timedelta(minutes=settings.group_window_minutes)
        recent = [t for t in (await session.exec(select(col(Alert.ticket_id)).join(Ticket, open_ticket).where(
            col(Alert.customer_id) == customer_id, col(Alert.first_at) >= since, col(Alert.id) != alert.id)
            .distinct())).all() if t is not None]
        if len(recent) >= settings.storm_threshold:
            return int(max(recent))
        return None
