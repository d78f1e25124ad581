"""Autotask's error answers -> PsaError (reference/psa-apis.md §3.10): by status AND message text, since
Autotask reports permission problems, refusals, thread limits and missing records as HTTP 500. The table of
what maps to what is in connectors/autotask/client.py's docstring; messages never carry secrets or bodies.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import httpx

from connectors.errors import (
    PsaAuthError,
    PsaError,
    PsaForbidden,
    PsaNotFound,
    PsaRateLimited,
    PsaTimeout,
    PsaTooLarge,
    PsaUnavailable,
    PsaValidationError,
)
from connectors.http import parse_retry_after

_PERMISSION = re.compile(r"adequate permission|does not have (the )?(required )?permissions? to|not authori[sz]ed",
                         re.I)
_THROTTLE = re.compile(r"itgenatr005|thread threshold|request threshold|upload threshold", re.I)
_NOT_FOUND = re.compile(r"no matching records found", re.I)
_TOO_LARGE = re.compile(r"exceeds the maximum file size|file is too large", re.I)
_BAD_LOGIN = re.compile(r"unable to authenticate|integration code is not valid|user name is not valid", re.I)
_REFUSAL = re.compile(r"required|does not reference|invalid|must |cannot|can not|exceeds|not valid|does not match"
                      r"|does not belong|is inactive|unable to find|limited to|only when|not allowed|timesheet|not a valid", re.I)
_FIELD_HINTS = (re.compile(r"\bfor (?:field )?'?([A-Za-z][A-Za-z0-9]*)'?\s*\.?\s*$"),
                re.compile(r"\bfield:?\s+'?([A-Za-z][A-Za-z0-9]*)'?"),
                re.compile(r"^Missing required field:\s*([A-Za-z][A-Za-z0-9]*)", re.I))
_CAMEL = re.compile(r"\b([a-z]+(?:[A-Z][a-z0-9]*|ID)+)\b")  # assignedResourceRoleID, taskType: Autotask field names


def error_messages(response: httpx.Response) -> tuple[list[str], bool]:
    """(messages, whether the body was Autotask's own `{"errors": [...]}`) of an error answer."""
    try:
        data = response.json()
    except ValueError:
        text = response.text.strip()
        return ([text[:300]] if text and not text.startswith("<") else []), False
    if isinstance(data, Mapping):
        errors = data.get("errors")
        if isinstance(errors, list) and errors:
            return [str(e)[:500] for e in errors], True
        for key in ("Message", "message", "error"):
            if data.get(key):
                return [str(data[key])[:500]], False
    if isinstance(data, str) and data:
        return [data[:500]], False
    return [], False


def fields_named(messages: Sequence[str], body_keys: Sequence[str] = ()) -> dict[str, str]:
    """Field names a refusal mentions: by Autotask's phrasing, camelCase names, or body fields named in it."""
    found: dict[str, str] = {}
    for message in messages:
        for pattern in _FIELD_HINTS:
            m = pattern.search(message)
            if m:
                found.setdefault(m.group(1), message)
        for name in _CAMEL.findall(message):
            found.setdefault(name, message)
        for key in body_keys:
            if re.search(rf"\b{re.escape(key)}\b", message, re.I):
                found.setdefault(key, message)
    return found


def translate_response(response: httpx.Response, *, write: bool, body_keys: Sequence[str] = ()) -> PsaError:
    """The PsaError for a non-2xx Autotask answer."""
    status = response.status_code
    messages, vendor = error_messages(response)
    text = "; ".join(messages)
    retry_after = parse_retry_after(response.headers.get("retry-after"))
    if status == 401:
        return PsaAuthError(f"Autotask refused the API user's credentials ({text or 'no reason given'}): check the "
                            "user name, secret and API tracking identifier.", status=401, code="Unauthorized")
    if status == 403 or _PERMISSION.search(text):
        return PsaForbidden(text or "The API user's security level does not allow this.", status=status,
                            code="Permission")
    if status == 429 or (status >= 500 and _THROTTLE.search(text)):
        thread = bool(re.search(r"itgenatr005|thread", text, re.I))
        # a thread limit clears as soon as one of our requests ends: a second, unless Autotask said otherwise
        return PsaRateLimited(text or "Autotask is throttling requests.", status=status,
                              retry_after=retry_after or (1.0 if thread else None),
                              code="ThreadLimit" if thread else "Threshold")
    if status == 404:
        return PsaNotFound(text or "Autotask has no such resource.", status=404)
    if status == 413 or _TOO_LARGE.search(text):
        return PsaTooLarge(text or "Autotask refused the upload as too large.", status=status)
    if status >= 500 and vendor and _BAD_LOGIN.search(text):
        return PsaAuthError(text, status=status, code="Unauthorized")
    if status >= 500 and vendor and _NOT_FOUND.search(text):
        return PsaNotFound(text, status=status)
    if status >= 500 and vendor and _REFUSAL.search(text):
        return PsaValidationError(text, status=status, fields=fields_named(messages, body_keys),
                                  details={"errors": messages})
    if status >= 500:
        return PsaUnavailable(text or f"Autotask had a server error (HTTP {status}).", status=status,
                              outcome_unknown=write)
    return PsaValidationError(text or f"Autotask refused the request (HTTP {status}).", status=status,
                              fields=fields_named(messages, body_keys))


def translate_transport(exc: httpx.HTTPError, *, write: bool) -> PsaError:
    """The PsaError for a request that got no HTTP answer."""
    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout):
        return PsaUnavailable("Could not connect to Autotask.")  # nothing was sent
    if isinstance(exc, httpx.TimeoutException):
        return PsaTimeout("Autotask did not answer in time.", outcome_unknown=write)
    if isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError | httpx.WriteError):
        return PsaTimeout("The connection to Autotask dropped before it answered.", outcome_unknown=write)
    return PsaUnavailable(f"Autotask request failed ({type(exc).__name__}).", outcome_unknown=write)
