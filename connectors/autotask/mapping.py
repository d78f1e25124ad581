"""Autotask JSON <-> canonical models (pure: no I/O, no clock). Vendor JSON never leaves this folder.

Every picklist id is resolved through the tenant's `AtPicklists` (connectors/autotask/picklists.py) and
every write picks values by label; note visibility follows the `publish` label, never a hard-coded id.

Canonical shape of an Autotask ticket: board = queue (`queueID`), status and priority are global picklists,
type = `ticketType`; issue/sub-issue types are available through `issue_refs`. Times are UTC strings
(`2026-01-05T12:00:00.25Z`, fractions of 0-7 digits; a naive string is read as UTC).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from connectors.autotask.picklists import (
    STATUS_COMPLETE,
    AtPicklists,
    FieldPicklists,
    publish_value,
    publish_visibility,
)
from connectors.autotask.picklists import ref_id as _id
from connectors.autotask.query import format_dt
from connectors.base import (
    NewAttachment,
    NewNote,
    NewTicket,
    NewTimeEntry,
    NoteVisibility,
    PsaAttachment,
    PsaCompany,
    PsaContact,
    PsaMember,
    PsaNote,
    PsaTicket,
    PsaTimeEntry,
    Ref,
    TicketPatch,
)
from connectors.errors import PsaValidationError

J = Mapping[str, Any]
TITLE_MAX, NOTE_TITLE_MAX, EXTERNAL_ID_MAX = 255, 250, 50
API_ATTACHMENT_CAP = 6 * 1024 * 1024  # reference §3.6: 6-7 MB per file through the API
DEFAULT_TIME_SUMMARY = "Time logged from Deskbridge"  # Autotask requires a summary [unverified]; read back as ""


def parse_dt(value: Any) -> datetime | None:
    """An Autotask date as tz-aware UTC (None when absent or garbled)."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        dt = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


# ---------------------------------------------------------------- read models


def _ref(value: Any, name: str | None = None) -> Ref | None:
    key = _id(value)
    return Ref(key, name) if key is not None else None


def udf_value(data: J, name: str) -> str | None:
    """The value of a UDF by name (case-insensitive); None when absent or empty."""
    for item in data.get("userDefinedFields") or []:
        if isinstance(item, Mapping) and str(item.get("name", "")).lower() == name.lower():
            value = item.get("value")
            return str(value) if value not in (None, "") else None
    return None


def ticket_changed_at(data: J) -> datetime | None:
    """The sync watermark: the later of lastTrackedModificationDateTime and lastActivityDate (notes move
    only the latter), else createDate."""
    stamps = [d for d in (parse_dt(data.get("lastTrackedModificationDateTime")),
                          parse_dt(data.get("lastActivityDate"))) if d is not None]
    return max(stamps) if stamps else parse_dt(data.get("createDate"))


def issue_refs(data: J, picks: AtPicklists) -> tuple[Ref | None, Ref | None]:
    """(issue type, sub-issue type) with their labels."""
    t = picks.ticket
    return (_ref(data.get("issueType"), t.label("issueType", data.get("issueType"))),
            _ref(data.get("subIssueType"), t.label("subIssueType", data.get("subIssueType"))))


def udf_values(data: J, *, skip: str | None = None) -> dict[str, str]:
    """Every UDF with a value, by name (our marker's UDF `skip` left out: it is plumbing, not the MSP's data)."""
    out: dict[str, str] = {}
    for item in data.get("userDefinedFields") or []:
        if not isinstance(item, Mapping) or item.get("value") in (None, ""):
            continue
        name = str(item.get("name") or "").strip()
        if name and (skip is None or name.lower() != skip.lower()):
            out[name] = str(item["value"])
    return out


