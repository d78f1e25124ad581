"""web_address.seen_at: each running web app's last heartbeat, so rows of crashed instances are ignored and dropped

Revision ID: 0013_probe
Revises: 0012_edges_web (which creates web_address; a depends_on would leave the database at other heads than
the scripts, see store/migrate.py is_up_to_date)
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import store.types

revision: str = "0013_probe"
down_revision: str | Sequence[str] | None = "0012_edges_web"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("web_address") as batch:
        batch.add_column(sa.Column("seen_at", store.types.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("web_address") as batch:
        batch.drop_column("seen_at")
