"""Routes of "Sign in with Slack / Microsoft": /admin/oidc/{provider}/start and /callback (see bot/admin/oidc.py).

A provider is offered only when its client id and secret are configured. Whoever the checked ID token names
must be a Deskbridge admin of the workspace installed in that Slack team or Entra tenant
(AdminSessionService.admin_for); anyone else gets a page saying so and no session.
"""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from bot.admin.oidc import (
    FLOW_COOKIE,
    FLOW_SECONDS,
    Flow,
    OidcClient,
    Provider,
    SignInFailed,
    microsoft_provider,
    slack_provider,
)
from bot.admin.web import Pages, render
from bot.settings import Settings
from core.errors import PermissionDenied

PREFIX = "/admin/oidc"


def providers_from(settings: Settings) -> dict[str, Provider]:
    """The providers this instance's settings configure (none without client ids and secrets)."""
    out: dict[str, Provider] = {}
    slack_id = settings.admin_slack_client_id or settings.slack_client_id
    slack_secret = settings.admin_slack_client_secret or settings.slack_client_secret
    if slack_id and slack_secret:
        out["slack"] = slack_provider(settings.slack_oidc_url, slack_id, slack_secret.get_secret_value())
    ms_id = settings.admin_microsoft_client_id or settings.teams_app_id
    ms_secret = settings.admin_microsoft_client_secret or settings.teams_app_secret
    if ms_id and ms_secret:
        tenant = settings.admin_microsoft_tenant or settings.teams_tenant_id or "organizations"
        login = settings.teams_login_url or settings.m365_login_url
        out["microsoft"] = microsoft_provider(login, tenant, ms_id, ms_secret.get_secret_value())
    return out


def register(router: APIRouter, pages: Pages) -> None:
    container = pages.container
    client = OidcClient(providers_from(container.settings))
    pages.providers = [(f"{PREFIX}/{p.name}/start", p.label) for p in client.providers.values()]

    def redirect_uri(request: Request, provider: Provider) -> str:
        base = (container.settings.public_url or str(request.base_url)).rstrip("/")
        return f"{base}{PREFIX}/{provider.name}/callback"

    def refused(message: str, status: int = 400) -> Response:
        response = render("signin.html", status, providers=pages.providers, refused=message)
        response.delete_cookie(FLOW_COOKIE, path=PREFIX, httponly=True, samesite="lax", secure=pages.secure)
        return response

    @router.get("/oidc/{name}/start")
    async def start(name: str, request: Request) -> Response:
        provider = client.providers.get(name)
        if provider is None:
            return refused("This sign-in method is not set up on this Deskbridge.", 404)
        flow = Flow.start(name)
        response = RedirectResponse(client.authorize_url(provider, flow, redirect_uri(request, provider)),
                                    status_code=303)
        # SameSite=Lax: the provider's redirect back is a top-level GET, so the cookie comes along.
        response.set_cookie(FLOW_COOKIE, flow.sign(pages.key), max_age=FLOW_SECONDS, path=PREFIX, httponly=True,
                            samesite="lax", secure=pages.secure)
        return response

    @router.get("/oidc/{name}/callback")
    async def callback(name: str, request: Request, code: str = "", state: str = "", error: str = "") -> Response:
        provider = client.providers.get(name)
        flow = Flow.verify(request.cookies.get(FLOW_COOKIE), pages.key)
        if provider is None or flow is None or flow.provider != name or not state \
                or not secrets_equal(flow.state, state):
            return refused("This sign-in was not started in this browser, or took longer than 10 minutes. "
                           "Start again.")
        if error or not code:
            return refused("The sign-in was cancelled or refused at the provider. Start again.")
        try:
            ident = await client.finish(provider, flow, code, redirect_uri(request, provider))
            workspace_id, member = await container.admin_sessions.admin_for(ident)
        except SignInFailed as exc:
            return refused(exc.message)
        except PermissionDenied as exc:
            return refused(f"{exc.message} {exc.hint or ''}".strip(), 403)
        who = f"{provider.name}:{ident.user_id} {ident.email or ident.name or ''}".strip()
        sid, _ = await container.admin_sessions.start(workspace_id, who, member.id)
        response = RedirectResponse("/admin", status_code=303)
        pages.set_session(response, workspace_id, sid)
        response.delete_cookie(FLOW_COOKIE, path=PREFIX, httponly=True, samesite="lax", secure=pages.secure)
        return response


def secrets_equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())
