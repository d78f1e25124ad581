"""Fixtures for the SLA service tests: a settable clock, a New York workspace and its services."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import select

from core.context import Actor
from core.notify import RecordingNotifier
from core.sla.config import SlaConfigService
from core.sla.monitor import SlaMonitor
from core.sla.service import SlaService
from core.tickets import TicketService
from core.workspaces import DirectoryService
from store.db import Database, Scope
from store.enums import Origin
from store.tables import Workspace

NY = ZoneInfo("America/New_York")


class Clock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw: float) -> datetime:
        self.now = self.now + timedelta(**kw)
        return self.now

    def set(self, value: datetime) -> datetime:
        self.now = value
        return value


@dataclass
class Sla:
    db: Database
    ws: int
    clock: Clock
    tickets: TicketService
    config: SlaConfigService
    sla: SlaService
    monitor: SlaMonitor
    notifier: RecordingNotifier
    tech: Actor


@pytest.fixture
async def sla(db: Database, workspace_id: int) -> Sla:
    async with db.write(Scope.workspace(workspace_id)) as s:
        ws = (await s.exec(select(Workspace).where(Workspace.id == workspace_id))).one()
        ws.timezone = "America/New_York"
    clock = Clock(datetime(2026, 12, 1, 9, 0, tzinfo=NY))  # a Tuesday
    member = await DirectoryService(db).add_member(workspace_id, name="Ana Tech", email="ana@acme.example")
    tech = Actor(workspace_id=workspace_id, origin=Origin.SLACK, member_id=member.id, display="slack:U1 (Ana)")
    service = SlaService(db, clock=clock)
    notifier = RecordingNotifier()
    return Sla(db=db, ws=workspace_id, clock=clock, tickets=TicketService(db, clock=clock),
               config=SlaConfigService(db, clock=clock), sla=service,
               monitor=SlaMonitor(db, service, notifier, clock=clock, plan_ahead_s=0), notifier=notifier, tech=tech)
