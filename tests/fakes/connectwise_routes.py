"""Request handlers of the fake ConnectWise server (see tests/fakes/connectwise.py for the documented API)."""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit

from tests.fakes.connectwise_conditions import ConditionError, compile_conditions, parse_conditions, project
from tests.fakes.connectwise_http import FakeRequest, FakeResponse, HttpError, invalid, json_response
from tests.fakes.connectwise_index import SortedIndex

if TYPE_CHECKING:
    from tests.fakes.connectwise import FakeConnectWise

Handler = Callable[..., FakeResponse]
API = re.compile(r"^/(?P<codebase>[^/]+/)apis/3\.0/(?P<rest>.*?)/?$")
TICKET_PATCHABLE = {"summary", "status", "priority", "board", "owner", "company", "contact", "type", "subType", "item",
                    "externalXRef",
                    "automaticEmailContactFlag", "automaticEmailResourceFlag", "automaticEmailCcFlag",
                    "automaticEmailCc", "severity", "impact", "customerUpdatedFlag", "skipCallback"}


def ref(record: dict[str, Any], label: str = "name") -> dict[str, Any]:
    """A reference as ConnectWise embeds it: {id, name|identifier}."""
    out = {"id": record["id"], label: record[label]}
    if label == "identifier" and "name" in record:
        out["name"] = record["name"]
    return out


def member_ref(m: dict[str, Any]) -> dict[str, Any]:
    return {"id": m["id"], "identifier": m["identifier"], "name": f"{m['firstName']} {m['lastName']}"}


# ---------------------------------------------------------------- routing

_ROUTES: list[tuple[str, re.Pattern[str], str, Handler]] = []


def route(method: str, pattern: str) -> Callable[[Handler], Handler]:
    regex = re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>\\d+)", pattern) + "$")

    def deco(fn: Handler) -> Handler:
        _ROUTES.append((method, regex, pattern, fn))
        return fn

    return deco


def _not_found(fake: FakeConnectWise, req: FakeRequest) -> FakeResponse:
    raise HttpError(404, "NotFound", "The requested resource was not found.")


def match(fake: FakeConnectWise, req: FakeRequest) -> tuple[str, Handler, dict[str, int]]:
    """(route template, handler, path params) for a request; unknown paths 404."""
    m = re.match(r"^/login/companyinfo/(?P<co>[^/]+)$", req.path)
    if m:
        return "/login/companyinfo", lambda f, r: companyinfo(f, m.group("co")), {}
    m = API.match(req.path)
    if not m:
        return req.path, _not_found, {}
    rest = "/" + m.group("rest")
    for method, regex, pattern, fn in _ROUTES:
        hit = regex.match(rest)
        if hit and method == req.method:
            params = {k: int(v) for k, v in hit.groupdict().items()}
            if m.group("codebase") != fake.codebase:
                return pattern, _not_found, {}  # an old codebase path after an upgrade
            if pattern == "/system/callbackkeys/{id}":
                return pattern, fn, params
            return pattern, _authenticated(fn), params
    return rest, _not_found, {}


def _authenticated(fn: Handler) -> Handler:
    def wrapper(fake: FakeConnectWise, req: FakeRequest, **params: int) -> FakeResponse:
        _authenticate(fake, req)
        return fn(fake, req, **params)

    return wrapper


def _authenticate(fake: FakeConnectWise, req: FakeRequest) -> None:
    if not req.headers.get("clientid"):
        raise HttpError(401, "Unauthorized", "A clientId header is required.")
    header = req.headers.get("authorization", "")
    try:
        user, _, password = base64.b64decode(header.removeprefix("Basic ")).decode().partition(":")
    except ValueError:
        user, password = "", ""
    expected = f"{fake.company_id}+{fake.public_key}"
    if fake.auth_revoked or user != expected or password != fake.private_key:
        raise HttpError(401, "Unauthorized", "Authentication failed: invalid API member keys or company.")


def _body(req: FakeRequest) -> Any:
    import json

    if "json" not in req.headers.get("content-type", "json"):
        raise HttpError(415, "UnsupportedMediaType", "Content type must be application/json.")
    try:
        return json.loads(req.body or b"null")
    except ValueError as exc:
        raise HttpError(400, "InvalidObject", "The request body is not valid JSON.") from exc


# ---------------------------------------------------------------- lists and paging