def ticket(data: J, picks: AtPicklists, *, marker_udf: str | None = None) -> PsaTicket:
    """A Tickets item; `marker_udf` names the UDF holding our marker (else `externalID` holds it). Issue type and
    sub-issue type are the seam's category and subcategory; UDFs with a value are its custom fields."""
    t = picks.ticket
    category, subcategory = issue_refs(data, picks)
    status = _id(data.get("status"))
    marker = udf_value(data, marker_udf) if marker_udf else (str(data["externalID"]) if data.get("externalID")
                                                              else None)
    return PsaTicket(
        external_id=str(data["id"]), summary=str(data.get("title") or ""),
        description=str(data.get("description") or ""),
        company=_ref(data.get("companyID")), contact=_ref(data.get("contactID")),
        board=_ref(data.get("queueID"), t.label("queueID", data.get("queueID"))),
        status=_ref(status, t.label("status", status)),
        status_closed=(status == STATUS_COMPLETE) if status is not None else None,
        priority=_ref(data.get("priority"), t.label("priority", data.get("priority"))),
        type=_ref(data.get("ticketType"), t.label("ticketType", data.get("ticketType"))),
        owner=_ref(data.get("assignedResourceID")),
        source=t.label("source", data.get("source")),
        created_at=parse_dt(data.get("createDate")), updated_at=ticket_changed_at(data),
        closed_at=parse_dt(data.get("completedDate")),
        respond_by=parse_dt(data.get("firstResponseDueDateTime")),
        resolve_by=parse_dt(data.get("resolvedDueDateTime")),
        responded_at=parse_dt(data.get("firstResponseDateTime")),
        marker=marker, alert_ref=str(data["rmmAlertID"]) if data.get("rmmAlertID") else None,
        device_ref=_id(data.get("configurationItemID")), category=category, subcategory=subcategory,
        custom_fields=udf_values(data, skip=marker_udf or "Deskbridge Ref"))


def note_visibility(data: J, picks: AtPicklists) -> NoteVisibility:
    """Resolution when the note type says so, else what the publish label means."""
    kind = (picks.note.label("noteType", data.get("noteType")) or "").lower()
    if "resolution" in kind:
        return NoteVisibility.RESOLUTION
    return publish_visibility(picks.note.label("publish", data.get("publish")))


def is_workflow_note(data: J, picks: AtPicklists) -> bool:
    """A note written by an Autotask workflow rule (noteType "Workflow Rule Note"), not by a person."""
    return "workflow" in (picks.note.label("noteType", data.get("noteType")) or "").lower()


def note_text(data: J) -> str:
    """Title and description as one text (the title is dropped when the description starts with it)."""
    title = str(data.get("title") or "").strip()
    description = str(data.get("description") or "")
    if not title or description.strip().startswith(title):
        return description
    return f"{title}\n\n{description}" if description else title


def note(data: J, picks: AtPicklists) -> PsaNote:
    """A TicketNotes item."""
    contact = _ref(data.get("createdByContactID"))
    return PsaNote(external_id=str(data["id"]), ticket_external_id=str(data.get("ticketID") or ""),
                   text=note_text(data), visibility=note_visibility(data, picks),
                   author=contact or _ref(data.get("creatorResourceID")), author_is_contact=contact is not None,
                   created_at=parse_dt(data.get("createDateTime")))


def time_entry(data: J) -> PsaTimeEntry:
    """A TimeEntries item: minutes from hoursWorked (or the start/end span)."""
    start, end = parse_dt(data.get("startDateTime")), parse_dt(data.get("endDateTime"))
    if isinstance(data.get("hoursWorked"), int | float):
        minutes = round(float(data["hoursWorked"]) * 60)
    elif start and end:
        minutes = round((end - start).total_seconds() / 60)
    else:
        minutes = 0
    return PsaTimeEntry(external_id=str(data["id"]), ticket_external_id=str(data.get("ticketID") or ""),
                        minutes=minutes, started_at=start or parse_dt(data.get("dateWorked")),
                        member=_ref(data.get("resourceID")), notes=_summary(data.get("summaryNotes")),
                        billable=not data.get("isNonBillable", False))


def _summary(value: Any) -> str:
    """summaryNotes as the technician wrote it: our stand-in for an empty summary reads back as empty."""
    text = str(value or "")
    return "" if text == DEFAULT_TIME_SUMMARY else text


def attachment(data: J) -> PsaAttachment:
    """A TicketAttachments item (metadata only)."""
    size = data.get("fileSize")
    return PsaAttachment(external_id=str(data["id"]), ticket_external_id=str(data.get("parentID") or ""),
                         filename=str(data.get("fullPath") or data.get("title") or ""),
                         size=int(size) if isinstance(size, int | float) else None,
                         content_type=str(data["contentType"]) if data.get("contentType") else None,
                         created_at=parse_dt(data.get("attachDate")))


def company(data: J) -> PsaCompany:
    return PsaCompany(external_id=str(data["id"]), identifier=str(data.get("companyNumber") or data["id"]),
                      name=str(data.get("companyName") or ""), active=data.get("isActive") is not False)


def contact(data: J) -> PsaContact:
    """A Contacts item (`isActive` is an integer 1/0 on contacts)."""
    name = " ".join(str(p) for p in (data.get("firstName"), data.get("lastName")) if p)
    active = data.get("isActive")
    return PsaContact(external_id=str(data["id"]), name=name or str(data["id"]),
                      company_external_id=_id(data.get("companyID")),
                      email=str(data["emailAddress"]) if data.get("emailAddress") else None,
                      phone=str(data.get("phone") or data.get("mobilePhone") or "") or None,
                      active=bool(active) if active is not None else True)


