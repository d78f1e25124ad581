"""Queue pages sorted by priority read from an index (issue 20 item 5): a technician's open tickets and the
whole open queue, in priority order, without sorting every open row first

Revision ID: 0011_speed
Revises: 0001_initial
"""
from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0011_speed"
down_revision: str | Sequence[str] | None = "0001_initial"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("ticket", schema=None) as batch_op:
        batch_op.create_index("ix_ticket_open_assignee_priority",
                              ["workspace_id", "assignee_member_id", "is_open", "priority_rank", "created_at", "id"],
                              unique=False)
        batch_op.create_index("ix_ticket_open_priority", ["workspace_id", "is_open", "priority_rank", "created_at", "id"],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table("ticket", schema=None) as batch_op:
        batch_op.drop_index("ix_ticket_open_priority")
        batch_op.drop_index("ix_ticket_open_assignee_priority")
