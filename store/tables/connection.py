"""PSA connections, their status/priority mappings and cached picklists."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field

from store.tables.base import WorkspaceOwned, created_field
from store.types import JSONType, UTCDateTime


class PsaConnection(WorkspaceOwned, table=True):
    """One PSA tenant. Credentials are AES-GCM ciphertext bound to the workspace (store/crypto.py)."""

    __tablename__ = "psa_connection"
    __table_args__ = (sa.UniqueConstraint("workspace_id", "name", name="uq_psa_connection_name"),)

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=32)  # "connectwise", "autotask", "halopsa", "sandbox"
    name: str = Field(max_length=100)
    # Non-secret settings (site, company id, codebase, board defaults…).
    settings: dict[str, Any] = Field(default_factory=dict, sa_type=JSONType)
    credentials_ciphertext: bytes | None = Field(default=None, sa_type=sa.LargeBinary)
    credentials_key_id: str | None = Field(default=None, max_length=32)
    enabled: bool = Field(default=True)
    is_default: bool = Field(default=False)
    last_checked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_error: str | None = Field(default=None, max_length=2000)
    created_at: datetime = created_field()


class StatusMapping(WorkspaceOwned, table=True):
    """A PSA status (per board where the PSA scopes them) mapped to a normalized stage."""

    __tablename__ = "status_mapping"
    __table_args__ = (
        sa.UniqueConstraint("connection_id", "board_external_id", "psa_status_id", name="uq_status_mapping"),
    )

    id: int | None = Field(default=None, primary_key=True)
    connection_id: int = Field(foreign_key="psa_connection.id", index=True)
    board_external_id: str = Field(default="", max_length=64)  # "" when statuses are global
    psa_status_id: str = Field(max_length=64)
    psa_status_name: str = Field(max_length=100)
    stage: str = Field(max_length=16)
    overridden: bool = Field(default=False)  # set by an admin; sync never changes it


class PriorityMapping(WorkspaceOwned, table=True):
    __tablename__ = "priority_mapping"
    __table_args__ = (sa.UniqueConstraint("connection_id", "psa_priority_id", name="uq_priority_mapping"),)

    id: int | None = Field(default=None, primary_key=True)
    connection_id: int = Field(foreign_key="psa_connection.id", index=True)
    psa_priority_id: str = Field(max_length=64)
    psa_priority_name: str = Field(max_length=100)
    priority: str = Field(max_length=16)
    overridden: bool = Field(default=False)


PICKLIST_ID_MAX = 255  # a PSA value used as its own id (a Halo category path) is kept whole up to this


class PicklistItem(WorkspaceOwned, table=True):
    """Cached PSA picklists (boards, statuses per board, priorities, types…) for forms and mappings."""

    __tablename__ = "picklist_item"
    __table_args__ = (
        sa.UniqueConstraint("connection_id", "kind", "parent_external_id", "external_id", name="uq_picklist_item"),
    )

    id: int | None = Field(default=None, primary_key=True)
    connection_id: int = Field(foreign_key="psa_connection.id", index=True)
    kind: str = Field(max_length=32)  # board, status, priority, type, source…
    parent_external_id: str = Field(default="", max_length=PICKLIST_ID_MAX)  # e.g. the board of a status
    external_id: str = Field(max_length=PICKLIST_ID_MAX)
    name: str = Field(max_length=200)
    active: bool = Field(default=True)
    sort_order: int = Field(default=0)
    data: dict[str, Any] = Field(default_factory=dict, sa_type=JSONType)
    fetched_at: datetime = created_field()
