"""What a HaloPSA connector learns from its tenant and keeps for a while: the API agent (Agent/me), the
closed statuses, the outcome ids notes and time are written with, and the picklists (ticket types as
boards, statuses per type, priorities). Reads go through HaloClient; mapping is in mapping.py.

Outcome ids are tenant data and the API agent must be allowed to use them ("You do not have access to this
Action at the moment", CIPP PR #106). The settings `public_outcome_id`, `internal_outcome_id`,
`time_outcome_id` (optional `resolution_outcome_id`) choose them; a missing one is looked up once by the
stock outcome names below, and when that fails the error names the setting to set.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from connectors.base import Picklists, PsaStatus
from connectors.errors import PsaError, PsaValidationError
from connectors.halopsa import categories as cats
from connectors.halopsa import mapping as m
from connectors.halopsa import queries
from connectors.halopsa.client import AGENT, CATEGORY, OUTCOME, PRIORITY, STATUS, TICKET_TYPE, HaloClient

TTL = 600.0  # seconds a learned lookup (closed statuses, outcomes) is trusted before it is read again
OUTCOME_SETTINGS = {"public": "public_outcome_id", "internal": "internal_outcome_id", "time": "time_outcome_id",
                    "resolution": "resolution_outcome_id"}
STOCK_NAMES = {"public": ("public note", "note", "update"), "internal": ("internal note", "private note"),
               "time": ("time entry", "time", "internal note", "private note"), "resolution": ()}


@dataclass(frozen=True, slots=True)
class TypeInfo:
    """One ticket type's details: the statuses allowed on it and what a new ticket of it must carry."""

    statuses: tuple[PsaStatus, ...]
    required: frozenset[str]
    default_sla: str | None


