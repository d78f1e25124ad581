"""Webhooks of the fake Autotask server (reference/psa-apis.md §3.7): registration entities and delivery.

    POST {E}/query        POST|PATCH {E}        DELETE {E}/{id}             E = TicketWebhooks | TicketNoteWebhooks
    GET|POST {E}/{id}/Fields   GET|POST {E}/{id}/ExcludedResources
    GET {E minus s}Fields/entityInformation/fields   the `fieldID` picklist (webhook field ids by field name)

Creates need `name` (≤ 50), `webhookUrl` and `deactivationUrl` (≤ 500), `secretKey` (≤ 64). A webhook fires
only when active and ready (at least one subscribed field); an update fires only when a subscribed field
changed; writes by an excluded resource never fire. Deliveries are recorded in `fake.deliveries` as
(url, headers, body): the raw JSON, signed the way Autotask does it, over a copy in which the characters
& < > ' " ` + inside strings and every non-ASCII character are written \\uXXXX (test data holds no
backslashes, which this simple escaping does not handle).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from tests.fakes import autotask_query as q
from tests.fakes.autotask_http import AtError, FakeRequest, FakeResponse, json_response, rejected
from tests.fakes.autotask_schema import SPECS, EntitySpec

if TYPE_CHECKING:
    from tests.fakes.autotask import FakeAutotask

Handler = Callable[["FakeAutotask", FakeRequest], FakeResponse]
HOOK_SPEC = {"name": "s", "webhookUrl": "s", "deactivationUrl": "s", "secretKey": "s", "isActive": "b",
             "isReady": "b", "isSubscribedToCreateEvents": "b", "isSubscribedToUpdateEvents": "b",
             "isSubscribedToDeleteEvents": "b", "notificationEmailAddress": "s",
             "sendThresholdExceededNotification": "b", "ownerResourceID": "i", "webhookGUID": "s", "id": "i"}
ENTITIES = {"ticketwebhooks": ("TicketWebhooks", "Tickets", "Ticket"),
            "ticketnotewebhooks": ("TicketNoteWebhooks", "TicketNotes", "TicketNote")}
FIELD_ENTITIES = {"ticketwebhookfields": "Tickets", "ticketnotewebhookfields": "TicketNotes"}
LIMITS = {"name": 50, "webhookUrl": 500, "deactivationUrl": 500, "secretKey": 64}


def field_ids(entity: str) -> dict[str, int]:
    """Webhook field ids of an entity's fields (stable: position in the schema, from 1)."""
    return {name: i for i, name in enumerate(SPECS[entity].fields, start=1)}


def signed_form(body: dict[str, Any]) -> bytes:
    """The form Autotask signs: ASCII JSON with the special characters inside strings as \\uXXXX."""
    text = json.dumps(body, ensure_ascii=True)
    for ch in "&<>'`+":
        text = text.replace(ch, f"\\u{ord(ch):04x}")
    return text.replace('\\"', "\\u0022").encode()


def delivery(secret: str, entity_type: str, action: str, fields: dict[str, Any], *, guid: str, sequence: int,
             record_id: int | None = None, person: int | None = None) -> tuple[dict[str, str], bytes]:
    """Headers and raw body of one callout (signed over the escaped form, sent as raw UTF-8 JSON)."""
    payload = {"Action": action, "Guid": guid, "EntityType": entity_type,
               "Id": record_id if record_id is not None else fields.get("id"),
               "Fields": {k[0].upper() + k[1:]: v for k, v in fields.items()},
               "EventTime": "2026-03-02T09:00:00Z", "SequenceNumber": sequence, "PersonID": person}
    digest = hmac.new(secret.encode(), signed_form(payload), hashlib.sha1).digest()
    headers = {"Content-Type": "application/json", "X-Hook-Signature": "sha1=" + base64.b64encode(digest).decode()}
    return headers, json.dumps(payload, ensure_ascii=False).encode()


def route(req: FakeRequest, parts: list[str]) -> tuple[str, Handler, bool] | None:
    """(template, handler(fake, req), write) for a webhook path, or None when the path is not one."""
    low = [p.lower() for p in parts]
    m = req.method
    if low[0] in FIELD_ENTITIES and low[1:] == ["entityinformation", "fields"] and m == "GET":
        entity = FIELD_ENTITIES[low[0]]
        return f"/{parts[0]}/entityInformation/fields", lambda fake, r: _field_picklist(entity), False
    if low[0] not in ENTITIES:
        return None
    name = ENTITIES[low[0]][0]
    if low[1:] == ["query"] and m == "POST":
        return f"/{name}/query", lambda fake, r: _query(fake, name, r), False
    if len(low) == 1 and m in ("POST", "PATCH"):
        return f"/{name}", lambda fake, r: _save(fake, name, r.json(), create=m == "POST"), True
    if len(low) >= 2 and low[1].isdigit():
        hid = int(low[1])
        if len(low) == 2 and m == "DELETE":
            return f"/{name}/{{id}}", lambda fake, r: _delete(fake.webhooks[name], hid), True
        if len(low) == 3 and low[2] in ("fields", "excludedresources"):
            kind = "fields" if low[2] == "fields" else "excluded"
            label = "Fields" if kind == "fields" else "ExcludedResources"
            if m == "GET":
                return f"/{name}/{{id}}/{label}", lambda fake, r: _children(fake.webhooks[name], hid, kind), False
            if m == "POST":
                return (f"/{name}/{{id}}/{label}",
                        lambda fake, r: _add_child(fake, name, hid, kind, r.json()), True)
    return None


