"""ConnectWise JSON <-> canonical models (pure: no I/O, no clock). Vendor JSON never leaves this folder."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from connectors.base import (
    ConfigurationItem,
    NewAttachment,
    NewNote,
    NewTicket,
    NewTimeEntry,
    NoteVisibility,
    PsaAttachment,
    PsaBoard,
    PsaCompany,
    PsaContact,
    PsaMember,
    PsaNote,
    PsaPriority,
    PsaStatus,
    PsaTicket,
    PsaTicketType,
    PsaTimeEntry,
    PsaTypeAssociation,
    Ref,
    TicketPatch,
    split_marker,
)

J = Mapping[str, Any]
_ZERO = timedelta(0)


def parse_dt(value: Any) -> datetime | None:
    """A ConnectWise date (`2025-01-06T09:00:00Z`; naive read as UTC) as tz-aware UTC."""
    if not value or not isinstance(value, str):
        return None
    try:
        dt = datetime.fromisoformat(value)  # Python 3.11 reads the `Z` suffix
    except ValueError:
        return None
    if dt.tzinfo is None:
        return dt.replace(tzinfo=UTC)
    return dt if dt.utcoffset() == _ZERO else dt.astimezone(UTC)


def format_dt(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def ref(value: Any, *labels: str) -> Ref | None:
    """{id, name|identifier} -> Ref (None when absent)."""
    if not isinstance(value, Mapping):
        return None
    rid = value.get("id")
    if rid is None:
        return None
    name = None
    for key in (*labels, "name", "identifier"):
        name = value.get(key)
        if name:
            break
    return Ref(str(rid), str(name) if name else None)


def ticket(data: J) -> PsaTicket:
    info = data.get("_info") or {}
    source = data.get("source")
    return PsaTicket(
        external_id=str(data["id"]),
        summary=str(data.get("summary") or ""),
        company=ref(data.get("company")),
        contact=ref(data.get("contact")),
        board=ref(data.get("board")),
        status=ref(data.get("status")),
        status_closed=bool(data["closedFlag"]) if "closedFlag" in data else None,
        priority=ref(data.get("priority")),
        type=ref(data.get("type")),
        category=ref(data.get("subType")),  # Feature.TYPE_SUBTYPES: the seam's pair is subtype and item
        subcategory=ref(data.get("item")),
        owner=ref(data.get("owner"), "name"),
        source=str(source.get("name")) if isinstance(source, Mapping) and source.get("name") else None,
        created_at=parse_dt(info.get("dateEntered")),
        updated_at=parse_dt(info.get("lastUpdated")),
        closed_at=parse_dt(data.get("closedDate")),
        responded_at=parse_dt(data.get("dateResponded")),
        marker=str(data["externalXRef"]) if data.get("externalXRef") else None,
    )


def visibility(data: J) -> NoteVisibility:
    """Resolution before Discussion before Internal: a note the customer can see is never called internal."""
    if data.get("resolutionFlag"):
        return NoteVisibility.RESOLUTION
    if data.get("detailDescriptionFlag"):
        return NoteVisibility.PUBLIC
    return NoteVisibility.INTERNAL


def note(data: J, ticket_id: str) -> PsaNote:
    contact, member = ref(data.get("contact")), ref(data.get("member"), "name")
    by_contact = contact is not None and member is None
    raw = str(data.get("text") or "")
    # A contact's note (an e-mail reply) may quote ours, tag and all; only our own API member writes the tag.
    text, marker = (raw, None) if by_contact else split_marker(raw)
    return PsaNote(external_id=str(data["id"]), ticket_external_id=str(data.get("ticketId") or ticket_id),
                   text=text, visibility=visibility(data), author=member or contact,
                   author_is_contact=by_contact,
                   created_at=parse_dt(data.get("dateCreated")) or parse_dt((data.get("_info") or {}).get(
                       "dateEntered")),
                   marker=marker)


def time_entry(data: J) -> PsaTimeEntry:
    start, end = parse_dt(data.get("timeStart")), parse_dt(data.get("timeEnd"))
    if data.get("actualHours") is not None:
        minutes = round(float(data["actualHours"]) * 60)
    elif start and end:
        minutes = round((end - start).total_seconds() / 60)
    else:
        minutes = 0
    text, marker = split_marker(str(data.get("notes") or ""))
    return PsaTimeEntry(external_id=str(data["id"]), ticket_external_id=str(data.get("chargeToId") or ""),
                        minutes=minutes, started_at=start, member=ref(data.get("member"), "name"), notes=text,
                        billable=data.get("billableOption", "Billable") not in ("DoNotBill", "NoCharge"),
                        marker=marker)


def attachment(data: J, ticket_id: str) -> PsaAttachment:
    _, marker = split_marker(str(data.get("title") or ""))
    info = data.get("_info") or {}
    return PsaAttachment(external_id=str(data["id"]), ticket_external_id=str(data.get("recordId") or ticket_id),
                         filename=str(data.get("fileName") or data.get("title") or ""),
                         size=int(data["size"]) if data.get("size") is not None else None,
                         created_at=parse_dt(info.get("dateEntered") or info.get("lastUpdated")), marker=marker,
                         visibility=NoteVisibility.PUBLIC if data.get("publicFlag") else NoteVisibility.INTERNAL)


def company(data: J) -> PsaCompany:
    return PsaCompany(external_id=str(data["id"]), identifier=str(data.get("identifier") or ""),
                      name=str(data.get("name") or ""), active=not data.get("deletedFlag", False))


def _communication(data: J, kind: str) -> str | None:
    items = [i for i in data.get("communicationItems") or [] if isinstance(i, Mapping)
             and (i.get("communicationType") == kind or (i.get("type") or {}).get("name") == kind)]
    items.sort(key=lambda i: not i.get("defaultFlag"))
    return str(items[0]["value"]) if items and items[0].get("value") else None


def contact(data: J) -> PsaContact:
    name = " ".join(p for p in (data.get("firstName"), data.get("lastName")) if p)
    comp = data.get("company")
    return PsaContact(external_id=str(data["id"]), name=name or str(data["id"]),
                      company_external_id=str(comp["id"]) if isinstance(comp, Mapping) and comp.get("id") else None,
                      email=_communication(data, "Email"), phone=_communication(data, "Phone"),
                      active=not data.get("inactiveFlag", False))


_EMAIL_FIELDS = {"office": "officeEmail", "mobile": "mobileEmail", "home": "homeEmail"}


def member_email(data: J) -> str | None:
    """A member's e-mail in every documented form: `primaryEmail` (current), else the one `defaultEmail`
    names (Office/Mobile/Home), else `officeEmail` (older tenants and API versions)."""
    if data.get("primaryEmail"):
        return str(data["primaryEmail"])
    named = _EMAIL_FIELDS.get(str(data.get("defaultEmail") or "").lower())
    for key in (named, "officeEmail", "mobileEmail", "homeEmail"):
        if key and data.get(key):
            return str(data[key])
    return None


def _inactive(data: J) -> bool:
    """`inactiveFlag` on most records, `inactive` on statuses and some boards of older versions."""
    return bool(data.get("inactiveFlag") or data.get("inactive"))


def _sort(data: J) -> int:
    value = data.get("sortOrder") if data.get("sortOrder") is not None else data.get("sort")
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def member(data: J) -> PsaMember:
    name = " ".join(p for p in (data.get("firstName"), data.get("lastName")) if p)
    return PsaMember(external_id=str(data["id"]), name=name or str(data.get("identifier") or data["id"]),
                     identifier=data.get("identifier"), email=member_email(data), active=not _inactive(data))


def board(data: J) -> PsaBoard:
    return PsaBoard(external_id=str(data["id"]), name=str(data.get("name") or ""), active=not _inactive(data))


def status(data: J, board_id: str) -> PsaStatus:
    return PsaStatus(external_id=str(data["id"]), name=str(data.get("name") or ""), board_external_id=board_id,
                     closed=bool(data.get("closedStatus")), default=bool(data.get("defaultFlag")),
                     active=not _inactive(data), sort_order=_sort(data),
                     time_entry_allowed=not data.get("timeEntryNotAllowed", False))


def priority(data: J) -> PsaPriority:
    return PsaPriority(external_id=str(data["id"]), name=str(data.get("name") or ""),
                       sort_order=_sort(data), default=bool(data.get("defaultFlag")))


def ticket_type(data: J, board_id: str) -> PsaTicketType:
    return PsaTicketType(external_id=str(data["id"]), name=str(data.get("name") or ""), board_external_id=board_id)


def associations(rows: list[J], board_id: str, inactive_subtypes: set[str], inactive_items: set[str]
                 ) -> list[PsaTypeAssociation]:
    """A board's `typeSubTypeItemAssociations` ({type, subType, item}: references; item may be absent), as the
    combinations a ticket of that board may carry. One without a type or subtype says nothing and is skipped;
    a subtype or item switched off on the board is kept, marked inactive."""
    out = []
    for row in rows:
        ty, sub, item = ref(row.get("type")), ref(row.get("subType")), ref(row.get("item"))
        if ty is None or sub is None:
            continue
        out.append(PsaTypeAssociation(
            board_external_id=board_id, type_external_id=ty.id, subtype_external_id=sub.id,
            subtype_name=sub.name or sub.id, item_external_id=item.id if item else None,
            item_name=(item.name or item.id) if item else None,
            active=sub.id not in inactive_subtypes, item_active=item is None or item.id not in inactive_items))
    return out


def inactive_ids(rows: list[J]) -> set[str]:
    """Ids of a board's subtypes or items that are switched off (`inactiveFlag`)."""
    return {str(r["id"]) for r in rows if _inactive(r)}


