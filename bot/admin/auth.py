"""Signing in and out of the admin pages: the one-time link, and sign-out that ends the session everywhere.

(Sign in with Slack / Microsoft lives in bot/admin/oidc_routes.py.)
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from bot.admin import session as sessions
from bot.admin.web import SIGNIN, Ctx, Pages, render
from core.admin_links import LinkRefused


def register(router: APIRouter, pages: Pages) -> None:
    container = pages.container

    @router.get("/signin")
    async def signin() -> HTMLResponse:
        return render("signin.html", providers=pages.providers, refused=None)

    @router.get("/login")
    async def login_form(token: str = "") -> HTMLResponse:
        # Redeemed only by the POST below: link previews and prefetchers that GET the link do not use it up.
        # The form's CSRF token is double-submitted: the same random value in a cookie and in the form.
        csrf = sessions.new_session(0).csrf
        response = render("login.html", token=token, csrf=csrf)
        response.set_cookie(sessions.LOGIN_COOKIE, csrf, max_age=900, path="/admin/login", httponly=True,
                            samesite="lax", secure=pages.secure)
        return response

    @router.post("/login")
    async def login(request: Request, token: str = Form(""), csrf: str = Form("")) -> Response:
        expected = request.cookies.get(sessions.LOGIN_COOKIE, "")
        if not expected or not sessions.csrf_ok(sessions.AdminSession(0, expected, 0), csrf):
            return render("error.html", 403, message="This sign-in form did not come from this site.",
                          hint="Open your sign-in link again.")
        try:
            workspace_id = await container.admin_links.redeem(token)
        except LinkRefused as exc:
            return render("signin.html", 401, providers=pages.providers, refused=exc.message)
        sid, _ = await container.admin_sessions.start(workspace_id, "link")
        response = RedirectResponse("/admin", status_code=303)
        pages.set_session(response, workspace_id, sid)
        response.delete_cookie(sessions.LOGIN_COOKIE, path="/admin/login", httponly=True, samesite="lax",
                               secure=pages.secure)
        return response

    @router.post("/logout")
    async def logout(ctx: Ctx = Depends(pages.posted)) -> Response:
        await container.admin_sessions.end(ctx.ws, ctx.cookie.sid)  # a copy of the cookie dies with it
        response = RedirectResponse(SIGNIN, status_code=303)
        pages.clear_session(response)
        return response
