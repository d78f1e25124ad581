"""RFC 9457 problem details for the REST API: the one place errors become HTTP responses.

Service errors (core/errors.py) are mapped here, once: NotFound 404, InvalidInput/InvalidFilter 422 (with the
field and close matches), PermissionDenied 403, Conflict 409, ConnectionProblem 503, Unauthenticated 401.
Request validation, unknown routes, oversized bodies (413) and rate limits (429 + Retry-After) use the same
shape. Only requests under the API prefix get problem documents; other routes keep FastAPI's defaults.
"""

from __future__ import annotations

import logging
import math
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler, request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from core import hints
from core.apikeys import Unauthenticated
from core.errors import (
    Conflict,
    ConnectionProblem,
    DeskbridgeError,
    InvalidFilter,
    InvalidInput,
    NotFound,
    PermissionDenied,
)
from core.idempotency import IdempotencyMismatch, KeyBusy

log = logging.getLogger("deskbridge.api")

MEDIA_TYPE = "application/problem+json"
TYPE_BASE = "urn:deskbridge:problem:"


JSON_HINT = "Send a JSON object (Content-Type: application/json); see /docs for its fields."


PAGE_MAX = 100  # the largest `limit` of a list (portal/tickets.py and the other lists)


def _plain_words(error: Any) -> tuple[str | None, str | None]:
    """What to say instead of the validator's words for the refusals people meet most: a path that names no
    ticket, and a body that is not a JSON object. (None, None): the validator's words stand."""
    loc = tuple(str(p) for p in error.get("loc", ()))
    if loc == ("path", "ticketId"):
        value = str(error.get("input", ""))[:80]
        return (f"'{value}' does not name a ticket.",
                "Name a ticket by its number (1042), its stable id (id:17) or its PSA name (cw-1042).")
    if loc == ("query", "limit"):  # the page size: say the whole range, whichever bound was crossed
        value = str(error.get("input", ""))[:40]
        return (f"limit={value} is not a page size.",
                f"Send limit as a whole number from 1 to {PAGE_MAX}, and page on with next_cursor.")
    if error.get("type") == "json_invalid":
        return "The body is not valid JSON.", JSON_HINT
    if loc == ("body",) and error.get("type") in ("model_attributes_type", "dict_type", "missing"):
        return "The body is not a JSON object.", JSON_HINT
    return None, None


class FieldError(BaseModel):
    """One invalid value in the request."""

    location: str = Field(description="Where: body.subject, query.limit, header.Idempotency-Key …")
    message: str


class Problem(BaseModel):
    """An RFC 9457 problem document, plus `hint` (what to do about it)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "type": "urn:deskbridge:problem:not-found", "title": "Not found", "status": 404,
        "detail": "Ticket #1042 was not found.", "hint": "Check the number.", "instance": "/api/msp-portal/tickets/1042",
    }]})

    type: str = Field("about:blank", description="A URI naming the kind of problem")
    title: str = Field(description="Short summary of the kind of problem")
    status: int = Field(description="The HTTP status code")
    detail: str | None = Field(None, description="What went wrong with this request")
    instance: str | None = Field(None, description="The request path")
    hint: str | None = Field(None, description="What you can do about it")
    field: str | None = Field(None, description="The input at fault, when there is one")
    suggestions: list[str] | None = Field(None, description="Close matches for an unknown filter value")
    errors: list[FieldError] | None = Field(None, description="Every invalid value (request validation)")
    retry_after: int | None = Field(None, description="Seconds to wait before retrying (429, 409)")


class RateLimited(StarletteHTTPException):
    def __init__(self, retry_after: float, detail: str = "Too many requests for this API key.") -> None:
        self.retry_after = max(1, math.ceil(retry_after))
        super().__init__(429, detail, headers={"Retry-After": str(self.retry_after)})


class PayloadTooLarge(StarletteHTTPException):
    def __init__(self, limit: int) -> None:
        self.limit = limit
        super().__init__(413, f"The request body is larger than {limit:,} bytes.")


_KINDS: list[tuple[type[DeskbridgeError], int, str, str]] = [
    # Most specific first.
    (Unauthenticated, 401, "unauthenticated", "Unauthenticated"),
    (IdempotencyMismatch, 422, "idempotency-key-reused", "Idempotency key reused"),
    (InvalidFilter, 422, "invalid-filter", "Invalid filter"),
    (InvalidInput, 422, "invalid-input", "Invalid input"),
    (NotFound, 404, "not-found", "Not found"),
    (PermissionDenied, 403, "forbidden", "Forbidden"),
    (Conflict, 409, "conflict", "Conflict"),
    (ConnectionProblem, 503, "psa-unavailable", "PSA connection problem"),
]
_HTTP_TITLES = {400: "Bad request", 401: "Unauthenticated", 403: "Forbidden", 404: "Not found",
                405: "Method not allowed", 409: "Conflict", 413: "Request body too large",
                415: "Unsupported media type", 422: "Invalid input", 429: "Too many requests",
                500: "Internal error", 503: "Service unavailable"}
_HTTP_HINTS = {400: "Send a JSON body with Content-Type: application/json (see /openapi.json).", 404: "Check the path against /openapi.json.", 405: "See /openapi.json for the allowed methods.",
               413: "Send a smaller body: a description takes up to 100,000 characters, a comment 30,000 (files go on the ticket in chat or in the PSA).",
               429: "Wait for Retry-After seconds, then retry; spread requests out."}


# The REST API's own words for refusals whose core hint speaks chat (core/errors.py `reason`): endpoints and fields.
API_HINTS = {
    hints.TICKET_NOT_FOUND: "Check the ticket's number, id (id:17) or PSA name (cw-1042); GET /tickets lists the "
                            "tickets this key can see.",
    hints.CUSTOMER_NOT_FOUND: "Send a customer id from GET /customers in customer_id.",
    hints.MEMBER_NOT_FOUND: "Send an active technician's id from GET /members in assignee_id.",
    hints.TECHNICIANS_ONLY: "Use a workspace API key (`deskbridge apikey create`); this is not shown to customers.",
}


def api_hint(exc: DeskbridgeError) -> str | None:
    """The hint in REST words: the surface's own wording for the error's reason, else core's hint."""
    return API_HINTS.get(exc.reason, exc.hint) if exc.reason else exc.hint


