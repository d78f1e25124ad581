"""The admin app: `install` mounts every page module under /admin; the overview and dead letters live here."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, FastAPI, Form, Request
from fastapi.responses import RedirectResponse, Response

from bot.admin import (
    auth,
    connection_pages,
    m365_pages,
    mail_pages,
    oidc_routes,
    record_pages,
    settings_pages,
)
from bot.admin.web import HERE, PAGE, AdminRoute, Ctx, Pages, SecurityHeaders, done, flash, render
from bot.main import Deskbridge
from core import connection_report
from core.errors import Conflict, InvalidInput, NotFound
from core.intake.mail_triage import COUNT_CAP
from core.numbers import whole
from core.outbox.admin import OP_KINDS
from core.sla.risk import RISK_PCT


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
    m365_pages.register(router, pages)
    mail_pages.register(router, pages)

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
        at_risk = await container.sla.at_risk_count(ws, datetime.now(UTC))
        mail = await container.mailboxes.triage.waiting(ws)
        return render("overview.html", session=ctx, reports=reports, counts=counts, dead=counts.get("dead", 0),
                      at_risk=at_risk, at_risk_pct=int(RISK_PCT), mail=f"{mail}+" if mail >= COUNT_CAP else mail)

    @router.get("/dead-letters")
    async def dead_letters(cursor: str | None = None, done: str | None = None, n: int = 0, connection: str = "",
                           kind: str = "", ticket: str = "", ctx: Ctx = Depends(pages.signed_in)) -> Response:
        """Newest first, narrowed by connection, kind of write and ticket number; pages keep the filters."""
        filters = {"connection": connection.strip(), "kind": kind.strip(), "ticket": ticket.strip().lstrip("#")}
        for name in ("connection", "ticket"):
            if filters[name] and whole(filters[name]) is None:
                raise InvalidInput(f"'{filters[name]}' is not a {name} number.",
                                   hint="Pick a connection from the list; write a ticket number like 1042.")
        page = await container.outbox_admin.list_ops(
            ctx.ws, "dead", limit=PAGE, cursor=cursor, kind=filters["kind"] or None,
            connection_id=int(filters["connection"]) if filters["connection"] else None,
            ticket_number=int(filters["ticket"]) if filters["ticket"] else None)
        told = f"{n} write(s) queued again." if done == "redriven" else flash(done)
        kept = urlencode({k: v for k, v in filters.items() if v})
        return render("dead_letters.html", session=ctx, page=page, flash=told, filters=filters, kinds=OP_KINDS,
                      next_url=f"/admin/dead-letters?{kept + '&' if kept else ''}cursor={page.next_cursor}"
                      if page.next_cursor else None, connections=await container.connections.list(ctx.ws))

    @router.post("/dead-letters/redrive")
    async def redrive_many(request: Request, ctx: Ctx = Depends(pages.posted)) -> Response:
        """The ticked ones, or every dead letter (of one connection) with `all`."""
        form = await request.form()
        if form.get("all"):
            conn = str(form.get("connection") or "")
            n = await container.outbox_admin.redrive_all(ctx.ws, ctx.actor,
                                                         connection_id=whole(conn))
        else:
            ids = [n for n in (whole(v) for v in form.getlist("op")) if n is not None]
            if not ids:
                raise InvalidInput("No write was ticked.", hint="Tick the writes to retry, or use Retry all.")
            n = 0
            for op_id in ids:
                try:
                    await container.outbox_admin.redrive(ctx.ws, op_id, ctx.actor)
                    n += 1
                except (Conflict, NotFound):
                    pass  # already retried (another tab), or not this workspace's: not counted
        return RedirectResponse(f"/admin/dead-letters?done=redriven&n={n}", status_code=303)

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
