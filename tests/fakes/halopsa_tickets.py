"""Tickets (`Faults`) of the fake HaloPSA server: list with named filters, get, create-or-update, delete.

Stored records keep datetimes (None = empty) and ids only; names, Halo's date strings and the
`last_update` (GET) / `lastupdate` (POST answers) spelling are produced on the way out.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from tests.fakes.halopsa_http import FakeRequest, FakeResponse, exception_error, halo_date, json_response
from tests.fakes.halopsa_routes import (
    as_date,
    as_int,
    body_items,
    contains,
    date_param,
    ids_param,
    int_param,
    paged,
    route,
    saved,
    truthy,
)

if TYPE_CHECKING:
    from tests.fakes.halopsa import FakeHalo

DATE_FIELDS = ("dateoccurred", "datecreated", "last_update", "lastactiondate", "dateclosed", "dateassigned",
               "respondbydate", "fixbydate", "responsedate")
INT_FIELDS = ("client_id", "site_id", "user_id", "tickettype_id", "status_id", "priority_id", "agent_id",
              "sla_id", "third_party_id")
TEXT_FIELDS = ("summary", "details", "details_html", "third_party_id_string", "client_reference", "category_1",
               "reference")
DATESEARCH = {"dateoccured": "dateoccurred", "dateoccurred": "dateoccurred", "datecleared": "dateclosed",
              "dateclosed": "dateclosed", "datecreated": "datecreated", "lastactiondate": "lastactiondate",
              "lastupdate": "last_update", "last_update": "last_update"}


def ticket_out(fake: FakeHalo, t: dict[str, Any], *, full: bool = False, post: bool = False) -> dict[str, Any]:
    """A stored ticket as Halo shows it (list row, full record, or a POST answer)."""
    out = {k: v for k, v in t.items() if not k.startswith("_")}
    for name in DATE_FIELDS:
        out[name] = halo_date(t.get(name))
    client, site = fake.clients.get(t["client_id"], {}), fake.sites.get(t.get("site_id") or 0, {})
    user, agent = fake.users.get(t.get("user_id") or 0, {}), fake.agents.get(t.get("agent_id") or 0, {})
    out.update(client_name=client.get("name"), site_name=site.get("name"), user_name=user.get("name"),
               user_email=user.get("emailaddress"), agent_name=agent.get("name"),
               status_name=fake.statuses[t["status_id"]]["name"],
               tickettype_name=fake.ticket_types[t["tickettype_id"]]["name"],
               priority_name=fake.priority_name(t.get("priority_id")),
               sla_name=fake.slas.get(t.get("sla_id") or 0, {}).get("name"),
               attachment_count=sum(1 for a in fake.attachments.values() if a["ticket_id"] == t["id"]))
    if full:
        out["customfields"] = fake.customfields_out(t.get("_cf") or {}, "ticket")
        out["assets"] = [dict(fake.assets[a]) for a in t.get("_assets") or () if a in fake.assets]
    if post:
        out["lastupdate"] = out.pop("last_update")  # djpsa: the key differs on POST answers
    return out


def ticket_or_404(fake: FakeHalo, ticket_id: int) -> dict[str, Any]:
    """A live ticket, or a 404 in Halo's .NET shape."""
    t = fake.tickets.get(ticket_id)
    if t is None or t["deleted"]:
        raise exception_error(404, f"Ticket {ticket_id} not found.")
    return t


# ---------------------------------------------------------------- list


def _sort_key(t: dict[str, Any], field: str) -> tuple[int, Any]:
    value = t.get(field)
    if isinstance(value, datetime):
        return (1, value.timestamp())
    if value is None:
        return (0, 0)
    return (1, value) if isinstance(value, int | float) else (1, str(value).lower())


