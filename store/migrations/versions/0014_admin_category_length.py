"""Longer PSA values kept whole: picklist_item.external_id and parent_external_id 64 -> 255 (a HaloPSA category is
cached under its whole path, "Hardware>Laptops>…", which can pass 64 characters: PostgreSQL refused the picklist
refresh, SQLite kept it whole), and the ticket's category ids 64 -> 255 and names 100 -> 200 (the sync cut them at
64, so a long Halo category came back as a value Halo does not have). SQLite does not enforce VARCHAR lengths: only
PostgreSQL changes.

Revision ID: 0014_admin
Revises: 0009_at_udf (which adds the ticket's category columns; after 0001_initial alone this could run before
them; picklist_item comes from 0001_initial)
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014_admin"
down_revision: str | Sequence[str] | None = "0009_at_udf"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WIDER = (("picklist_item", "external_id", 64, 255), ("picklist_item", "parent_external_id", 64, 255),
         ("ticket", "category_external_id", 64, 255), ("ticket", "subcategory_external_id", 64, 255),
         ("ticket", "category_name", 100, 200), ("ticket", "subcategory_name", 100, 200))


def _alter(to_new: bool) -> None:
    if op.get_bind().dialect.name == "sqlite":
        return  # lengths are not enforced; a batch copy of the ticket table would only cost time
    for table, column, old, new in WIDER:
        op.alter_column(table, column, type_=sa.String(new if to_new else old),
                        existing_type=sa.String(old if to_new else new))


def upgrade() -> None:
    _alter(True)


def downgrade() -> None:
    _alter(False)