# ---------------------------------------------------------------- write bodies


def _id(value: str) -> dict[str, int]:
    return {"id": int(value)}


def new_ticket_body(t: NewTicket, *, default_board: str | None) -> dict[str, Any]:
    """POST /service/tickets body; `externalXRef` carries our marker, `initialDescription` the text."""
    body: dict[str, Any] = {"summary": t.summary, "externalXRef": t.marker}
    if t.company_external_id:
        body["company"] = _id(t.company_external_id)
    board_id = t.board_external_id or default_board
    if board_id:
        body["board"] = _id(board_id)
    if t.description:
        body["initialDescription"] = t.description
    for key, value in (("status", t.status_external_id), ("priority", t.priority_external_id),
                       ("type", t.type_external_id), ("owner", t.owner_external_id),
                       ("contact", t.contact_external_id)):
        if value:
            body[key] = _id(value)
    return body


def patch_ops(p: TicketPatch) -> list[dict[str, Any]]:
    """JSON-Patch operations for only the changed fields (board before status, as CW validates in order)."""
    ops: list[dict[str, Any]] = []
    if p.board_external_id is not None:
        ops.append({"op": "replace", "path": "board", "value": _id(p.board_external_id)})
    if p.status_external_id is not None:
        ops.append({"op": "replace", "path": "status", "value": _id(p.status_external_id)})
    if p.priority_external_id is not None:
        ops.append({"op": "replace", "path": "priority", "value": _id(p.priority_external_id)})
    if p.clear_type:
        ops.append({"op": "remove", "path": "type"})
    elif p.type_external_id is not None:  # types are board-scoped: after the board, like the status
        ops.append({"op": "replace", "path": "type", "value": _id(p.type_external_id)})
    # subtype and item after their type (the board's associations are checked against it); "" removes one
    for path, value in (("subType", p.category_external_id), ("item", p.subcategory_external_id)):
        if value == "":
            ops.append({"op": "remove", "path": path})
        elif value is not None:
            ops.append({"op": "replace", "path": path, "value": _id(value)})
    if p.summary is not None:
        ops.append({"op": "replace", "path": "summary", "value": p.summary})
    if p.unassign:
        ops.append({"op": "remove", "path": "owner"})
    elif p.owner_external_id is not None:
        ops.append({"op": "replace", "path": "owner", "value": _id(p.owner_external_id)})
    return ops


