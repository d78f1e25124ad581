"""What every admin page shares: templates, security headers, the session guard, CSRF, error pages.

A route asks for `Depends(pages.signed_in)` (GET) or `Depends(pages.posted)` (POST: the form's CSRF token is
checked before the route runs). Routes are `AdminRoute`s: a service's DeskbridgeError becomes an error page
saying what to do (status from its kind), a malformed request a 400 page, never a JSON body or a stack trace.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import jinja2
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bot.admin import session as sessions
from bot.main import Deskbridge
from core.admin_sessions import SessionInfo
from core.context import Actor
from core.errors import Conflict, DeskbridgeError, InvalidInput, NotFound, PermissionDenied
from core.local_time import shown, zone_named
from core.redact import redact_text

HERE = Path(__file__).parent
SIGNIN = "/admin/signin"
PAGE = 50  # rows per page of every list
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


@jinja2.pass_context
def _when(context: jinja2.runtime.Context, d: datetime | None) -> str:
    """A time in the signed-in workspace's zone, named ('2026-12-07 22:30:00 EST'); UTC before sign-in."""
    session = context.get("session")
    return shown(d, zone_named(session.zone if isinstance(session, Ctx) else None)) if d else ""


_env.filters["when"] = _when


def render(name: str, status: int = 200, **context: Any) -> HTMLResponse:
    context.setdefault("session", None)
    context.setdefault("flash", None)
    return HTMLResponse(_env.get_template(name).render(**context), status_code=status)


def query(**params: Any) -> str:
    """A query string of the non-empty params (for paging links that keep the filters)."""
    return urlencode({k: v for k, v in params.items() if v not in (None, "")})


@dataclass(frozen=True, slots=True)
class Ctx:
    """A signed-in admin: the cookie's session (CSRF token) and the live server-side session."""

    cookie: sessions.AdminSession
    info: SessionInfo

    @property
    def ws(self) -> int:
        return self.cookie.workspace_id

    @property
    def csrf(self) -> str:
        return self.cookie.csrf

    @property
    def actor(self) -> Actor:
        return self.info.actor()

    @property
    def zone(self) -> str:
        """The workspace's time zone (IANA name): the pages show times and read dates in it."""
        return self.info.timezone


class PageError(Exception):
    """Raised by guards: the response to send instead of running the route."""

    def __init__(self, response: Response) -> None:
        super().__init__("admin page short-circuit")
        self.response = response


def status_of(exc: DeskbridgeError) -> int:
    """The HTTP status of a page answering a service's refusal."""
    return next((code for kind, code in _STATUS.items() if isinstance(exc, kind)), 400)


def error_page(exc: DeskbridgeError, ctx: Ctx | None) -> HTMLResponse:
    return render("error.html", status_of(exc), session=ctx, message=exc.message, hint=exc.hint)


MAX_ID = 2_147_483_647  # ids are 32-bit integers on PostgreSQL


def _beyond_any_id(value: object) -> bool:
    """A path value of digits too large to be any row's id."""
    return isinstance(value, str) and value.isascii() and value.isdigit() and (len(value) > 10 or int(value) > MAX_ID)


