"""Named query parameters for Halo's list endpoints (pure). Halo has no filter language: each list takes
its own fixed parameters (reference/psa-apis.md §4.2; names checked against the vendor's OpenAPI in the
tests). Booleans go out as `true`/`false`, lists as comma-separated ids, dates in `format_dt`'s form.
Paging parameters (`pageinate`, `page_size`, `page_no`) are added by HaloClient.get_page.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from connectors.halopsa.mapping import format_dt

Params = dict[str, Any]


def _bool(value: bool) -> str:
    return "true" if value else "false"


def _ids(values: Iterable[str | int]) -> str:
    return ",".join(str(int(v)) for v in values)


def tickets(*, updated_since: datetime | None = None, updated_until: datetime | None = None,
            client_id: str | None = None, open_only: bool = False, closed_only: bool = False,
            status_ids: Iterable[str] = (), ticket_type_id: str | None = None, agent_id: str | None = None,
            team_ids: Iterable[str] = (), ticket_ids: Iterable[str] = (), search: str | None = None,
            date_field: str | None = None, start: datetime | None = None, end: datetime | None = None,
            order: str | None = None, descending: bool = False) -> Params:
    """GET /Tickets parameters. `updated_since` is the incremental watermark (`lastupdatefromdate`);
    `date_field` (`dateoccured`, `datecleared`, …) with `start`/`end` searches another date."""
    params: Params = {}
    if updated_since is not None:
        params["lastupdatefromdate"] = format_dt(updated_since)
    if updated_until is not None:
        params["lastupdatetodate"] = format_dt(updated_until)
    if client_id:
        params["client_id"] = int(client_id)
    if open_only:
        params["open_only"] = _bool(True)
    if closed_only:
        params["closed_only"] = _bool(True)
    if status := _ids(status_ids):
        params["status"] = status
    if ticket_type_id:
        params["requesttype_id"] = int(ticket_type_id)
    if agent_id:
        params["agent_id"] = int(agent_id)
    if teams := _ids(team_ids):
        params["team"] = teams
    if ids := _ids(ticket_ids):
        params["ticketids"] = ids
    if search:
        params["search"] = search
    if date_field:
        params["datesearch"] = date_field
        if start is not None:
            params["startdate"] = format_dt(start)
        if end is not None:
            params["enddate"] = format_dt(end)
    if order:
        params["order"] = order
        params["orderdesc"] = _bool(descending)
    return params


def ticket(*, details: bool = True) -> Params:
    """GET /Tickets/{id} parameters (`includedetails` brings custom fields and the full record)."""
    return {"includedetails": _bool(details)}


def actions(ticket_id: str, *, since: datetime | None = None, until: datetime | None = None,
            agent_only: bool = False, exclude_private: bool = False, exclude_system: bool = True,
            time_only: bool = False, html: bool = False) -> Params:
    """GET /Actions parameters for one ticket's actions (ids are unique only within the ticket)."""
    params: Params = {"ticket_id": int(ticket_id)}
    if exclude_system:
        params["excludesys"] = _bool(True)
    if agent_only:
        params["agentonly"] = _bool(True)
    if exclude_private:
        params["excludeprivate"] = _bool(True)
    if time_only:
        params["timeentriesonly"] = _bool(True)
    if html:
        params["includehtmlnote"] = _bool(True)
    if since is not None:
        params["startdate"] = format_dt(since)
    if until is not None:
        params["enddate"] = format_dt(until)
    return params


def action(ticket_id: str) -> Params:
    """GET /Actions/{id} parameters: the ticket is required, action ids being per ticket."""
    return {"ticket_id": int(ticket_id)}


def attachments(ticket_id: str, *, action_id: int | None = None) -> Params:
    """GET /Attachment parameters (filtering by action also needs the ticket)."""
    params: Params = {"ticket_id": int(ticket_id)}
    if action_id is not None:
        params["action_id"] = int(action_id)
    return params


def clients(*, include_inactive: bool = False, search: str | None = None) -> Params:
    """GET /Client parameters."""
    params: Params = {"includeactive": _bool(True), "includeinactive": _bool(include_inactive)}
    if search:
        params["search"] = search
    return params


def users(*, client_id: str | None = None, include_inactive: bool = False, search: str | None = None) -> Params:
    """GET /Users parameters (end users)."""
    params: Params = {"includeactive": _bool(True), "includeinactive": _bool(include_inactive)}
    if client_id:
        params["client_id"] = int(client_id)
    if search:
        params["search"] = search
    return params


def agents(*, include_disabled: bool = True) -> Params:
    """GET /Agent parameters (the "Unassigned" agent left out)."""
    return {"includeenabled": _bool(True), "includedisabled": _bool(include_disabled),
            "includeunassigned": _bool(False)}


def statuses(*, ticket_type_id: str | None = None, exclude_closed: bool = False) -> Params:
    """GET /Status parameters (`excludeclosed` tells the closed statuses apart)."""
    params: Params = {}
    if ticket_type_id:
        params["tickettype_id"] = int(ticket_type_id)
    if exclude_closed:
        params["excludeclosed"] = _bool(True)
    return params


def priorities(*, sla_id: str | None = None) -> Params:
    """GET /Priority parameters (one SLA's priorities)."""
    return {"slaid": int(sla_id)} if sla_id else {}


def ticket_types(*, include_inactive: bool = False) -> Params:
    """GET /TicketType parameters."""
    return {"showinactive": _bool(include_inactive)}


def categories(field: int) -> Params:
    """GET /Category parameters: the values of one of the ticket's four category fields (`type_id`)."""
    return {"type_id": int(field)}


def ticket_type(*, details: bool = True) -> Params:
    """GET /TicketType/{id} parameters (`includedetails`: fields and allowed statuses)."""
    return {"includedetails": _bool(details)}


def teams(*, include_disabled: bool = False) -> Params:
    """GET /Team parameters."""
    return {"includeenabled": _bool(True), "includedisabled": _bool(include_disabled)}