def from_error(exc: DeskbridgeError, instance: str | None = None) -> tuple[int, dict[str, Any], dict[str, str]]:
    """Status, problem body and headers for a service error."""
    status, slug, title = 400, "bad-request", "Bad request"
    for cls, st, sl, ti in _KINDS:
        if isinstance(exc, cls):
            status, slug, title = st, sl, ti
            break
    body: dict[str, Any] = {"type": TYPE_BASE + slug, "title": title, "status": status, "detail": exc.message,
                            "instance": instance, "hint": api_hint(exc)}
    if isinstance(exc, InvalidInput) and exc.field:
        body["field"] = exc.field
    if isinstance(exc, InvalidFilter) and exc.suggestions:
        body["suggestions"] = list(exc.suggestions)
    headers = {"WWW-Authenticate": 'Bearer realm="deskbridge"'} if status == 401 else {}
    if isinstance(exc, KeyBusy):
        headers["Retry-After"] = str(exc.retry_after)
        body["retry_after"] = exc.retry_after
    return status, _compact(body), headers


def _compact(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if v is not None}


def response(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> JSONResponse:
    """A problem response with the problem media type."""
    return JSONResponse(body, status_code=status, headers=headers, media_type=MEDIA_TYPE)


def error_response(exc: DeskbridgeError, request: Request) -> JSONResponse:
    status, body, headers = from_error(exc, request.url.path)
    return response(status, body, headers)


def _allowed_methods(request: Request) -> str:
    """The methods the OpenAPI document lists for the request's path (every route of it, not the first)."""
    methods: set[str] = set()
    for template, item in request.app.openapi().get("paths", {}).items():
        if re.fullmatch(re.sub(r"\\{[^/]+?\\}", "[^/]+", re.escape(template)), request.url.path):
            methods |= {m.upper() for m in item if m in _HTTP_METHODS}
    if "GET" in methods:
        methods.add("HEAD")
    return ", ".join(sorted(methods))


_HTTP_METHODS = {"get", "put", "post", "delete", "patch", "head", "options"}


def install(app: FastAPI, prefix: str) -> None:
    """Register the handlers; requests outside `prefix` keep FastAPI's default error bodies."""

    def ours(request: Request) -> bool:
        return request.url.path.startswith(prefix)

    async def on_service_error(request: Request, exc: Exception) -> JSONResponse:
        if not ours(request):
            raise exc
        assert isinstance(exc, DeskbridgeError)
        return error_response(exc, request)

    async def on_validation(request: Request, exc: Exception) -> Any:
        assert isinstance(exc, RequestValidationError)
        if not ours(request):
            return await request_validation_exception_handler(request, exc)
        errors = [FieldError(location=".".join(str(p) for p in e.get("loc", ())), message=str(e.get("msg", "")))
                  .model_dump() for e in exc.errors()]
        first = errors[0] if errors else None
        detail, hint = _plain_words(exc.errors()[0] if exc.errors() else {})
        body = {"type": TYPE_BASE + "invalid-input", "title": "Invalid input", "status": 422,
                "detail": detail or (f"{first['location']}: {first['message']}" if first else "The request is invalid."),
                "instance": request.url.path,
                "hint": hint or "Fix the values listed in `errors`; see /docs for the schema.", "errors": errors}
        return response(422, body)

    async def on_http(request: Request, exc: Exception) -> Any:
        assert isinstance(exc, StarletteHTTPException)
        if not ours(request):
            return await http_exception_handler(request, exc)
        status = exc.status_code
        body = {"type": TYPE_BASE + _HTTP_TITLES.get(status, "error").lower().replace(" ", "-"),
                "title": _HTTP_TITLES.get(status, "Error"), "status": status,
                "detail": exc.detail if isinstance(exc.detail, str) else None, "instance": request.url.path,
                "hint": _HTTP_HINTS.get(status)}
        if isinstance(exc, RateLimited):
            body["retry_after"] = exc.retry_after
        headers = dict(exc.headers or {})
        if status == 405:  # Starlette names only the first route matching the path; every route's methods count
            headers["Allow"] = _allowed_methods(request)
            body["hint"] = f"This path accepts {headers['Allow']}; see /openapi.json."
        return response(status, _compact(body), headers)

    async def on_crash(request: Request, exc: Exception) -> Any:
        log.exception("unhandled error in %s %s", request.method, request.url.path)
        if not ours(request):
            return PlainTextResponse("Internal Server Error", status_code=500)
        return response(500, {"type": TYPE_BASE + "internal", "title": "Internal error", "status": 500,
                              "detail": "Something went wrong on our side; nothing secret was logged.",
                              "instance": request.url.path, "hint": "Retry later; if it persists, tell your admin."})

    app.add_exception_handler(DeskbridgeError, on_service_error)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(Exception, on_crash)
