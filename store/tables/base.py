"""Shared pieces of every table: the workspace-owned mixin and timestamp fields."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from store.types import UTCDateTime, utcnow


class WorkspaceOwned(SQLModel):
    """Mixin for rows that belong to one workspace; sessions scope every query on it (store/db.py)."""

    workspace_id: int = Field(foreign_key="workspace.id", index=True)


def created_field() -> datetime:
    return Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)


def updated_field() -> datetime:
    return Field(
        default_factory=utcnow, sa_type=UTCDateTime, nullable=False, sa_column_kwargs={"onupdate": utcnow}
    )
