"""Routing, shared helpers and the auth endpoints of the fake HaloPSA server (API: tests/fakes/halopsa.py).

Paths match case-insensitively (Halo runs on ASP.NET). Every `/api/*` route but authinfo needs a valid
Bearer token: a missing, unknown, expired or superseded token gets 401 with an empty body and
`WWW-Authenticate: Bearer error="invalid_token"`.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Iterable
from math import ceil
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from tests.fakes.halopsa_http import (
    FakeRequest,
    FakeResponse,
    HaloHttpError,
    binding_error,
    json_response,
    oauth_error,
    parse_date,
)

if TYPE_CHECKING:
    from datetime import datetime

    from tests.fakes.halopsa import FakeHalo

Handler = Callable[..., FakeResponse]
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 100
KNOWN_SCOPES = {"all", "read:tickets", "edit:tickets", "read:customers", "edit:customers", "read:crm",
                "read:assets", "read:lookups", "read:agents"}

_ROUTES: list[tuple[str, re.Pattern[str], str, Handler, bool]] = []


def route(method: str, template: str, *, auth: bool = True) -> Callable[[Handler], Handler]:
    """Register a handler for METHOD /api/<template> (`{id}` matches one path segment)."""
    regex = re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", template) + "/?$", re.IGNORECASE)

    def deco(fn: Handler) -> Handler:
        """Register the handler."""
        _ROUTES.append((method, regex, template, fn, auth))
        return fn

    return deco


def _not_found(fake: FakeHalo, req: FakeRequest) -> FakeResponse:
    raise HaloHttpError(404)


def match(fake: FakeHalo, req: FakeRequest) -> tuple[str, Handler, dict[str, str], bool]:
    """(route template, handler, path params, needs auth) for a request; unknown paths 404."""
    path = req.path
    if path.lower() == f"{fake.auth_path}/token".lower():
        return f"{fake.auth_path}/token", token_endpoint, {}, False
    for method, regex, template, fn, auth in _ROUTES:
        hit = regex.match(path)
        if hit and method == req.method:
            return template, fn, hit.groupdict(), auth
    return path, _not_found, {}, False


# ---------------------------------------------------------------- auth


def authenticate(fake: FakeHalo, req: FakeRequest) -> None:
    """Accept only a current Bearer token (401 otherwise)."""
    header = req.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not fake.token_valid(token.strip()):
        raise HaloHttpError(401, headers={"www-authenticate": 'Bearer error="invalid_token"'})


@route("GET", "/api/authinfo", auth=False)
def authinfo(fake: FakeHalo, req: FakeRequest) -> FakeResponse:
    """GET /api/authinfo (no auth): where the authorisation server is."""
    if not fake.authinfo_enabled:
        raise HaloHttpError(404)
    data: dict[str, Any] = {"auth_url": fake.authinfo_url or f"{fake.public_root}{fake.auth_path}"}
    if fake.authinfo_tenant:
        data["tenant_id"] = fake.tenant
    return json_response(data)


def token_endpoint(fake: FakeHalo, req: FakeRequest) -> FakeResponse:
    """POST {auth}/token: form-encoded client credentials; hosted tenants need `?tenant=`."""
    if req.method != "POST":
        raise HaloHttpError(405)
    if "application/x-www-form-urlencoded" not in req.headers.get("content-type", ""):
        raise oauth_error("invalid_request", "The request must be form-encoded.")
    form = dict(parse_qsl(req.body.decode()))
    if form.get("grant_type") != "client_credentials":
        raise oauth_error("unsupported_grant_type", "The grant type is not supported.")
    if fake.hosted and req.query.get("tenant") != fake.tenant:
        raise oauth_error("invalid_client", "Invalid client.")  # looked up in the wrong (or no) tenant
    if form.get("client_id") != fake.client_id or form.get("client_secret") != fake.client_secret:
        raise oauth_error("invalid_client", "Invalid client.")
    scope = form.get("scope") or "all"
    if not set(scope.split()) <= KNOWN_SCOPES:
        raise oauth_error("invalid_scope", "The requested scope is invalid.")
    token = fake.issue_token(scope)
    return json_response({"scope": scope, "token_type": "Bearer", "access_token": token,
                          "expires_in": int(fake.token_lifetime), "refresh_token": secrets.token_urlsafe(24)})


# ---------------------------------------------------------------- parameters and bodies


def truthy(value: str | None) -> bool:
    """Halo's reading of a boolean parameter."""
    return (value or "").strip().lower() in ("true", "1", "yes")