def filter_tickets(fake: FakeHalo, req: FakeRequest) -> list[dict[str, Any]]:
    """The tickets a GET /Tickets query selects, in its order (`order`/`orderdesc`, default id)."""
    q = req.query
    rows = [t for t in fake.tickets.values() if truthy(q.get("deleted")) or not t["deleted"]]
    eq = {"client_id": "client_id", "site_id": "site_id", "user_id": "user_id", "agent_id": "agent_id",
          "status_id": "status_id", "requesttype_id": "tickettype_id", "priority_id": "priority_id"}
    for param, fld in eq.items():
        value = int_param(req, param)
        if value is not None:
            rows = [t for t in rows if t.get(fld) == value]
    lists = {"client_ids": "client_id", "agent": "agent_id", "status": "status_id", "priority": "priority_id",
             "requesttype": "tickettype_id", "sla": "sla_id", "ticketids": "id"}
    for param, fld in lists.items():
        wanted = ids_param(req, param)
        if wanted is not None:
            rows = [t for t in rows if t.get(fld) in wanted]
    teams = ids_param(req, "team")
    if teams is not None:
        names = {fake.teams[i]["name"] for i in teams if i in fake.teams}
        rows = [t for t in rows if t.get("team") in names]
    if truthy(q.get("open_only")):
        rows = [t for t in rows if not fake.status_closed(t["status_id"])]
    if truthy(q.get("closed_only")):
        rows = [t for t in rows if fake.status_closed(t["status_id"])]
    since, until = date_param(req, "lastupdatefromdate"), date_param(req, "lastupdatetodate")
    if since is not None:
        rows = [t for t in rows if t["last_update"] >= since]
    if until is not None:
        rows = [t for t in rows if t["last_update"] <= until]
    field = DATESEARCH.get((q.get("datesearch") or "").lower())
    if field:
        start, end = date_param(req, "startdate"), date_param(req, "enddate")
        rows = [t for t in rows if t.get(field) is not None and (start is None or t[field] >= start)
                and (end is None or t[field] <= end)]
    if q.get("search"):
        rows = [t for t in rows if contains((t["summary"], t.get("details"), t["id"]), q["search"])]
    if q.get("search_summary"):
        rows = [t for t in rows if contains((t["summary"],), q["search_summary"])]
    if q.get("search_id"):
        rows = [t for t in rows if str(t["id"]) == q["search_id"].strip()]
    keys = [(q.get(f"order{n}") or "", truthy(q.get(f"orderdesc{n}"))) for n in ("", "2")]
    rows.sort(key=lambda t: t["id"])
    for field_name, desc in reversed([k for k in keys if k[0]]):
        name = DATESEARCH.get(field_name.lower(), field_name.lower())
        rows.sort(key=lambda t, n=name: _sort_key(t, n), reverse=desc)  # type: ignore[misc]
    return rows


@route("GET", "/api/Tickets")
def list_tickets(fake: FakeHalo, req: FakeRequest) -> FakeResponse:
    """GET /Tickets (paged under `tickets`)."""
    return paged(req, filter_tickets(fake, req), "tickets", lambda t: ticket_out(fake, t))


@route("GET", "/api/Tickets/{id}")
def get_ticket(fake: FakeHalo, req: FakeRequest, id: str) -> FakeResponse:  # noqa: A002
    """GET /Tickets/{id}: the full record."""
    t = ticket_or_404(fake, _path_id(id))
    return json_response(ticket_out(fake, t, full=True))


@route("DELETE", "/api/Tickets/{id}")
def delete_ticket(fake: FakeHalo, req: FakeRequest, id: str) -> FakeResponse:  # noqa: A002
    """DELETE /Tickets/{id}: marks it deleted."""
    t = ticket_or_404(fake, _path_id(id))
    t["deleted"] = True
    t["last_update"] = fake.clock.stamp()
    return FakeResponse(200)


