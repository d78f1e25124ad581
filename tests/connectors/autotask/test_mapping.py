"""Mapping: Autotask JSON -> canonical models (through the tenant's picklists) and canonical writes -> bodies the
fake accepts without ignoring a single field."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from connectors.autotask import mapping as m
from connectors.autotask import picklists as pk
from connectors.autotask import query as aq
from connectors.autotask.client import AtClient
from connectors.base import NewAttachment, NewNote, NewTicket, NewTimeEntry, NoteVisibility, TicketPatch
from connectors.errors import PsaValidationError
from tests.connectors.autotask.conftest import T0, load_picklists
from tests.fakes.autotask import FakeAutotask
from tests.fakes.autotask_schema import Pick


@pytest.mark.parametrize("raw,expected", [
    ("2026-01-05T12:00:00Z", datetime(2026, 1, 5, 12, tzinfo=UTC)),
    ("2026-01-05T12:00:00.1234567Z", datetime(2026, 1, 5, 12, 0, 0, 123456, tzinfo=UTC)),
    ("2026-01-05T12:00:00.25Z", datetime(2026, 1, 5, 12, 0, 0, 250000, tzinfo=UTC)),
    ("2026-01-05T12:00:00", datetime(2026, 1, 5, 12, tzinfo=UTC)),
    ("2026-01-05T13:00:00+01:00", datetime(2026, 1, 5, 12, tzinfo=UTC)),
    ("", None), (None, None), ("yesterday", None), (20260105, None),
])
def test_parse_dt(raw: object, expected: datetime | None) -> None:
    parsed = m.parse_dt(raw)
    assert parsed == expected and (parsed is None or parsed.tzinfo is UTC)


async def test_ticket_fields_resolve_through_picklists(fake: FakeAutotask, client: AtClient) -> None:
    picks = await load_picklists(client)
    raw = fake.add_ticket("Toner low", priority=4, queueID=29682969, ticketType=2, issueType=11, subIssueType=101,
                          source=4, externalID="mk-1", rmmAlertID="alert-9", description="All grey",
                          contactID=30682801, companyID=175)
    item = await client.get_item(f"Tickets/{raw['id']}")
    t = m.ticket(item, picks)
    assert (t.external_id, t.summary, t.description) == (str(raw["id"]), "Toner low", "All grey")
    assert t.status is not None and (t.status.id, t.status.name, t.status_closed) == ("1", "New", False)
    assert t.priority is not None and t.priority.name == "Critical"
    assert t.board is not None and (t.board.id, t.board.name) == ("29682969", "Level II Support")
    assert t.type is not None and t.type.name == "Incident" and t.source == "E-mail"
    assert t.company is not None and t.company.id == "175" and t.contact is not None and t.contact.id == "30682801"
    assert t.marker == "mk-1" and t.alert_ref == "alert-9" and t.created_at == m.parse_dt(raw["createDate"])
    issue, sub = m.issue_refs(item, picks)
    assert issue is not None and sub is not None and (issue.name, sub.name) == ("Hardware", "Printer")
    assert [p.label for p in picks.ticket.children("subIssueType", 11)] == ["Printer", "Laptop"]
    fake.edit_ticket(raw["id"], status=5)
    done = m.ticket(await client.get_item(f"Tickets/{raw['id']}"), picks)
    assert done.status_closed and done.closed_at is not None and done.updated_at == done.closed_at


async def test_marker_from_a_udf(fake: FakeAutotask, client: AtClient) -> None:
    picks = await load_picklists(client)
    raw = fake.add_ticket("UDF", externalID="someone-elses",
                          userDefinedFields=[{"name": "Deskbridge Ref", "value": "ours-1"}])
    item = await client.get_item(f"Tickets/{raw['id']}")
    assert m.ticket(item, picks, marker_udf="deskbridge ref").marker == "ours-1"
    assert m.ticket(item, picks).marker == "someone-elses"
    assert m.udf_value(item, "Customer PO") is None


async def test_canonical_picklists(client: AtClient) -> None:
    p = pk.canonical_picklists(await load_picklists(client))
    assert [s.name for s in p.statuses if s.closed] == ["Complete"]
    assert {s.name: s.active for s in p.statuses}["Waiting Materials"] is False
    assert next(s for s in p.statuses if s.default).name == "New"
    assert [x.name for x in p.priorities] == ["Critical", "High", "Medium", "Low"]
    assert {b.name: b.active for b in p.boards} == {"Level I Support": True, "Level II Support": True,
                                                    "Monitoring Alert": True, "Post Sale": False}
    assert "Incident" in [x.name for x in p.types] and all(s.board_external_id is None for s in p.statuses)


@pytest.mark.parametrize("label,visibility", [
    ("All Autotask Users", NoteVisibility.PUBLIC), ("Internal Users Only", NoteVisibility.INTERNAL),
    ("Internal & Co-Managed", NoteVisibility.INTERNAL), ("Internal Project Team", NoteVisibility.INTERNAL),
    ("Everybody", NoteVisibility.INTERNAL), ("", NoteVisibility.INTERNAL), (None, NoteVisibility.INTERNAL),
])
def test_publish_labels(label: str | None, visibility: NoteVisibility) -> None:
    assert pk.publish_visibility(label) is visibility


async def test_publish_is_chosen_by_label_not_by_id(fake: FakeAutotask, client: AtClient) -> None:
    # A tenant whose ids differ from the usual 1 = all, 2 = internal (WYRE-AI/autotask-mcp#126).
    fake.picklists["TicketNotes"]["publish"] = [Pick(1, "Internal Users Only", 1), Pick(3, "All Autotask Users", 2),
                                                Pick(4, "Internal & Co-Managed", 3)]
    picks = await load_picklists(client)
    tid = fake.add_ticket("Publish")["id"]
    public = m.note_body(NewNote(ticket_external_id=str(tid), text="Hello", visibility=NoteVisibility.PUBLIC,
                                 marker="n1"), picks)
    internal = m.note_body(NewNote(ticket_external_id=str(tid), text="Psst", visibility=NoteVisibility.INTERNAL,
                                   marker="n2"), picks)
    assert (public["publish"], internal["publish"]) == (3, 1)
    ids = [await client.create(f"Tickets/{tid}/Notes", b) for b in (public, internal)]
    notes = [m.note(await client.get_item(f"TicketNotes/{i}"), picks) for i in ids]
    assert [n.visibility for n in notes] == [NoteVisibility.PUBLIC, NoteVisibility.INTERNAL]
    visible = fake.tables["Tickets"][tid]["lastCustomerVisibleActivityDateTime"]
    assert visible == fake.tables["TicketNotes"][ids[0]]["createDateTime"]  # the note with publish 1 is internal here


async def test_a_tenant_without_a_public_option_refuses(fake: FakeAutotask, client: AtClient) -> None:
    fake.picklists["TicketNotes"]["publish"] = [Pick(2, "Internal Users Only", 1)]
    picks = await load_picklists(client)
    with pytest.raises(PsaValidationError) as caught:
        m.note_body(NewNote(ticket_external_id="1", text="x", visibility=NoteVisibility.PUBLIC, marker="m"), picks)
    assert "publish" in caught.value.fields


async def test_notes_read_back(fake: FakeAutotask, client: AtClient) -> None:
    picks = await load_picklists(client)
    tid = fake.add_ticket("Notes")["id"]
    customer = fake.add_note(tid, "Still broken", contact_id=30682801, title="Re: Printer")
    workflow = fake.add_note(tid, "Ticket status changed", note_type=13, publish=2)
    items = {i["id"]: i for i in await client.get_items(f"Tickets/{tid}/Notes")}
    c = m.note(items[customer["id"]], picks)
    assert c.author_is_contact and c.author is not None and c.author.id == "30682801"
    assert c.visibility is NoteVisibility.PUBLIC and c.text == "Re: Printer\n\nStill broken"
    assert c.ticket_external_id == str(tid) and c.created_at == m.parse_dt(customer["createDateTime"])
    w = m.note(items[workflow["id"]], picks)
    assert m.is_workflow_note(items[workflow["id"]], picks) and not m.is_workflow_note(items[customer["id"]], picks)
    assert w.visibility is NoteVisibility.INTERNAL and w.author is not None and not w.author_is_contact
    assert m.note_text({"title": "Hello", "description": "Hello there"}) == "Hello there"


async def test_note_bodies_round_trip(fake: FakeAutotask, client: AtClient) -> None:
    fake.picklists["TicketNotes"]["noteType"].append(Pick(20, "Resolution", 4))
    picks = await load_picklists(client)
    tid = fake.add_ticket("Round trip")["id"]
    for vis in NoteVisibility:
        body = m.note_body(NewNote(ticket_external_id=str(tid), text=f"First line {vis}\nsecond", visibility=vis,
                                   marker="ignored"), picks)
        assert set(body) == {"ticketID", "title", "description", "noteType", "publish"}
        assert body["title"] == f"First line {vis}" and "ignored" not in str(body)  # no marker in the text
        note = m.note(await client.get_item(f"TicketNotes/{await client.create(f'Tickets/{tid}/Notes', body)}"),
                      picks)
        assert note.visibility is vis and note.text == f"First line {vis}\nsecond"
    assert m.note_type_for(picks, NoteVisibility.INTERNAL) == 2  # the default, never a system type
    assert fake.ignored_fields == []


async def test_ticket_bodies_round_trip(fake: FakeAutotask, client: AtClient) -> None:
    picks = await load_picklists(client)
    new = NewTicket(summary="S" * 300, marker="db-1", description="Body", company_external_id="175",
                    contact_external_id="30682801", board_external_id="29682833", type_external_id="2",
                    owner_external_id=str(fake.tech_id))
    with pytest.raises(PsaValidationError) as no_role:
        m.new_ticket_body(new, picks)
    assert "owner_external_id" in no_role.value.fields
    body = m.new_ticket_body(new, picks, owner_role_id="29683461", source="11")
    assert body["status"] == 1 and body["priority"] == 2 and len(body["title"]) == 255  # tenant defaults
    assert body["externalID"] == "db-1" and "userDefinedFields" not in body
    t = m.ticket(await client.get_item(f"Tickets/{await client.create('Tickets', body)}"), picks)
    assert t.marker == "db-1" and t.owner is not None and t.owner.id == str(fake.tech_id)
    assert t.board is not None and t.board.name == "Level I Support" and t.source == "Chat"
    udf = m.new_ticket_body(NewTicket(summary="U", marker="db-2", company_external_id="175"), picks,
                            marker_udf="Deskbridge Ref")
    assert "externalID" not in udf and udf["userDefinedFields"] == [{"name": "Deskbridge Ref", "value": "db-2"}]
    uid = await client.create("Tickets", udf)
    found = await client.query_all("Tickets", [aq.eq("Deskbridge Ref", "db-2", udf=True)])
    assert [f["id"] for f in found] == [uid]
    with pytest.raises(PsaValidationError):
        m.new_ticket_body(NewTicket(summary="x", marker="m"), picks)
    with pytest.raises(PsaValidationError):
        m.new_ticket_body(NewTicket(summary="x", marker="m" * 51, company_external_id="175"), picks)
    assert fake.ignored_fields == []


async def test_patch_bodies(fake: FakeAutotask, client: AtClient) -> None:
    picks = await load_picklists(client)
    tid = str(fake.add_ticket("Patch")["id"])
    assert m.ticket_patch_body(tid, TicketPatch(status_external_id="8")) == {"id": int(tid), "status": 8}
    assign = m.ticket_patch_body(tid, TicketPatch(owner_external_id=str(fake.tech_id), board_external_id="8"),
                                 owner_role_id="29683461")
    await client.update("Tickets", assign)
    assert m.ticket(await client.get_item(f"Tickets/{tid}"), picks).owner is not None
    unassign = m.ticket_patch_body(tid, TicketPatch(unassign=True, summary="Renamed"))
    assert unassign == {"id": int(tid), "title": "Renamed", "assignedResourceID": None,
                        "assignedResourceRoleID": None}
    await client.update("Tickets", unassign)
    t = m.ticket(await client.get_item(f"Tickets/{tid}"), picks)
    assert t.owner is None and t.summary == "Renamed" and t.board is not None and t.board.name == "Monitoring Alert"


async def test_time_entry_bodies_round_trip(fake: FakeAutotask, client: AtClient) -> None:
    tid = str(fake.add_ticket("Time")["id"])
    entry = NewTimeEntry(ticket_external_id=tid, minutes=50, started_at=T0 + timedelta(hours=3), marker="t1",
                         notes="", billable=False)
    body = m.time_entry_body(entry, resource_id=str(fake.api_resource_id))
    assert "hoursToBill" not in body and body["hoursWorked"] == 0.8333
    assert (body["startDateTime"], body["endDateTime"]) == ("2026-01-05T15:00:00.000Z", "2026-01-05T15:50:00.000Z")
    assert body["summaryNotes"] == m.DEFAULT_TIME_SUMMARY and body["isNonBillable"] is True
    stored = await client.get_item(f"TimeEntries/{await client.create('TimeEntries', body)}")
    te = m.time_entry(stored)
    assert (te.minutes, te.billable, te.started_at, te.ticket_external_id) == (50, False, entry.started_at, tid)
    assert te.notes == "" and stored["summaryNotes"] == m.DEFAULT_TIME_SUMMARY  # what was written reads back
    assert stored["hoursToBill"] == 0.0 and stored["roleID"] == 29683461 and fake.ignored_fields == []
    assert m.time_entry({"id": 1, "startDateTime": "2026-01-05T10:00:00Z", "endDateTime": "2026-01-05T10:45:00Z"
                         }).minutes == 45
    with pytest.raises(PsaValidationError):
        m.time_entry_body(NewTimeEntry(ticket_external_id=tid, minutes=0, started_at=T0, marker="z"),
                          resource_id="1")


async def test_attachment_bodies_round_trip(fake: FakeAutotask, client: AtClient) -> None:
    picks = await load_picklists(client)
    tid = fake.add_ticket("Files")["id"]
    content = bytes(range(256)) * 4
    body = m.attachment_body(NewAttachment(ticket_external_id=str(tid), filename="dump.bin", content=content,
                                           marker="a1"), picks)
    assert body["publish"] == 2 and body["attachmentType"] == "FILE_ATTACHMENT" and body["id"] == 0
    aid = await client.create(f"Tickets/{tid}/Attachments", body)
    meta, data = await client.download_attachment(tid, aid)
    assert data == content and "data" not in meta
    listed = await client.query_all("TicketAttachments", [aq.eq("parentID", tid)])
    a = m.attachment(listed[0])
    assert (a.filename, a.size, a.ticket_external_id, a.external_id) == ("dump.bin", 1024, str(tid), str(aid))
    assert "data" not in listed[0] and a.created_at is not None and fake.ignored_fields == []


async def test_directory_records(fake: FakeAutotask, client: AtClient) -> None:
    companies = [m.company(c) for c in await client.query_all("Companies")]
    assert [(c.external_id, c.identifier, c.name) for c in companies][:2] == [
        ("0", "MSP", "Deskbridge Test MSP"), ("175", "ACME", "Acme Corp")]
    assert m.company({"id": 9, "companyName": "No number", "isActive": False}).identifier == "9"
    cid = await client.create("Companies/175/Contacts", {"firstName": "Old", "lastName": "Timer", "isActive": 0,
                                                         "emailAddress": "old@acme.example", "phone": "555"})
    contacts = {c.external_id: c for c in map(m.contact, await client.query_all("Contacts"))}
    assert not contacts[str(cid)].active and contacts[str(cid)].company_external_id == "175"
    assert contacts["30682801"].active and contacts["30682801"].email == "pat@acme.example"
    members = [m.member(r) for r in await client.query_all("Resources")]
    bob = next(x for x in members if x.external_id == str(fake.tech_id))
    assert (bob.name, bob.identifier, bob.email, bob.active) == ("Bob Tech", "bob", "bob@msp.example", True)
    assert [x.active for x in members].count(False) == 1
