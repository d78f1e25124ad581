"""Admin changes in the audit log, whichever surface made them (admin pages, CLI, chat).

Every service that changes a setting records one `outcome=changed` row in the transaction of the change
itself, so a change is never saved without its row nor recorded without being saved: who (the actor's display:
"admin-page:ana@msp.example", "cli:root", "slack:U1 (Ana)", "system" when a caller gives no one), what
(`action`, e.g. "mapping.status") and details. Details are redacted again on the way in; callers pass names,
never secret values (a re-authentication records which credentials were replaced, not what they are).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from core.context import Actor
from core.outbox.audit import audit_row
from store.types import utcnow

CHANGED = "changed"


Who = Actor | str | None


def who(actor: Who) -> str:
    """How the audit log names the actor ("system" when nobody is given, e.g. a job)."""
    if isinstance(actor, Actor):
        return actor.display
    return actor or "system"


def record_change(session: AsyncSession, actor: Who, workspace_id: int, action: str,
                  details: Mapping[str, Any] | None = None, *, connection_id: int | None = None) -> None:
    """Add the change's audit row to the open write transaction (redacted)."""
    session.add(audit_row(workspace_id=workspace_id, op_id=None, connection_id=connection_id, attempt=0,
                          action=action, outcome=CHANGED, actor=who(actor), request=dict(details or {}),
                          at=utcnow()))