def _path_id(raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise exception_error(404, f"Ticket {raw} not found.") from None


# ---------------------------------------------------------------- create or update


def _validate(fake: FakeHalo, item: dict[str, Any], i: int, current: dict[str, Any] | None) -> dict[str, Any]:
    """The changes an item asks for, checked against the tenant (400 .NET-style errors)."""
    changes: dict[str, Any] = {k: item[k] for k in TEXT_FIELDS if k in item}
    if "category_1" in changes:  # the text is the category's whole `value`; its id follows ([unverified] for
        text = str(changes["category_1"] or "")  # a value Halo does not list: kept as text, id 0)
        changes["categoryid_1"] = next((c["id"] for c in fake.categories.values()
                                        if c["type_id"] == 1 and c["value"] == text), 0) if text else 0
    for name in INT_FIELDS:
        value = as_int(item, name, i)
        if value is not None:
            changes[name] = value
    for name in ("startdate", "targetdate", "deadlinedate"):
        if name in item:
            changes[name] = as_date(item, name, i)
    if current is None and not str(item.get("summary") or "").strip():
        raise exception_error(400, "Please enter a Summary.")
    if "team" in item:
        name = str(item["team"]) if item["team"] is not None else ""
        if name and name not in {t["name"] for t in fake.teams.values()}:
            raise exception_error(400, f"Team '{name}' does not exist.")  # a team id sent as the name
        changes["team"] = name or None
    if "client_id" in changes and changes["client_id"] not in fake.clients:
        raise exception_error(400, f"Client {changes['client_id']} does not exist.")
    if "user_id" in changes:
        user = fake.users.get(changes["user_id"])
        client = changes.get("client_id") or (current or {}).get("client_id")
        if user is None or (client is not None and "client_id" in changes and user["client_id"] != client):
            raise exception_error(400, f"User {changes['user_id']} does not belong to the client.")
    if "agent_id" in changes and changes["agent_id"] not in fake.agents:
        raise exception_error(400, f"Agent {changes['agent_id']} does not exist.")
    tt = changes.get("tickettype_id") or (current or {}).get("tickettype_id") or fake.default_ticket_type
    if tt not in fake.ticket_types:
        raise exception_error(400, f"Ticket type {tt} does not exist.")
    status = changes.get("status_id") or (current or {}).get("status_id") or fake.ticket_types[tt]["initial_status"]
    if status not in fake.allowed_statuses(tt):
        raise exception_error(400, f"Status {status} is not valid for ticket type "
                                   f"'{fake.ticket_types[tt]['name']}'.")
    if "priority_id" in changes and fake.priority_name(changes["priority_id"]) is None:
        raise exception_error(400, f"Priority {changes['priority_id']} does not exist.")
    if current is None:
        missing = [f for f in fake.mandatory_fields(tt) if item.get(f) in (None, "")]
        if missing:
            raise exception_error(400, "Please enter a value for: " + ", ".join(missing) + ".")
    changes["tickettype_id"], changes["status_id"] = tt, status
    if "customfields" in item:
        changes["_cf"] = fake.customfields_in(item.get("customfields"), "ticket")
    return changes


def _apply(fake: FakeHalo, t: dict[str, Any] | None, changes: dict[str, Any]) -> dict[str, Any]:
    now = fake.clock.stamp()
    if t is None:
        tid = fake.next_id("ticket", 2001)
        tt = fake.ticket_types[changes["tickettype_id"]]
        client_id = changes.get("client_id") or (fake.users[changes["user_id"]]["client_id"]
                                                 if changes.get("user_id") else 1)
        t = {"id": tid, "summary": "", "details": "", "client_id": client_id,
             "site_id": fake.clients[client_id].get("main_site_id"), "user_id": None,
             "agent_id": 1, "team": tt.get("default_team"), "priority_id": tt.get("default_priority"),
             "sla_id": tt.get("default_sla"), "third_party_id": None, "third_party_id_string": None,
             "client_reference": None, "category_1": None, "deleted": False, "inactive": False,
             "hasbeenclosed": False, "onhold": False, "dateoccurred": now, "datecreated": now,
             "lastactiondate": now, "dateclosed": None, "dateassigned": None, "respondbydate": None,
             "fixbydate": None, "responsedate": None, "_cf": {}}
        fake.tickets[tid] = t
        fake.log_action(t, note="Ticket logged", outcome_id=fake.system_outcome_id, system=True, at=now)
    cf = changes.pop("_cf", None)
    if cf:
        t["_cf"] = {**t.get("_cf", {}), **cf}
    before_agent, before_prio = t.get("agent_id"), t.get("priority_id")
    t.update(changes)
    if t["agent_id"] != before_agent or (t["agent_id"] not in (None, 1) and t["dateassigned"] is None):
        t["dateassigned"] = now if t["agent_id"] not in (None, 1) else None
    if t["priority_id"] != before_prio or t["respondbydate"] is None:
        respond, fix = fake.sla_hours(t.get("sla_id"), t.get("priority_id"))
        t["respondbydate"] = t["dateoccurred"] + timedelta(hours=respond) if respond else None
        t["fixbydate"] = t["dateoccurred"] + timedelta(hours=fix) if fix else None
    if fake.status_closed(t["status_id"]):
        t["dateclosed"] = t["dateclosed"] or now
        t["hasbeenclosed"] = True
    else:
        t["dateclosed"] = None
    t["last_update"] = now
    return t


@route("POST", "/api/Tickets")
def post_tickets(fake: FakeHalo, req: FakeRequest) -> FakeResponse:
    """Create (no `id`) or update (with `id`) each item; all items are validated before any is saved."""
    items = body_items(req)
    plans = []
    for i, item in enumerate(items):
        tid = as_int(item, "id", i)
        current = ticket_or_404(fake, tid) if tid else None
        plans.append((item, current, _validate(fake, item, i, current)))
    out = []
    for item, current, changes in plans:
        if truthy(str(item.get("_validate_only") or "")):
            out.append({**changes, "id": current["id"] if current else 0, "_validate_only": True})
            continue
        created = current is None
        t = _apply(fake, current, changes)
        quiet = bool(item.get("_dont_fire_automations") or item.get("dont_do_rules"))
        fake.fire("ticket_created" if created else "ticket_updated", t, suppressed=quiet)
        if created and item.get("sendack") and t.get("user_id"):
            fake.send_email(t, to=fake.users[t["user_id"]]["emailaddress"], subject=f"Ticket {t['id']} logged",
                            body=t["summary"], action_id=None, hidden=False)
        out.append(ticket_out(fake, t, full=True, post=True))
    return saved(out)
