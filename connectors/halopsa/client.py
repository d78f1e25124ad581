"""The HTTP client of one HaloPSA tenant: bearer auth, named-parameter paging, and error translation.

Error translation happens here and only here (reference/psa-apis.md §4.10; bodies parsed by problems.py):

    2xx with a body that is not JSON          -> PsaUnavailable (outcome_unknown for writes)
    400 / 409 / 422 (any of Halo's body shapes) -> PsaValidationError(fields from problem-details `errors`)
    401                                        -> one new token (auth.token_after_401), resend once;
                                                  a second 401 -> PsaAuthError
    403                                        -> PsaForbidden (the API agent lacks the permission)
    404                                        -> PsaNotFound
    413                                        -> PsaTooLarge
    429                                        -> PsaRateLimited(retry_after from Retry-After, else 60 s:
                                                  hosted Halo counts 300 requests per rolling 5 minutes)
    5xx                                        -> PsaUnavailable (outcome_unknown for writes)
    connect error / pool timeout               -> PsaUnavailable (nothing sent; GETs retry once first)
    read/write timeout, dropped connection     -> PsaTimeout (outcome_unknown for writes)

Writes are never retried here (the outbox owns that); the one re-send after a 401 is safe because Halo
rejected the request before applying it. Messages never carry tokens, secrets, headers or query strings.

Paging (gotchas 30 and §4.2): `pageinate=true`, `page_size` ≤ 100 (larger asks are clamped here, since a
server clamping silently would make a full page look short), `page_no` from 1, every parameter sent on
every page. Halo answers a page past the end with the last page again, so a page stops the scan when it
is empty, short, repeats the previous page's first id, brings no id not seen before, or reaches
`record_count`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

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
from connectors.halopsa import problems
from connectors.halopsa.auth import HaloAuth, HaloTenant
from connectors.halopsa.budget import RequestBudget
from connectors.http import make_client, parse_retry_after

log = logging.getLogger("deskbridge.psa.halopsa")

MAX_PAGE_SIZE = 100
DEFAULT_RATE_LIMIT_WAIT = 60.0
LIST_KEYS = ("tickets", "actions", "attachments", "clients", "users", "results", "records")

# Resource paths under /api/ (names as in the vendor's OpenAPI; Halo matches them case-insensitively).
TICKETS, ACTIONS, ATTACHMENT, TIMESHEET_EVENT = "Tickets", "Actions", "Attachment", "TimesheetEvent"
CLIENT, USERS, AGENT, TEAM = "Client", "Users", "Agent", "Team"
STATUS, PRIORITY, TICKET_TYPE, OUTCOME = "Status", "Priority", "TicketType", "Outcome"
WEBHOOK, NOTIFICATION = "Webhook", "Notification"
CATEGORY = "Category"  # bare array of CategoryDetail (connectors/halopsa/categories.py)


def _is_write(method: str) -> bool:
    return method.upper() != "GET"


def translate_response(response: httpx.Response, method: str) -> PsaError:
    """The PsaError for a non-2xx Halo answer (a 401 here is final: the caller already refreshed)."""
    status = response.status_code
    p = problems.parse(response.content)
    if status == 401:
        return PsaAuthError(p.message or "HaloPSA rejected the API token.", status=status, code=p.code)
    if status == 403:  # the token works; its agent lacks this permission
        return PsaForbidden(p.message or "The Halo API application's agent is not allowed to do this.",
                            status=status, code=p.code)
    if status == 404:
        return PsaNotFound(p.message or "HaloPSA has no such record.", status=status, code=p.code)
    if status == 413:
        return PsaTooLarge(p.message or "HaloPSA refused the upload as too large.", status=status, code=p.code)
    if status == 429:
        header = parse_retry_after(response.headers.get("retry-after"))
        wait = header if header is not None else DEFAULT_RATE_LIMIT_WAIT
        return PsaRateLimited(p.message or "HaloPSA is throttling requests.", status=status, code=p.code,
                              retry_after=wait, details={"retry_after_source": "header" if header is not None
                                                         else "default"})
    if status >= 500:
        return PsaUnavailable(p.message or "HaloPSA had a server error.", status=status, code=p.code,
                              outcome_unknown=_is_write(method))
    return PsaValidationError(p.message or f"HaloPSA refused the request (HTTP {status}).", status=status,
                              code=p.code, fields=p.fields)


def translate_transport(exc: httpx.HTTPError, method: str) -> PsaError:
    """The PsaError for a request that got no HTTP answer."""
    write = _is_write(method)
    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout):
        return PsaUnavailable("Could not connect to HaloPSA.")  # nothing was sent
    if isinstance(exc, httpx.TimeoutException):
        return PsaTimeout("HaloPSA did not answer in time.", outcome_unknown=write)
    if isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError | httpx.WriteError):
        return PsaTimeout("The connection to HaloPSA dropped before it answered.", outcome_unknown=write)
    return PsaUnavailable(f"HaloPSA request failed ({type(exc).__name__}).", outcome_unknown=write)


def record_id(row: Mapping[str, Any]) -> str | None:
    """A row's id as a string (Halo ids are ints, webhook ids GUID strings)."""
    value = row.get("id")
    return None if value is None else str(value)


