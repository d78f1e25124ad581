"""PSA statuses and priorities: default mappings from PSA names, and resolving what a person typed.

Each PSA status maps to a normalized stage and each PSA priority to Critical/High/Medium/Low. Defaults
come from names (core/vocabulary.py PSA_STAGE_HINTS, PSA_PRIORITY_HINTS); admins override per connection
(StatusMapping/PriorityMapping.overridden). The words a person types for a stage or a priority are the
ones chat and the REST API accept (core/vocabulary.py).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from core import vocabulary
from core.errors import InvalidInput
from store.enums import Priority, Stage
from store.tables import PicklistItem, PriorityMapping, StatusMapping


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text.strip().lower().replace("_", " ").replace("-", " "))


def default_stage(status_name: str, *, closed: bool = False) -> Stage:
    """A sensible stage for a PSA status name (the PSA's closed flag wins)."""
    name = _norm(status_name)
    for stage, words in vocabulary.PSA_STAGE_HINTS:
        if any(w in name for w in words):
            if closed and stage.is_open:
                return Stage.CLOSED
            return stage
    return Stage.CLOSED if closed else Stage.IN_PROGRESS


def default_priority(priority_name: str) -> Priority:
    name = _norm(priority_name)
    for prio, words in vocabulary.PSA_PRIORITY_HINTS:
        if any(re.search(rf"\b{re.escape(w)}\b", name) for w in words):
            return prio
    return Priority.MEDIUM


def parse_stage(text: str) -> Stage | None:
    """The stage a typed word sets a ticket to (`open` reopens: in progress); None when it names none."""
    return vocabulary.stage(text)


def parse_priority(text: str | Priority) -> Priority:
    if isinstance(text, Priority):
        return text
    found = vocabulary.priority(text)
    if found is None:
        raise InvalidInput(
            f"'{text}' is not a priority.",
            hint=f"Use one of: {vocabulary.PRIORITY_HELP}.",
            field="priority",
        )
    return found


@dataclass(frozen=True, slots=True)
class ResolvedStatus:
    stage: Stage
    psa_status_id: str | None
    psa_status_name: str


async def board_statuses(
    session: AsyncSession, connection_id: int, board_external_id: str | None
) -> list[tuple[PicklistItem, Stage]]:
    """The active statuses valid on a board (or global ones), each with its mapped stage."""
    board = board_external_id or ""
    rows = (
        await session.exec(
            select(PicklistItem)
            .where(
                PicklistItem.connection_id == connection_id,
                PicklistItem.kind == "status",
                PicklistItem.active == sa.true(),
                sa.or_(col(PicklistItem.parent_external_id) == board, col(PicklistItem.parent_external_id) == ""),
            )
            .order_by(col(PicklistItem.sort_order), col(PicklistItem.id))
        )
    ).all()
    maps = {
        (m.board_external_id, m.psa_status_id): Stage(m.stage)
        for m in (
            await session.exec(select(StatusMapping).where(StatusMapping.connection_id == connection_id))
        ).all()
    }
    out: list[tuple[PicklistItem, Stage]] = []
    for item in rows:
        stage = maps.get((item.parent_external_id, item.external_id)) or maps.get(("", item.external_id))
        if stage is None:
            stage = default_stage(item.name, closed=bool(item.data.get("closed")))
        out.append((item, stage))
    return out


async def resolve_status(
    session: AsyncSession, *, connection_id: int | None, board_external_id: str | None, text: str
) -> ResolvedStatus:
    """Turn what a person typed (a PSA status name or a stage) into a status valid for the ticket."""
    wanted = _norm(text)
    if not wanted:
        raise InvalidInput("No status given.", hint="Name a status, e.g. 'in progress' or 'resolved'.",
                           field="status")
    if connection_id is None:
        stage = parse_stage(text)
        if stage is None:
            names = [s.label for s in Stage]
            raise InvalidInput(
                f"'{text}' is not a status.",
                hint="Use one of: " + ", ".join(names) + ".",
                field="status",
            )
        return ResolvedStatus(stage, None, stage.label)
    statuses = await board_statuses(session, connection_id, board_external_id)
    for item, stage in statuses:
        if _norm(item.name) == wanted or item.external_id == text.strip():
            return ResolvedStatus(stage, item.external_id, item.name)
    stage = parse_stage(text)
    if stage is not None:
        candidates = [(item, s) for item, s in statuses if s == stage]
        if candidates:
            candidates.sort(key=lambda p: (not p[0].data.get("default", False), p[0].sort_order))
            item, s = candidates[0]
            return ResolvedStatus(s, item.external_id, item.name)
    names = [item.name for item, _ in statuses]
    close = difflib.get_close_matches(text, names, n=3, cutoff=0.5)
    hint = ("Did you mean " + " or ".join(f"'{c}'" for c in close) + "? ") if close else ""
    hint += "Valid statuses on this board: " + (", ".join(names) if names else "(none cached yet: `deskbridge sync picklists <connection>` reads them, and `deskbridge sync status` says why if it cannot)")
    raise InvalidInput(f"'{text}' is not a valid status for this ticket's board.", hint=hint, field="status")


async def psa_priority_for(session: AsyncSession, connection_id: int, priority: Priority) -> tuple[str, str] | None:
    """The PSA priority (id, name) that maps to a normalized priority, if the connection has one."""
    rows: Sequence[PriorityMapping] = (
        await session.exec(
            select(PriorityMapping).where(
                PriorityMapping.connection_id == connection_id, PriorityMapping.priority == priority.value
            )
        )
    ).all()
    if rows:
        return rows[0].psa_priority_id, rows[0].psa_priority_name
    items = (
        await session.exec(
            select(PicklistItem)
            .where(PicklistItem.connection_id == connection_id, PicklistItem.kind == "priority")
            .order_by(col(PicklistItem.sort_order))
        )
    ).all()
    for item in items:
        if default_priority(item.name) == priority:
            return item.external_id, item.name
    return None
