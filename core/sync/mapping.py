"""Status and priority mappings of a connection: defaults from names, admin overrides sync never touches.

The first time a PSA status (per board where the PSA scopes them) or priority is seen, a mapping row is
created from its name (core/status.py default_stage/default_priority). When the PSA renames it, the
name is refreshed and, unless an admin overrode it, the default is recomputed. `set_status` and
`set_priority` are the admin overrides (`deskbridge connection map-status|map-priority`).
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from core.admin_audit import record_change
from core.context import Actor
from core.errors import InvalidInput, NotFound
from core.status import default_priority, default_stage, parse_priority, parse_stage
from core.sync.upsert import dialect_insert
from store.db import Database, Scope
from store.enums import Priority, Stage
from store.sql import rowcount, table_of
from store.tables import PicklistItem, PriorityMapping, StatusMapping, Ticket

StatusKey = tuple[str, str]  # (board external id or "", PSA status id)


def _norm(text: str) -> str:
    return " ".join(text.strip().lower().replace("_", " ").replace("-", " ").split())


@dataclass(frozen=True, slots=True)
class SeenStatus:
    board: str
    status_id: str
    name: str
    closed: bool = False


async def ensure_status_mappings(session: AsyncSession, workspace_id: int, connection_id: int,
                                 seen: Iterable[SeenStatus]) -> dict[StatusKey, Stage]:
    """Create default mappings for statuses not seen before, refresh renamed ones; key -> stage."""
    wanted = {(s.board, s.status_id): s for s in seen}
    existing = {(m.board_external_id, m.psa_status_id): m for m in (await session.exec(
        select(StatusMapping).where(StatusMapping.connection_id == connection_id))).all()}
    new_rows = []
    for key, s in wanted.items():
        m = existing.get(key)
        if m is None:
            new_rows.append({"workspace_id": workspace_id, "connection_id": connection_id, "board_external_id": s.board,
                             "psa_status_id": s.status_id, "psa_status_name": s.name[:100],
                             "stage": default_stage(s.name, closed=s.closed).value, "overridden": False})
        elif s.name and m.psa_status_name != s.name[:100]:
            m.psa_status_name = s.name[:100]
            if not m.overridden:
                m.stage = default_stage(s.name, closed=s.closed).value
    if new_rows:
        stmt = dialect_insert(session, table_of(StatusMapping)).values(new_rows).on_conflict_do_nothing(
            index_elements=["connection_id", "board_external_id", "psa_status_id"])
        await session.execute(stmt)
        existing = {(m.board_external_id, m.psa_status_id): m for m in (await session.exec(
            select(StatusMapping).where(StatusMapping.connection_id == connection_id))).all()}
    await session.flush()
    return {k: Stage(m.stage) for k, m in existing.items()}


async def ensure_priority_mappings(session: AsyncSession, workspace_id: int, connection_id: int,
                                   seen: Mapping[str, str]) -> dict[str, Priority]:
    """Like ensure_status_mappings, for priorities (global in every PSA we support): id -> priority."""
    existing = {m.psa_priority_id: m for m in (await session.exec(
        select(PriorityMapping).where(PriorityMapping.connection_id == connection_id))).all()}
    new_rows = []
    for pid, name in seen.items():
        m = existing.get(pid)
        if m is None:
            new_rows.append({"workspace_id": workspace_id, "connection_id": connection_id, "psa_priority_id": pid,
                             "psa_priority_name": name[:100], "priority": default_priority(name).value,
                             "overridden": False})
        elif name and m.psa_priority_name != name[:100]:
            m.psa_priority_name = name[:100]
            if not m.overridden:
                m.priority = default_priority(name).value
    if new_rows:
        stmt = dialect_insert(session, table_of(PriorityMapping)).values(new_rows).on_conflict_do_nothing(
            index_elements=["connection_id", "psa_priority_id"])
        await session.execute(stmt)
        existing = {m.psa_priority_id: m for m in (await session.exec(
            select(PriorityMapping).where(PriorityMapping.connection_id == connection_id))).all()}
    await session.flush()
    return {k: Priority(m.priority) for k, m in existing.items()}


# ------------------------------------------------------------------ admin overrides


@dataclass(frozen=True, slots=True)
class MappingChange:
    psa_name: str
    board: str
    value: str
    tickets_updated: int


class MappingService:
    """Admin overrides of a connection's status/priority mappings."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def set_status(self, workspace_id: int, connection_id: int, status: str, stage: str,
                         board: str | None = None, *, actor: Actor | None = None) -> list[MappingChange]:
        """Map a PSA status (by name or id, on one board or every board that has it) to a stage."""
        target = parse_stage(stage)
        if target is None:
            raise InvalidInput(f"'{stage}' is not a stage.",
                               hint="Use one of: new, in_progress, waiting, resolved, closed.", field="stage")
        async with self.db.write(Scope.workspace(workspace_id)) as s:
            boards = await self._board_ids(s, connection_id, board)
            rows = await self._statuses(s, workspace_id, connection_id, status, boards)
            changes = []
            for m in rows:
                m.stage, m.overridden = target.value, True
                res = await s.execute(sa.update(Ticket).where(
                    col(Ticket.connection_id) == connection_id, col(Ticket.psa_status_id) == m.psa_status_id,
                    *([col(Ticket.board_external_id) == m.board_external_id] if m.board_external_id else []),
                ).values(stage=target.value))
                changes.append(MappingChange(m.psa_status_name, m.board_external_id, target.value,
                                             rowcount(res) or 0))
            record_change(s, actor, workspace_id, "mapping.status", {
                "status": status, "board": board or "", "stage": target.value,
                "tickets": sum(c.tickets_updated for c in changes)}, connection_id=connection_id)
            return changes

    async def set_priority(self, workspace_id: int, connection_id: int, psa_priority: str,
                           priority: str, *, actor: Actor | None = None) -> MappingChange:
        """Map a PSA priority (by name or id) to Critical/High/Medium/Low."""
        target = parse_priority(priority)
        async with self.db.write(Scope.workspace(workspace_id)) as s:
            known = {m.psa_priority_id: m for m in (await s.exec(select(PriorityMapping).where(
                PriorityMapping.connection_id == connection_id))).all()}
            for item in (await s.exec(select(PicklistItem).where(PicklistItem.connection_id == connection_id,
                                                                 PicklistItem.kind == "priority"))).all():
                if item.external_id not in known:
                    m = PriorityMapping(workspace_id=workspace_id, connection_id=connection_id,
                                        psa_priority_id=item.external_id, psa_priority_name=item.name[:100],
                                        priority=default_priority(item.name).value)
                    s.add(m)
                    known[item.external_id] = m
            want = _norm(psa_priority)
            hits = [m for m in known.values() if _norm(m.psa_priority_name) == want or m.psa_priority_id == psa_priority]
            if not hits:
                names = ", ".join(sorted(m.psa_priority_name for m in known.values())) or "(none yet: run a sync)"
                raise NotFound(f"This connection has no priority named '{psa_priority}'.",
                               hint=f"Known priorities: {names}.")
            m = hits[0]
            m.priority, m.overridden = target.value, True
            await s.flush()
            res = await s.execute(sa.update(Ticket).where(
                col(Ticket.connection_id) == connection_id, col(Ticket.psa_priority_id) == m.psa_priority_id,
            ).values(priority=target.value, priority_rank=target.rank))
            change = MappingChange(m.psa_priority_name, "", target.value, rowcount(res) or 0)
            record_change(s, actor, workspace_id, "mapping.priority", {
                "priority": change.psa_name, "value": change.value, "tickets": change.tickets_updated},
                connection_id=connection_id)
            return change

    async def list(self, workspace_id: int, connection_id: int
                   ) -> tuple[builtins.list[StatusMapping], builtins.list[PriorityMapping]]:
        async with self.db.read(Scope.workspace(workspace_id)) as s:
            st = (await s.exec(select(StatusMapping).where(StatusMapping.connection_id == connection_id)
                               .order_by(StatusMapping.board_external_id, StatusMapping.psa_status_name))).all()
            pr = (await s.exec(select(PriorityMapping).where(PriorityMapping.connection_id == connection_id)
                               .order_by(PriorityMapping.psa_priority_name))).all()
            return builtins.list(st), builtins.list(pr)

    async def _board_ids(self, s: AsyncSession, connection_id: int, board: str | None
                         ) -> builtins.list[str] | None:
        if board is None:
            return None
        items = (await s.exec(select(PicklistItem).where(PicklistItem.connection_id == connection_id,
                                                         PicklistItem.kind == "board"))).all()
        hit = [i.external_id for i in items if _norm(i.name) == _norm(board) or i.external_id == board.strip()]
        if not hit:
            names = ", ".join(sorted(i.name for i in items)) or "(none yet: run a sync)"
            raise NotFound(f"This connection has no board named '{board}'.", hint=f"Known boards: {names}.")
        return hit

    async def _statuses(self, s: AsyncSession, workspace_id: int, connection_id: int, status: str,
                        boards: builtins.list[str] | None) -> builtins.list[StatusMapping]:
        """Mapping rows for a status name/id; rows are created from the cached picklist when missing."""
        known = {(m.board_external_id, m.psa_status_id): m for m in (await s.exec(select(StatusMapping).where(
            StatusMapping.connection_id == connection_id))).all()}
        for item in (await s.exec(select(PicklistItem).where(PicklistItem.connection_id == connection_id,
                                                             PicklistItem.kind == "status"))).all():
            key = (item.parent_external_id, item.external_id)
            if key not in known:
                m = StatusMapping(workspace_id=workspace_id, connection_id=connection_id, board_external_id=key[0],
                                  psa_status_id=key[1], psa_status_name=item.name[:100],
                                  stage=default_stage(item.name, closed=bool(item.data.get("closed"))).value)
                s.add(m)
                known[key] = m
        want = _norm(status)
        hits = [m for m in known.values()
                if (_norm(m.psa_status_name) == want or m.psa_status_id == status.strip())
                and (boards is None or m.board_external_id in boards or m.board_external_id == "")]
        if not hits:
            names = sorted({m.psa_status_name for m in known.values()
                            if boards is None or m.board_external_id in boards})
            raise NotFound(f"No status named '{status}'" + (" on that board." if boards else "."),
                           hint="Known statuses: " + (", ".join(names) or "(none yet: run a sync)") + ".")
        await s.flush()
        return hits
