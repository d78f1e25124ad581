"""Routing, authentication and the read endpoints of the fake Autotask server (see tests/fakes/autotask.py).

Paths are matched case-insensitively below `/atservicesrest/v1.0/` (IIS is case-insensitive); entity names
are recorded in their canonical spelling ("POST /Tickets/{id}/Notes").
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from tests.fakes import autotask_children as c
from tests.fakes import autotask_hooks as hooks
from tests.fakes import autotask_query as q
from tests.fakes import autotask_writes as w
from tests.fakes.autotask_http import AtError, FakeRequest, FakeResponse, json_response, rejected
from tests.fakes.autotask_schema import DATA_TYPES, SPECS, EntitySpec

if TYPE_CHECKING:
    from tests.fakes.autotask import FakeAutotask

Handler = Callable[..., FakeResponse]
MAX_URL = 2048  # IIS's default maxQueryString: longer GET queries and next-page URLs answer 404
API = re.compile(r"^(?P<prefix>(?:/webservices(?P<zone>\d+))?/atservicesrest/v1\.0/)(?P<rest>.*?)/?$", re.I)
HOST = re.compile(r"^webservices(?P<zone>\d*)\.autotask\.net(?::\d+)?$")
CHILDREN = {("tickets", "notes"): "TicketNotes", ("tickets", "attachments"): "TicketAttachments",
            ("companies", "contacts"): "Contacts"}
CREATE_AT_ROOT = {"Tickets", "TimeEntries", "Companies"}
UPDATE_AT_ROOT = {"Tickets", "TimeEntries", "Companies", "Resources"}


class Route:
    """A matched request: template for recording, handler, path params, and whether it writes."""

    def __init__(self, template: str, handler: Handler, params: dict[str, Any] | None = None,
                 write: bool = False, entity: str | None = None, authenticated: bool = True) -> None:
        self.template, self.handler, self.params = template, handler, params or {}
        self.write, self.entity, self.authenticated = write, entity, authenticated


def locate(req: FakeRequest) -> tuple[int | None, str | None, str]:
    """(zone number or None for the discovery host, API path below v1.0/ or None, URL prefix up to v1.0/)."""
    m = API.match(req.path)
    if not m:
        return None, None, ""
    zone = m.group("zone")
    host = HOST.match(req.host)
    if zone is None and host and host.group("zone"):
        zone = host.group("zone")
    base = req.url.split("?", 1)[0]
    prefix = base[: base.lower().find("/atservicesrest/v1.0/") + len("/atservicesrest/v1.0/")]
    return (int(zone) if zone else None), unquote(m.group("rest")), prefix


def _spec(name: str) -> EntitySpec | None:
    return next((s for s in SPECS.values() if s.name.lower() == name.lower()), None)


def _missing(template: str) -> Route:
    def handler(fake: FakeAutotask, req: FakeRequest) -> FakeResponse:
        raise AtError(404, f"No HTTP resource was found that matches the request URI '{req.url}'.", shape="message")

    return Route(template, handler, authenticated=False)


def match(req: FakeRequest, rest: str) -> Route:
    """The route of one API request (unknown paths answer 404 in ASP.NET's shape)."""
    parts = rest.split("/")
    low = [p.lower() for p in parts]
    m, n = req.method, len(parts)
    if low == ["zoneinformation"] and m == "GET":
        return Route("/zoneInformation", zone_information, authenticated=False)
    if low == ["thresholdinformation"] and m == "GET":
        return Route("/ThresholdInformation", threshold_information, entity="ThresholdInformation")
    hook = hooks.route(req, parts)
    if hook is not None:
        template, handler, write = hook
        return Route(template, lambda fake, r: handler(fake, r), write=write, entity=template.split("/")[1])
    spec = _spec(parts[0])
    if spec is None:
        return _missing("/" + rest)
    e = spec.name
    if n >= 2 and low[1] == "query":
        tail = "/".join(low[2:])
        if tail == "next":
            if m != "POST":
                return Route(f"/{e}/query/next", _method_not_allowed(m), entity=e)
            return Route(f"/{e}/query/next", query_next, {"spec": spec}, entity=e)
        if tail in ("", "count") and m in ("POST", "GET"):
            handler = query_count if tail == "count" else query
            return Route(f"/{e}/query" + ("/count" if tail else ""), handler, {"spec": spec}, entity=e)
    if n >= 2 and low[1] == "entityinformation":
        which = "/".join(low[2:])
        if m == "GET" and which in ("", "fields", "userdefinedfields"):
            return Route(f"/{e}/entityInformation" + (f"/{parts[2]}" if which else ""), entity_information,
                         {"spec": spec, "which": which}, entity=e)
    if n == 1:
        if m == "POST" and e in CREATE_AT_ROOT:
            return Route(f"/{e}", w.create_root, {"spec": spec}, write=True, entity=e)
        if m == "PATCH" and e in UPDATE_AT_ROOT:
            return Route(f"/{e}", w.update_root, {"spec": spec}, write=True, entity=e)
        return _missing(f"/{e}")  # e.g. POST /TicketNotes: children are created through their parent
    if not parts[1].isdigit():
        return _missing("/" + rest)
    pid = int(parts[1])
    if n == 2:
        if m == "GET":
            return Route(f"/{e}/{{id}}", get_by_id, {"spec": spec, "rid": pid}, entity=e)
        if m == "DELETE" and spec.can_delete and e == "TimeEntries":
            return Route(f"/{e}/{{id}}", w.delete_time_entry, {"rid": pid}, write=True, entity=e)
        return _missing(f"/{e}/{{id}}")
    child_name = CHILDREN.get((low[0], low[2]))
    if child_name is None:
        return _missing("/" + rest)
    child = SPECS[child_name]
    label = parts[2][0].upper() + parts[2][1:].lower()
    base = f"/{e}/{{id}}/{label}"
    if n == 3:
        if m == "GET":
            return Route(base, list_children, {"child": child, "parent": e, "pid": pid}, entity=child_name)
        if m == "POST":
            return Route(base, c.create_child, {"child": child, "pid": pid}, write=True, entity=child_name)
        if m == "PATCH" and child_name != "TicketAttachments":
            return Route(base, c.update_child, {"child": child, "pid": pid}, write=True, entity=child_name)
        return _missing(base)
    if n == 4 and parts[3].isdigit():
        cid = int(parts[3])
        if m == "GET":
            return Route(base + "/{id}", get_child, {"child": child, "pid": pid, "cid": cid}, entity=child_name)
        if m == "DELETE" and child_name == "TicketAttachments":
            return Route(base + "/{id}", c.delete_attachment, {"pid": pid, "cid": cid}, write=True,
                         entity=child_name)
    return _missing("/" + rest)


def _method_not_allowed(method: str) -> Handler:
    def handler(fake: FakeAutotask, req: FakeRequest) -> FakeResponse:
        raise AtError(405, f"The requested resource does not support http method '{method}'.", shape="message")

    return handler


# ---------------------------------------------------------------- auth


def authenticate(fake: FakeAutotask, req: FakeRequest, zone: int | None, write: bool) -> int:
    """The acting resource id; 401 for a bad secret or wrong zone, 500 for an unknown user or code."""
    h = req.headers
    code, user, secret = h.get("apiintegrationcode"), h.get("username"), h.get("secret")
    if not (code and user and secret):
        raise AtError(401, "Authorization has been denied for this request.", shape="message")
    if fake.auth_quirks and (user.lower() != fake.username.lower() or code != fake.integration_code):
        # Reported: an unknown user name or integration code answers 500, not 401 (apigrate/autotask-restapi#19)
        raise rejected("Unable to authenticate: the user name or API integration code is not valid.")
    if fake.auth_revoked or secret != fake.secret or user.lower() != fake.username.lower() \
            or code != fake.integration_code or zone != fake.zone:
        raise AtError(401, "Authorization has been denied for this request.", shape="message")
    acting = fake.api_resource_id
    impersonate = h.get("impersonationresourceid")
    if write and impersonate:
        res = fake.tables["Resources"].get(int(impersonate)) if impersonate.isdigit() else None
        if res is None or not res["isActive"]:
            raise rejected(f"ImpersonationResourceId {impersonate} does not reference an active resource.")
        acting = res["id"]
    return acting


# ---------------------------------------------------------------- read handlers


def zone_information(fake: FakeAutotask, req: FakeRequest) -> FakeResponse:
    user = req.query.get("user", "")
    if not user.strip() or user.lower() != fake.username.lower():
        raise rejected("Unable to find zone information for the user name supplied.")  # documented: 500
    host = req.host
    if HOST.match(host):
        url, web = f"https://webservices{fake.zone}.autotask.net/ATServicesRest/", f"https://ww{fake.zone}.autotask.net/"
    else:
        url, web = f"http://{host}/webservices{fake.zone}/ATServicesRest/", f"http://{host}/ww{fake.zone}/"
    return json_response(200, {"zoneName": f"Test Zone {fake.zone}", "url": url, "webUrl": web, "ci": fake.ci})


def threshold_information(fake: FakeAutotask, req: FakeRequest) -> FakeResponse:
    return json_response(200, {"externalRequestThreshold": fake.threshold,
                               "requestThresholdTimeframe": fake.threshold_minutes,
                               "currentTimeframeRequestCount": fake.usage()})


def _body(req: FakeRequest) -> Any:
    if req.method == "GET":
        raw = req.query.get("search")
        if raw is None:
            raise AtError(400, "The search parameter is required for a GET query.")
        text = raw
    else:
        text = req.body.decode() if req.body else ""
    try:
        return json.loads(text) if text else None
    except ValueError:
        raise AtError(400, "The request body is not valid JSON.") from None


def _check_url(req: FakeRequest) -> None:
    if req.method == "GET" and len(req.url) > MAX_URL:
        raise AtError(404, "Not Found", shape="message")  # KelvinTegelaar/AutotaskAPI#66


def query(fake: FakeAutotask, req: FakeRequest, spec: EntitySpec) -> FakeResponse:
    _check_url(req)
    body = _body(req)
    return json_response(200, q.run(spec, body, fake.visible(spec.name), fake.udf_names(spec.name),
                                    next_base=fake.prefix_of(req) + f"{spec.name}/query/next"))


def query_next(fake: FakeAutotask, req: FakeRequest, spec: EntitySpec) -> FakeResponse:
    _check_url(req)
    state = q.read_token(req.query.get("paging", ""))
    body = _body(req)
    if state.get("hash") != q.body_hash(body):
        raise rejected("The next page must be requested with the same query body as the first page.")
    return json_response(200, q.run(spec, body, fake.visible(spec.name), fake.udf_names(spec.name),
                                    next_base=fake.prefix_of(req) + f"{spec.name}/query/next",
                                    after=state.get("after"), history=state.get("hist")))


def query_count(fake: FakeAutotask, req: FakeRequest, spec: EntitySpec) -> FakeResponse:
    _check_url(req)
    return json_response(200, {"queryCount": q.count(spec, _body(req), fake.visible(spec.name),
                                                     fake.udf_names(spec.name))})


def get_by_id(fake: FakeAutotask, req: FakeRequest, spec: EntitySpec, rid: int) -> FakeResponse:
    record = fake.visible_record(spec.name, rid)
    return json_response(200, {"item": None if record is None else q.project(spec, record, None)})


def list_children(fake: FakeAutotask, req: FakeRequest, child: EntitySpec, parent: str, pid: int) -> FakeResponse:
    link = {"TicketNotes": "ticketID", "TicketAttachments": "parentID", "Contacts": "companyID"}[child.name]
    rows = sorted((r for r in fake.visible(child.name) if r.get(link) == pid), key=lambda r: r["id"])
    items = [q.project(child, r, None) for r in rows]
    return json_response(200, {"items": items, "pageDetails": {"count": len(items), "requestCount": len(items),
                                                               "prevPageUrl": None, "nextPageUrl": None}})


def get_child(fake: FakeAutotask, req: FakeRequest, child: EntitySpec, pid: int, cid: int) -> FakeResponse:
    record = fake.visible_record(child.name, cid)
    link = {"TicketNotes": "ticketID", "TicketAttachments": "parentID", "Contacts": "companyID"}[child.name]
    if record is not None and record.get(link) != pid:
        record = None
    if child.name == "TicketAttachments":  # answered in the query shape, with the file data
        return json_response(200, {"items": [] if record is None else [dict(record)]})
    return json_response(200, {"item": None if record is None else q.project(child, record, None)})


def entity_information(fake: FakeAutotask, req: FakeRequest, spec: EntitySpec, which: str) -> FakeResponse:
    if which == "":
        access = {True: "All", False: "None"}
        return json_response(200, {"info": {
            "name": spec.label, "canCreate": spec.can_create, "canUpdate": spec.can_update,
            "canDelete": spec.can_delete, "canQuery": True, "hasUserDefinedFields": spec.udfs,
            "supportsWebhookCallouts": spec.name in ("Tickets", "TicketNotes", "Companies", "Contacts"),
            "userAccessForCreate": access[spec.can_create], "userAccessForUpdate": access[spec.can_update],
            "userAccessForDelete": access[spec.can_delete], "userAccessForQuery": "All"}})
    if which == "userdefinedfields":
        return json_response(200, {"fields": [
            {"name": u.name, "label": u.label, "type": u.data_type, "length": u.length, "description": "",
             "isRequired": u.required, "isReadOnly": u.read_only, "isQueryable": True, "isReference": False,
             "isPickList": False, "picklistValues": None, "picklistParentValueField": "",
             "referenceEntityType": "", "defaultValue": None, "isSupportedWebhookField": True}
            for u in fake.udfs.get(spec.name, [])]})
    picks = fake.picklists.get(spec.name, {})
    fields = []
    for name, kind in spec.fields.items():
        if kind == "u":
            continue
        ref = spec.references.get(name)
        values = picks.get(name)
        fields.append({
            "name": name, "dataType": DATA_TYPES[kind], "length": spec.lengths.get(name, 0 if kind != "s" else 100),
            "isRequired": name in spec.required, "isReadOnly": name in spec.read_only,
            "isQueryable": name not in q.NOT_QUERYABLE, "isReference": ref is not None,
            "referenceEntityType": SPECS[ref].label if ref else "", "isPickList": values is not None,
            "picklistValues": [p.wire() for p in values] if values is not None else None,
            "picklistParentValueField": "issueType" if name == "subIssueType" else "",
            "isSupportedWebhookField": spec.name in ("Tickets", "TicketNotes")})
    return json_response(200, {"fields": fields})
