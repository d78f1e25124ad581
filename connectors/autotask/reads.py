"""Reading tickets and their children from Autotask with as few calls as the API allows (reference §3.2).

Autotask sorts query results by id only, at most 500 a call. Changed tickets are read by `TicketScan`:
one scan of every ticket changed at or after `since` (`lastActivityDate` or `lastTrackedModificationDate
Time`, 500 a call, `IncludeFields` = what we store), sorted by (change time, id) and served in pages of the
connector's page size. The cursor is the (change time, id) of the last ticket served, so a cursor outlives
the scan held in memory: a new process scans again from that position and drops what was served.

Children (notes, time entries, attachments) of the tickets of the last page are fetched together on first
need: one `ticketID in [...]` query per kind for the whole page instead of three calls per ticket.
"""

from __future__ import annotations

import asyncio
import base64
import bisect
import json
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from connectors.autotask import query as aq
from connectors.autotask.client import AtClient
from connectors.autotask.mapping import parse_dt, ticket_changed_at
from connectors.errors import PsaValidationError

TICKET_FIELDS = ["id", "ticketNumber", "title", "description", "companyID", "contactID", "queueID", "status",
                 "priority", "ticketType", "issueType", "subIssueType", "assignedResourceID", "source", "createDate",
                 "lastActivityDate", "lastTrackedModificationDateTime", "completedDate", "firstResponseDueDateTime",
                 "resolvedDueDateTime", "firstResponseDateTime", "externalID", "rmmAlertID", "configurationItemID"]
CHILDREN: dict[str, tuple[str, str]] = {"notes": ("TicketNotes", "ticketID"), "time": ("TimeEntries", "ticketID"),
                                        "attachments": ("TicketAttachments", "parentID")}
ATTACHMENT_FIELDS = ["id", "parentID", "fullPath", "title", "fileSize", "contentType", "attachDate", "publish",
                     "attachedByResourceID"]
BATCH_TTL = 120.0  # seconds a page's prefetched children stay usable
MAX_IN = 500

Key = tuple[datetime, int]


def encode(state: Mapping[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(state, separators=(",", ":")).encode()).decode().rstrip("=")


def decode(cursor: str) -> dict[str, Any]:
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise PsaValidationError("The page cursor is not one this connector made.", fields={"cursor": "invalid"})
    return data


def changed_filters(since: datetime | None) -> list[aq.Condition]:
    if since is None:
        return []
    return [aq.or_(aq.gte("lastActivityDate", since), aq.gte("lastTrackedModificationDateTime", since))]


def sort_key(row: Mapping[str, Any]) -> Key:
    stamp = ticket_changed_at(row) or datetime.min.replace(tzinfo=UTC)
    return stamp, int(row["id"])


class TicketScan:
    """Changed tickets in (change time, id) order, from one in-memory scan per `since`."""

    def __init__(self, client: AtClient, include: Sequence[str]) -> None:
        self.client, self.include = client, list(include)
        self._key: str | None = None
        self._rows: list[dict[str, Any]] = []
        self._keys: list[Key] = []
        self.scans = 0

    async def _load(self, key: str, since: datetime | None) -> None:
        rows = await self.client.query_all("Tickets", changed_filters(since), include_fields=self.include)
        rows.sort(key=sort_key)
        self._key, self._rows, self._keys = key, rows, [sort_key(r) for r in rows]
        self.scans += 1

    async def page(self, since: datetime | None, cursor: str | None, size: int
                   ) -> tuple[list[dict[str, Any]], str | None]:
        state: dict[str, Any] = decode(cursor) if cursor else {"s": aq.format_dt(since) if since else None}
        key = str(state.get("s"))
        after: Key | None = None
        if state.get("t") is not None:
            stamp = parse_dt(state["t"])
            if stamp is None or not str(state.get("k", "")).isdigit():
                raise PsaValidationError("The page cursor is not one this connector made.", fields={"cursor": "invalid"})
            after = (stamp, int(state["k"]))
        if self._key != key or not cursor:
            # a first page always scans afresh; a later one scans again from its position if this process lost it
            start = after[0] if after else parse_dt(state.get("s"))
            await self._load(key, start)
        at = bisect.bisect_right(self._keys, after) if after else 0
        rows = self._rows[at:at + size]
        if at + size >= len(self._rows):
            self._key, self._rows, self._keys = None, [], []  # served to the end: let it go
            return rows, None
        last = sort_key(rows[-1])
        return rows, encode({"s": state.get("s"), "t": aq.format_dt(last[0]), "k": last[1]})


class ChildBatch:
    """The children of one page's tickets, fetched per kind on first need (and forgotten when written to)."""

    def __init__(self, client: AtClient, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.client, self.clock = client, clock
        self.ids: set[str] = set()
        self.at = 0.0
        self.tasks: dict[str, asyncio.Task[dict[str, list[dict[str, Any]]]]] = {}
        self.batch_queries = 0

    def reset(self, ids: Sequence[str]) -> None:
        self.ids, self.at, self.tasks = set(ids), self.clock(), {}

    def forget(self, ticket_id: str) -> None:
        self.ids.discard(ticket_id)

    async def rows(self, kind: str, ticket_id: str) -> list[dict[str, Any]]:
        """The ticket's child rows of `kind` (from the page's batch when it is in one, else its own query)."""
        if ticket_id in self.ids and self.clock() - self.at <= BATCH_TTL:
            task = self.tasks.get(kind)
            if task is None or (task.done() and task.exception() is not None):
                task = self.tasks[kind] = asyncio.ensure_future(self._fetch(kind, sorted(self.ids, key=int)))
            grouped = await asyncio.shield(task)
            return grouped.get(ticket_id, [])
        return (await self._fetch(kind, [ticket_id])).get(ticket_id, [])

    async def _fetch(self, kind: str, ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
        entity, link = CHILDREN[kind]
        grouped: dict[str, list[dict[str, Any]]] = {i: [] for i in ids}
        for start in range(0, len(ids), MAX_IN):
            chunk = [int(i) for i in ids[start:start + MAX_IN]]
            cond = aq.eq(link, chunk[0]) if len(chunk) == 1 else aq.in_(link, chunk)
            if len(chunk) > 1:
                self.batch_queries += 1
            include = ATTACHMENT_FIELDS if kind == "attachments" else None  # never the files' data
            for row in await self.client.query_all(entity, [cond], include_fields=include):
                grouped.setdefault(str(row.get(link)), []).append(row)
        for rows in grouped.values():
            rows.sort(key=lambda r: int(r["id"]))
        return grouped
