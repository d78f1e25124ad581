"""`POST /api/messages`: everything checked before the Teams SDK sees an activity.

Our own FastAPI route (the SDK's route registration is still changing, and its adapter answers 500 to
malformed bodies and accepts any Content-Type). In order: Content-Type (415), size (413, also while
reading), the bearer token's signature, issuer, audience and expiry (401), JSON and the activity's shape
(400), the token's `serviceurl` against the activity's (401), the tenant (403), then a duplicate
activity id (200, processed once). No body or token reaches a log line.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from bot import looptrace
from bot.teams.auth import TokenRefused
from core.numbers import whole

if TYPE_CHECKING:
    from bot.teams.app import TeamsSurface

log = logging.getLogger("deskbridge.teams")

MAX_BODY = 1024 * 1024  # an activity with a filled-in card is a few KB; Teams caps messages at ~100 KB
ENDPOINT = "/api/messages"


class BadActivity(ValueError):
    """The body is not an activity we can process; the text says what is wrong (returned to the caller)."""


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


async def _read_capped(request: Request) -> bytes | None:
    declared = request.headers.get("content-length")
    if declared is not None and whole(declared, max_value=MAX_BODY) is None:
        return None
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def parse_activity(raw: bytes) -> dict[str, Any]:
    """The activity as a dict with the fields we rely on, or BadActivity naming the first one missing."""
    try:
        body = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):  # RecursionError: nested too deep
        raise BadActivity("The body is not JSON.") from None
    if not isinstance(body, dict):
        raise BadActivity("The body is not a JSON object.")
    for key in ("type", "serviceUrl", "channelId"):
        if not isinstance(body.get(key), str) or not body[key]:
            raise BadActivity(f"The activity has no '{key}'.")
    if not body["serviceUrl"].startswith(("https://", "http://")):
        raise BadActivity("The activity's serviceUrl is not an http(s) URL.")
    for key in ("conversation", "from"):
        part = body.get(key)
        if not isinstance(part, dict) or not isinstance(part.get("id"), str) or not part["id"]:
            raise BadActivity(f"The activity has no '{key}.id'.")
    if body.get("id") is not None and not isinstance(body["id"], str):
        raise BadActivity("The activity's 'id' is not a string.")
    return body


def tenant_of(body: dict[str, Any]) -> str | None:
    conv = body.get("conversation") or {}
    data: dict[str, Any] = body["channelData"] if isinstance(body.get("channelData"), dict) else {}
    tenant = (data.get("tenant") or {}) if isinstance(data.get("tenant"), dict) else {}
    value = conv.get("tenantId") or tenant.get("id")
    return str(value) if value else None


def router(surface: TeamsSurface) -> APIRouter:
    r = APIRouter()

    @r.post(ENDPOINT, include_in_schema=False)
    async def messages(request: Request) -> Response:
        looptrace.begin_request()
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype != "application/json":
            return _error(415, "Send the activity as application/json.")
        raw = await _read_capped(request)
        if raw is None:
            return _error(413, f"The activity is larger than {MAX_BODY} bytes.")
        authorization = request.headers.get("authorization")
        looptrace.mark("read")
        try:
            body = parse_activity(raw)
        except BadActivity as exc:
            # A caller without a valid token learns nothing about our parsing: 401 before 400.
            if not await surface.token_looks_valid(authorization):
                return _error(401, "Unauthorized")
            return _error(400, str(exc))
        try:
            await surface.verifier.verify(authorization, service_url=body.get("serviceUrl"),
                                          channel_id=body.get("channelId"))
        except TokenRefused as exc:
            log.warning("Teams activity refused: %s", exc.reason,
                        extra={"activity_type": str(body.get("type"))[:32]})
            return _error(401, "Unauthorized")
        looptrace.mark("token")
        tenant = tenant_of(body)
        if not surface.tenant_allowed(tenant):
            log.warning("Teams activity from an unknown tenant refused", extra={"tenant": str(tenant)[:64]})
            return _error(403, "This bot serves its own organisation only; the activity's tenant is not it.")
        try:
            status, payload = await surface.dispatch(body, (authorization or "").removeprefix("Bearer ").strip())
        except BadActivity as exc:
            return _error(400, str(exc))
        if payload is None:
            return Response(status_code=status)
        if isinstance(payload, bytes):  # already JSON (a read-only click's answer: bot/teams/app.py)
            response: Response = Response(payload, status_code=status, media_type="application/json")
        else:
            response = JSONResponse(payload, status_code=status)
        looptrace.mark("json")
        return response

    return r
