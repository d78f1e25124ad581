"""The admin app: `install` mounts every page module under /admin; the overview and dead letters live here."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Depends, FastAPI, Form
from fastapi.responses import RedirectResponse, Response

from bot.admin import auth, connection_pages, oidc_routes, record_pages, settings_pages
from bot.admin.web import HERE, PAGE, AdminRoute, Ctx, Pages, SecurityHeaders, done, flash, render
from bot.main import Deskbridge
from core import connection_report

SLA_AT_RISK_PCT = 20.0  # "at risk": breached, or less than this share of the target left


def install(app: FastAPI, container: Deskbridge) -> None:
    """Mount /admin on the app."""
    router = APIRouter(prefix="/admin", include_in_schema=False, route_class=AdminRoute)
    pages = Pages(container)

    @router.get("/static/admin.css")
    async def stylesheet() -> Response:
        return Response((HERE / "static" / "admin.css").read_text(), media_type="text/css")

    auth.register(router, pages)
    oidc_routes.register(router, pages)
    _register(router, pages)
    connection_pages.register(router, pages)
    settings_pages.register(router, pages)
    record_pages.register(router, pages)

    @router.api_route("/{rest:path}", methods=["GET", "POST"])
    async def unknown(rest: str, ctx: Ctx = Depends(pages.signed_in)) -> Response:
        if rest == "":  # /admin/
            return RedirectResponse("/admin", status_code=303)
        return render("error.html", 404, session=ctx, message="There is no such admin page.", hint=None)

    app.include_router(router)
    app.add_middleware(SecurityHeaders)


def _register(router: APIRouter, pages: Pages) -> None:
    container = pages.container

    @router.get("")
    async def overview(ctx: Ctx = Depends(pages.signed_in)) -> Response:
        ws = ctx.ws
        reports = [await connection_report.describe(container.db, container.connections, ws, conn.name)
                   for conn in await container.connections.list(ws)]
        counts = await container.outbox_admin.counts(ws)
        at_risk = await container.sla.breaching_ids(ws, datetime.now(UTC), within_pct=SLA_AT_RISK_PCT)
        return render("overview.html", session=ctx, reports=reports, counts=counts, dead=counts.get("dead", 0),
                      at_risk=len(at_risk), at_risk_pct=int(SLA_AT_RISK_PCT))

    @router.get("/dead-letters")
    async def dead_letters(cursor: str | None = None, ctx: Ctx = Depends(pages.signed_in)) -> Response:
        page = await container.outbox_admin.list_ops(ctx.ws, "dead", limit=PAGE, cursor=cursor)
        return render("dead_letters.html", session=ctx, page=page)

    @router.get("/dead-letters/{op_id}")
    async def dead_letter(op_id: int, done: str | None = None, ctx: Ctx = Depends(pages.signed_in)) -> Response:
        detail = await container.outbox_admin.get_op(ctx.ws, op_id)
        return render("dead_letter.html", session=ctx, detail=detail, op=detail.op, flash=flash(done))

    @router.post("/dead-letters/{op_id}/redrive")
    async def redrive(op_id: int, ctx: Ctx = Depends(pages.posted)) -> Response:
        await container.outbox_admin.redrive(ctx.ws, op_id, ctx.actor)
        return done(f"/admin/dead-letters/{op_id}", "redriven")

    @router.post("/dead-letters/{op_id}/discard")
    async def discard(op_id: int, reason: str = Form(""), ctx: Ctx = Depends(pages.posted)) -> Response:
        await container.outbox_admin.discard(ctx.ws, op_id, ctx.actor, reason)
        return done(f"/admin/dead-letters/{op_id}", "discarded")
