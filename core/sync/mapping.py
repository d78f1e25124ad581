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
from core.sync.upsert import built, core_execute, dialect_insert
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
    """Create default mappings for statuses not seen before, refresh renamed ones; key -> stage of each seen one.
    Core statements (a sync batch runs this for every batch: loading the mappings as ORM objects was most of
    its cost), reading only the seen status ids."""
    wanted = {(s.board, s.status_id): s for s in seen}
    if not wanted:
        return {}
    m = table_of(StatusMapping)
    read = built(("status_mappings",), lambda: sa.select(
        m.c.id, m.c.board_external_id, m.c.psa_status_id, m.c.psa_status_name, m.c.stage, m.c.overridden).where(
        m.c.workspace_id == sa.bindparam("ws"), m.c.connection_id == sa.bindparam("cid"),
        m.c.psa_status_id.in_(sa.bindparam("ids", expanding=True))))
    params = {"ws": workspace_id, "cid": connection_id, "ids": sorted({k[1] for k in wanted})}
    existing = {(r.board_external_id, r.psa_status_id): r for r in await core_execute(session, read, params)}
    new_rows, renamed = [], []
    for key, s in wanted.items():
        row = existing.get(key)
        if row is None:
            new_rows.append({"workspace_id": workspace_id, "connection_id": connection_id, "board_external_id": s.board,
                             "psa_status_id": s.status_id, "psa_status_name": s.name[:100],
                             "stage": default_stage(s.name, closed=s.closed).value, "overridden": False})
        elif s.name and row.psa_status_name != s.name[:100]:
            stage = row.stage if row.overridden else default_stage(s.name, closed=s.closed).value
            renamed.append({"_id": row.id, "name": s.name[:100], "stage": stage})
    if renamed:
        await core_execute(session, built(("status_mapping_rename",), lambda: sa.update(m).where(
            m.c.id == sa.bindparam("_id")).values(psa_status_name=sa.bindparam("name"), stage=sa.bindparam("stage"))),
            renamed, writes="status_mapping")
    if new_rows:
        stmt = dialect_insert(session, m).values(new_rows).on_conflict_do_nothing(
            index_elements=["connection_id", "board_external_id", "psa_status_id"])
        await core_execute(session, stmt, writes="status_mapping")
    if renamed or new_rows:
        existing = {(r.board_external_id, r.psa_status_id): r for r in await core_execute(session, read, params)}
    return {k: Stage(r.stage) for k, r in existing.items() if k in wanted}


async def ensure_priority_mappings(session: AsyncSession, workspace_id: int, connection_id: int,
                                   seen: Mapping[str, str]) -> dict[str, Priority]:
    """Like ensure_status_mappings, for priorities (global in every PSA we support): id -> priority."""
    if not seen:
        return {}
    m = table_of(PriorityMapping)
    read = built(("priority_mappings",), lambda: sa.select(
        m.c.id, m.c.psa_priority_id, m.c.psa_priority_name, m.c.priority, m.c.overridden).where(
        m.c.workspace_id == sa.bindparam("ws"), m.c.connection_id == sa.bindparam("cid"),
        m.c.psa_priority_id.in_(sa.bindparam("ids", expanding=True))))
    params = {"ws": workspace_id, "cid": connection_id, "ids": sorted(seen)}
    existing = {r.psa_priority_id: r for r in await core_execute(session, read, params)}
    new_rows, renamed = [], []
    for pid, name in seen.items():
        row = existing.get(pid)
        if row is None:
            new_rows.append({"workspace_id": workspace_id, "connection_id": connection_id, "psa_priority_id": pid,
                             "psa_priority_name": name[:100], "priority": default_priority(name).value,
                             "overridden": False})
        elif name and row.psa_priority_name != name[:100]:
            value = row.priority if row.overridden else default_priority(name).value
            renamed.append({"_id": row.id, "name": name[:100], "priority": value})
    if renamed:
        await core_execute(session, built(("priority_mapping_rename",), lambda: sa.update(m).where(
            m.c.id == sa.bindparam("_id")).values(psa_priority_name=sa.bindparam("name"),
                                                  priority=sa.bindparam("priority"))),
            renamed, writes="priority_mapping")
    if new_rows:
        stmt = dialect_insert(session, m).values(new_rows).on_conflict_do_nothing(
            index_elements=["connection_id", "psa_priority_id"])
        await core_execute(session, stmt, writes="priority_mapping")
    if renamed or new_rows:
        existing = {r.psa_priority_id: r for r in await core_execute(session, read, params)}
    return {k: Priority(r.priority) for k, r in existing.items() if k in seen}


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
