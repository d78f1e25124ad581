"""HaloPSA error bodies, parsed once (reference/psa-apis.md §4.10, gotcha 35). Pure: no I/O.

Halo has no standard error format. Seen in the wild (djpsa's error normaliser) and handled here:

    "You do not have access to this Action at the moment"        a bare JSON string
    {"error": "invalid_client", "error_description": "…"}        OAuth style (the token endpoint)
    {"ClassName": "System.Exception", "Message": "…"}            .NET exception style
    {"type": …, "title": "One or more validation errors occurred.", "errors": {"[0].ticket_id": ["…"]}}
                                                                  ASP.NET Core problem details (model binding)
    {"Message": "…"} / any single-key dict                       the one value is the message
    Rate Limit Reached – 300 Requests per rolling 5 minute window plain text

Messages are cut to one line of at most 300 characters; they are the vendor's words about our request and
never contain our credentials (the token endpoint does not echo the secret).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

MAX_MESSAGE = 300
_FIELD_PATH = re.compile(r"^(?:\$?\[\d+\]\.?|\$\.)?(?P<name>[A-Za-z_][\w]*)")


@dataclass(frozen=True, slots=True)
class Problem:
    """What an error body said: an optional code, a message and field errors."""

    message: str | None = None
    code: str | None = None
    fields: dict[str, str] = field(default_factory=dict)


def _clean(text: Any) -> str | None:
    if text is None:
        return None
    value = " ".join(str(text).replace("\r", " ").replace("\n", " ").split())
    if not value:
        return None
    return value if len(value) <= MAX_MESSAGE else value[: MAX_MESSAGE - 1] + "…"


def field_name(path: str) -> str:
    """`[0].ticket_id` / `$.summary` / `summary` -> the Halo field name (the path itself when odd)."""
    m = _FIELD_PATH.match(path.strip())
    return m.group("name") if m else path.strip() or "request"


def _problem_details(data: Mapping[str, Any]) -> Problem:
    fields: dict[str, str] = {}
    errors = data.get("errors")
    if isinstance(errors, Mapping):
        for path, reasons in errors.items():
            if isinstance(reasons, list):
                text = "; ".join(str(r) for r in reasons if r)
            else:
                text = str(reasons)
            fields[field_name(str(path))] = _clean(text) or "invalid"
    message = _clean(data.get("title") or data.get("detail"))
    if fields and message:
        message = f"{message} ({'; '.join(f'{k}: {v}' for k, v in sorted(fields.items()))})"
    return Problem(message=_clean(message), fields=fields)


def from_json(data: Any) -> Problem:
    """A Problem from a decoded JSON error body of any of Halo's shapes."""
    if isinstance(data, str):
        return Problem(message=_clean(data))
    if isinstance(data, list):
        return from_json(data[0]) if data else Problem()
    if not isinstance(data, Mapping):
        return Problem(message=_clean(data))
    if "error" in data and ("error_description" in data or isinstance(data.get("error"), str)):
        code = _clean(data.get("error"))
        return Problem(message=_clean(data.get("error_description")) or code, code=code)
    if "errors" in data and isinstance(data.get("errors"), Mapping):
        return _problem_details(data)
    if "ClassName" in data or "Message" in data:
        return Problem(message=_clean(data.get("Message")), code=_clean(data.get("ClassName")))
    for key in ("message", "detail", "title"):
        if data.get(key):
            return Problem(message=_clean(data[key]))
    if len(data) == 1:
        return Problem(message=_clean(next(iter(data.values()))))
    return Problem()


def parse(body: bytes) -> Problem:
    """A Problem from a raw error body (JSON of any shape, or plain text, or nothing)."""
    if not body or not body.strip():
        return Problem()
    try:
        data = json.loads(body)
    except ValueError:
        text = body.decode("utf-8", "replace")
        if "<html" in text[:200].lower():
            return Problem()  # an IIS/proxy error page says nothing useful
        return Problem(message=_clean(text))
    return from_json(data)
