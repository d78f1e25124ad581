"""Trained AI models of a workspace (core/ai): each training run stores a new version; the newest is used."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field

from store.tables.base import WorkspaceOwned, created_field
from store.types import JSONType, UTCDateTime


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


class AiCategoryApply(WorkspaceOwned, table=True):
    """The AI's own category change on one ticket (at most one row per ticket): what it set, over what, how
    sure, and whether a technician undid it. A row whose label is still the ticket's type marks that type as
    set by the AI (so a later model may change it above the change threshold); an undone row means a
    technician decided, and the AI never applies a category to that ticket again."""

    __tablename__ = "ai_category_apply"
    __table_args__ = (sa.UniqueConstraint("ticket_id", name="uq_ai_category_apply_ticket"),)

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(foreign_key="ticket.id")
    label: str = Field(max_length=100)
    previous: str | None = Field(default=None, max_length=100)
    confidence: float
    model_version: int
    applied_at: datetime = created_field()
    undone_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    undone_by: str | None = Field(default=None, max_length=200)


class AiRisk(WorkspaceOwned, table=True):
    """The latest escalation-risk score of an open ticket and the features that pushed it up."""

    __tablename__ = "ai_risk"
    __table_args__ = (
        sa.UniqueConstraint("ticket_id", name="uq_ai_risk_ticket"),
        sa.Index("ix_ai_risk_score", "workspace_id", "score"),
    )

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(foreign_key="ticket.id")
    score: float
    reasons: list[Any] = Field(default_factory=list, sa_type=JSONType)  # [[feature, contribution], ...]
    model_version: int
    ticket_version: int = 0  # the ticket's version when scored: a changed ticket is scored again
    scored_at: datetime = Field(sa_type=UTCDateTime)


class AiDraft(WorkspaceOwned, table=True):
    """A reply draft shown to a technician, exactly as shown, and what they chose: approve (sent as their
    public reply), edit (opened in the reply form), discard. The choice is the acceptance metric."""

    __tablename__ = "ai_draft"
    __table_args__ = (sa.Index("ix_ai_draft_ticket", "ticket_id", "created_at"),)

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(foreign_key="ticket.id")
    member_id: int | None = Field(default=None, foreign_key="member.id")  # who asked for it
    kind: str = Field(max_length=16)  # template | llm
    text: str = Field(sa_type=sa.Text)  # exactly what was shown, and what Approve sends
    status: str = Field(default="offered", max_length=16)  # offered | approved | edited | discarded
    decided_by: str | None = Field(default=None, max_length=200)
    decided_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = created_field()


class KbArticle(WorkspaceOwned, table=True):
    """A knowledge-base article KB linking may point a technician to (core/ai/knowledge.py): read from the
    workspace's documentation platform (Hudu) or imported from a folder of Markdown. `customer_id` None: a
    general article; otherwise only that customer's tickets link it."""

    __tablename__ = "kb_article"
    __table_args__ = (sa.UniqueConstraint("workspace_id", "source", "external_id", name="uq_kb_article_source"),)

    id: int | None = Field(default=None, primary_key=True)
    source: str = Field(max_length=16)  # hudu | itglue | markdown
    external_id: str = Field(max_length=300)  # the platform's id, or the file's path inside the folder
    customer_id: int | None = Field(default=None, foreign_key="customer.id")
    title: str = Field(max_length=300)
    url: str | None = Field(default=None, max_length=2000)
    body: str = Field(sa_type=sa.Text)  # text with `#` headings (HTML converted on the way in)
    updated_at: datetime = created_field()


class AiRiskAlert(WorkspaceOwned, table=True):
    """An open ticket whose escalation risk rose over the threshold and was posted to the SLA/dispatch
    channels: one row per rise. The row goes when the risk falls back under the threshold (or the ticket
    closes), so the next rise is posted again."""

    __tablename__ = "ai_risk_alert"
    __table_args__ = (sa.UniqueConstraint("ticket_id", name="uq_ai_risk_alert_ticket"),)

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(foreign_key="ticket.id")
    score: float
    posted_at: datetime = Field(sa_type=UTCDateTime)
