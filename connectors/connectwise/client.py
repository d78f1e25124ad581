"""The HTTP client of one ConnectWise tenant: codebase discovery, requests, and error translation.

Error translation happens here and only here (reference/psa-apis.md §2.10):

    2xx with a body that is not JSON        -> PsaUnavailable (outcome_unknown for writes)
    400 / 409 / 415 / 422 with {code, message, errors:[{field, message}]} -> PsaValidationError(fields=…)
    413                                     -> PsaTooLarge
    401 / 403                               -> PsaAuthError / PsaForbidden (the PSA's message)
    404                                     -> re-read companyinfo; if the codebase moved, retry once;
                                               else PsaNotFound
    429                                     -> PsaRateLimited(retry_after from Retry-After)
    5xx                                     -> PsaUnavailable (outcome_unknown for writes)
    connect error / pool timeout            -> PsaUnavailable (nothing was sent; GETs retry once first)
    read/write timeout, dropped connection  -> PsaTimeout (outcome_unknown for writes)

Writes are never retried here (the outbox owns that), except the one re-send after a codebase move,
which is safe: a 404 from the old path means nothing was applied. Messages never carry keys, headers
or query strings.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

import httpx

from connectors.connectwise.auth import CwTenant, api_headers, codebase_from_companyinfo
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
from connectors.http import make_client, parse_retry_after

log = logging.getLogger("deskbridge.psa.connectwise")


def _body_message(response: httpx.Response) -> tuple[str | None, str | None, dict[str, str]]:
    """(code, message, field errors) of a ConnectWise error body, tolerating other shapes."""
    try:
        data = response.json()
    except ValueError:
        return None, None, {}
    if not isinstance(data, Mapping):
        return None, None, {}
    fields: dict[str, str] = {}
    for err in data.get("errors") or []:
        if isinstance(err, Mapping):
            name = str(err.get("field") or err.get("resource") or "request")
            fields[name] = str(err.get("message") or err.get("code") or "invalid")
    code = data.get("code")
    message = data.get("message")
    return (str(code) if code else None), (str(message)[:500] if message else None), fields


def translate_response(response: httpx.Response, method: str) -> PsaError:
    """The PsaError for a non-2xx ConnectWise answer."""
    status = response.status_code
    code, message, fields = _body_message(response)
    write = method.upper() != "GET"
    if status == 401:
        return PsaAuthError(message or "ConnectWise rejected the API keys.", status=status, code=code)
    if status == 403:  # psa-apis.md 2.10: 403 is the security role, the keys work
        return PsaForbidden(message or "The API member's security role does not allow this.", status=status,
                            code=code)
    if status == 404:
        return PsaNotFound(message or "ConnectWise has no such record.", status=status, code=code)
    if status == 413:
        return PsaTooLarge(message or "ConnectWise refused the upload as too large.", status=status, code=code)
    if status == 429:
        return PsaRateLimited(message or "ConnectWise is throttling requests.", status=status, code=code,
                              retry_after=parse_retry_after(response.headers.get("retry-after")))
    if status >= 500:
        return PsaUnavailable(message or "ConnectWise had a server error.", status=status, code=code,
                              outcome_unknown=write)
    return PsaValidationError(message or f"ConnectWise refused the request (HTTP {status}).", status=status,
                              code=code, fields=fields)


def translate_transport(exc: httpx.HTTPError, method: str) -> PsaError:
    """The PsaError for a request that got no HTTP answer."""
    write = method.upper() != "GET"
    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout):
        return PsaUnavailable("Could not connect to ConnectWise.")  # nothing was sent
    if isinstance(exc, httpx.TimeoutException):
        return PsaTimeout("ConnectWise did not answer in time.", outcome_unknown=write)
    if isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError | httpx.WriteError):
        return PsaTimeout("The connection to ConnectWise dropped before it answered.", outcome_unknown=write)
    return PsaUnavailable(f"ConnectWise request failed ({type(exc).__name__}).", outcome_unknown=write)


class CwClient:
    """Requests against `/{codebase}apis/3.0/` of one tenant, with the codebase cached."""

    def __init__(self, tenant: CwTenant, auth: httpx.Auth, *, transport: httpx.AsyncBaseTransport | None = None,
                 timeout: float | None = None) -> None:
        self.tenant = tenant
        self.codebase: str | None = tenant.codebase
        self._fixed = tenant.codebase is not None
        self._lock = asyncio.Lock()
        self.company_info: Mapping[str, Any] | None = None
        self.link_headers_seen = False  # once the server has sent Link headers, their absence means "last page"
        self.http = make_client(tenant.api_root, headers=api_headers(tenant), auth=auth, transport=transport,
                                timeout=timeout)
        # No credentials on this one: companyinfo and callback signing keys are public.
        self.public = make_client(tenant.site_root, headers={"Accept": "application/json"}, transport=transport,
                                  timeout=timeout)

    async def aclose(self) -> None:
        await self.http.aclose()
        await self.public.aclose()

    async def company_info_raw(self) -> Any:
        """GET {site}/login/companyinfo/{companyId} (null for an unknown company)."""
        try:
            resp = await self.public.get(f"/login/companyinfo/{self.tenant.company_id}")
        except httpx.HTTPError as exc:
            raise translate_transport(exc, "GET") from None
        if resp.status_code >= 400:
            raise translate_response(resp, "GET")
        try:
            return resp.json()
        except ValueError:
            raise PsaUnavailable("ConnectWise answered companyinfo with something that is not JSON.") from None

    async def discover(self, *, force: bool = False) -> str:
        """The tenant's codebase (cached; `force` re-reads companyinfo)."""
        if self._fixed:
            assert self.codebase is not None
            return self.codebase
        async with self._lock:
            if self.codebase is not None and not force:
                return self.codebase
            data = await self.company_info_raw()
            codebase = codebase_from_companyinfo(data)
            if codebase is None:
                raise PsaAuthError(f"ConnectWise does not know the company id '{self.tenant.company_id}'.",
                                   code="UnknownCompany")
            if self.codebase is not None and codebase != self.codebase:
                log.info("connectwise codebase changed", extra={"old": self.codebase, "new": codebase})
            self.company_info, self.codebase = data, codebase
            return codebase

    async def request(self, method: str, path: str, *, params: Mapping[str, Any] | None = None,
                      json: Any = None, files: Any = None, data: Any = None,
                      extra_headers: Mapping[str, str] | None = None) -> httpx.Response:
        """Send one request to `apis/3.0/<path>`; returns the 2xx response or raises a PsaError."""
        codebase = await self.discover()
        for attempt in (1, 2):
            resp = await self._send(method, f"/{codebase}apis/3.0/{path.lstrip('/')}", params=params, json=json,
                                    files=files, data=data, headers=extra_headers)
            if resp.status_code == 404 and attempt == 1 and not self._fixed:
                fresh = await self.discover(force=True)
                if fresh != codebase:
                    codebase = fresh
                    continue  # the codebase moved (tenant upgraded): the old path 404ed, nothing applied
            if resp.status_code >= 400:
                raise translate_response(resp, method)
            return resp
        raise AssertionError("unreachable")  # pragma: no cover

    async def _send(self, method: str, url: str, **kw: Any) -> httpx.Response:
        for attempt in (1, 2):
            try:
                return await self.http.request(method, url, **kw)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                if method == "GET" and attempt == 1:
                    await asyncio.sleep(0.2)
                    continue
                raise translate_transport(exc, method) from None
            except httpx.HTTPError as exc:
                raise translate_transport(exc, method) from None
        raise AssertionError("unreachable")  # pragma: no cover

    async def json(self, method: str, path: str, **kw: Any) -> tuple[Any, httpx.Response]:
        """`request` plus the parsed JSON body (garbled JSON -> PsaUnavailable)."""
        resp = await self.request(method, path, **kw)
        if resp.status_code == 204 or not resp.content:
            return None, resp
        try:
            return resp.json(), resp
        except ValueError:
            raise PsaUnavailable("ConnectWise answered with something that is not JSON.",
                                 outcome_unknown=method.upper() != "GET") from None

    async def get_list(self, path: str, params: Mapping[str, Any]) -> tuple[list[Any], bool]:
        """One page of a list: (rows, has_next) from the Link header (or a full page when absent)."""
        data, resp = await self.json("GET", path, params=params)
        if not isinstance(data, list):
            raise PsaUnavailable("ConnectWise answered a list request with something that is not a list.")
        link = resp.headers.get("link")
        if link is not None and link.strip():
            self.link_headers_seen = True
            has_next = 'rel="next"' in link
        elif self.link_headers_seen:
            has_next = False  # a one-page answer carries no Link header
        else:
            has_next = len(data) >= int(params.get("pageSize", 25))  # no Link support seen: a full page may go on
        return data, has_next

    async def get_all(self, path: str, params: Mapping[str, Any], *, page_size: int = 1000,
                      max_pages: int = 1000) -> list[Any]:
        """Every row of a (small) list: page by page, every parameter sent on every page."""
        rows: list[Any] = []
        for page in range(1, max_pages + 1):
            chunk, has_next = await self.get_list(path, {**params, "pageSize": page_size, "page": page})
            rows.extend(chunk)
            if not has_next:
                break
        return rows
