"""Fake ConnectWise handlers for time entries, documents, callbacks and configurations (see
tests/fakes/connectwise.py)."""

from __future__ import annotations

from datetime import timedelta
from email.parser import BytesParser
from email.policy import HTTP
from typing import TYPE_CHECKING, Any

from tests.fakes.connectwise_conditions import parse_datetime, project
from tests.fakes.connectwise_http import FakeRequest, FakeResponse, HttpError, invalid, json_response
from tests.fakes.connectwise_routes import _body, _resolve, listing, member_ref, route

if TYPE_CHECKING:
    from tests.fakes.connectwise import FakeConnectWise


# ---------------------------------------------------------------- time entries


@route("GET", "/time/entries")
def list_time(fake: FakeConnectWise, req: FakeRequest) -> FakeResponse:
    return listing(fake, req, "time", lambda: list(fake.time_entries.values()))


@route("GET", "/time/entries/{id}")
def get_time(fake: FakeConnectWise, req: FakeRequest, id: int) -> FakeResponse:
    if id not in fake.time_entries:
        raise HttpError(404, "NotFound", f"Time entry {id} was not found.")
    return json_response(200, fake.time_entries[id])


@route("POST", "/time/entries")
def post_time(fake: FakeConnectWise, req: FakeRequest) -> FakeResponse:
    body = _body(req)
    if not isinstance(body, dict):
        raise HttpError(400, "InvalidObject", "A time entry object is required.")
    if body.get("chargeToType") not in ("ServiceTicket", "ProjectTicket", "ChargeCode", "Activity"):
        raise invalid("TimeEntry", "chargeToType", "chargeToType must be ServiceTicket, ProjectTicket, ChargeCode "
                      "or Activity.")
    ticket = fake.tickets.get(body.get("chargeToId"))  # type: ignore[arg-type]
    if ticket is None:
        raise invalid("TimeEntry", "chargeToId", f"Ticket {body.get('chargeToId')} was not found.",
                      code="InvalidReference")
    if not body.get("timeStart"):
        raise invalid("TimeEntry", "timeStart", "The timeStart field is required.", code="Required")
    status = fake.statuses[ticket["status"]["id"]]
    if status.get("timeEntryNotAllowed"):
        raise invalid("TimeEntry", "chargeToId", "Time entries are not allowed for this ticket's status.")
    start = parse_datetime(body["timeStart"])
    if body.get("timeEnd"):
        end = parse_datetime(body["timeEnd"])
        if end <= start:
            raise invalid("TimeEntry", "timeEnd", "timeEnd must be after timeStart.")
        hours = round((end - start).total_seconds() / 3600, 2)
    else:
        hours = float(body.get("actualHours") or 0)
        end = start + timedelta(hours=hours)
    member = _resolve(fake, "member", body["member"]) if "member" in body else fake.members[fake.api_member_id]
    eid = fake.next_id("time", 700)
    stamp = fake.now()
    from tests.fakes.connectwise import iso

    entry = {"id": eid, "chargeToId": ticket["id"], "chargeToType": body["chargeToType"],
             "company": dict(ticket["company"]), "member": member_ref(member), "timeStart": iso(start),
             "timeEnd": iso(end), "actualHours": hours, "billableOption": body.get("billableOption", "Billable"),
             "notes": body.get("notes", ""), "internalNotes": body.get("internalNotes", ""),
             "addToDetailDescriptionFlag": bool(body.get("addToDetailDescriptionFlag")),
             "addToInternalAnalysisFlag": bool(body.get("addToInternalAnalysisFlag")),
             "addToResolutionFlag": bool(body.get("addToResolutionFlag")),
             "emailContactFlag": bool(body.get("emailContactFlag")), "_info": {"lastUpdated": stamp,
                                                                                 "dateEntered": stamp}}
    fake.time_entries[eid] = entry
    ticket["_info"] = {**ticket["_info"], "lastUpdated": stamp}
    fake.touch()
    return json_response(201, entry)


# ---------------------------------------------------------------- documents


def _multipart(req: FakeRequest) -> dict[str, tuple[str | None, bytes]]:
    ctype = req.headers.get("content-type", "")
    if not ctype.startswith("multipart/form-data"):
        raise HttpError(415, "UnsupportedMediaType", "Documents must be uploaded as multipart/form-data.")
    msg = BytesParser(policy=HTTP).parsebytes(b"Content-Type: " + ctype.encode() + b"\r\n\r\n" + req.body)
    parts: dict[str, tuple[str | None, bytes]] = {}
    for part in msg.iter_parts():
        name = part.get_param("name", header="content-disposition")
        parts[str(name)] = (part.get_filename(), part.get_payload(decode=True) or b"")
    return parts