def _query(fake: FakeAutotask, name: str, req: FakeRequest) -> FakeResponse:
    spec = EntitySpec(name, name[:-1], dict(HOOK_SPEC))
    rows = [{k: v for k, v in h.items() if k not in ("fields", "excluded")} for h in fake.webhooks[name].values()]
    return json_response(200, q.run(spec, req.json(), rows, [], next_base=f"{name}/query/next"))


def _field_picklist(entity: str) -> FakeResponse:
    values = [{"value": str(i), "label": n, "isActive": True, "isDefaultValue": False, "sortOrder": i,
               "parentValue": "", "isSystem": False} for n, i in field_ids(entity).items()]
    return json_response(200, {"fields": [{"name": "fieldID", "dataType": "integer", "isPickList": True,
                                           "picklistValues": values, "isRequired": True, "isReadOnly": False}]})


def _save(fake: FakeAutotask, name: str, body: Any, *, create: bool) -> FakeResponse:
    if not isinstance(body, dict):
        raise AtError(400, "The request body must be a JSON object.")
    table = fake.webhooks[name]
    data = {k2: v for k, v in body.items() for k2 in HOOK_SPEC if k.lower() == k2.lower()}
    for key, limit in LIMITS.items():
        if data.get(key) is not None and len(str(data[key])) > limit:
            raise rejected(f"The value for field {key} exceeds the maximum length of {limit} characters.")
    if create:
        missing = [k for k in ("name", "webhookUrl", "deactivationUrl") if not data.get(k)]
        if missing:
            raise rejected(*(f"Missing required field: {k}." for k in missing))
        hid = fake.next_hook_id = fake.next_hook_id + 1
        table[hid] = {**{k: None for k in HOOK_SPEC}, **data, "id": hid, "isReady": False,
                      "ownerResourceID": fake.acting, "webhookGUID": f"{hid:08d}-0000-4000-8000-00000000a7a7",
                      "fields": [], "excluded": []}
        return json_response(200, {"itemId": hid})
    hid = data.get("id")
    if not isinstance(hid, int) or hid not in table:
        raise rejected(f"No matching records found. The webhook with id {hid} does not exist.")
    table[hid].update({k: v for k, v in data.items() if k not in ("isReady", "ownerResourceID", "webhookGUID")})
    return json_response(200, {"itemId": hid})


def _delete(table: dict[int, dict[str, Any]], hid: int) -> FakeResponse:
    if table.pop(hid, None) is None:
        raise rejected("No matching records found.")
    return json_response(200, {"itemId": hid})


def _children(table: dict[int, dict[str, Any]], hid: int, kind: str) -> FakeResponse:
    hook = table.get(hid)
    items = [] if hook is None else hook[kind]
    return json_response(200, {"items": items, "pageDetails": {"count": len(items)}})


def _add_child(fake: FakeAutotask, name: str, hid: int, kind: str, body: Any) -> FakeResponse:
    hook = fake.webhooks[name].get(hid)
    if hook is None or not isinstance(body, dict):
        raise rejected("Value does not reference an existing entity for webhookID .")
    low = {k.lower(): v for k, v in body.items()}
    fake.next_hook_id += 1
    if kind == "fields":
        entity = "TicketNotes" if "Note" in name else "Tickets"
        if low.get("fieldid") not in field_ids(entity).values():
            raise rejected("Value does not reference an existing entity for fieldID .")
        row = {"id": fake.next_hook_id, "webhookID": hid, "fieldID": low["fieldid"],
               "isSubscribedField": bool(low.get("issubscribedfield")),
               "isDisplayAlwaysField": bool(low.get("isdisplayalwaysfield"))}
        hook["isReady"] = hook["isReady"] or row["isSubscribedField"]
    else:
        if low.get("resourceid") not in fake.tables["Resources"]:
            raise rejected("Value does not reference an existing entity for resourceID .")
        row = {"id": fake.next_hook_id, "webhookID": hid, "resourceID": low["resourceid"]}
    hook[kind].append(row)
    return json_response(200, {"itemId": row["id"]})


def emit(fake: FakeAutotask, entity: str, action: str, record: dict[str, Any], changed: set[str] | None = None) -> None:
    """Record the callouts a change makes (called by the fake's write paths)."""
    name = "TicketWebhooks" if entity == "Tickets" else "TicketNoteWebhooks"
    ids = {i: n for n, i in field_ids(entity).items()}
    for hook in fake.webhooks[name].values():
        flag = {"Create": "isSubscribedToCreateEvents", "Update": "isSubscribedToUpdateEvents",
                "Delete": "isSubscribedToDeleteEvents"}[action]
        if not (hook["isActive"] and hook["isReady"] and hook.get(flag)):
            continue
        if any(r["resourceID"] == fake.acting for r in hook["excluded"]):
            continue
        subscribed = {ids[f["fieldID"]] for f in hook["fields"] if f["isSubscribedField"]}
        if action == "Update" and changed is not None and not (subscribed & changed):
            continue
        shown = {ids[f["fieldID"]] for f in hook["fields"]} | {"id"}
        fields = {k: v for k, v in record.items() if k in shown}
        fake.hook_sequence += 1
        headers, body = delivery(str(hook.get("secretKey") or ""), entity[:-1], action, fields,
                                 guid=hook["webhookGUID"], sequence=fake.hook_sequence, record_id=record["id"],
                                 person=fake.acting)
        fake.deliveries.append((str(hook["webhookUrl"]), headers, body))
