"""Request and response shapes of the REST API (with OpenAPI examples), and their mapping from core views.

Requests forbid unknown fields, so nothing can be mass-assigned (OWASP API3).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from core.outbox.views import OutboxAuditView, OutboxOpView
from core.views import EntryKind, Priority, QueuePage, Stage, TicketDetail, TicketSummary, TimelineItem

INT32 = 2_147_483_647
NOTE_KINDS = {EntryKind.NOTE_PUBLIC: "public", EntryKind.NOTE_INTERNAL: "internal",
              EntryKind.NOTE_RESOLUTION: "resolution"}
_TS = "2026-11-20T09:15:00Z"


def _examples(*items: dict[str, Any]) -> ConfigDict:
    return ConfigDict(json_schema_extra={"examples": list(items)})


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ----------------------------------------------------------------- requests


class TicketCreate(_In):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"subject": "Printer on 2nd floor jams", "description": "Since this morning.", "customer_id": 12,
         "priority": "high"}]})

    subject: str = Field(min_length=1, max_length=255, description=(
        "At most 255 characters; the PSA may take fewer (ConnectWise 100, HaloPSA 250, standalone 255): a longer "
        "subject is a 422 naming the limit"))
    description: str = Field("", max_length=100_000)
    customer_id: int | None = Field(None, ge=1, le=INT32, description="From GET /customers")
    priority: Priority = Priority.MEDIUM
    assignee_id: int | None = Field(None, ge=1, le=INT32, description="A member id from GET /members")
    board: str | None = Field(None, min_length=1, max_length=100,
                              description="The PSA board (queue) by id or name; default: the connection's default "
                                          "board (connection setting `default_board_id`)")
    type: str | None = Field(None, min_length=1, max_length=100,
                             description="The ticket type, by id or name; it must belong to the board")
    contact_id: int | None = Field(None, ge=1, le=INT32, description="A contact of the customer")
    category: str | None = Field(None, min_length=1, max_length=100, description=(
        "The PSA's ticket category by id or name (Autotask: issue type); only where the PSA has categories"))
    subcategory: str | None = Field(None, min_length=1, max_length=100, description=(
        "A subcategory of `category` by id or name (Autotask: sub-issue type); an invalid pair is a 422 naming "
        "the valid ones"))


class TicketUpdate(_In):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"status": "In Progress", "priority": "critical", "assignee_id": 7}, {"assignee_id": None}]})

    status: str | None = Field(None, min_length=1, max_length=100,
                               description="A status of the ticket's board, or a stage (new, in progress, …)")
    priority: Priority | None = None
    assignee_id: int | None = Field(None, ge=1, le=INT32, description="A member id; null unassigns")
    category: str | None = Field(None, max_length=100, description=(
        "The PSA's ticket category by id or name (Autotask: issue type); \"\" clears it and its subcategory"))
    subcategory: str | None = Field(None, max_length=100, description=(
        "A subcategory of the (new or current) category; a category change without one clears the subcategory"))
    custom_fields: dict[str, str] | None = Field(None, max_length=50, description=(
        "The PSA's own ticket fields by name (Autotask UDFs), e.g. {\"Customer PO\": \"PO-78\"}; \"\" clears one. "
        "An unknown or computed field is a 422 naming the ones you can set"))


class CommentCreate(_In):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"body": "Replaced the fuser; please test.", "visibility": "public"},
        {"body": "Vendor case 4411 opened.", "visibility": "internal"}]})

    body: str = Field(min_length=1, max_length=30_000)
    visibility: Literal["public", "internal"] = Field(
        "internal", description="public comments reach the customer; internal ones never do")


class Discard(_In):
    model_config = _examples({"reason": "Ticket was deleted in the PSA."})

    reason: str = Field(min_length=1, max_length=500)


# ----------------------------------------------------------------- responses


class TicketSummaryOut(BaseModel):
    model_config = _examples({
        "id": 17, "number": 1042, "subject": "Printer on 2nd floor jams", "customer_id": 12,
        "customer_name": "Acme Corp", "priority": "high", "stage": "in_progress", "status": "In Progress", "assignee_id": 7,
        "assignee_name": "Ana Tech", "created_at": _TS, "updated_at": _TS})

    id: int = Field(description="The stable id, from creation on: name the ticket `id:<id>` wherever a ticket is named")
    number: int | None = Field(description="The ticket number (null while a PSA create is still queued; set when the "
                                           "PSA has the ticket)")
    psa_name: str | None = Field(default=None, description="Where the workspace has several PSAs, the ticket's name "
                                 "with its connection's prefix (`cw-1042`): unambiguous when their numbers collide; "
                                 "accepted wherever a ticket is named")
    subject: str
    customer_id: int | None
    customer_name: str | None
    priority: Priority
    stage: Stage
    status: str = Field(description="The PSA's own status name, or the stage label when standalone")
    assignee_id: int | None
    assignee_name: str | None
    created_at: datetime
    updated_at: datetime


class CommentOut(BaseModel):
    model_config = _examples({"id": 88, "visibility": "public", "body": "Replaced the fuser; please test.",
                              "author_name": "apikey:ci-bot", "origin": "api", "occurred_at": _TS})

    id: int
    visibility: Literal["public", "internal", "resolution"]
    body: str
    author_name: str | None
    origin: str
    occurred_at: datetime


class ActivityOut(BaseModel):
    model_config = _examples({"id": 89, "kind": "status_change", "origin": "api", "author_name": "apikey:ci-bot",
                              "body": "", "data": {"from": {"stage": "new"}, "to": {"stage": "in_progress"}},
                              "occurred_at": _TS})

    id: int
    kind: str = Field(description="status_change, priority_change, assignment, time_entry, attachment, "
                      "category_change, field_change (the last three only for technicians)")
    origin: str
    author_name: str | None
    body: str
    data: dict[str, Any]
    occurred_at: datetime


class TicketOut(TicketSummaryOut):
    model_config = _examples({
        "id": 17, "number": 1042, "subject": "Printer on 2nd floor jams", "customer_id": 12,
        "customer_name": "Acme Corp", "priority": "high", "stage": "new", "status": "New", "assignee_id": None, "assignee_name": None,
        "created_at": _TS, "updated_at": _TS, "description": "Since this morning.", "contact_name": None,
        "board_name": None, "type_name": None, "category_name": None, "subcategory_name": None, "external_id": None,
        "pending_writes": 0, "dead_writes": 0,
        "closed_at": None, "comments": [], "activity": []})

    description: str
    contact_name: str | None
    board_name: str | None
    type_name: str | None
    category_name: str | None = None  # the PSA's category pair (Autotask issue / sub-issue type); members only
    subcategory_name: str | None = None
    external_id: str | None = Field(description="The ticket's id in the PSA, once known")
    pending_writes: int = Field(description="Changes not yet delivered to the PSA")
    dead_writes: int = Field(description="Changes the PSA refused for good (see /outbox)")
    closed_at: datetime | None
    comments: list[CommentOut]
    activity: list[ActivityOut]


class TicketPage(BaseModel):
    model_config = _examples({"items": [], "next_cursor": "WyJvbGRlc3QiLCIyMDI2LTExLTIwVDA5OjE1OjAwIiwxMDQyXQ",
                              "total": None, "filters": {"stages": ["new"]}})

    items: list[TicketSummaryOut]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page")
    total: int | None = Field(description="Matching tickets; only when asked with total=true")
    filters: dict[str, Any]


class CustomerOut(BaseModel):
    model_config = _examples({"id": 12, "identifier": "ACME", "name": "Acme Corp", "active": True})

    id: int
    identifier: str
    name: str
    active: bool


class CustomerPage(BaseModel):
    items: list[CustomerOut]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page")


class MemberOut(BaseModel):
    model_config = _examples({"id": 7, "name": "Ana Tech", "email": "ana@msp.example", "identifier": "ana",
                              "active": True, "is_admin": False})

    id: int
    name: str
    email: str | None
    identifier: str | None
    active: bool
    is_admin: bool


class MemberPage(BaseModel):
    items: list[MemberOut]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page")


class OutboxOpOut(BaseModel):
    model_config = _examples({
        "id": 301, "kind": "add_note", "status": "dead", "ticket_number": 1042, "connection_id": 1, "attempts": 8,
        "max_attempts": 8, "next_attempt_at": _TS, "last_error": "400 Bad Request: note text too long",
        "last_status_code": 400, "outcome_unknown": False, "marker": "9f0c2d4e6b8a4c1e9d7f5b3a1c0e2f4d", "actor": "slack:U1 (Ana)", "created_at": _TS,
        "updated_at": _TS, "finished_at": _TS, "payload": {"kind": "add_note", "text": "…", "visibility": "public"}})

    id: int
    kind: str
    status: str
    ticket_number: int | None
    connection_id: int | None = Field(description="The PSA connection; null for an action that never goes to a PSA "
                                                  "(a Microsoft 365 or alert action of a standalone ticket)")
    attempts: int
    max_attempts: int
    next_attempt_at: datetime
    last_error: str | None
    last_status_code: int | None
    outcome_unknown: bool
    marker: str = Field(description="Dedupe marker sent with the PSA write (kept on redrive)")
    actor: str
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    payload: dict[str, Any] = Field(description="What is written to the PSA (secrets redacted)")
    waiting_on: int | None = Field(None, description="An earlier write of the same ticket this one waits behind")
    why: str | None = Field(None, description="What is happening to this write, and what an operator can do")


class AuditOut(BaseModel):
    id: int
    attempt: int
    action: str
    outcome: str
    response_status: int | None
    error: str | None
    duration_ms: int | None
    actor: str
    created_at: datetime
    request: dict[str, Any]


class OutboxOpDetail(BaseModel):
    op: OutboxOpOut
    audit: list[AuditOut]


class OutboxPageOut(BaseModel):
    items: list[OutboxOpOut]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next (older) page")


# ----------------------------------------------------------------- mapping


def summary_out(s: TicketSummary) -> dict[str, Any]:
    return TicketSummaryOut(
        id=s.id, number=s.number, subject=s.subject, customer_id=s.customer_id, customer_name=s.customer_name,
        psa_name=s.psa_name, priority=s.priority, stage=s.stage, status=s.status_name, assignee_id=s.assignee_id,
        assignee_name=s.assignee_name, created_at=s.created_at, updated_at=s.updated_at,
    ).model_dump(mode="json")


def comment_out(i: TimelineItem) -> CommentOut:
    return CommentOut(id=i.id, visibility=NOTE_KINDS[i.kind], body=i.body, author_name=i.author_name,
                      origin=i.origin, occurred_at=i.occurred_at)


def ticket_out(d: TicketDetail) -> dict[str, Any]:
    comments = [comment_out(i) for i in d.timeline if i.kind in NOTE_KINDS]
    activity = [ActivityOut(id=i.id, kind=str(i.kind), origin=i.origin, author_name=i.author_name, body=i.body,
                            data=i.data, occurred_at=i.occurred_at) for i in d.timeline if i.kind not in NOTE_KINDS]
    return TicketOut(
        **summary_out(d.summary), description=d.description, contact_name=d.contact_name, board_name=d.board_name,
        type_name=d.type_name, category_name=d.category_name, subcategory_name=d.subcategory_name,
        external_id=d.external_id, pending_writes=d.pending_writes,
        dead_writes=d.dead_writes, closed_at=d.closed_at, comments=comments, activity=activity,
    ).model_dump(mode="json")


def _json_time(value: datetime) -> str:
    """A datetime as pydantic's JSON mode writes it (UTC as `Z`)."""
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def summary_json(s: TicketSummary) -> dict[str, Any]:
    """`summary_out` without building a model per row (a list page has up to 100): the same dict, held to it by
    tests/bot/api/test_list_json.py."""
    return {"id": s.id, "number": s.number, "psa_name": s.psa_name, "subject": s.subject,
            "customer_id": s.customer_id, "customer_name": s.customer_name, "priority": s.priority.value,
            "stage": s.stage.value, "status": s.status_name, "assignee_id": s.assignee_id,
            "assignee_name": s.assignee_name, "created_at": _json_time(s.created_at),
            "updated_at": _json_time(s.updated_at)}


def page_out(p: QueuePage) -> dict[str, Any]:
    return {"items": [summary_json(s) for s in p.items], "next_cursor": p.next_cursor, "total": p.total,
            "filters": p.filters}


def op_out(v: OutboxOpView) -> dict[str, Any]:
    return OutboxOpOut(**{f: getattr(v, f) for f in OutboxOpOut.model_fields}).model_dump(mode="json")


def audit_out(v: OutboxAuditView) -> dict[str, Any]:
    return AuditOut(**{f: getattr(v, f) for f in AuditOut.model_fields}).model_dump(mode="json")
