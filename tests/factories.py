"""Rows for tests that need a PSA-backed workspace without talking to a PSA."""

from __future__ import annotations

from dataclasses import dataclass

from store.db import Database, Scope
from store.tables import Customer, Member, PicklistItem, PriorityMapping, PsaConnection, StatusMapping

BOARD = "1"  # "Service Desk"
BOARD_STATUSES = [
    ("10", "New", "new", False, True),
    ("11", "In Progress", "in_progress", False, False),
    ("12", "Waiting Customer Response", "waiting", False, False),
    ("13", "Resolved", "resolved", True, False),
    ("14", "Closed", "closed", True, False),
]
PRIORITIES = [("1", "Priority 1 - Critical", "critical"), ("2", "Priority 2 - High", "high"),
              ("3", "Priority 3 - Medium", "medium"), ("4", "Priority 4 - Low", "low")]


@dataclass
class PsaSetup:
    connection_id: int
    customer_id: int
    other_customer_id: int
    member_id: int


async def psa_backed(db: Database, workspace_id: int, *, kind: str = "sandbox") -> PsaSetup:
    """A default PSA connection with one board's statuses, priorities, two customers and a mapped member."""
    async with db.write(Scope.workspace(workspace_id)) as s:
        conn = PsaConnection(workspace_id=workspace_id, kind=kind, name=f"{kind}-test", is_default=True)
        s.add(conn)
        await s.flush()
        assert conn.id is not None
        s.add(PicklistItem(workspace_id=workspace_id, connection_id=conn.id, kind="board", external_id=BOARD,
                           name="Service Desk"))
        for i, (sid, name, stage, closed, default) in enumerate(BOARD_STATUSES):
            s.add(PicklistItem(workspace_id=workspace_id, connection_id=conn.id, kind="status",
                               parent_external_id=BOARD, external_id=sid, name=name, sort_order=i,
                               data={"closed": closed, "default": default}))
            s.add(StatusMapping(workspace_id=workspace_id, connection_id=conn.id, board_external_id=BOARD,
                                psa_status_id=sid, psa_status_name=name, stage=stage))
        for pid, name, prio in PRIORITIES:
            s.add(PicklistItem(workspace_id=workspace_id, connection_id=conn.id, kind="priority", external_id=pid,
                               name=name))
            s.add(PriorityMapping(workspace_id=workspace_id, connection_id=conn.id, psa_priority_id=pid,
                                  psa_priority_name=name, priority=prio))
        acme = Customer(workspace_id=workspace_id, connection_id=conn.id, external_id="250", identifier="ACME",
                        name="Acme Corp")
        globex = Customer(workspace_id=workspace_id, connection_id=conn.id, external_id="251", identifier="GLOBEX",
                          name="Globex")
        member = Member(workspace_id=workspace_id, connection_id=conn.id, external_id="177", identifier="bob",
                        name="Bob Tech", email="bob@acme-msp.example")
        s.add_all([acme, globex, member])
        await s.flush()
        return PsaSetup(conn.id, acme.id, globex.id, member.id)  # type: ignore[arg-type]
