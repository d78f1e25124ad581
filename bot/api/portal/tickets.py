"""Ticket routes: list (queue filters, keyset pages), create, read with timeline, update, comment.

Every route goes through TicketService / QueueService as the key's Actor; the workspace comes from the key
only, so another workspace's ticket number or id is simply not found (404, never 403). A ticket is named by its
number (1042) or by its stable id (`id:17`, core.ticket_lookup.TicketRef), which it has from creation on.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse

from bot.api.portal import filters
from bot.api.portal.ai import TicketAiOut, ai_out
from bot.api.portal.deps import IdemKey, Reader, Result, Writer, idempotent, lost_result
from bot.api.portal.models import (
    NOTE_KINDS,
    CommentCreate,
    CommentOut,
    TicketCreate,
    TicketOut,
    TicketPage,
    TicketUpdate,
    comment_out,
    page_out,
    ticket_out,
)
from core import vocabulary
from core.errors import InvalidInput
from core.views import Priority, Stage

router = APIRouter(tags=["tickets"])
TicketRef = Annotated[str, Path(
    alias="ticketId", pattern=r"^((id:)?[1-9][0-9]{0,17}|[a-zA-Z][a-zA-Z0-9]{0,9}-[0-9a-zA-Z][0-9a-zA-Z_.]{0,63})$",
    max_length=75, examples=["1042", "id:17", "cw-1042"],
    description="The ticket number people see (1042; a ticket whose PSA create is still queued has none yet), "
                "its PSA name `cw-1042` (the connection's prefix and the PSA's id: unambiguous where a workspace "
                "has several PSAs; the `psa_name` of a ticket response) or its stable id as `id:17` (the `id` of "
                "every ticket response, valid from creation on)")]
CSV = "Comma-separated or repeated"
# The chat grammar's words (core/vocabulary.py), so `stage=pending&priority=p1&age=>1w2d` means what
# `/tickets stage:pending priority:p1 age:>1w2d` means in chat.
STAGE_DOC = "Words (as in chat): " + "; ".join(
    f"{stage.value}: " + ", ".join(w for w, st in vocabulary.STAGE_WORDS.items() if st == (stage,))
    for stage in Stage) + "; open (default): every open stage; all: every stage, closed ones included."
PRIORITY_DOC = "Words (as in chat): " + "; ".join(
    f"{p.value}: " + ", ".join(w for w, v in vocabulary.PRIORITY_WORDS.items() if v == p) for p in Priority) + "."
AGE_DOC = ("`>2d` (or `2d`) older than, `<4h` newer than; durations in m h d w, combined as in chat: `>1w2d`, "
           "`<1d12h`.")


@router.get("/tickets", response_model=TicketPage, summary="List tickets (a queue)")
async def list_tickets(
    caller: Reader,
    stage: Annotated[list[str] | None, Query(description=f"{CSV}. {STAGE_DOC}")] = None,
    status: Annotated[list[str] | None, Query(description=f"{CSV} PSA status names")] = None,
    customer: Annotated[str | None, Query(max_length=200, description="Customer id, identifier or name")] = None,
    assignee: Annotated[str | None, Query(max_length=20, description="Member id, unassigned or mine")] = None,
    priority: Annotated[list[str] | None, Query(description=f"{CSV}. {PRIORITY_DOC}")] = None,
    age: Annotated[list[str] | None, Query(description=AGE_DOC)] = None,
    q: Annotated[str | None, Query(max_length=200, description="Words in the subject, or #number")] = None,
    sort: Annotated[str | None, Query(description="oldest (default), newest, priority, updated")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 25,
    cursor: Annotated[str | None, Query(max_length=2000, description="next_cursor of the previous page")] = None,
    total: Annotated[bool, Query(description="Count all matches (costs a query)")] = False,
) -> JSONResponse:
    actor = caller.actor
    f = await filters.build(caller.container.directory, actor, stage=stage, status=status, customer_ref=customer,
                            assignee_ref=assignee, priority=priority, age=age, q=q, sort_ref=sort)
    page = await caller.container.queue.list(actor, f, limit=limit, cursor=cursor or None, with_total=total)
    return JSONResponse(page_out(page))


@router.post("/tickets", status_code=201, response_model=TicketOut, summary="Create a ticket",
             responses={201: {"headers": {"Location": {"schema": {"type": "string"},
                                                       "description": "The new ticket's URL, by its stable id (`…/tickets/id:17`)"}}}})
async def create_ticket(request: Request, caller: Writer, body: TicketCreate, idempotency_key: IdemKey = None
                        ) -> JSONResponse:
    async def work() -> Result:
        detail = await caller.container.tickets.create(
            caller.actor, subject=body.subject, description=body.description, customer_id=body.customer_id,
            priority=body.priority, assignee_member_id=body.assignee_id, board_external_id=body.board,
            type_external_id=body.type, type_name=body.type, contact_id=body.contact_id, category=body.category,
            subcategory=body.subcategory)
        out = ticket_out(detail)
        return 201, out, {"Location": f"{request.url.path}/id:{out['id']}"}

    async def rebuild(made: dict[str, Any]) -> Result:
        if not made.get("tickets"):
            raise lost_result()
        out = ticket_out(await caller.container.tickets.get(caller.actor, f"id:{made['tickets'][0]}"))
        return 201, out, {"Location": f"{request.url.path}/id:{out['id']}"}

    return await idempotent(request, caller, idempotency_key, body.model_dump(mode="json", exclude_unset=True), work,
                            rebuild)


@router.get("/tickets/{ticketId}", response_model=TicketAiOut, summary="A ticket with its comments and activity")
async def get_ticket(
    caller: Reader, ref: TicketRef,
    ai: Annotated[bool, Query(description="Add AI suggestions (category, similar tickets, resolutions)")] = False,
) -> JSONResponse:
    detail = await caller.container.tickets.get(caller.actor, ref)
    out = ticket_out(detail)
    if ai:
        out["ai"] = ai_out(await caller.container.ai.suggestions(caller.actor, detail.summary.id))
    return JSONResponse(out)


@router.put("/tickets/{ticketId}", response_model=TicketOut, summary="Change status, priority, assignee or category")
async def update_ticket(request: Request, caller: Writer, ref: TicketRef, body: TicketUpdate,
                        idempotency_key: IdemKey = None) -> JSONResponse:
    given = body.model_fields_set
    if not given:
        raise InvalidInput("Nothing to change.", hint="Send at least one of status, priority, assignee_id, category, subcategory, custom_fields.")
    if "priority" in given and body.priority is None:
        raise InvalidInput("priority cannot be null.", hint="Use critical, high, medium or low.", field="priority")
    if "status" in given and body.status is None:
        raise InvalidInput("status cannot be null.", hint="Give a status name or a stage.", field="status")

    async def work() -> Result:
        # One transaction: every value is checked first, then all of it is written (or none of it).
        changes: dict[str, Any] = {"assignee_member_id": body.assignee_id} if "assignee_id" in given else {}
        detail = await caller.container.tickets.update(caller.actor, ref, status=body.status,
                                                       priority=body.priority, category=body.category,
                                                       subcategory=body.subcategory,
                                                       custom_fields=body.custom_fields, **changes)
        return 200, ticket_out(detail), {}

    async def rebuild(made: dict[str, Any]) -> Result:
        return 200, ticket_out(await caller.container.tickets.get(caller.actor, ref)), {}

    return await idempotent(request, caller, idempotency_key, body.model_dump(mode="json", exclude_unset=True), work,
                            rebuild)


@router.post("/tickets/{ticketId}/comments", status_code=201, response_model=CommentOut,
             summary="Add a public or internal comment")
async def add_comment(request: Request, caller: Writer, ref: TicketRef, body: CommentCreate,
                      idempotency_key: IdemKey = None) -> JSONResponse:
    async def work() -> Result:
        detail = await caller.container.tickets.comment(caller.actor, ref, body.body, visibility=body.visibility)
        notes = [i for i in detail.timeline if i.kind in NOTE_KINDS and i.origin == "api"]
        newest = max(notes, key=lambda i: i.id)
        return 201, comment_out(newest).model_dump(mode="json"), {}

    async def rebuild(made: dict[str, Any]) -> Result:
        detail = await caller.container.tickets.get(caller.actor, ref)
        mine = set(made.get("entries") or ())
        note = next((i for i in detail.timeline if i.id in mine and i.kind in NOTE_KINDS), None)
        if note is None:
            raise lost_result()
        return 201, comment_out(note).model_dump(mode="json"), {}

    return await idempotent(request, caller, idempotency_key, body.model_dump(mode="json", exclude_unset=True), work,
                            rebuild)
