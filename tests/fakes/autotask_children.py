"""Children of tickets and companies in the fake Autotask server: notes, attachments and contacts, created and
updated only through their parent's URL (`POST /Tickets/{id}/Notes`; `POST /TicketNotes` answers 404).
See tests/fakes/autotask_writes.py for the binding rules and tests/fakes/autotask.py for the documented API.
"""

from __future__ import annotations

import base64
import binascii
import mimetypes
from typing import TYPE_CHECKING, Any

from tests.fakes import autotask_hooks as hooks
from tests.fakes.autotask_http import FakeRequest, FakeResponse, rejected
from tests.fakes.autotask_schema import SPECS, EntitySpec
from tests.fakes.autotask_writes import accept, body_of, found, id_of, impersonator, item_answer, require

if TYPE_CHECKING:
    from tests.fakes.autotask import FakeAutotask

ATTACHMENT_TYPES = {"FILE_ATTACHMENT", "URL", "FOLDER_LINK"}


def create_child(fake: FakeAutotask, req: FakeRequest, child: EntitySpec, pid: int) -> FakeResponse:
    body = body_of(req)
    data = accept(fake, child, body)
    data.pop("id", None)
    if child.name == "TicketNotes":
        return item_answer(create_note(fake, pid, data))
    if child.name == "TicketAttachments":
        return item_answer(create_attachment(fake, pid, data))
    if pid not in fake.tables["Companies"]:
        raise rejected("Value does not reference an existing entity for companyID .")
    data["companyID"] = pid
    require(child, data, child.required)
    if data.get("emailAddress") and "@" not in data["emailAddress"]:
        raise rejected("The emailAddress is not a valid e-mail address.")
    now = fake.stamp()
    record = fake.blank("Contacts") | data | {"createDate": now, "lastActivityDate": now, "lastModifiedDate": now,
                                              "userDefinedFields": data.get("userDefinedFields") or []}
    return item_answer(fake.insert("Contacts", record))


def update_child(fake: FakeAutotask, req: FakeRequest, child: EntitySpec, pid: int) -> FakeResponse:
    body = body_of(req)
    rid = id_of(child, body)
    record = found(fake, child, rid)
    link = "ticketID" if child.name == "TicketNotes" else "companyID"
    if record[link] != pid:
        raise rejected(f"No matching records found. The {child.label} with id {rid} is not under {pid}.")
    data = accept(fake, child, body)
    data.pop("id", None)
    data.pop(link, None)
    now = fake.stamp()
    record.update(data)
    if child.name == "TicketNotes":
        record.update(lastActivityDate=now, impersonatorUpdaterResourceID=impersonator(fake))
        fake.tables["Tickets"][pid]["lastActivityDate"] = now
    else:
        record.update(lastActivityDate=now, lastModifiedDate=now)
    return item_answer(rid)


def create_note(fake: FakeAutotask, ticket_id: int, data: dict[str, Any]) -> int:
    """Validate and store a ticket note; bumps the ticket's lastActivityDate (not its tracked-modification time)."""
    spec = SPECS["TicketNotes"]
    ticket = fake.tables["Tickets"].get(ticket_id)
    if ticket is None:
        raise rejected("Value does not reference an existing entity for ticketID .")
    if data.get("ticketID") not in (None, ticket_id):
        raise rejected("The ticketID in the body does not match the parent ticket in the URL.")
    data["ticketID"] = ticket_id
    require(spec, data, spec.required | ({"title"} if fake.note_title_required else set()))
    everyone = fake.publish_to_all("TicketNotes")
    if data.get("createdByContactID") is not None and data["publish"] != everyone:
        raise rejected("A note can be created on behalf of a contact only when it is published to all users.")
    now = fake.stamp()
    by_contact = data.get("createdByContactID") is not None
    record = fake.blank("TicketNotes") | data | {
        "createDateTime": now, "lastActivityDate": now, "creatorResourceID": None if by_contact else fake.acting,
        "impersonatorCreatorResourceID": impersonator(fake)}
    rid = fake.insert("TicketNotes", record)
    hooks.emit(fake, "TicketNotes", "Create", record)
    ticket["lastActivityDate"] = now
    if data["publish"] == everyone:
        ticket["lastCustomerVisibleActivityDateTime"] = now
    if fake.notes_move_tracked_modification:
        ticket["lastTrackedModificationDateTime"] = now
    return rid


def create_attachment(fake: FakeAutotask, ticket_id: int, data: dict[str, Any]) -> int:
    """Validate (type, base64, size caps) and store a ticket attachment."""
    spec = SPECS["TicketAttachments"]
    ticket = fake.tables["Tickets"].get(ticket_id)
    if ticket is None:
        raise rejected("Value does not reference an existing entity for parentID .")
    require(spec, data, spec.required)
    if data["attachmentType"] not in ATTACHMENT_TYPES:
        raise rejected("Value does not reference an existing entity for attachmentType .")
    if data["publish"] not in {p.value for p in fake.picklists["TicketAttachments"]["publish"]}:
        raise rejected("Value does not reference an existing entity for publish .")
    size, raw = 0, data.get("data")
    if data["attachmentType"] == "FILE_ATTACHMENT":
        try:
            content = base64.b64decode(str(raw or ""), validate=True)
        except (binascii.Error, ValueError):
            raise rejected("The attachment data is not valid base64.") from None
        if not content:
            raise rejected("Missing required field: data.")
        size = len(content)
        fake.check_attachment_budget(size)
    now = fake.stamp()
    record = fake.blank("TicketAttachments") | data | {
        "parentID": ticket_id, "parentType": 4, "fileSize": float(size), "attachDate": now,
        "contentType": mimetypes.guess_type(data["fullPath"])[0] or "application/octet-stream",
        "attachedByResourceID": fake.acting, "creatorType": 1, "isTaskAttachment": False,
        "impersonatorCreatorResourceID": impersonator(fake), "data": raw if size else None}
    rid = fake.insert("TicketAttachments", record)
    ticket["lastActivityDate"] = now
    return rid


def delete_attachment(fake: FakeAutotask, req: FakeRequest, pid: int, cid: int) -> FakeResponse:
    record = fake.tables["TicketAttachments"].get(cid)
    if record is None or record["parentID"] != pid:
        raise rejected("No matching records found. The logged in Resource may not have the required permissions "
                       "to delete the data.")
    fake.tables["TicketAttachments"].pop(cid)
    return item_answer(cid)

