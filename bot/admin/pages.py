"""Routes of the admin pages: sign-in by one-time link, overview, dead letters (inspect, redrive, discard)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2
from fastapi import APIRouter, FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bot.admin import session as sessions
from bot.main import Deskbridge
from core import connection_report
from core.admin_links import LinkRefused, admin_actor
from core.errors import Conflict, DeskbridgeError, InvalidInput, NotFound, PermissionDenied
from core.redact import redact_text

HERE = Path(__file__).parent
SIGNIN = "/admin/signin"
SLA_AT_RISK_PCT = 20.0  # "at risk": breached, or less than this share of the target left
SECURITY_HEADERS = {
    "Content-Security-Policy": ("default-src 'self'; frame-ancestors 'none'; form-action 'self'; "
                                "base-uri 'none'; object-src 'none'"),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}
_STATUS = {NotFound: 404, Conflict: 409, InvalidInput: 400, PermissionDenied: 403}

_env = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True,
                          undefined=jinja2.StrictUndefined)
_env.filters["redact"] = redact_text  # stored error text is masked when written; masked again when shown


class SecurityHeaders:
    """Pure ASGI middleware: every response under /admin (errors and 422s included) gets the security headers."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._headers = [(k.lower().encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if not (path == "/admin" or path.startswith("/admin/")):
            await self.app(scope, receive, send)
            return

        async def send_hardened(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {k for k, _ in self._headers}
                kept = [(k, v) for k, v in message.get("headers", []) if k.lower() not in names]
                message = {**message, "headers": kept + self._headers}
            await send(message)

        await self.app(scope, receive, send_hardened)


def render(name: str, status: int = 200, **context: Any) -> HTMLResponse:
    return HTMLResponse(_env.get_template(name).render(**context), status_code=status)


def _error(exc: DeskbridgeError, session: sessions.AdminSession | None) -> HTMLResponse:
    status = next((code for kind, code in _STATUS.items() if isinstance(exc, kind)), 400)
    return render("error.html", status, session=session, message=exc.message, hint=exc.hint)


def install(app: FastAPI, container: Deskbridge) -> None:
    """Mount /admin on the app."""
    router = APIRouter(prefix="/admin", include_in_schema=False)
    key = container.admin_session_key
    secure = (container.settings.public_url or "").lower().startswith("https://")

    def current(request: Request) -> sessions.AdminSession | None:
        return sessions.verify(request.cookies.get(sessions.COOKIE), key)

    def to_signin() -> RedirectResponse:
        return RedirectResponse(SIGNIN, status_code=303)

    def csrf_refused(s: sessions.AdminSession) -> HTMLResponse:
        return render("error.html", 403, session=s, message="This form has expired or did not come from this site.",
                      hint="Go back, reload the page and try again.")

    @router.get("/static/admin.css")
    async def stylesheet() -> Response:
        return Response((HERE / "static" / "admin.css").read_text(), media_type="text/css")

    @router.get("/signin")
    async def signin(request: Request) -> HTMLResponse:
        return render("signin.html", session=None)

    @router.get("/login")
    async def login_form(token: str = "") -> HTMLResponse:
        # Redeemed only by the POST below: link previews and prefetchers that GET the link do not use it up.
        # The form's CSRF token is double-submitted: the same random value in a cookie and in the form.
        csrf = sessions.new_session(0).csrf
        response = render("login.html", session=None, token=token, csrf=csrf)
        response.set_cookie(sessions.LOGIN_COOKIE, csrf, max_age=900, path="/admin/login", httponly=True,
                            samesite="lax", secure=secure)
        return response

    @router.post("/login")
    async def login(request: Request, token: str = Form(""), csrf: str = Form("")) -> Response:
        expected = request.cookies.get(sessions.LOGIN_COOKIE, "")
        if not expected or not sessions.csrf_ok(sessions.AdminSession(0, expected, 0), csrf):
            return render("error.html", 403, session=None, message="This sign-in form did not come from this site.",
                          hint="Open your sign-in link again.")
        try:
            workspace_id = await container.admin_links.redeem(token)
        except LinkRefused as exc:
            return render("signin.html", 401, session=None, refused=exc.message)
        response = RedirectResponse("/admin", status_code=303)
        response.set_cookie(sessions.COOKIE, sessions.sign(sessions.new_session(workspace_id), key),
                            max_age=sessions.SESSION_SECONDS, path="/admin", httponly=True, samesite="lax",
                            secure=secure)
        response.delete_cookie(sessions.LOGIN_COOKIE, path="/admin/login", httponly=True, samesite="lax",
                               secure=secure)
        return response

    @router.post("/logout")
    async def logout(request: Request, csrf: str = Form("")) -> Response:
        s = current(request)
        if s is None:
            return to_signin()
        if not sessions.csrf_ok(s, csrf):
            return csrf_refused(s)
        response = RedirectResponse(SIGNIN, status_code=303)
        response.delete_cookie(sessions.COOKIE, path="/admin", httponly=True, samesite="lax", secure=secure)
        return response

    @router.get("")
    async def overview(request: Request) -> Response:
        s = current(request)
        if s is None:
            return to_signin()
        ws = s.workspace_id
        reports = [await connection_report.describe(container.db, container.connections, ws, conn.name)
                   for conn in await container.connections.list(ws)]
        counts = await container.outbox_admin.counts(ws)
        at_risk = await container.sla.breaching_ids(ws, datetime.now(UTC), within_pct=SLA_AT_RISK_PCT)
        return render("overview.html", session=s, reports=reports, counts=counts, dead=counts.get("dead", 0),
                      at_risk=len(at_risk), at_risk_pct=int(SLA_AT_RISK_PCT))

    @router.get("/dead-letters")
    async def dead_letters(request: Request, cursor: str | None = None) -> Response:
        s = current(request)
        if s is None:
            return to_signin()
        try:
            page = await container.outbox_admin.list_ops(s.workspace_id, "dead", limit=50, cursor=cursor)
        except DeskbridgeError as exc:
            return _error(exc, s)
        return render("dead_letters.html", session=s, page=page)

    @router.get("/dead-letters/{op_id}")
    async def dead_letter(request: Request, op_id: int, done: str | None = None) -> Response:
        s = current(request)
        if s is None:
            return to_signin()
        try:
            detail = await container.outbox_admin.get_op(s.workspace_id, op_id)
        except DeskbridgeError as exc:
            return _error(exc, s)
        return render("dead_letter.html", session=s, detail=detail, op=detail.op,
                      done={"redriven": "Queued again.", "discarded": "Discarded."}.get(done or ""))

    @router.post("/dead-letters/{op_id}/redrive")
    async def redrive(request: Request, op_id: int, csrf: str = Form("")) -> Response:
        s = current(request)
        if s is None:
            return to_signin()
        if not sessions.csrf_ok(s, csrf):
            return csrf_refused(s)
        try:
            await container.outbox_admin.redrive(s.workspace_id, op_id, admin_actor(s.workspace_id))
        except DeskbridgeError as exc:
            return _error(exc, s)
        return RedirectResponse(f"/admin/dead-letters/{op_id}?done=redriven", status_code=303)

    @router.post("/dead-letters/{op_id}/discard")
    async def discard(request: Request, op_id: int, csrf: str = Form(""), reason: str = Form("")) -> Response:
        s = current(request)
        if s is None:
            return to_signin()
        if not sessions.csrf_ok(s, csrf):
            return csrf_refused(s)
        try:
            await container.outbox_admin.discard(s.workspace_id, op_id, admin_actor(s.workspace_id), reason)
        except DeskbridgeError as exc:
            return _error(exc, s)
        return RedirectResponse(f"/admin/dead-letters/{op_id}?done=discarded", status_code=303)

    @router.api_route("/{rest:path}", methods=["GET", "POST"])
    async def unknown(request: Request, rest: str) -> Response:
        s = current(request)
        if s is None:
            return to_signin()
        if rest == "":  # /admin/
            return RedirectResponse("/admin", status_code=303)
        return render("error.html", 404, session=s, message="There is no such admin page.", hint=None)

    app.include_router(router)
    app.add_middleware(SecurityHeaders)
