"""The op's WriteJournal, kept in its row: what an attempt changed on the way, saved before the change.

A connector records what it is about to change (e.g. "ticket 42's e-mail flag was off") before changing
it, and clears the entry once it is undone. The write is fenced like every outcome: only the attempt that
owns the op (its `attempts` number, still in flight) may write, so a stale worker cannot overwrite what
the current one recorded. If the process dies in between, the next attempt finds the entry and the
connector's `recover` undoes it first (core/outbox/delivery.py).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from core.outbox.queries import OP, OUTBOX
from store.db import Database, Scope
from store.enums import OutboxStatus
from store.tables import OutboxOp


class LeaseLost(Exception):
    """Another attempt owns the op now: this one must stop before changing anything else."""


class OpJournal:
    """connectors.base.WriteJournal over `outbox_op.journal`, fenced by the attempt number."""

    def __init__(self, db: Database, op: OutboxOp) -> None:
        assert op.id is not None
        self.db = db
        self.op_id = op.id
        self.workspace_id = op.workspace_id
        self.attempt = op.attempts
        self.data: dict[str, Any] = dict(op.journal or {})

    def get(self, key: str) -> Any:
        return self.data.get(key)

    async def put(self, key: str, value: Any) -> None:
        data = {**self.data, key: value}
        if value is None:
            data.pop(key)
        async with self.db.write(Scope.workspace(self.workspace_id)) as session:
            res = await session.execute(sa.update(OUTBOX).where(
                OP.id == self.op_id, OP.attempts == self.attempt, OP.status == OutboxStatus.INFLIGHT.value,
            ).values(journal=data))
            if not res.rowcount:  # type: ignore[attr-defined]
                raise LeaseLost(f"outbox op {self.op_id} is no longer owned by attempt {self.attempt}")
        self.data = data
