"""The MSP portal REST API under /api/msp-portal/: tickets, directory and outbox administration.

`install(app, container)` adds the routes, the problem-details error handlers, the body size limit and the
per-key rate limiter to the web app. Auth: `Authorization: Bearer <key>` (scopes read < write < admin).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Depends, FastAPI

from bot.api import problems
from bot.api.portal import admin, ai_settings, tickets
from bot.api.portal.deps import PREFIX, known_query
from bot.api.portal.limits import AUTH_FAILURE_BURST, AUTH_FAILURE_RATE, BodyLimit, RateLimiter

if TYPE_CHECKING:
    from bot.main import Deskbridge

_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": problems.Problem, "description": text}
    for code, text in (
        (401, "Missing, malformed, unknown or revoked API key"),
        (403, "The key lacks the scope this route needs"),
        (404, "Not found (also: outside the key's workspace)"),
        (409, "Conflict, or the same Idempotency-Key is still in flight (retry after Retry-After seconds)"),
        (413, "Request body too large"),
        (422, "Invalid input, an unknown filter value, or an Idempotency-Key reused with another body"),
        (400, "The body could not be read as JSON; send Content-Type: application/json"),
        (429, "Rate limit of this key (or of failed authentications from this address) exceeded; see Retry-After"),
        (503, "The PSA connection is unusable"),
    )
}


def router() -> APIRouter:
    r = APIRouter(prefix=PREFIX, responses=_ERRORS, dependencies=[Depends(known_query)])
    r.include_router(tickets.router)
    r.include_router(admin.router)
    r.include_router(ai_settings.router)
    return r


def install(app: FastAPI, container: Deskbridge) -> None:
    """Mount the API on `app`, with the rate and size limits of the container's settings."""
    s = container.settings
    app.state.portal_limiter = RateLimiter(s.api_rate_per_second, s.api_rate_burst)
    app.state.portal_auth_failures = RateLimiter(AUTH_FAILURE_RATE, AUTH_FAILURE_BURST)
    app.include_router(router())
    app.add_middleware(BodyLimit, prefix=PREFIX, max_bytes=s.api_max_body_bytes)
    problems.install(app, PREFIX)
    _problem_media_type_in_openapi(app)


def _problem_media_type_in_openapi(app: FastAPI) -> None:
    """Error responses are documented as application/problem+json (what the handlers send)."""
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = original()
        for path, item in schema.get("paths", {}).items():
            if not path.startswith(PREFIX):
                continue
            for op in item.values():
                for code, resp in op.get("responses", {}).items():
                    content = resp.get("content", {})
                    if code[:1] in ("4", "5") and "application/json" in content:
                        content[problems.MEDIA_TYPE] = content.pop("application/json")
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
