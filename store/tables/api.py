"""REST API keys (stored hashed, scoped, revocable) and idempotency keys (one row per workspace and key)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field

from store.tables.base import WorkspaceOwned, created_field
from store.types import JSONType, UTCDateTime


class ApiKey(WorkspaceOwned, table=True):
    """An API key: only `key_id` (the lookup prefix) and a SHA-256 of the secret are kept, never the key."""

    __tablename__ = "api_key"
    __table_args__ = (sa.UniqueConstraint("workspace_id", "name", name="uq_api_key_name"),)

    id: int | None = Field(default=None, primary_key=True)
    key_id: str = Field(max_length=32, unique=True)  # public part of the key, used to find the row
    secret_hash: str = Field(max_length=64)  # hex SHA-256 of the whole key
    name: str = Field(max_length=100)
    scopes: str = Field(max_length=64)  # comma-separated: read, write, admin
    created_by: str = Field(default="system", max_length=200)
    created_at: datetime = created_field()
    last_used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class IdempotencyKey(WorkspaceOwned, table=True):
    """A client's Idempotency-Key and the response saved for it (Stripe's design, reliability-sla.md §2.2)."""

    __tablename__ = "idempotency_key"
    __table_args__ = (
        sa.UniqueConstraint("workspace_id", "key", name="uq_idempotency_key"),
        sa.Index("ix_idempotency_created", "created_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=255)
    request_hash: str = Field(max_length=64)  # method, path and body of the first request
    state: str = Field(default="inflight", max_length=16)  # inflight, committed, done
    response_status: int | None = None
    response_body: dict[str, Any] | None = Field(default=None, sa_type=JSONType)
    created_at: datetime = created_field()
    locked_at: datetime = Field(sa_type=UTCDateTime)  # when the current attempt claimed the key