class TenantData:
    """Lookups of one tenant, cached with a TTL (single-flight per lookup)."""

    def __init__(self, client: HaloClient, settings: Mapping[str, Any], *, clock: Callable[[], float] = time.time
                 ) -> None:
        self.client = client
        self.clock = clock
        self.outcome_settings: dict[str, int | None] = {k: _opt_int(settings.get(v), v)
                                                        for k, v in OUTCOME_SETTINGS.items()}
        self._agent: dict[str, Any] | None = None
        self._closed: tuple[float, frozenset[str]] | None = None
        self._outcomes: dict[str, int] | None = None
        self._categories: tuple[float, list[str]] | None = None
        self._lock = asyncio.Lock()

    async def api_agent(self) -> dict[str, Any]:
        """The agent the API application acts as (GET Agent/me), once per connector."""
        if self._agent is None:
            self._agent = await self.client.get_record(AGENT, "me")
        return self._agent

    async def api_agent_id(self) -> str | None:
        """The API agent's id, the author of every write made without `who_agentid`."""
        agent = await self.api_agent()
        return str(agent["id"]) if agent.get("id") else None

    async def closed_ids(self, *, fresh: bool = False) -> frozenset[str]:
        """Closed ticket statuses: listed by Status but not by Status?excludeclosed=true."""
        async with self._lock:
            if not fresh and self._closed is not None and self.clock() - self._closed[0] < TTL:
                return self._closed[1]
            every = await self.client.get_list(STATUS, queries.statuses())
            still_open = await self.client.get_list(STATUS, queries.statuses(exclude_closed=True))
            closed = m.closed_status_ids(m.ticket_statuses(every), m.ticket_statuses(still_open))
            self._closed = (self.clock(), closed)
            return closed

    async def outcome(self, use: str) -> tuple[int, str]:
        """(outcome id, the setting that chose it) for "public", "internal", "time" or "resolution"."""
        setting = OUTCOME_SETTINGS[use]
        chosen = self.outcome_settings.get(use)
        if chosen is not None:
            return chosen, setting
        if use == "resolution":
            return await self.outcome("public")
        if self._outcomes is None:
            rows = await self.client.get_list(OUTCOME)
            self._outcomes = {str(r.get("outcome") or "").strip().lower(): int(r["id"]) for r in rows if r.get("id")}
        for name in STOCK_NAMES[use]:
            if name in self._outcomes:
                return self._outcomes[name], setting
        raise PsaValidationError(
            f"No HaloPSA outcome (action type) for {use} writes: set {setting} to the id of one the API agent may use.",
            fields={setting: "required"})

    async def outcomes(self) -> dict[str, int]:
        """Every outcome this connection writes with (check_credentials shows them)."""
        return {use: (await self.outcome(use))[0] for use in ("public", "internal", "time")}

    async def ticket_type(self, type_id: str, statuses: list[Mapping[str, Any]], closed: frozenset[str]) -> TypeInfo:
        """A ticket type's allowed statuses, required fields and SLA (GET TicketType/{id}?includedetails)."""
        detail = await self.client.get_record(TICKET_TYPE, int(type_id), queries.ticket_type())
        sla = detail.get("default_sla") or detail.get("sla_id")
        return TypeInfo(tuple(m.statuses_for_type(detail, statuses, closed)), m.required_fields(detail),
                        str(sla) if sla else None)

    async def picklists(self) -> tuple[Picklists, dict[str, TypeInfo]]:
        """Boards (= ticket types), their statuses, priorities and types; plus each type's details."""
        closed = await self.closed_ids(fresh=True)
        statuses = m.ticket_statuses(await self.client.get_list(STATUS, queries.statuses()))
        types = [t for t in await self.client.get_list(TICKET_TYPE, queries.ticket_types()) if t.get("id")]
        infos = {str(t["id"]): await self.ticket_type(str(t["id"]), statuses, closed) for t in types}
        priorities = m.priorities(await self.client.get_list(PRIORITY, queries.priorities()))
        problems: dict[str, str] = {}
        complete = {"board", "status", "priority", "type", "category"}
        try:
            known = await self.category_values(fresh=True)
        except PsaError as e:  # e.g. an API application without read:lookups: keep the last good categories
            known, problems["category"] = [], str(e)
            complete.discard("category")
        choices = await self._field_choices(infos.values(), problems)
        if not any(k.startswith("field_value:") for k in problems):
            complete.add("field_value")
        return Picklists(boards=[m.board(t, infos[str(t["id"])].required) for t in types],
                         statuses=[s for info in infos.values() for s in info.statuses],
                         priorities=priorities, types=[m.ticket_type(t) for t in types],
                         categories=cats.picklist(known), field_choices=choices, problems=problems,
                         complete=frozenset(complete)), infos

    async def _field_choices(self, infos: Iterable[TypeInfo], problems: dict[str, str]) -> dict[str, list[str]]:
        """The values Halo lists for each other category field (category_2..4) a ticket type makes mandatory
        (GET /Category?type_id=N): the create form offers them and core sends no other."""
        out: dict[str, list[str]] = {}
        for name in sorted({f for info in infos for f in info.required}):
            field = cats.other_field(name)
            if field is None:
                continue
            try:
                out[name] = cats.values(await self.client.get_list(CATEGORY, queries.categories(field)), field)
            except PsaError as e:  # keep the last good values of this field
                problems[f"field_value:{name}"] = str(e)
        return out

    async def category_values(self, *, fresh: bool = False) -> list[str]:
        """The tenant's `category_1` values (GET /Category?type_id=1, a bare array), cached for TTL."""
        now = self.clock()
        if fresh or self._categories is None or now - self._categories[0] > TTL:
            rows = await self.client.get_list(CATEGORY, queries.categories(cats.CATEGORY_FIELD))
            self._categories = (now, cats.values(rows))
        return self._categories[1]


def _opt_int(value: Any, name: str) -> int | None:
    if value in (None, ""):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise PsaValidationError(f"{name} must be a HaloPSA outcome id (a number).", fields={name: "not a number"}) from None
