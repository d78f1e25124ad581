"""mail_receipt (workspace_id, outcome, id): the admin page Mail triage lists what waits newest first and the
overview counts it, without walking every mail a workspace ever took.

Revision ID: 0014_admin_mail
Revises: 0007_intake (which creates mail_receipt; after 0001_initial alone this could run before it)
"""
from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0014_admin_mail"
down_revision: str | Sequence[str] | None = "0007_intake"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_mail_receipt_outcome", "mail_receipt", ["workspace_id", "outcome", "id"])


def downgrade() -> None:
    op.drop_index("ix_mail_receipt_outcome", table_name="mail_receipt")