@route("POST", "/system/documents")
def post_document(fake: FakeConnectWise, req: FakeRequest) -> FakeResponse:
    parts = _multipart(req)
    if "file" not in parts:
        raise invalid("Document", "file", "A file is required.", code="Required")
    filename, content = parts["file"]
    if len(content) > fake.max_document_bytes:
        raise HttpError(413, "RequestEntityTooLarge", "The document is larger than the allowed size.")
    record_type = parts.get("recordType", (None, b""))[1].decode()
    record_id = int(parts.get("recordId", (None, b"0"))[1] or 0)
    if record_type == "Ticket" and record_id not in fake.tickets:
        raise invalid("Document", "recordId", f"Ticket {record_id} was not found.", code="InvalidReference")
    did = fake.next_id("document", 3000)
    stamp = fake.now()
    title = parts.get("title", (None, (filename or "").encode()))[1].decode()
    # As the tenant's default: a document uploaded without privateFlag is public (shown in the portal).
    private = parts.get("privateFlag", (None, b"false"))[1].decode().lower() == "true"
    doc = {"id": did, "title": title, "fileName": filename, "serverFileName": f"{did}-{filename}",
           "owner": "deskbridge-api", "size": len(content), "publicFlag": not private, "readOnlyFlag": False,
           "imageFlag": (filename or "").lower().endswith((".png", ".jpg", ".jpeg", ".gif")), "urlFlag": False,
           "linkFlag": False, "guid": f"00000000-0000-0000-0000-{did:012d}", "recordType": record_type,
           "recordId": record_id, "_info": {"lastUpdated": stamp, "dateEntered": stamp}}
    fake.documents[did] = doc
    fake.document_content[did] = content
    fake.touch()
    return json_response(201, doc)


@route("GET", "/system/documents")
def list_documents(fake: FakeConnectWise, req: FakeRequest) -> FakeResponse:
    rtype, rid = req.query.get("recordtype"), req.query.get("recordid")

    def rows() -> list[dict[str, Any]]:
        return [d for d in fake.documents.values()
                if (rtype is None or d["recordType"] == rtype) and (rid is None or str(d["recordId"]) == rid)]

    return listing(fake, req, f"documents:{rtype}:{rid}", rows)


@route("GET", "/system/documents/{id}/download")
def download_document(fake: FakeConnectWise, req: FakeRequest, id: int) -> FakeResponse:
    if id not in fake.documents:
        raise HttpError(404, "NotFound", f"Document {id} was not found.")
    name = fake.documents[id]["fileName"]
    return FakeResponse(200, fake.document_content[id], {"content-type": "application/octet-stream",
                                                         "content-disposition": f'attachment; filename="{name}"'})


# ---------------------------------------------------------------- callbacks


@route("GET", "/system/callbacks")
def list_callbacks(fake: FakeConnectWise, req: FakeRequest) -> FakeResponse:
    return listing(fake, req, "callbacks", lambda: list(fake.callbacks.values()))


@route("POST", "/system/callbacks")
def post_callback(fake: FakeConnectWise, req: FakeRequest) -> FakeResponse:
    body = _body(req)
    for name in ("url", "objectId", "type", "level"):
        if not isinstance(body, dict) or body.get(name) in (None, ""):
            raise invalid("CallbackEntry", name, f"The {name} field is required.", code="Required")
    if len(str(body.get("description", ""))) > 100:
        raise invalid("CallbackEntry", "description", "The description field is limited to 100 characters.")
    cid = fake.next_id("callback", 60)
    entry = {"id": cid, "url": body["url"], "objectId": body["objectId"], "type": body["type"],
             "level": body["level"], "description": body.get("description", ""),
             "inactiveFlag": bool(body.get("inactiveFlag")), "isSoapCallbackFlag": False,
             "isSelfSuppressedFlag": bool(body.get("isSelfSuppressedFlag")), "memberId": fake.api_member_id,
             "payloadVersion": body.get("payloadVersion"), "_info": {"lastUpdated": fake.now()}}
    fake.callbacks[cid] = entry
    fake.touch()
    return json_response(201, entry)


@route("DELETE", "/system/callbacks/{id}")
def delete_callback(fake: FakeConnectWise, req: FakeRequest, id: int) -> FakeResponse:
    if fake.callbacks.pop(id, None) is None:
        raise HttpError(404, "NotFound", f"Callback {id} was not found.")
    fake.touch()
    return FakeResponse(204)


@route("GET", "/system/callbackkeys/{id}")
def callback_key(fake: FakeConnectWise, req: FakeRequest, id: int) -> FakeResponse:
    if id not in fake.signing_keys:
        raise HttpError(404, "NotFound", "Unknown key.")
    return json_response(200, {"signing_key": fake.signing_keys[id]})


# ---------------------------------------------------------------- configurations (devices) on tickets


@route("GET", "/service/tickets/{id}/configurations")
def list_ticket_configurations(fake: FakeConnectWise, req: FakeRequest, id: int) -> FakeResponse:
    """ConfigurationReference rows ({id, deviceIdentifier, _info}) in the order they were attached."""
    if id not in fake.tickets:
        raise HttpError(404, "NotFound", f"Ticket {id} was not found.")

    def refs() -> list[dict[str, Any]]:
        return [{"id": cid, "deviceIdentifier": fake.configurations[cid].get("deviceIdentifier", ""),
                 "_info": {"configuration_href": f"/company/configurations/{cid}"}}
                for cid in fake.ticket_configurations.get(id, []) if cid in fake.configurations]
    return listing(fake, req, f"ticket_configurations:{id}", refs)


@route("GET", "/company/configurations/{id}")
def get_configuration(fake: FakeConnectWise, req: FakeRequest, id: int) -> FakeResponse:
    if id not in fake.configurations:
        raise HttpError(404, "NotFound", f"Configuration {id} was not found.")
    return json_response(200, project(fake.configurations[id], req.query.get("fields")))
