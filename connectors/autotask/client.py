"""The HTTP client of one Autotask database: zone-aware requests, keyset-paged queries, error translation.

Error translation happens here and only here (reference/psa-apis.md §3.10, gotchas 19, 21, 22, 28):

    401                        -> ask the ZoneDirectory once; if the zone moved, re-send once (nothing was
                                  applied), else PsaAuthError (never retried: repeated 401s can lock the user)
    403                        -> PsaForbidden
    404                        -> PsaNotFound (also a GET query whose URL was too long: we always POST)
    405 / 400 / 409 / 422      -> PsaValidationError
    413                        -> PsaTooLarge
    429                        -> PsaRateLimited(retry_after from Retry-After): hourly threshold or thread limit
    500 with {"errors": [...]} -> by message: permissions -> PsaAuthError; "Itgenatr005"/thread or request
                                  threshold -> PsaRateLimited; "No matching records found" -> PsaNotFound;
                                  "exceeds the maximum file size" -> PsaTooLarge; a refusal (required, does
                                  not reference, invalid, must, ...) -> PsaValidationError with `fields` named
                                  from the message and the body; anything else -> PsaUnavailable
    other 5xx, 500 without errors, garbled JSON -> PsaUnavailable (outcome_unknown for writes)
    200 {"item": null}         -> PsaNotFound (Autotask's answer for a missing id)
    connect error / pool timeout -> PsaUnavailable (nothing sent; reads retry once first)
    read/write timeout, dropped connection -> PsaTimeout (outcome_unknown for writes)

Queries are reads although they are POSTs: their failures never set outcome_unknown. Writes are never
retried here (the outbox owns that). Message texts of Autotask's refusals are [unverified] beyond the
reported examples; unknown ones fall to PsaUnavailable, which is retryable and so never loses a write.
Messages and logs never carry the Secret, headers or bodies.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from connectors.autotask import query as aq
from connectors.autotask.auth import (
    DISCOVERY_URL,
    AtCredentials,
    Zone,
    ZoneDirectory,
    ZoneListener,
    api_headers,
    write_headers,
)
from connectors.autotask.limits import Throttle
from connectors.autotask.problems import (  # noqa: F401 - re-exported: the client's error table
    error_messages,
    fields_named,
    translate_response,
    translate_transport,
)
from connectors.errors import (
    PsaNotFound,
    PsaRateLimited,
    PsaUnavailable,
    PsaValidationError,
)
from connectors.http import make_client

log = logging.getLogger("deskbridge.psa.autotask")

THRESHOLD = "ThresholdInformation"
THREAD_RETRIES, THREAD_WAIT = 3, 0.2  # a read refused by the thread limit waits for a slot (seconds, growing)
PER_ENDPOINT = 3  # Autotask: 3 concurrent requests per object endpoint and tracking identifier
@dataclass(frozen=True, slots=True)
class QueryPage:
    """One keyset page: `last_id` to pass as `after_id` next; `done` when the page was not full."""

    items: list[dict[str, Any]]
    last_id: int | None
    done: bool


@dataclass(frozen=True, slots=True)
class Threshold:
    """ThresholdInformation: requests used of the database's budget in the current window."""

    limit: int
    window_minutes: int
    used: int

    @property
    def share(self) -> float:
        return self.used / self.limit if self.limit else 0.0


