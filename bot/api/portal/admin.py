"""Directory (customers, members) and outbox dead-letter administration routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse

from bot.api.portal.deps import Admin, Caller, IdemKey, Reader, Result, idempotent
from bot.api.portal.models import (
    CustomerOut,
    CustomerPage,
    Discard,
    MemberOut,
    MemberPage,
    OutboxOpDetail,
    OutboxOpOut,
    OutboxPageOut,
    audit_out,
    op_out,
)
from core import directory_pages

router = APIRouter()
OpId = Annotated[int, Path(alias="opId", ge=1, le=2_147_483_647)]


Cursor = Annotated[str | None, Query(max_length=10, pattern=r"^[0-9]{1,10}$",
                                     description="next_cursor of the previous page")]
Limit = Annotated[int, Query(ge=1, le=directory_pages.MAX_PAGE)]


def _after(cursor: str | None) -> int:
    return min(int(cursor), 2_147_483_647) if cursor else 0  # ids are 32-bit: past the last one is an empty page


def _next(after: int | None) -> str | None:
    return str(after) if after is not None else None


@router.get("/customers", response_model=CustomerPage, tags=["directory"], summary="Customers, in id order")
async def customers(caller: Reader, limit: Limit = 100, cursor: Cursor = None) -> JSONResponse:
    page = await directory_pages.customers(caller.container.db, caller.principal.workspace_id, after=_after(cursor),
                                           limit=limit)
    items = [CustomerOut(id=c.id, identifier=c.identifier, name=c.name, active=c.active).model_dump(mode="json")
             for c in page.items]
    return JSONResponse({"items": items, "next_cursor": _next(page.next_after)})


@router.get("/members", response_model=MemberPage, tags=["directory"], summary="Technicians, in id order")
async def members(caller: Reader, limit: Limit = 100, cursor: Cursor = None) -> JSONResponse:
    page = await directory_pages.members(caller.container.db, caller.principal.workspace_id, after=_after(cursor),
                                         limit=limit)
    items = [MemberOut(id=m.id, name=m.name, email=m.email, identifier=m.identifier, active=m.active,
                       is_admin=m.is_admin).model_dump(mode="json") for m in page.items]
    return JSONResponse({"items": items, "next_cursor": _next(page.next_after)})


@router.get("/outbox", response_model=OutboxPageOut, tags=["outbox"],
            summary="Outbox ops, newest first (dead letters by default)")
async def list_outbox(
    caller: Admin,
    status: Annotated[str, Query(max_length=100, description="dead (default), pending, inflight, done, blocked, "
                                 "discarded, a comma list, or all")] = "dead",
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    cursor: Annotated[str | None, Query(max_length=20, pattern=r"^[0-9]+$",
                                        description="next_cursor of the previous page")] = None,
) -> JSONResponse:
    page = await caller.container.outbox_admin.list_ops(caller.principal.workspace_id, status=status,
                                                        limit=limit, cursor=cursor)
    return JSONResponse({"items": [op_out(v) for v in page.items], "next_cursor": page.next_cursor})


@router.get("/outbox/{opId}", response_model=OutboxOpDetail, tags=["outbox"], summary="An op and its audit rows")
async def show_outbox(caller: Admin, op_id: OpId) -> JSONResponse:
    detail = await caller.container.outbox_admin.get_op(caller.principal.workspace_id, op_id)
    return JSONResponse({"op": op_out(detail.op), "audit": [audit_out(a) for a in detail.audit]})


@router.post("/outbox/{opId}/retry", response_model=OutboxOpOut, tags=["outbox"],
             summary="Redrive a dead op (same dedupe marker)")
async def retry_outbox(request: Request, caller: Admin, op_id: OpId, idempotency_key: IdemKey = None
                       ) -> JSONResponse:
    async def work() -> Result:
        view = await caller.container.outbox_admin.redrive(caller.principal.workspace_id, op_id, caller.actor)
        return 200, op_out(view), {}

    return await idempotent(request, caller, idempotency_key, {}, work, lambda made: _op_now(caller, op_id))


@router.post("/outbox/{opId}/discard", response_model=OutboxOpOut, tags=["outbox"],
             summary="Give up on a dead op, with a reason")
async def discard_outbox(request: Request, caller: Admin, op_id: OpId, body: Discard, idempotency_key: IdemKey = None
                         ) -> JSONResponse:
    async def work() -> Result:
        view = await caller.container.outbox_admin.discard(caller.principal.workspace_id, op_id, caller.actor,
                                                           body.reason)
        return 200, op_out(view), {}

    return await idempotent(request, caller, idempotency_key, body.model_dump(mode="json"), work,
                            lambda made: _op_now(caller, op_id))


async def _op_now(caller: Caller, op_id: int) -> Result:
    """The op as it is now: the response of a redrive or discard that committed before its instance died."""
    detail = await caller.container.outbox_admin.get_op(caller.principal.workspace_id, op_id)
    return 200, op_out(detail.op), {}