class AdminRoute(APIRoute):
    """Routes whose failures are pages: guards' responses, services' errors, malformed requests."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        inner = super().get_route_handler()

        async def handler(request: Request) -> Response:
            huge = next((k for k, v in request.path_params.items() if _beyond_any_id(v)), None)
            if huge is not None:  # the database cannot even look it up (SQLite: OverflowError; PostgreSQL: out of range)
                return render("error.html", 404, session=getattr(request.state, "admin", None),
                              message=f"There is no such record ({huge} {request.path_params[huge]}).",
                              hint="Use the links and forms on the pages.")
            try:
                return await inner(request)
            except PageError as exc:
                return exc.response
            except DeskbridgeError as exc:
                return error_page(exc, getattr(request.state, "admin", None))
            except RequestValidationError as exc:
                fields = ", ".join(str(e.get("loc", ("",))[-1]) for e in exc.errors())
                return render("error.html", 400, session=getattr(request.state, "admin", None),
                              message=f"This request is not one the admin pages understand ({fields}).",
                              hint="Use the links and forms on the pages.")

        return handler


class Pages:
    """The session guard and CSRF check, bound to the container."""

    def __init__(self, container: Deskbridge) -> None:
        self.container = container
        self.key = container.admin_session_key
        self.secure = (container.settings.public_url or "").lower().startswith("https://")
        self.providers: list[tuple[str, str]] = []  # (path, label) of each "Sign in with …" button

    async def current(self, request: Request) -> Ctx | None:
        cookie = sessions.verify(request.cookies.get(sessions.COOKIE), self.key)
        if cookie is None:
            return None
        info = await self.container.admin_sessions.check(cookie.workspace_id, cookie.sid)
        return Ctx(cookie, info) if info is not None else None

    async def signed_in(self, request: Request) -> Ctx:
        ctx = await self.current(request)
        if ctx is None:
            raise PageError(RedirectResponse(SIGNIN, status_code=303))
        request.state.admin = ctx
        return ctx

    async def posted(self, request: Request) -> Ctx:
        ctx = await self.signed_in(request)
        form = await request.form()
        if not sessions.csrf_ok(ctx.cookie, str(form.get("csrf") or "")):
            raise PageError(render("error.html", 403, session=ctx,
                                   message="This form has expired or did not come from this site.",
                                   hint="Go back, reload the page and try again."))
        return ctx

    def set_session(self, response: Response, workspace_id: int, sid: str) -> None:
        response.set_cookie(sessions.COOKIE, sessions.sign(sessions.new_session(workspace_id, sid), self.key),
                            max_age=sessions.SESSION_SECONDS, path="/admin", httponly=True, samesite="lax",
                            secure=self.secure)

    def clear_session(self, response: Response) -> None:
        response.delete_cookie(sessions.COOKIE, path="/admin", httponly=True, samesite="lax", secure=self.secure)


# What a page says after a change (POST, redirect, GET ?done=KEY): fixed texts, so a crafted link cannot
# make a page say anything else.
FLASH = {
    "added": "Connected: the PSA accepted the credentials and the connection is saved. The first sync starts "
             "within a minute; register the callbacks below for changes within seconds.",
    "redriven": "Queued again.", "discarded": "Discarded.", "reauthed": "Credentials checked and saved.",
    "callbacks": "Callbacks registered.", "mapped": "Mapping saved; tickets updated.", "revoked": "Key revoked.",
    "policy": "SLA policy saved.", "calendar": "Calendar saved.", "ai": "AI setting saved.",
    "source": "Alert source saved.", "rule": "Mapping rule saved.", "unmapped": "Mapping rule removed.",
    "mailbox": "Mailbox checked and saved.", "unbound": "Binding removed.", "mail_mode": "Mail handling saved.",
    # Mail triage (bot/admin/mail_pages.py): what became of the e-mail, and what to do next.
    "mail_created": "Taken again: it opened a new ticket (its number is below). Nothing more to do here.",
    "mail_replied": "Taken again: it was added to its ticket as the sender's reply (the ticket is below).",
    "mail_still": "Taken again, and it still waits in triage (why is below). Add the sender as a contact of their "
                  "customer in the PSA and take it again after the next sync, or assign it to a customer or ticket.",
    "mail_noise": "Taken again: it is an automatic message (why is below), so no ticket was opened. Nothing more to "
                  "do unless a person wrote it: then ask them to write again.",
    "mail_taken": "Taken again; what became of it is below.",
    "mail_to_customer": "Assigned: a new ticket was opened for the customer (its number is below). If the sender is "
                        "not yet a contact, the ticket's internal note asks to confirm who they are.",
    "mail_to_ticket": "Assigned: the e-mail was added to the ticket (below). A sender who is not the customer's "
                      "contact was added as an internal note: reply to them from the ticket.",
    "mail_discarded": "Discarded: no ticket, nothing sent to anyone. The message stays kept, with your reason.",
}


def flash(key: str | None) -> str | None:
    return FLASH.get(key or "")


def done(url: str, key: str) -> RedirectResponse:
    """Back to a page after a change, saying what was done (a FLASH key)."""
    assert key in FLASH, key
    sep = "&" if "?" in url else "?"
    return RedirectResponse(f"{url}{sep}done={key}", status_code=303)


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