def int_param(req: FakeRequest, name: str) -> int | None:
    """An int query parameter (problem details when it does not bind)."""
    raw = req.query.get(name)
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError:
        raise binding_error({name: f"The value '{raw}' is not valid."}) from None


def ids_param(req: FakeRequest, name: str) -> set[int] | None:
    """A comma-separated id list (`client_ids=1,2`)."""
    raw = req.query.get(name)
    if not raw:
        return None
    try:
        return {int(x) for x in raw.split(",") if x.strip()}
    except ValueError:
        raise binding_error({name: f"The value '{raw}' is not valid."}) from None


def date_param(req: FakeRequest, name: str) -> datetime | None:
    """A date query parameter (problem details when it does not parse)."""
    raw = req.query.get(name)
    if not raw:
        return None
    try:
        return parse_date(raw)
    except ValueError:
        raise binding_error({name: f"The value '{raw}' is not valid."}) from None


def body_items(req: FakeRequest) -> list[dict[str, Any]]:
    """The JSON array a Halo POST takes (an object or garbage is a binding error)."""
    try:
        data = req.json()
    except ValueError:
        raise binding_error({"$": "The JSON value could not be converted."}) from None
    if not isinstance(data, list) or not all(isinstance(i, dict) for i in data):
        raise binding_error({"$": "The JSON value could not be converted to a list."})
    return data


def as_int(item: dict[str, Any], name: str, index: int, *, required: bool = False) -> int | None:
    """An int body field; numeric strings bind (Halo uses Json.NET), anything else is a binding error."""
    value = item.get(name)
    if value is None or value == "":
        if required:
            raise binding_error({f"[{index}].{name}": f"The {name} field is required."})
        return None
    if isinstance(value, bool):
        raise binding_error({f"[{index}].{name}": f"Could not convert {value!r} to integer."})
    try:
        return int(value)
    except (TypeError, ValueError):
        raise binding_error({f"[{index}].{name}": f"Could not convert string to integer: {value}."}) from None


def as_float(item: dict[str, Any], name: str, index: int) -> float | None:
    """A decimal body field (numeric strings bind)."""
    value = item.get(name)
    if value is None or value == "":
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        raise binding_error({f"[{index}].{name}": f"Could not convert string to double: {value}."}) from None


def as_date(item: dict[str, Any], name: str, index: int) -> datetime | None:
    """A date body field."""
    value = item.get(name)
    if not value:
        return None
    try:
        return parse_date(str(value))
    except ValueError:
        raise binding_error({f"[{index}].{name}": f"Could not convert string to DateTime: {value}."}) from None


def saved(records: list[dict[str, Any]]) -> FakeResponse:
    """Halo answers a POST of one item with the object, of several with an array."""
    return json_response(records[0] if len(records) == 1 else records)


def paged(req: FakeRequest, rows: list[dict[str, Any]], key: str) -> FakeResponse:
    """Halo's list envelope. With `pageinate=true`: `page_size` (default 50) silently clamped to 100 and,
    past the last page, the last page again (gotcha 30); `page_no` echoes what was asked."""
    total = len(rows)
    if truthy(req.query.get("pageinate")):
        size = int_param(req, "page_size") or DEFAULT_PAGE_SIZE
        size = max(1, min(size, MAX_PAGE_SIZE))
        asked = max(1, int_param(req, "page_no") or 1)
        pages = max(1, ceil(total / size))
        page = min(asked, pages)
        chunk = rows[(page - 1) * size: page * size]
        return json_response({"page_no": asked, "page_size": size, "record_count": total, key: chunk})
    count = int_param(req, "count")
    return json_response({"record_count": total, key: rows[:count] if count else rows})


def contains(haystack: Iterable[Any], needle: str) -> bool:
    """Case-insensitive substring search over several values."""
    low = needle.lower()
    return any(low in str(h or "").lower() for h in haystack)