def listing(fake: FakeConnectWise, req: FakeRequest, name: str, records: Callable[[], list[dict[str, Any]]]
            ) -> FakeResponse:
    """Filter, sort, page and project a collection; adds Link headers like ConnectWise."""
    q = req.query
    try:
        key = (name, q.get("conditions"), q.get("orderby"), fake.version)
        rows = fake.list_cache.get(key)
        if rows is None:
            node = parse_conditions(q.get("conditions"))
            items = records()
            index_key = ("index", name, q.get("orderby"), fake.version, len(items))
            index = fake.list_cache.get(index_key)
            if index is None:
                index = SortedIndex(items, q.get("orderby"))
                fake.list_cache[index_key] = index
            rows = index.select(node)
            fake.list_cache[key] = rows
        size = min(max(int(q.get("pagesize", 25)), 1), 1000)
        page = max(int(q.get("page", 1)), 1)
    except ConditionError as exc:
        raise HttpError(400, "InvalidObject", f"Invalid conditions: {exc}") from exc
    except ValueError as exc:
        raise HttpError(400, "InvalidObject", "page and pageSize must be numbers") from exc
    chunk = rows[(page - 1) * size: page * size]
    last = max(1, -(-len(rows) // size))
    parts = urlsplit(req.url)

    def link(p: int, rel: str) -> str:
        params = {k: v for k, v in _original_params(parts.query).items()}
        params["page"] = str(p)
        return f'<{parts.scheme}://{parts.netloc}{parts.path}?{urlencode(params)}>; rel="{rel}"'

    links = []
    if page > 1:
        links += [link(1, "first"), link(page - 1, "prev")]
    if page < last:
        links += [link(page + 1, "next"), link(last, "last")]
    headers = {"link": ", ".join(links)} if links else {}
    return json_response(200, [project(r, q.get("fields")) for r in chunk], headers)


def _original_params(query: str) -> dict[str, str]:
    from urllib.parse import parse_qsl

    return dict(parse_qsl(query, keep_blank_values=True))


# ---------------------------------------------------------------- login, system


def companyinfo(fake: FakeConnectWise, company: str) -> FakeResponse:
    if company.lower() != fake.company_id.lower():
        return json_response(200, None)
    return json_response(200, {"CompanyName": "Deskbridge Test MSP", "Codebase": fake.codebase,
                               "VersionCode": "v" + fake.codebase.strip("/").removeprefix("v").replace("_", "."),
                               "CompanyID": fake.company_id, "IsCloud": True, "SiteUrl": "api-na.myconnectwise.net"})


@route("GET", "/system/info")
def system_info(fake: FakeConnectWise, req: FakeRequest) -> FakeResponse:
    return json_response(200, {"version": "v2024.1.12345", "isCloud": True, "serverTimeZone": "Eastern Standard Time",
                               "cloudRegion": "NA"})


@route("GET", "/system/members")
def list_members(fake: FakeConnectWise, req: FakeRequest) -> FakeResponse:
    return listing(fake, req, "members", lambda: list(fake.members.values()))


@route("GET", "/system/apiMembers")
def list_api_members(fake: FakeConnectWise, req: FakeRequest) -> FakeResponse:
    """The API members (whose keys integrations use); ConnectWise also lists them among /system/members."""
    return listing(fake, req, "apiMembers",
                   lambda: [m for m in fake.members.values() if m["id"] == fake.api_member_id])


@route("GET", "/company/companies")
def list_companies(fake: FakeConnectWise, req: FakeRequest) -> FakeResponse:
    return listing(fake, req, "companies", lambda: list(fake.companies.values()))


@route("GET", "/company/contacts")
def list_contacts(fake: FakeConnectWise, req: FakeRequest) -> FakeResponse:
    return listing(fake, req, "contacts", lambda: list(fake.contacts.values()))


@route("GET", "/service/boards")
def list_boards(fake: FakeConnectWise, req: FakeRequest) -> FakeResponse:
    return listing(fake, req, "boards", lambda: list(fake.boards.values()))


@route("GET", "/service/boards/{id}/statuses")
def list_statuses(fake: FakeConnectWise, req: FakeRequest, id: int) -> FakeResponse:
    if id not in fake.boards:
        raise HttpError(404, "NotFound", f"Board {id} was not found.")
    return listing(fake, req, f"statuses:{id}", lambda: fake.board_statuses(id))


@route("GET", "/service/boards/{id}/types")
def list_types(fake: FakeConnectWise, req: FakeRequest, id: int) -> FakeResponse:
    if id not in fake.boards:
        raise HttpError(404, "NotFound", f"Board {id} was not found.")
    return listing(fake, req, f"types:{id}", lambda: [t for t in fake.types.values() if t["board"]["id"] == id])


@route("GET", "/service/boards/{id}/subtypes")
def list_subtypes(fake: FakeConnectWise, req: FakeRequest, id: int) -> FakeResponse:
    _board_exists(fake, id)
    return listing(fake, req, f"subtypes:{id}", lambda: [r for r in fake.subtypes.values() if r["board"]["id"] == id])


@route("GET", "/service/boards/{id}/items")
def list_items(fake: FakeConnectWise, req: FakeRequest, id: int) -> FakeResponse:
    _board_exists(fake, id)
    return listing(fake, req, f"items:{id}", lambda: [r for r in fake.items.values() if r["board"]["id"] == id])


@route("GET", "/service/boards/{id}/typeSubTypeItemAssociations")
def list_associations(fake: FakeConnectWise, req: FakeRequest, id: int) -> FakeResponse:
    _board_exists(fake, id)
    return listing(fake, req, f"associations:{id}",
                   lambda: [r for r in fake.associations.values() if r["board"]["id"] == id])


@route("GET", "/service/knowledgeBaseArticles")
def list_kb_articles(fake: FakeConnectWise, req: FakeRequest) -> FakeResponse:
    """Knowledge-base articles, filtered, ordered and paged like every ConnectWise list."""
    return listing(fake, req, "kb", lambda: list(fake.kb_articles.values()))


def _board_exists(fake: FakeConnectWise, board_id: int) -> None:
    if board_id not in fake.boards:
        raise HttpError(404, "NotFound", f"Board {board_id} was not found.")


def _catalogue(fake: FakeConnectWise, ticket: dict[str, Any], changes: dict[str, Any]) -> None:
    """Apply `subType`/`item` changes (a reference, or None to remove), then check the ticket's type > subtype >
    item against its board's associations: a subtype or item the board lacks, or a combination it does not
    allow, is a 400 naming the field (nothing is changed)."""
    board_id = ticket["board"]["id"]
    for name, table in (("subType", fake.subtypes), ("item", fake.items)):
        if name not in changes:
            continue
        if changes[name] is None:
            ticket.pop(name, None)
            continue
        value = changes[name]
        hit = next((r for r in table.values() if r["board"]["id"] == board_id and isinstance(value, dict) and (
            r["id"] == value.get("id") or r["name"] == value.get("name"))), None)
        if hit is None:
            raise invalid("ServiceTicket", name, f"The {name} {value} is not valid on board {board_id}.",
                          code="InvalidReference")
        ticket[name] = ref(hit)
    sub, item, ty = ticket.get("subType"), ticket.get("item"), ticket.get("type")
    if sub is None and item is None:
        return
    pairs = [a for a in fake.associations.values() if a["board"]["id"] == board_id and ty is not None
             and sub is not None and a["type"]["id"] == ty["id"] and a["subType"]["id"] == sub["id"]]
    field = "subType" if not pairs else "item"
    if not pairs or (item is not None and not any((a.get("item") or {}).get("id") == item["id"] for a in pairs)):
        raise invalid("ServiceTicket", field, "The type, subtype and item combination is not valid on this board.",
                      code="InvalidReference")


@route("GET", "/service/priorities")
def list_priorities(fake: FakeConnectWise, req: FakeRequest) -> FakeResponse:
    return listing(fake, req, "priorities", lambda: list(fake.priorities.values()))


# ---------------------------------------------------------------- tickets


def ticket_record(fake: FakeConnectWise, tid: int, summary: str, board: dict[str, Any], status: dict[str, Any],
                  company: dict[str, Any], priority: dict[str, Any], stamp: str) -> dict[str, Any]:
    return {
        "id": tid, "summary": summary, "recordType": "ServiceTicket",
        "board": ref(board), "status": ref(status), "company": ref(company, "identifier"),
        "priority": ref(priority), "severity": "Medium", "impact": "Medium",
        "closedFlag": bool(status["closedStatus"]), "closedDate": stamp if status["closedStatus"] else None,
        "customerUpdatedFlag": False, "automaticEmailContactFlag": False, "automaticEmailResourceFlag": False,
        "automaticEmailCcFlag": False, "source": {"id": 2, "name": "API"}, "isInSla": True,
        "_info": {"lastUpdated": stamp, "dateEntered": stamp, "enteredBy": "deskbridge-api",
                  "updatedBy": "deskbridge-api"},
    }


def _resolve(fake: FakeConnectWise, kind: str, value: Any, board_id: int | None = None) -> dict[str, Any]:
    """A {id}/{name}/{identifier} reference resolved against the fake's data (400 when unknown)."""
    table = {"company": fake.companies, "contact": fake.contacts, "board": fake.boards, "priority": fake.priorities,
             "owner": fake.members, "member": fake.members, "status": fake.statuses, "type": fake.types}[kind]
    rows = list(table.values())
    if kind in ("status", "type") and board_id is not None:
        rows = [r for r in rows if r["board"]["id"] == board_id]
    if not isinstance(value, dict):
        raise invalid("ServiceTicket", kind, f"{kind} must be an object reference")
    for r in rows:
        if ("id" in value and r["id"] == value["id"]) or (
                "name" in value and r.get("name") == value["name"]) or (
                "identifier" in value and str(r.get("identifier", "")).lower() == str(value["identifier"]).lower()):
            return r
    where = f" on board {board_id}" if kind in ("status", "type") and board_id is not None else ""
    raise invalid("ServiceTicket", kind, f"The {kind} {value} is not valid{where}.", code="InvalidReference")


def _set_status(fake: FakeConnectWise, ticket: dict[str, Any], status: dict[str, Any], stamp: str) -> None:
    ticket["status"] = ref(status)
    ticket["closedFlag"] = bool(status["closedStatus"])
    ticket["closedDate"] = stamp if status["closedStatus"] else None
    if status["closedStatus"]:
        ticket["closedBy"] = "deskbridge-api"


def create_ticket(fake: FakeConnectWise, body: dict[str, Any]) -> dict[str, Any]:
    summary = body.get("summary")
    if not summary or not str(summary).strip():
        raise invalid("ServiceTicket", "summary", "The summary field is required.", code="Required")
    if len(summary) > 100:
        raise invalid("ServiceTicket", "summary", "The summary field is limited to 100 characters.")
    if "company" not in body:
        raise invalid("ServiceTicket", "company", "The company field is required.", code="Required")
    company = _resolve(fake, "company", body["company"])
    board = _resolve(fake, "board", body["board"]) if "board" in body else fake.boards[min(fake.boards)]
    if "status" in body:
        status = _resolve(fake, "status", body["status"], board["id"])
    else:
        status = next(s for s in fake.board_statuses(board["id"]) if s["defaultFlag"])
    prio = (_resolve(fake, "priority", body["priority"]) if "priority" in body else
            next(p for p in fake.priorities.values() if p["defaultFlag"]))
    ext = body.get("externalXRef")
    if ext is not None and len(str(ext)) > 100:
        raise invalid("ServiceTicket", "externalXRef", "The externalXRef field is limited to 100 characters.")
    tid = fake.next_id("ticket", 1000)
    stamp = fake.now()
    ticket = ticket_record(fake, tid, summary, board, status, company, prio, stamp)
    if "contact" in body:
        contact = _resolve(fake, "contact", body["contact"])
        ticket["contact"] = {"id": contact["id"], "name": f"{contact['firstName']} {contact['lastName']}"}
        ticket["contactEmailAddress"] = contact["communicationItems"][0]["value"]
    if "owner" in body:
        ticket["owner"] = member_ref(_resolve(fake, "owner", body["owner"]))
    if "type" in body:
        ticket["type"] = ref(_resolve(fake, "type", body["type"], board["id"]))
    _catalogue(fake, ticket, {k: body[k] for k in ("subType", "item") if k in body})
    for flag in ("externalXRef", "automaticEmailContactFlag", "automaticEmailResourceFlag", "automaticEmailCcFlag"):
        if flag in body:
            ticket[flag] = body[flag]
    fake.tickets[tid] = ticket
    if body.get("initialDescription"):  # POST-only: becomes the first Discussion note, never returned
        _store_note(fake, ticket, {"text": body["initialDescription"], "detailDescriptionFlag": True}, stamp)
    fake.touch()
    return ticket


def patch_ticket(fake: FakeConnectWise, tid: int, ops: Any, *, updated_by: str = "deskbridge-api"
                 ) -> dict[str, Any]:
    ticket = fake.tickets.get(tid)
    if ticket is None:
        raise HttpError(404, "NotFound", f"Ticket {tid} was not found.")
    if not isinstance(ops, list) or not ops:
        raise HttpError(400, "InvalidObject", "A JSON Patch array is required.")
    work = {k: (dict(v) if isinstance(v, dict) else v) for k, v in ticket.items()}
    stamp = fake.now()
    changes: dict[str, Any] = {}
    for op in ops:
        kind, path = op.get("op"), str(op.get("path", "")).lstrip("/")
        if kind not in ("add", "replace", "remove"):
            raise HttpError(400, "InvalidObject", f"Unsupported patch operation {kind!r}.")
        head, _, sub = path.partition("/")
        if head not in TICKET_PATCHABLE:  # case-sensitive, like ConnectWise
            raise invalid("ServiceTicket", path, f"Cannot apply a patch to path '{path}'.")
        value = None if kind == "remove" else op.get("value")
        changes[head] = {sub: value} if sub and value is not None else value
    board = work["board"]
    if "board" in changes:
        board_row = _resolve(fake, "board", changes["board"])
        board = ref(board_row)
        work["board"] = board
        if "status" not in changes:
            changes["status"] = {"id": next(s["id"] for s in fake.board_statuses(board_row["id"]) if s["defaultFlag"])}
    for name, value in changes.items():
        if name == "board":
            continue
        if name == "summary":
            if not value or len(value) > 100:
                raise invalid("ServiceTicket", "summary", "The summary must be 1 to 100 characters.")
            work["summary"] = value
        elif name == "status":
            _set_status(fake, work, _resolve(fake, "status", value, board["id"]), stamp)
        elif name == "priority":
            work["priority"] = ref(_resolve(fake, "priority", value))
        elif name == "owner":
            if value is None:
                work.pop("owner", None)
            else:
                work["owner"] = member_ref(_resolve(fake, "owner", value))
        elif name == "company":
            work["company"] = ref(_resolve(fake, "company", value), "identifier")
        elif name == "contact":
            if value is None:
                work.pop("contact", None)
            else:
                c = _resolve(fake, "contact", value)
                work["contact"] = {"id": c["id"], "name": f"{c['firstName']} {c['lastName']}"}
        elif name == "type":
            if value is None:
                work.pop("type", None)
            else:
                work["type"] = ref(_resolve(fake, "type", value, board["id"]))
        elif name in ("subType", "item"):
            continue  # after the type and board: checked together against the board's associations
        elif value is None:
            work.pop(name, None)
        else:
            work[name] = value
    _catalogue(fake, work, {k: v for k, v in changes.items() if k in ("subType", "item")})
    work["_info"] = {**ticket["_info"], "lastUpdated": stamp, "updatedBy": updated_by}
    fake.tickets[tid] = work
    fake.touch()
    return work


@route("GET", "/service/tickets")
def list_tickets(fake: FakeConnectWise, req: FakeRequest) -> FakeResponse:
    return listing(fake, req, "tickets", lambda: list(fake.tickets.values()))


@route("GET", "/service/tickets/count")
def count_tickets(fake: FakeConnectWise, req: FakeRequest) -> FakeResponse:
    try:
        pred = compile_conditions(req.query.get("conditions"))
    except ConditionError as exc:
        raise HttpError(400, "InvalidObject", f"Invalid conditions: {exc}") from exc
    return json_response(200, {"count": sum(1 for t in fake.tickets.values() if pred(t))})


@route("POST", "/service/tickets")
def post_ticket(fake: FakeConnectWise, req: FakeRequest) -> FakeResponse:
    body = _body(req)
    if not isinstance(body, dict):
        raise HttpError(400, "InvalidObject", "A ticket object is required.")
    return json_response(201, create_ticket(fake, body))


@route("GET", "/service/tickets/{id}")
def get_ticket(fake: FakeConnectWise, req: FakeRequest, id: int) -> FakeResponse:
    ticket = fake.tickets.get(id)
    if ticket is None:
        raise HttpError(404, "NotFound", f"Ticket {id} was not found.")
    return json_response(200, project(ticket, req.query.get("fields")))


@route("PATCH", "/service/tickets/{id}")
def patch_ticket_route(fake: FakeConnectWise, req: FakeRequest, id: int) -> FakeResponse:
    return json_response(200, patch_ticket(fake, id, _body(req)))


@route("DELETE", "/service/tickets/{id}")
def delete_ticket(fake: FakeConnectWise, req: FakeRequest, id: int) -> FakeResponse:
    if fake.tickets.pop(id, None) is None:
        raise HttpError(404, "NotFound", f"Ticket {id} was not found.")
    fake.touch()
    return FakeResponse(204)


# ---------------------------------------------------------------- notes


def _store_note(fake: FakeConnectWise, ticket: dict[str, Any], body: dict[str, Any], stamp: str) -> dict[str, Any]:
    nid = fake.next_id("note", 9000)
    note: dict[str, Any] = {
        "id": nid, "ticketId": ticket["id"], "text": body["text"],
        "detailDescriptionFlag": bool(body.get("detailDescriptionFlag")),
        "internalAnalysisFlag": bool(body.get("internalAnalysisFlag")),
        "resolutionFlag": bool(body.get("resolutionFlag")), "issueFlag": False,
        "customerUpdatedFlag": bool(body.get("customerUpdatedFlag")),
        "processNotifications": body.get("processNotifications", True),
        "dateCreated": stamp, "createdBy": "deskbridge-api", "internalFlag": bool(body.get("internalAnalysisFlag")),
        "externalFlag": bool(body.get("detailDescriptionFlag")), "_info": {"lastUpdated": stamp},
    }
    if "contact" in body:
        c = _resolve(fake, "contact", body["contact"])
        note["contact"] = {"id": c["id"], "name": f"{c['firstName']} {c['lastName']}"}
        note["createdBy"] = "Email Connector"
    else:
        member = _resolve(fake, "member", body["member"]) if "member" in body else fake.members[fake.api_member_id]
        note["member"] = member_ref(member)
        note["createdBy"] = member["identifier"]
    fake.notes[nid] = note
    return note


def create_note(fake: FakeConnectWise, tid: int, body: Any, *, direct: bool = False) -> dict[str, Any]:
    ticket = fake.tickets.get(tid)
    if ticket is None:
        raise HttpError(404, "NotFound", f"Ticket {tid} was not found.")
    if not isinstance(body, dict) or not str(body.get("text") or "").strip():
        raise invalid("ServiceNote", "text", "The text field is required.", code="Required")
    if not any(body.get(f) for f in ("detailDescriptionFlag", "internalAnalysisFlag", "resolutionFlag")):
        raise invalid("ServiceNote", "detailDescriptionFlag",
                      "At least one of detailDescriptionFlag, internalAnalysisFlag or resolutionFlag must be true.")
    stamp = fake.now()
    note = _store_note(fake, ticket, body, stamp)
    if body.get("customerUpdatedFlag"):
        ticket["customerUpdatedFlag"] = True
    ticket["_info"] = {**ticket["_info"], "lastUpdated": stamp}
    if note["processNotifications"] and ticket.get("automaticEmailContactFlag") and ticket.get("contactEmailAddress"):
        fake.emails.append({"to": ticket["contactEmailAddress"], "ticket_id": tid, "note_id": note["id"],
                            "text": note["text"]})
    fake.touch()
    return note


@route("GET", "/service/tickets/{id}/notes")
def list_notes(fake: FakeConnectWise, req: FakeRequest, id: int) -> FakeResponse:
    if id not in fake.tickets:
        raise HttpError(404, "NotFound", f"Ticket {id} was not found.")
    return listing(fake, req, f"notes:{id}", lambda: notes_of(fake, id))


def notes_of(fake: FakeConnectWise, ticket_id: int) -> list[dict[str, Any]]:
    """A ticket's notes, through an index rebuilt whenever notes were added or removed (a real server
    does not scan every note of the tenant per request; benchmarks with 100k notes need the same)."""
    index = fake.__dict__.get("_notes_by_ticket")
    if index is None or index[0] != len(fake.notes) or index[1] is not fake.notes:
        by_ticket: dict[int, list[dict[str, Any]]] = {}
        for note in fake.notes.values():
            by_ticket.setdefault(note["ticketId"], []).append(note)
        fake.__dict__["_notes_by_ticket"] = index = (len(fake.notes), fake.notes, by_ticket)
    return list(index[2].get(ticket_id, []))


@route("POST", "/service/tickets/{id}/notes")
def post_note(fake: FakeConnectWise, req: FakeRequest, id: int) -> FakeResponse:
    return json_response(201, create_note(fake, id, _body(req)))


# Time entries, documents and callbacks live in connectwise_routes_records (registered on import).
from tests.fakes import connectwise_routes_records  # noqa: E402,F401
