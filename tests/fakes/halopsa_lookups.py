"""Clients, end users, agents and the picklists (statuses, priorities, ticket types, teams, outcomes,
categories) of the fake HaloPSA server. Clients and users page like tickets (`clients`/`users` keys); the lookups answer with
bare arrays, as the vendor's OpenAPI says ("List of TStatus", …).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tests.fakes.halopsa_http import FakeRequest, FakeResponse, exception_error, json_response
from tests.fakes.halopsa_routes import contains, int_param, paged, route, truthy

if TYPE_CHECKING:
    from tests.fakes.halopsa import FakeHalo


def _flag(req: FakeRequest, name: str, default: bool) -> bool:
    raw = req.query.get(name)
    return default if raw is None or raw == "" else truthy(raw)


def _one(table: dict[int, dict[str, Any]], raw: str, what: str) -> dict[str, Any]:
    row = table.get(int(raw) if raw.isdigit() else -1)
    if row is None:
        raise exception_error(404, f"{what} {raw} not found.")
    return row


def _active_filter(req: FakeRequest, rows: list[dict[str, Any]], inactive_key: str) -> list[dict[str, Any]]:
    active, inactive = _flag(req, "includeactive", True), _flag(req, "includeinactive", False)
    return [r for r in rows if (inactive if r.get(inactive_key) else active)]


# ---------------------------------------------------------------- clients and users


def client_out(fake: FakeHalo, c: dict[str, Any]) -> dict[str, Any]:
    """A client as Halo lists it."""
    site = fake.sites.get(c.get("main_site_id") or 0, {})
    return {**c, "main_site_name": site.get("name"), "toplevel_name": "Customers"}


@route("GET", "/api/Client")
def list_clients(fake: FakeHalo, req: FakeRequest) -> FakeResponse:
    """GET /Client (paged under `clients`)."""
    rows = _active_filter(req, sorted(fake.clients.values(), key=lambda c: c["id"]), "inactive")
    if req.query.get("search"):
        rows = [c for c in rows if contains((c["name"],), req.query["search"])]
    return paged(req, [client_out(fake, c) for c in rows], "clients")


@route("GET", "/api/Client/{id}")
def get_client(fake: FakeHalo, req: FakeRequest, id: str) -> FakeResponse:  # noqa: A002
    """GET /Client/{id}."""
    return json_response(client_out(fake, _one(fake.clients, id, "Client")))


def user_out(fake: FakeHalo, u: dict[str, Any]) -> dict[str, Any]:
    """An end user as Halo lists it."""
    return {**u, "client_name": fake.clients[u["client_id"]]["name"],
            "site_name": fake.sites.get(u.get("site_id") or 0, {}).get("name")}


@route("GET", "/api/Users")
def list_users(fake: FakeHalo, req: FakeRequest) -> FakeResponse:
    """GET /Users (paged under `users`)."""
    rows = _active_filter(req, sorted(fake.users.values(), key=lambda u: u["id"]), "inactive")
    for param in ("client_id", "site_id"):
        value = int_param(req, param)
        if value is not None:
            rows = [u for u in rows if u.get(param) == value]
    if req.query.get("search"):
        rows = [u for u in rows if contains((u["name"], u["emailaddress"]), req.query["search"])]
    return paged(req, [user_out(fake, u) for u in rows], "users")


@route("GET", "/api/Users/{id}")
def get_user(fake: FakeHalo, req: FakeRequest, id: str) -> FakeResponse:  # noqa: A002
    """GET /Users/{id}."""
    return json_response(user_out(fake, _one(fake.users, id, "User")))


# ---------------------------------------------------------------- agents and teams


def agent_out(fake: FakeHalo, a: dict[str, Any]) -> dict[str, Any]:
    """An agent as Halo lists it (with teams)."""
    teams = [{"team_id": tid, "team_name": fake.teams[tid]["name"]} for tid in a.get("_teams", ())]
    return {**{k: v for k, v in a.items() if not k.startswith("_")}, "teams": teams,
            "team": teams[0]["team_name"] if teams else ""}


@route("GET", "/api/Agent")
def list_agents(fake: FakeHalo, req: FakeRequest) -> FakeResponse:
    """GET /Agent (bare array)."""
    enabled, disabled = _flag(req, "includeenabled", True), _flag(req, "includedisabled", False)
    rows = [a for a in sorted(fake.agents.values(), key=lambda a: a["id"])
            if (disabled if a["isdisabled"] else enabled)]
    if not _flag(req, "includeunassigned", False):
        rows = [a for a in rows if a["id"] != 1]
    if not _flag(req, "includeapiagents", False):
        rows = [a for a in rows if not a.get("isapiagent")]
    team_id = int_param(req, "team_id")
    if team_id is not None:
        rows = [a for a in rows if team_id in a.get("_teams", ())]
    if req.query.get("search"):
        rows = [a for a in rows if contains((a["name"], a["email"]), req.query["search"])]
    return json_response([agent_out(fake, a) for a in rows])


@route("GET", "/api/Agent/me")
def agent_me(fake: FakeHalo, req: FakeRequest) -> FakeResponse:
    """GET /Agent/me: the agent the API application acts as."""
    return json_response(agent_out(fake, fake.agents[fake.api_agent_id]))


@route("GET", "/api/Agent/{id}")
def get_agent(fake: FakeHalo, req: FakeRequest, id: str) -> FakeResponse:  # noqa: A002
    """GET /Agent/{id}."""
    return json_response(agent_out(fake, _one(fake.agents, id, "Agent")))


@route("GET", "/api/Team")
def list_teams(fake: FakeHalo, req: FakeRequest) -> FakeResponse:
    """GET /Team (bare array)."""
    enabled, disabled = _flag(req, "includeenabled", True), _flag(req, "includedisabled", False)
    return json_response([t for t in sorted(fake.teams.values(), key=lambda t: t["sequence"])
                          if (disabled if t["inactive"] else enabled)])


# ---------------------------------------------------------------- statuses, priorities, types, outcomes


def status_out(s: dict[str, Any]) -> dict[str, Any]:
    """A status as Halo lists it."""
    return {k: v for k, v in s.items() if not k.startswith("_")}


@route("GET", "/api/Status")
def list_statuses(fake: FakeHalo, req: FakeRequest) -> FakeResponse:
    """Every status (ticket ones and others: the `type` filter is ignored, as djpsa found); `tickettype_id`
    keeps those valid on that type, `excludeclosed` drops the closed ones."""
    rows = sorted(fake.statuses.values(), key=lambda s: (s["sequence"], s["id"]))
    tt = int_param(req, "tickettype_id")
    if tt is not None:
        allowed = fake.allowed_statuses(tt)
        rows = [s for s in rows if s["id"] in allowed]
    if truthy(req.query.get("excludeclosed")):
        rows = [s for s in rows if not s["_closed"]]
    return json_response([status_out(s) for s in rows])


@route("GET", "/api/Status/{id}")
def get_status(fake: FakeHalo, req: FakeRequest, id: str) -> FakeResponse:  # noqa: A002
    """GET /Status/{id}."""
    return json_response(status_out(_one(fake.statuses, id, "Status")))


@route("GET", "/api/Priority")
def list_priorities(fake: FakeHalo, req: FakeRequest) -> FakeResponse:
    """`Policy` rows: one per SLA and priority; `id` is a string, `priorityid` what tickets carry."""
    sla = int_param(req, "slaid")
    return json_response([p for p in fake.policies if sla in (None, p["slaid"])])


def ticket_type_out(fake: FakeHalo, t: dict[str, Any], *, details: bool) -> dict[str, Any]:
    """A ticket type, with fields and allowed statuses when detailed."""
    out = {k: v for k, v in t.items() if not k.startswith("_")}
    if details:
        out["fields"] = [dict(f) for f in t["_fields"]]
        # The vendor's schema spells the type id in allowed_status "ticketype_id" (sic).
        out["allowed_status"] = [] if t["allowall_status"] else [
            {"ticketype_id": t["id"], "status_id": sid, "status_name": fake.statuses[sid]["name"]}
            for sid in t["_allowed"]]
    return out


@route("GET", "/api/TicketType")
def list_ticket_types(fake: FakeHalo, req: FakeRequest) -> FakeResponse:
    """GET /TicketType (bare array)."""
    show_inactive = truthy(req.query.get("showinactive"))
    return json_response([ticket_type_out(fake, t, details=False)
                          for t in sorted(fake.ticket_types.values(), key=lambda t: t["sequence"])
                          if show_inactive or t["active"]])


@route("GET", "/api/TicketType/{id}")
def get_ticket_type(fake: FakeHalo, req: FakeRequest, id: str) -> FakeResponse:  # noqa: A002
    """GET /TicketType/{id}."""
    row = _one(fake.ticket_types, id, "Ticket type")
    return json_response(ticket_type_out(fake, row, details=truthy(req.query.get("includedetails"))))


@route("GET", "/api/Outcome")
def list_outcomes(fake: FakeHalo, req: FakeRequest) -> FakeResponse:
    """GET /Outcome (bare array)."""
    return json_response(sorted(fake.outcomes.values(), key=lambda o: o["sequence"]))


@route("GET", "/api/Category")
def list_categories(fake: FakeHalo, req: FakeRequest) -> FakeResponse:
    """GET /Category: a bare array of CategoryDetail, unpaged; `type_id` keeps one of the four category
    fields (connectors/halopsa/categories.py gives the evidence for this shape)."""
    type_id = int_param(req, "type_id")
    return json_response([dict(c) for c in sorted(fake.categories.values(), key=lambda c: c["id"])
                          if type_id in (None, c["type_id"])])


@route("GET", "/api/Category/{id}")
def get_category(fake: FakeHalo, req: FakeRequest, id: str) -> FakeResponse:  # noqa: A002
    """GET /Category/{id}."""
    return json_response(dict(_one(fake.categories, id, "Category")))