class AtClient:
    """Requests against one Autotask database at its zone's `…/v1.0/`, at most 3 at a time per endpoint."""

    def __init__(self, creds: AtCredentials, *, transport: httpx.AsyncBaseTransport | None = None,
                 timeout: float | None = None, discovery_url: str = DISCOVERY_URL, zone_url: str | None = None,
                 zones: ZoneDirectory | None = None, per_endpoint: int = PER_ENDPOINT,
                 on_zone_change: ZoneListener | None = None, throttle: Throttle | None = None) -> None:
        self.creds = creds
        self.throttle = throttle  # the database's budget, shared with every connector of it in this process
        fixed = Zone(url=zone_url if zone_url.endswith("/") else zone_url + "/") if zone_url else None
        self._owns_zones = zones is None  # a directory handed in may be shared: its owner closes it
        self.zones = zones or ZoneDirectory(creds.username, discovery_url=discovery_url, transport=transport,
                                            timeout=timeout, fixed=fixed, on_change=on_zone_change)
        self.http = make_client(discovery_url, headers=api_headers(creds), transport=transport, timeout=timeout)
        self.per_endpoint = per_endpoint
        self._gates: dict[str, asyncio.Semaphore] = {}
        self.server_time: datetime | None = None  # from the last answer's Date header (for "created since" windows)

    def __repr__(self) -> str:
        return f"AtClient(user={self.creds.username!r})"

    async def aclose(self) -> None:
        await self.http.aclose()
        if self._owns_zones:
            await self.zones.aclose()

    def _gate(self, path: str) -> asyncio.Semaphore:
        entity = path.lstrip("/").split("/", 1)[0].split("?", 1)[0].lower()
        if self.throttle is not None:
            return self.throttle.gate(entity, self.per_endpoint)
        gate = self._gates.get(entity)
        if gate is None:
            gate = self._gates[entity] = asyncio.Semaphore(self.per_endpoint)
        return gate

    async def request(self, method: str, path: str, *, json: Any = None, write: bool = False,
                      impersonate: str | None = None) -> httpx.Response:
        """Send one request to `{zone}/v1.0/<path>`; the 2xx response, or a PsaError."""
        zone = await self.zones.zone()
        headers = write_headers(self.creds, impersonate) if write else {}
        keys = list(json) if isinstance(json, Mapping) else []
        if self.throttle is not None and path != THRESHOLD and self.throttle.needs_reading():
            await self.refresh_reading()
        moved_once, thread_retries = False, 0
        while True:
            if self.throttle is not None:
                await self.throttle.spend(write=write)
            async with self._gate(path):
                resp = await self._send(method, zone.api_base + path.lstrip("/"), json=json, headers=headers,
                                        write=write)
            if resp.status_code == 401 and not moved_once:
                moved_once = True
                moved = await self.zones.rediscover(zone)
                if moved is not None:
                    zone = moved
                    continue  # the database moved: the old zone refused before doing anything
            self._note_date(resp)
            if resp.status_code < 400:
                return resp
            error = translate_response(resp, write=write, body_keys=keys)
            if isinstance(error, PsaRateLimited) and error.code == "ThreadLimit":
                if not write and thread_retries < THREAD_RETRIES:  # refused before doing anything: a read waits
                    thread_retries += 1
                    await asyncio.sleep(THREAD_WAIT * thread_retries)
                    continue
            elif isinstance(error, PsaRateLimited) and self.throttle is not None:
                # the database's threshold: nothing goes to it until Retry-After has passed (60 s when unsaid)
                self.throttle.cool_down(error.retry_after)
            log.info("autotask refused", extra={"method": method, "entity": path.split("/", 1)[0],
                                                "status": resp.status_code, "error": type(error).__name__})
            raise error

    def _note_date(self, resp: httpx.Response) -> None:
        try:
            when = parsedate_to_datetime(resp.headers.get("date", ""))
        except (TypeError, ValueError):
            return
        self.server_time = when.astimezone(UTC) if when.tzinfo else when.replace(tzinfo=UTC)

    async def _send(self, method: str, url: str, *, json: Any, headers: dict[str, str], write: bool
                    ) -> httpx.Response:
        for attempt in (1, 2):
            try:
                return await self.http.request(method, url, json=json, headers=headers)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                if not write and attempt == 1:
                    await asyncio.sleep(0.2)
                    continue
                raise translate_transport(exc, write=write) from None
            except httpx.HTTPError as exc:
                raise translate_transport(exc, write=write) from None
        raise AssertionError("unreachable")  # pragma: no cover

    async def json(self, method: str, path: str, *, body: Any = None, write: bool = False,
                   impersonate: str | None = None) -> Any:
        """`request` plus the parsed JSON body (garbled JSON -> PsaUnavailable)."""
        resp = await self.request(method, path, json=body, write=write, impersonate=impersonate)
        if not resp.content:
            return None
        try:
            return resp.json()
        except ValueError:
            raise PsaUnavailable("Autotask answered with something that is not JSON.", outcome_unknown=write) from None

    # ------------------------------------------------------------ reads

    async def get_item(self, path: str) -> dict[str, Any]:
        """GET `{Entity}/{id}` (or a child path): the item; PsaNotFound for Autotask's `{"item": null}`."""
        data = await self.json("GET", path)
        item = data.get("item") if isinstance(data, Mapping) else None
        if not isinstance(item, dict):
            raise PsaNotFound(f"Autotask has no record at {path.split('?', 1)[0]}.", code="ItemNull")
        return item

    async def get_items(self, path: str) -> list[dict[str, Any]]:
        """GET a child list (`Tickets/{id}/Notes`): its `items`."""
        data = await self.json("GET", path)
        items = data.get("items") if isinstance(data, Mapping) else None
        if not isinstance(items, list):
            raise PsaUnavailable("Autotask answered a list request without items.")
        return [i for i in items if isinstance(i, dict)]

    async def query_page(self, entity: str, filters: Sequence[aq.Condition] = (), *, after_id: int | None = None,
                         page_size: int = aq.MAX_RECORDS, include_fields: Sequence[str] | None = None) -> QueryPage:
        """One page of `POST {entity}/query`, ids above `after_id`, at most 500 (sorted by id)."""
        body = aq.body(filters, after_id=after_id, max_records=page_size, include_fields=include_fields)
        data = await self.json("POST", f"{entity}/query", body=body)
        items = data.get("items") if isinstance(data, Mapping) else None
        if not isinstance(items, list):
            raise PsaUnavailable("Autotask answered a query without items.")
        rows = [i for i in items if isinstance(i, dict)]
        ids = [i["id"] for i in rows if isinstance(i.get("id"), int)]
        if len(ids) != len(rows):
            raise PsaUnavailable("Autotask answered a query with items that have no id.")
        last = max(ids) if ids else after_id
        return QueryPage(rows, last, done=len(rows) < body["MaxRecords"])

    async def query_all(self, entity: str, filters: Sequence[aq.Condition] = (), *,
                        page_size: int = aq.MAX_RECORDS, include_fields: Sequence[str] | None = None,
                        max_pages: int = 10_000) -> list[dict[str, Any]]:
        """Every match: page after page by `id > last seen` until a page is not full."""
        rows: list[dict[str, Any]] = []
        after: int | None = None
        for _ in range(max_pages):
            page = await self.query_page(entity, filters, after_id=after, page_size=page_size,
                                         include_fields=include_fields)
            rows.extend(page.items)
            if page.done:
                return rows
            if page.last_id is None or (after is not None and page.last_id <= after):
                raise PsaUnavailable("Autotask's paging did not advance.")
            after = page.last_id
        raise PsaUnavailable(f"Autotask query on {entity} did not end within {max_pages} pages.")

    async def count(self, entity: str, filters: Sequence[aq.Condition] = ()) -> int:
        """`POST {entity}/query/count`."""
        data = await self.json("POST", f"{entity}/query/count", body={"filter": list(filters) or [aq.gte("id", 0)]})
        value = data.get("queryCount") if isinstance(data, Mapping) else None
        if not isinstance(value, int):
            raise PsaUnavailable("Autotask answered a count without queryCount.")
        return value

    async def entity_information(self, entity: str) -> dict[str, Any]:
        data = await self.json("GET", f"{entity}/entityInformation")
        return dict(data.get("info") or {}) if isinstance(data, Mapping) else {}

    async def entity_fields(self, entity: str) -> list[dict[str, Any]]:
        """`{entity}/entityInformation/fields`: field metadata with picklist values."""
        data = await self.json("GET", f"{entity}/entityInformation/fields")
        fields = data.get("fields") if isinstance(data, Mapping) else None
        return [f for f in fields if isinstance(f, dict)] if isinstance(fields, list) else []

    async def udf_fields(self, entity: str) -> list[dict[str, Any]]:
        """`{entity}/entityInformation/userDefinedFields`: the tenant's UDF definitions."""
        data = await self.json("GET", f"{entity}/entityInformation/userDefinedFields")
        fields = data.get("fields") if isinstance(data, Mapping) else None
        return [f for f in fields if isinstance(f, dict)] if isinstance(fields, list) else []

    async def refresh_reading(self) -> None:
        """Read the tenant's usage into the throttle (once for concurrent callers)."""
        throttle = self.throttle
        assert throttle is not None
        async with throttle.reading_lock:
            if not throttle.needs_reading():
                return
            try:
                t = await self.threshold()
            except (PsaValidationError, PsaNotFound):  # not offered here: count our own log, look again later
                throttle.record_reading(10_000, 0)
                return
            throttle.record_reading(t.limit or 10_000, t.used)

    async def threshold(self) -> Threshold:
        """ThresholdInformation (this call counts against the budget too)."""
        data = await self.json("GET", THRESHOLD)
        if not isinstance(data, Mapping):
            raise PsaUnavailable("Autotask answered ThresholdInformation with something unexpected.")
        return Threshold(limit=int(data.get("externalRequestThreshold") or 0),
                         window_minutes=int(data.get("requestThresholdTimeframe") or 0),
                         used=int(data.get("currentTimeframeRequestCount") or 0))

    async def download_attachment(self, ticket_id: int, attachment_id: int) -> tuple[dict[str, Any], bytes]:
        """GET `Tickets/{id}/Attachments/{id}` (answered in the query shape): (metadata, content)."""
        items = await self.get_items(f"Tickets/{ticket_id}/Attachments/{attachment_id}")
        if not items:
            raise PsaNotFound(f"Autotask has no attachment {attachment_id} on ticket {ticket_id}.")
        meta = dict(items[0])
        raw = meta.pop("data", None) or ""
        try:
            return meta, base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError):
            raise PsaUnavailable("Autotask sent attachment data that is not base64.") from None

    # ------------------------------------------------------------ writes

    async def create(self, path: str, body: Mapping[str, Any], *, impersonate: str | None = None) -> int:
        """POST a new record (`Tickets`, `Tickets/{id}/Notes`, …): its `itemId`."""
        return self._item_id(await self.json("POST", path, body=dict(body), write=True, impersonate=impersonate))

    async def update(self, path: str, body: Mapping[str, Any], *, impersonate: str | None = None) -> int:
        """PATCH a record (its `id` in the body): its `itemId`."""
        if not isinstance(body.get("id"), int):
            raise PsaValidationError("An Autotask update needs the record's id in the body.", fields={"id": "required"})
        return self._item_id(await self.json("PATCH", path, body=dict(body), write=True, impersonate=impersonate))

    async def delete(self, path: str) -> None:
        await self.request("DELETE", path, write=True)

    @staticmethod
    def _item_id(data: Any) -> int:
        item_id = data.get("itemId") if isinstance(data, Mapping) else None
        if isinstance(item_id, bool) or not isinstance(item_id, int):
            raise PsaUnavailable("Autotask accepted a write but sent no itemId.", outcome_unknown=True)
        return item_id