def note_body(n: NewNote) -> dict[str, Any]:
    """Flags per visibility. Internal notes ALWAYS send processNotifications=false (CWSlack#40)."""
    body: dict[str, Any] = {"text": n.text, "detailDescriptionFlag": False,
                            "internalAnalysisFlag": False, "resolutionFlag": False, "customerUpdatedFlag": False}
    if n.visibility is NoteVisibility.PUBLIC:
        body["detailDescriptionFlag"] = True
        body["processNotifications"] = bool(n.email_contact)
    elif n.visibility is NoteVisibility.RESOLUTION:
        body["resolutionFlag"] = True
        body["processNotifications"] = bool(n.email_contact)
    else:
        body["internalAnalysisFlag"] = True
        body["processNotifications"] = False
    if n.author_member_external_id:
        body["member"] = _id(n.author_member_external_id)
    if n.author_contact_external_id and n.visibility is NoteVisibility.PUBLIC:
        # the customer's own words, as ConnectWise records a reply from its e-mail connector
        body["contact"] = _id(n.author_contact_external_id)
        body["customerUpdatedFlag"] = True
    return body


def time_entry_body(e: NewTimeEntry) -> dict[str, Any]:
    """POST /time/entries body: charged to the service ticket, no e-mail, notes not copied to the ticket."""
    body: dict[str, Any] = {
        "chargeToId": int(e.ticket_external_id), "chargeToType": "ServiceTicket",
        "timeStart": format_dt(e.started_at), "timeEnd": format_dt(e.started_at + timedelta(minutes=e.minutes)),
        "billableOption": "Billable" if e.billable else "DoNotBill",
        "notes": e.notes,
        "addToDetailDescriptionFlag": False, "addToInternalAnalysisFlag": False, "addToResolutionFlag": False,
        "emailContactFlag": False, "emailResourceFlag": False, "emailCcFlag": False,
    }
    if e.member_external_id:
        body["member"] = _id(e.member_external_id)
    return body


def document_form(a: NewAttachment) -> dict[str, str]:
    """POST /system/documents form fields: the title is the file's own name, and the visibility is always
    sent (`privateFlag`): a tenant's default may publish an internal screenshot in the customer portal."""
    return {"recordType": "Ticket", "recordId": str(int(a.ticket_external_id)), "title": a.filename[:100],
            "privateFlag": "false" if a.visibility is NoteVisibility.PUBLIC else "true"}


def configuration_item(data: J) -> ConfigurationItem:
    """A CW configuration as the device a ticket names: its name (for workstations, the host name the RMM
    integration gives it) and serial number."""
    return ConfigurationItem(external_id=str(data.get("id") or ""), name=str(data.get("name") or ""),
                             serial=str(data.get("serialNumber") or ""))