def member(data: J) -> PsaMember:
    """A Resources item."""
    name = " ".join(str(p) for p in (data.get("firstName"), data.get("lastName")) if p)
    return PsaMember(external_id=str(data["id"]), name=name or str(data.get("userName") or data["id"]),
                     identifier=str(data["userName"]) if data.get("userName") else None,
                     email=str(data["email"]) if data.get("email") else None,
                     active=data.get("isActive") is not False)


# ---------------------------------------------------------------- write bodies


def _int(value: str, name: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise PsaValidationError(f"'{value}' is not an Autotask id.", fields={name: "expected a number"}) from None


def _picked(picks: FieldPicklists, name: str, value: str | None, seam_name: str) -> int:
    if value is None:
        default = picks.default(name)
        if default is None:
            raise PsaValidationError(f"No {name} given and the tenant has no default.", fields={seam_name: "required"})
        return int(default.value)
    return _int(value, seam_name)


def issue_pair(picks: AtPicklists, category: str | None, subcategory: str | None) -> dict[str, int | None]:
    """`issueType`/`subIssueType` for a category (issue type) and subcategory (sub-issue type), checked against
    the tenant's picklists (a sub-issue type must have the issue type as its `parentValue`); "" clears."""
    t = picks.ticket
    if not category:
        if subcategory:
            raise PsaValidationError("A sub-issue type needs its issue type.", fields={"category": "required"})
        return {"issueType": None, "subIssueType": None}
    issue = t.get("issueType", category)
    if issue is None or not issue.active:
        names = ", ".join(p.label for p in t.of("issueType") if p.active) or "none"
        raise PsaValidationError(f"Autotask has no active issue type {category!r}; valid: {names}.",
                                 fields={"category": "unknown"})
    if not subcategory:
        return {"issueType": int(issue.value), "subIssueType": None}
    valid = [p for p in t.children("subIssueType", issue.value) if p.active]
    sub = next((p for p in valid if p.value == str(subcategory)), None)
    if sub is None:
        names = ", ".join(p.label for p in valid) or "none"
        raise PsaValidationError(f"'{subcategory}' is not a sub-issue type of {issue.label}; valid: {names}.",
                                 fields={"subcategory": "not under the issue type"})
    return {"issueType": int(issue.value), "subIssueType": int(sub.value)}


def new_ticket_body(t: NewTicket, picks: AtPicklists, *, marker_udf: str | None = None,
                    owner_role_id: str | None = None, source: str | None = None) -> dict[str, Any]:
    """POST /Tickets body; our marker goes to `externalID`, or to the UDF `marker_udf`."""
    if not t.company_external_id:
        raise PsaValidationError("Autotask tickets need a company.", fields={"company_external_id": "required"})
    body: dict[str, Any] = {
        "companyID": _int(t.company_external_id, "company_external_id"), "title": t.summary[:TITLE_MAX],
        "status": _picked(picks.ticket, "status", t.status_external_id, "status_external_id"),
        "priority": _picked(picks.ticket, "priority", t.priority_external_id, "priority_external_id")}
    if t.description:
        body["description"] = t.description
    for key, value in (("queueID", t.board_external_id), ("contactID", t.contact_external_id),
                       ("ticketType", t.type_external_id), ("source", source)):
        if value:
            body[key] = _int(value, key)
    if t.owner_external_id:
        body.update(_assignment(t.owner_external_id, owner_role_id))
    if t.category_external_id or t.subcategory_external_id:
        body.update({k: v for k, v in issue_pair(picks, t.category_external_id, t.subcategory_external_id).items()
                     if v is not None})
    udfs = [{"name": name, "value": value} for name, value in t.extra_fields.items()]  # required UDFs, as filled
    if udfs:
        body["userDefinedFields"] = udfs
    if marker_udf:
        body["userDefinedFields"] = [*udfs, {"name": marker_udf, "value": t.marker}]
    else:
        if len(t.marker) > EXTERNAL_ID_MAX:
            raise PsaValidationError("The marker is too long for externalID.", fields={"marker": "max 50"})
        body["externalID"] = t.marker
    return body


def _assignment(owner: str, role: str | None) -> dict[str, Any]:
    if not role:
        raise PsaValidationError("Assigning an Autotask ticket needs the resource's service desk role.",
                                 fields={"owner_external_id": "needs assignedResourceRoleID"})
    return {"assignedResourceID": _int(owner, "owner_external_id"),
            "assignedResourceRoleID": _int(role, "assignedResourceRoleID")}


def ticket_patch_body(ticket_id: str, p: TicketPatch, *, owner_role_id: str | None = None,
                      picks: AtPicklists | None = None) -> dict[str, Any]:
    """PATCH /Tickets body: `id` plus only the changed fields (unassign clears resource and role together; a
    category change sends the issue type and its sub-issue type together, checked against `picks`)."""
    body: dict[str, Any] = {"id": _int(ticket_id, "ticket_external_id")}
    if p.category_external_id is not None or p.subcategory_external_id is not None:
        body.update(issue_pair(picks or AtPicklists(), p.category_external_id, p.subcategory_external_id))
    if p.summary is not None:
        body["title"] = p.summary[:TITLE_MAX]
    for key, value in (("status", p.status_external_id), ("priority", p.priority_external_id),
                       ("queueID", p.board_external_id)):
        if value is not None:
            body[key] = _int(value, key)
    if p.custom_fields:
        body["userDefinedFields"] = [{"name": k, "value": v or None} for k, v in p.custom_fields.items()]
    if p.unassign:
        body["assignedResourceID"] = body["assignedResourceRoleID"] = None
    elif p.owner_external_id is not None:
        body.update(_assignment(p.owner_external_id, owner_role_id))
    return body


def note_type_for(picks: AtPicklists, visibility: NoteVisibility) -> int:
    """A resolution note type for RESOLUTION when the tenant has one, else its default (never a system type)."""
    types = [p for p in picks.note.of("noteType") if p.active and not p.system]
    if visibility is NoteVisibility.RESOLUTION:
        resolution = [p for p in types if "resolution" in p.label.lower()]
        if resolution:
            return int(resolution[0].value)
    default = next((p for p in types if p.default), None) or (types[0] if types else None)
    if default is None:
        raise PsaValidationError("The Autotask tenant has no usable note type.", fields={"noteType": "none"})
    return int(default.value)


def note_body(n: NewNote, picks: AtPicklists) -> dict[str, Any]:
    """POST /Tickets/{id}/Notes body. The author goes in the ImpersonationResourceId header, not here."""
    first = n.text.strip().splitlines()[0] if n.text.strip() else ""
    return {"ticketID": _int(n.ticket_external_id, "ticket_external_id"), "title": first[:NOTE_TITLE_MAX],
            "description": n.text, "noteType": note_type_for(picks, n.visibility),
            "publish": publish_value(picks.note, n.visibility)}


def time_entry_body(e: NewTimeEntry, *, resource_id: str, role_id: str | None = None,
                    internal_notes: str | None = None) -> dict[str, Any]:
    """POST /TimeEntries body: start/end and hoursWorked agree; `hoursToBill` is read-only, never sent."""
    if e.minutes <= 0:
        raise PsaValidationError("A time entry needs a positive duration.", fields={"minutes": "must be > 0"})
    start = e.started_at.astimezone(UTC)
    body: dict[str, Any] = {
        "ticketID": _int(e.ticket_external_id, "ticket_external_id"),
        "resourceID": _int(e.member_external_id or resource_id, "member_external_id"),
        # the day worked as the technician's calendar has it (the zone the start was given in: the workspace's),
        # not the UTC date: 17:30 in California is still today. psa-apis.md does not say which zone Autotask reads
        # dateWorked in; start/end (UTC, documented) carry the exact instants either way.
        "dateWorked": e.started_at.strftime("%Y-%m-%dT00:00:00Z"), "startDateTime": format_dt(start),
        "endDateTime": format_dt(start + timedelta(minutes=e.minutes)), "hoursWorked": round(e.minutes / 60, 4),
        "summaryNotes": e.notes.strip() or DEFAULT_TIME_SUMMARY, "isNonBillable": not e.billable,
        "showOnInvoice": e.billable}
    if role_id:
        body["roleID"] = _int(role_id, "roleID")
    if internal_notes:
        body["internalNotes"] = internal_notes
    return body


def attachment_body(a: NewAttachment, picks: AtPicklists, *,
                    visibility: NoteVisibility = NoteVisibility.INTERNAL) -> dict[str, Any]:
    """POST /Tickets/{id}/Attachments body (base64 JSON); the caller checks the size cap first."""
    return {"id": 0, "parentID": _int(a.ticket_external_id, "ticket_external_id"),
            "attachmentType": "FILE_ATTACHMENT", "fullPath": a.filename[:TITLE_MAX], "title": a.filename[:TITLE_MAX],
            "publish": publish_value(picks.attachment, visibility), "data": base64.b64encode(a.content).decode()}
