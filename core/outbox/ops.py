"""The shapes of outbox ops: one pydantic model per kind of PSA write, and `enqueue`.

An op names the local ticket (its PSA id may not exist yet when a create is still queued); the worker
reads the ticket's current external id when it delivers. Payloads hold no secrets and no file bytes
(attachments point at an AttachmentBlob row).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlmodel.ext.asyncio.session import AsyncSession

from store.db import mark_commit
from store.enums import OutboxStatus
from store.tables import OutboxOp

DEFAULT_MAX_ATTEMPTS = 8


class OpKind(StrEnum):
    CREATE_TICKET = "create_ticket"
    UPDATE_TICKET = "update_ticket"
    ADD_NOTE = "add_note"
    ADD_TIME_ENTRY = "add_time_entry"
    UPLOAD_ATTACHMENT = "upload_attachment"
    ALERT_ACTION = "alert_action"
    TENANT_ACTION = "tenant_action"


class _Payload(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class CreateTicket(_Payload):
    kind: Literal[OpKind.CREATE_TICKET] = OpKind.CREATE_TICKET
    summary: str
    description: str = ""
    company_external_id: str | None = None
    contact_external_id: str | None = None
    board_external_id: str | None = None
    status_external_id: str | None = None
    priority_external_id: str | None = None
    type_external_id: str | None = None
    owner_external_id: str | None = None
    category_external_id: str | None = None  # Feature.TICKET_CATEGORIES (core/categories.py)
    subcategory_external_id: str | None = None
    extra_fields: dict[str, str] = Field(default_factory=dict)  # required board fields by the PSA's name


class UpdateTicket(_Payload):
    kind: Literal[OpKind.UPDATE_TICKET] = OpKind.UPDATE_TICKET
    summary: str | None = None
    status_external_id: str | None = None
    priority_external_id: str | None = None
    board_external_id: str | None = None
    owner_external_id: str | None = None
    unassign: bool = False
    type_external_id: str | None = None  # the ticket's type (category), where the PSA can change it
    clear_type: bool = False
    category_external_id: str | None = None  # "" clears; always sent with its subcategory
    subcategory_external_id: str | None = None
    custom_fields: dict[str, str] | None = None  # the PSA's own fields by name ("" clears one)


class AddNote(_Payload):
    kind: Literal[OpKind.ADD_NOTE] = OpKind.ADD_NOTE
    text: str
    visibility: Literal["public", "internal", "resolution"]
    email_contact: bool = False
    author_member_external_id: str | None = None
    # A customer's own reply (written from their chat channel): their PSA contact, where the PSA records one.
    author_contact_external_id: str | None = None


class AddTimeEntry(_Payload):
    kind: Literal[OpKind.ADD_TIME_ENTRY] = OpKind.ADD_TIME_ENTRY
    minutes: int
    started_at: datetime
    notes: str = ""
    billable: bool = True
    member_external_id: str | None = None


class UploadAttachment(_Payload):
    kind: Literal[OpKind.UPLOAD_ATTACHMENT] = OpKind.UPLOAD_ATTACHMENT
    blob_id: int
    filename: str
    content_type: str
    size: int
    # Who may see the file in the PSA: where it was shared decides (an internal thread: internal).
    visibility: Literal["public", "internal"] = "internal"


class AlertAction(_Payload):
    kind: Literal[OpKind.ALERT_ACTION] = OpKind.ALERT_ACTION
    action: Literal["acknowledge", "resolve"]
    alert_ref: str
    # What the alert webhook is told besides the alert (core/alert_webhooks.py); taken when the button is clicked.
    device_ref: str | None = None
    ticket_number: int | None = None
    customer: str | None = None
    actor: str | None = None


class TenantAction(_Payload):
    """A Microsoft 365 quick action (core/tenant_actions.py), sent to Graph, not the PSA."""

    kind: Literal[OpKind.TENANT_ACTION] = OpKind.TENANT_ACTION
    action: Literal["reset_password", "revoke_sessions", "sync_device"]
    tenant_id: str
    user_id: str
    user_label: str  # the UPN, for the note and the audit log
    device_id: str | None = None
    device_label: str | None = None
    # reset_password only: the temporary password, encrypted with the workspace's credential key (never plain
    # in the database, redacted from the audit log by its key name, erased once the op is finished).
    password_ciphertext: str | None = None


# Ops sent somewhere other than the PSA: each kind forms its own lane per ticket, and a paused PSA connection
# does not hold them.
SIDE_KINDS = (OpKind.ALERT_ACTION.value, OpKind.TENANT_ACTION.value)

OpPayload = Annotated[
    CreateTicket | UpdateTicket | AddNote | AddTimeEntry | UploadAttachment | AlertAction | TenantAction,
    Field(discriminator="kind"),
]


class _Envelope(BaseModel):
    payload: OpPayload


def parse_payload(data: dict[str, object]) -> (CreateTicket | UpdateTicket | AddNote | AddTimeEntry | UploadAttachment
                                                | AlertAction | TenantAction):
    """Validate a stored payload back into its model."""
    return _Envelope.model_validate({"payload": data}).payload


OUTBOX_TOPIC = "outbox"  # Database.listen topic: an op was enqueued and committed


def new_marker() -> str:
    """A dedupe marker: 32 hex chars, fits every PSA's marker field."""
    return uuid.uuid4().hex


def enqueue(
    session: AsyncSession,
    *,
    workspace_id: int,
    connection_id: int | None,
    payload: _Payload,
    ticket_id: int | None,
    actor: str,
    author_member_id: int | None = None,
    timeline_entry_id: int | None = None,
    marker: str | None = None,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
) -> OutboxOp:
    """Add an op to the caller's transaction: it commits (or not) with the local change. `actor` names who
    triggered it for the audit log; `author_member_id` is the technician who made it (told if it fails).
    `connection_id` None: an op that never goes to a PSA (SIDE_KINDS only)."""
    if connection_id is None and str(payload.kind) not in SIDE_KINDS:  # type: ignore[attr-defined]
        raise ValueError(f"a {payload.kind} op goes to a PSA and needs its connection")  # type: ignore[attr-defined]
    op = OutboxOp(
        workspace_id=workspace_id,
        connection_id=connection_id,
        ticket_id=ticket_id,
        timeline_entry_id=timeline_entry_id,
        kind=str(payload.kind),  # type: ignore[attr-defined]
        payload=payload.model_dump(mode="json"),
        marker=marker or new_marker(),
        status=OutboxStatus.PENDING,
        actor=actor[:200],
        author_member_id=author_member_id,
        max_attempts=max_attempts,
    )
    session.add(op)
    mark_commit(session, OUTBOX_TOPIC)  # a worker of this process polls as soon as the transaction commits
    return op