@dataclass(frozen=True, slots=True)
class HaloPage:
    """One page of a paged list, with the end-of-list decision already made."""

    rows: list[dict[str, Any]]
    page_no: int
    page_size: int  # what the server used (or what we asked, when it did not say)
    record_count: int | None
    repeated: bool = False  # the server sent the previous page again: we were past the end
    last: bool = False  # no page follows this one
    first_id: str | None = None


@dataclass(slots=True)
class PageScan:
    """State carried between pages of one scan (also what a connector cursor needs to keep)."""

    page_no: int = 1
    previous_first_id: str | None = None
    seen: set[str] = field(default_factory=set)
    done: bool = False


class HaloClient:
    """Requests against `{root}/api/` of one tenant, with the tenant's shared bearer token."""

    def __init__(self, tenant: HaloTenant, auth: HaloAuth, *, transport: httpx.AsyncBaseTransport | None = None,
                 timeout: float | None = None, budget: RequestBudget | None = None) -> None:
        self.tenant = tenant
        self.auth = auth
        self.budget = budget  # every request (and every re-send) takes a slot of the tenant's budget
        self.http = make_client(f"{tenant.root}/api/", headers={"Accept": "application/json"},
                                transport=transport, timeout=timeout)

    async def aclose(self) -> None:
        """Close the API client and the token provider."""
        await self.http.aclose()
        await self.auth.aclose()

    # ------------------------------------------------------------ requests

    async def request(self, method: str, path: str, *, params: Mapping[str, Any] | None = None,
                      json: Any = None) -> httpx.Response:
        """Send one request to `/api/<path>`; returns the 2xx response or raises a PsaError."""
        token = await self.auth.token()
        resp = await self._send(method, path, token, params=params, json=json)
        if resp.status_code == 401:  # expired or invalidated by a newer token: rejected, not applied
            token = await self.auth.token_after_401(token)
            resp = await self._send(method, path, token, params=params, json=json)
        if resp.status_code >= 400:
            raise translate_response(resp, method)
        return resp

    async def _send(self, method: str, path: str, token: str, **kw: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"}
        for attempt in (1, 2):
            if self.budget is not None:
                await self.budget.acquire()
            try:
                return await self.http.request(method, path.lstrip("/"), headers=headers, **kw)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                if method.upper() == "GET" and attempt == 1:
                    await asyncio.sleep(0.2)
                    continue
                raise translate_transport(exc, method) from None
            except httpx.HTTPError as exc:
                raise translate_transport(exc, method) from None
        raise AssertionError("unreachable")  # pragma: no cover

    async def json(self, method: str, path: str, **kw: Any) -> Any:
        """`request` plus the parsed JSON body (None for an empty body; garbled JSON -> PsaUnavailable)."""
        resp = await self.request(method, path, **kw)
        if resp.status_code == 204 or not resp.content.strip():
            return None
        try:
            return resp.json()
        except ValueError:
            raise PsaUnavailable("HaloPSA answered with something that is not JSON.",
                                 outcome_unknown=_is_write(method)) from None

    async def get(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        """GET `/api/<path>` and return its JSON."""
        return await self.json("GET", path, params=params)

    async def get_record(self, path: str, record: int | str, params: Mapping[str, Any] | None = None
                         ) -> dict[str, Any]:
        """GET `/api/<path>/<id>` as a dict (PsaNotFound when Halo says 404 or answers empty)."""
        data = await self.get(f"{path}/{record}", params)
        if not isinstance(data, dict) or not data:
            raise PsaNotFound(f"HaloPSA has no {path} record {record}.")
        return data

    async def post(self, path: str, records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """POST a JSON array (Halo's create-or-update: items with `id` update); the saved records."""
        data = await self.json("POST", path, json=[dict(r) for r in records])
        if isinstance(data, dict):
            return [data]  # one record posted: Halo answers with the object
        if isinstance(data, list) and all(isinstance(r, dict) for r in data):
            return data
        raise PsaUnavailable(f"HaloPSA answered a {path} write with something unexpected.", outcome_unknown=True)

    async def post_one(self, path: str, record: Mapping[str, Any]) -> dict[str, Any]:
        """POST one record (as a one-item array) and return the saved record."""
        saved = await self.post(path, [record])
        if len(saved) != 1:
            raise PsaUnavailable(f"HaloPSA answered a {path} write with {len(saved)} records.", outcome_unknown=True)
        return saved[0]

    async def delete(self, path: str, record: int | str, params: Mapping[str, Any] | None = None) -> None:
        """DELETE `/api/<path>/<id>`."""
        await self.request("DELETE", f"{path}/{record}", params=params)

    # ------------------------------------------------------------ lists

    @staticmethod
    def rows_of(data: Any, key: str | None = None) -> list[dict[str, Any]]:
        """The rows of a list answer: a bare array, or the array under `key` (or a known list key)."""
        if isinstance(data, list):
            return [r for r in data if isinstance(r, dict)]
        if isinstance(data, dict):
            for name in (key, *LIST_KEYS):
                if name and isinstance(data.get(name), list):
                    return [r for r in data[name] if isinstance(r, dict)]
            if "record_count" in data:
                return []  # an empty list answer may omit the list key
        raise PsaUnavailable("HaloPSA answered a list request with something that is not a list.")

    async def get_list(self, path: str, params: Mapping[str, Any] | None = None, *, key: str | None = None
                       ) -> list[dict[str, Any]]:
        """An unpaged list (lookups such as Status, Priority, Agent: a bare array in Halo's answer)."""
        return self.rows_of(await self.get(path, params), key)

    async def get_page(self, path: str, key: str, params: Mapping[str, Any], scan: PageScan, *,
                       page_size: int = MAX_PAGE_SIZE) -> HaloPage:
        """Fetch page `scan.page_no` of a paged list and advance `scan` (see the module docstring)."""
        size = max(1, min(int(page_size), MAX_PAGE_SIZE))
        query = {**params, "pageinate": "true", "page_size": size, "page_no": scan.page_no}
        data = await self.get(path, query)
        rows = self.rows_of(data, key)
        meta = data if isinstance(data, dict) else {}
        used = _int(meta.get("page_size")) or size
        count = _int(meta.get("record_count"))
        first = record_id(rows[0]) if rows else None
        ids = [i for i in (record_id(r) for r in rows) if i is not None]
        repeated = first is not None and first == scan.previous_first_id
        fresh = [i for i in ids if i not in scan.seen]
        if repeated or (rows and not fresh):
            page = HaloPage([], scan.page_no, used, count, repeated=True, last=True, first_id=first)
        else:
            scan.seen.update(ids)
            last = (not rows or len(rows) < used or len(rows) > used
                    or (count is not None and len(scan.seen) >= count))
            page = HaloPage(rows, scan.page_no, used, count, last=last, first_id=first)
        scan.previous_first_id = first
        scan.page_no += 1
        scan.done = page.last
        return page

    async def iter_pages(self, path: str, key: str, params: Mapping[str, Any] | None = None, *,
                         page_size: int = MAX_PAGE_SIZE, max_pages: int = 10_000) -> AsyncIterator[HaloPage]:
        """Every page of a paged list to the end, every parameter sent on every page."""
        scan = PageScan()
        for _ in range(max_pages):
            page = await self.get_page(path, key, params or {}, scan, page_size=page_size)
            if page.rows:
                yield page
            if page.last:
                return
        log.warning("halopsa paging stopped at the page cap", extra={"path": path, "max_pages": max_pages})

    async def get_all(self, path: str, key: str, params: Mapping[str, Any] | None = None, *,
                      page_size: int = MAX_PAGE_SIZE) -> list[dict[str, Any]]:
        """Every row of a paged list."""
        rows: list[dict[str, Any]] = []
        async for page in self.iter_pages(path, key, params, page_size=page_size):
            rows.extend(page.rows)
        return rows


def _int(value: Any) -> int | None:
    try:
        return int(value) if value is not None and value != "" else None
    except (TypeError, ValueError):
        return None
