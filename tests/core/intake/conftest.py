"""An AlertIntake on the test's database with the real parsers and a clock the test moves."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlmodel import select

from connectors.rmm import PARSERS
from core.intake.alerts import AlertIntake, IngestResult
from core.intake.sources import AlertSourceService
from core.tickets import TicketService
from core.workspaces import DirectoryService
from store.crypto import CredentialCipher, generate_key
from store.db import Database, Scope
from store.tables import Alert, AlertReceipt, Ticket, TimelineEntry


@dataclass
class Clock:
    now: datetime = field(default_factory=lambda: datetime(2026, 12, 7, 9, 0, tzinfo=UTC))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw: float) -> None:
        self.now += timedelta(**kw)


@dataclass
class Intake:
    db: Database
    ws: int
    sources: AlertSourceService
    intake: AlertIntake
    tickets: TicketService
    clock: Clock
    keys: dict[str, tuple[str, str]] = field(default_factory=dict)  # name -> (key, secret)

    async def source(self, name: str = "ninja", kind: str = "ninjaone", **settings: str) -> str:
        info, secret = await self.sources.add(self.ws, name=name, kind=kind)
        for k, v in settings.items():
            await self.sources.set_option(self.ws, name, k, v)
        self.keys[name] = (info.key, secret)
        return info.key

    async def send(self, name: str, body: dict[str, Any] | bytes) -> IngestResult:
        key, secret = self.keys[name]
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        return await self.intake.ingest(key, {"x-deskbridge-secret": secret}, raw)

    async def tickets_(self) -> list[Ticket]:
        async with self.db.read(Scope.workspace(self.ws)) as s:
            return list((await s.exec(select(Ticket).order_by(Ticket.id))).all())

    async def notes(self, ticket_id: int, *, with_details: bool = False) -> list[str]:
        """The ticket's notes in order; an alert ticket's first one (the RMM's details, internal) is checked
        to be there and left out unless `with_details`."""
        async with self.db.read(Scope.workspace(self.ws)) as s:
            rows = (await s.exec(select(TimelineEntry).where(TimelineEntry.ticket_id == ticket_id)
                                 .order_by(TimelineEntry.id))).all()
            ticket = await s.get(Ticket, ticket_id)
        notes = [r for r in rows if r.kind.startswith("note")]
        if with_details or ticket is None or not ticket.alert_ref:
            return [r.body for r in notes]
        assert notes and notes[0].kind == "note_internal" and "\nSource: " in notes[0].body, "no details note"
        return [r.body for r in notes[1:]]

    async def alerts(self) -> list[Alert]:
        async with self.db.read(Scope.workspace(self.ws)) as s:
            return list((await s.exec(select(Alert).order_by(Alert.id))).all())

    async def receipts(self) -> list[AlertReceipt]:
        async with self.db.read(Scope.workspace(self.ws)) as s:
            return list((await s.exec(select(AlertReceipt).order_by(AlertReceipt.id))).all())


@pytest.fixture
async def intake(db: Database, workspace_id: int) -> Intake:
    clock = Clock()
    sources = AlertSourceService(db, cipher=CredentialCipher.from_keys([generate_key()]))
    tickets = TicketService(db, clock=clock)
    service = AlertIntake(db, sources=sources, tickets=tickets, parsers=PARSERS, clock=clock)
    directory = DirectoryService(db)
    await directory.add_customer(workspace_id, identifier="ACME", name="Acme Corp")
    await directory.add_customer(workspace_id, identifier="GLOBEX", name="Globex")
    return Intake(db, workspace_id, sources, service, tickets, clock)


def ninja(status: str = "TRIGGERED", *, series: str = "s-1", activity: int = 1, device: int = 42,
          org: int = 7, org_name: str = "Acme Corp", at: float = 1_765_090_000.0, subject: str = "Disk C: 95% full",
          severity: str = "MAJOR") -> dict[str, Any]:
    """A NinjaOne CONDITION activity as NinjaOne sends it (expand: device, organization)."""
    return {"id": activity, "activityTime": at, "deviceId": device, "severity": severity, "priority": "HIGH",
            "seriesUid": series, "activityType": "CONDITION", "statusCode": status, "activityResult": "SUCCESS",
            "sourceConfigUid": "cfg-9", "sourceName": "Disk space", "subject": subject, "message": subject,
            "type": "Condition", "data": {},
            "device": {"id": device, "systemName": f"SRV-{device}", "displayName": f"srv-{device}",
                       "organizationId": org, "locationId": org * 10},
            "organization": {"id": org, "name": org_name}}


def events_v2(action: str = "trigger", *, dedup: str | None = "k-1", summary: str = "Backup failed",
              source: str = "nas-01", severity: str = "critical", ts: str | None = None,
              **details: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"event_action": action, "payload": {"summary": summary, "source": source,
                                                                "severity": severity, "custom_details": details}}
    if dedup is not None:
        body["dedup_key"] = dedup
    if ts:
        body["payload"]["timestamp"] = ts
    body["links"] = [{"href": "https://rmm.example/alert/1", "text": "Open in RMM"}]
    return body
