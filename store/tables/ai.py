"""Trained AI models of a workspace (core/ai): each training run stores a new version; the newest is used."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field

from store.tables.base import WorkspaceOwned, created_field
from store.types import JSONType


class AiModel(WorkspaceOwned, table=True):
    """One version of one kind of model (e.g. "category"): its serialised bytes and what it was trained on."""

    __tablename__ = "ai_model"
    __table_args__ = (
        sa.UniqueConstraint("workspace_id", "kind", "version", name="uq_ai_model_version"),
        sa.Index("ix_ai_model_latest", "workspace_id", "kind", "version"),
    )

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=32)
    version: int
    trained_on: int = 0  # labelled tickets
    # Held-out accuracy, labels, class counts, library versions, training seconds.
    metrics: dict[str, Any] = Field(default_factory=dict, sa_type=JSONType)
    sha256: str = Field(max_length=64)  # of `data`, checked before it is loaded
    data: bytes = Field(sa_type=sa.LargeBinary)
    created_at: datetime = created_field()
