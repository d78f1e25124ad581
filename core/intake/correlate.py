"""Applying one recorded alert event: which ticket it creates or joins, and what is written there.

Trigger: a repeat of an alert with an open ticket adds a note to it (flap suppression); a new alert joins
an open ticket of the same device, or, in a storm (the customer already got `storm_threshold` alert
tickets within `group_window_minutes`), the customer's newest open alert ticket; otherwise a ticket is
created for the mapped customer. No customer found: the alert waits in triage (never dropped). A trigger
older than the alert's last resolve (out of order) is recorded as stale.
Resolve: a note on the alert's ticket; with `on_resolve=resolve` the ticket is resolved once every alert
it carries is resolved. A resolve older than the last trigger is stale. Acknowledge: a note.

Ticket writes go through TicketService (origin `alert`), each its own transaction, then the receipt is
marked applied. A crash between the two can repeat one note, never create a second ticket: a create is
first looked up by the ticket's alert reference.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from connectors.alerts import AlertEvent
from core.context import Actor
from core.errors import DeskbridgeError
from core.intake.rules import SourceSettings, mapping_candidates, name_candidates, source_settings
from core.tickets import TicketService
from store.db import Database, Scope
from store.enums import OPEN_STAGES, Origin
from store.tables import Alert, AlertMapping, AlertReceipt, AlertSource, Customer, Ticket

log = logging.getLogger("deskbridge.intake.correlate")

_OPEN = tuple(s.value for s in OPEN_STAGES)


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


class Correlator:
    def __init__(self, db: Database, *, tickets: TicketService, clock: Callable[[], datetime]) -> None:
        self.db, self.tickets, self._clock = db, tickets, clock

    async def numbers(self, session: AsyncSession, ticket_ids: Iterable[int | None]) -> dict[int, int | None]:
        ids = [t for t in ticket_ids if t]
        if not ids:
            return {}
        rows = (await session.exec(select(col(Ticket.id), col(Ticket.number)).where(col(Ticket.id).in_(ids)))).all()
        return {int(i): n for i, n in rows if i is not None}

    async def apply(self, ws: int, receipt_id: int) -> None:
        """Apply one receipt (see module doc) and mark it applied."""
        async with self.db.read(Scope.workspace(ws)) as session:
            receipt = await session.get(AlertReceipt, receipt_id)
            if receipt is None or receipt.applied_at is not None:
                return
            alert = await session.get(Alert, receipt.alert_id)
            source = await session.get(AlertSource, receipt.source_id)
            assert alert is not None and source is not None
            ticket = await session.get(Ticket, alert.ticket_id) if alert.ticket_id else None
        ev = _event(receipt.event)
        settings = source_settings(source.settings)
        actor = Actor(workspace_id=ws, origin=Origin.ALERT, display=f"alert:{source.name}")
        changes: dict[str, Any] = {}
        try:
            if ev.action == "trigger":
                outcome, ticket_id = await self._trigger(actor, source, settings, alert, ticket, ev, changes)
            elif ev.action == "resolve":
                outcome, ticket_id = await self._resolve(actor, source, settings, alert, ticket, ev, changes)
            else:
                changes["status"] = "acknowledged" if alert.status != "resolved" else alert.status
                ticket_id = ticket.id if ticket and ticket.stage in _OPEN else None
                if ticket_id:
                    await self._note(actor, ticket_id, f"Alert acknowledged in {source.name}: {ev.summary}")
                outcome = "noted" if ticket_id else "recorded"
        except DeskbridgeError as exc:  # e.g. the PSA refuses this customer: kept in triage with the reason
            log.warning("alert could not become a ticket", extra={"receipt": receipt_id, "reason": exc.message})
            outcome, ticket_id = "triage", None
            changes["status"] = "triage"
            changes["_error"] = f"{exc.message} {exc.hint or ''}".strip()
        await self._mark(ws, receipt_id, alert.id, outcome, ticket_id, changes)  # type: ignore[arg-type]

    async def _note(self, actor: Actor, ticket_id: int, text: str) -> None:
        await self.tickets.comment(actor, f"id:{ticket_id}", text, visibility="internal")

    async def _trigger(self, actor: Actor, source: AlertSource, settings: SourceSettings, alert: Alert,
                       ticket: Ticket | None, ev: AlertEvent, changes: dict[str, Any]) -> tuple[str, int | None]:
        if ev.occurred_at and alert.resolved_at and ev.occurred_at <= alert.resolved_at:
            if ticket and ticket.stage in _OPEN:
                await self._note(actor, ticket.id, f"Late trigger (already resolved): {ev.summary}")  # type: ignore[arg-type]
            return "stale", ticket.id if ticket else None
        count = alert.triggers + 1
        changes.update(triggers=count, status="triggered", last_trigger_at=ev.occurred_at or self._clock(),
                       resolved_at=None, summary=ev.summary[:1024], severity=ev.severity)
        if ticket and ticket.stage in _OPEN:
            await self._note(actor, ticket.id, f"Alert triggered again ({count} times): {ev.summary}")  # type: ignore[arg-type]
            return "noted", ticket.id
        async with self.db.read(actor.scope) as session:
            customer_id = await self._customer(session, ev)
            changes["customer_id"] = customer_id
            if customer_id is None:
                changes["status"] = "triage"
                return "triage", None
            group = await self._group_target(session, source, settings, alert, ev, customer_id)
            existing = (await session.exec(select(col(Ticket.id)).where(
                col(Ticket.alert_ref) == alert_ref(source, ev.dedup_key), col(Ticket.stage).in_(_OPEN)))).first()
        if existing:  # created before a crash, not yet linked
            changes["ticket_id"] = existing
            return "created", int(existing)
        if group is not None:
            where = f" on {ev.device_name}" if ev.device_name else ""
            await self._note(actor, group, f"Another alert{where} ({source.name}, {ev.severity}): {ev.summary}")
            changes["ticket_id"] = group
            return "grouped", group
        detail = await self.tickets.create(
            actor, subject=ev.summary[:255], description=_describe(source, ev), customer_id=customer_id,
            priority=settings.priority(ev.severity), alert_ref=alert_ref(source, ev.dedup_key),
            device_ref=(ev.device_name or ev.device_id or None))
        changes["ticket_id"] = detail.summary.id
        return "created", detail.summary.id

    async def _resolve(self, actor: Actor, source: AlertSource, settings: SourceSettings, alert: Alert,
                       ticket: Ticket | None, ev: AlertEvent, changes: dict[str, Any]) -> tuple[str, int | None]:
        if ev.occurred_at and alert.last_trigger_at and ev.occurred_at < alert.last_trigger_at:
            return "stale", ticket.id if ticket else None  # ends an earlier flap; the alert is triggered again
        changes["resolved_at"] = ev.occurred_at or self._clock()
        changes["status"] = "triage_resolved" if alert.status == "triage" else "resolved"
        if ticket is None or ticket.stage not in _OPEN:
            return "recorded", ticket.id if ticket else None
        await self._note(actor, ticket.id, f"Alert resolved in {source.name}: {ev.summary}")  # type: ignore[arg-type]
        if settings.on_resolve == "resolve":
            async with self.db.read(actor.scope) as session:
                others = (await session.exec(select(sa.func.count()).select_from(Alert).where(
                    Alert.ticket_id == ticket.id, Alert.id != alert.id,
                    Alert.status.in_(("triggered", "acknowledged"))))).one()  # type: ignore[attr-defined]
            if not others:
                await self.tickets.change_status(actor, f"id:{ticket.id}", "resolved")
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

    async def _mark(self, ws: int, receipt_id: int, alert_id: int, outcome: str, ticket_id: int | None,
                    changes: dict[str, Any]) -> None:
        error = changes.pop("_error", None)
        async with self.db.write(Scope.workspace(ws)) as session:
            receipt = await session.get(AlertReceipt, receipt_id)
            alert = await session.get(Alert, alert_id)
            assert receipt is not None and alert is not None
            receipt.applied_at, receipt.outcome, receipt.ticket_id = self._clock(), outcome, ticket_id
            if error:
                receipt.event = {**receipt.event, "error": error}
            for name, value in changes.items():
                setattr(alert, name, value)
