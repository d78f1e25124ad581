"""HaloPSA mapping: Halo JSON (as the fake serves it over httpx) -> canonical models, and canonical writes ->
bodies the fake accepts, read back through the same mapping."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from connectors.base import NewAttachment, NewNote, NewTicket, NewTimeEntry, NoteVisibility, Ref, TicketPatch
from connectors.errors import PsaTimeout, PsaTooLarge, PsaValidationError
from connectors.halopsa import mapping as m
from connectors.halopsa import queries
from connectors.halopsa.client import HaloClient
from connectors.halopsa.mapping_writes import (
    attachment_body,
    new_ticket_body,
    note_body,
    ticket_update_body,
    time_entry_body,
)
from tests.fakes.halopsa import FakeHalo

INTERNAL_NOTE, PUBLIC_NOTE, EMAIL_USER, TIME_ENTRY = 7, 6, 5, 9


async def _closed_ids(halo: HaloClient) -> frozenset[str]:
    every = await halo.get_list("Status")
    still_open = await halo.get_list("Status", queries.statuses(exclude_closed=True))
    return m.closed_status_ids(m.ticket_statuses(every), m.ticket_statuses(still_open))


async def _actions(halo: HaloClient, ticket_id: str, *, time_only: bool = False) -> list[dict[str, Any]]:
    return await halo.get_list("Actions", queries.actions(ticket_id, time_only=time_only), key="actions")


# ---------------------------------------------------------------- scalars


@pytest.mark.parametrize(("raw", "expected"), [
    ("2026-03-02T09:00:00", datetime(2026, 3, 2, 9, 0, tzinfo=UTC)),
    ("2026-03-02T09:00:00.1234567", datetime(2026, 3, 2, 9, 0, 0, 123456, tzinfo=UTC)),
    ("2026-03-02T10:00:00+01:00", datetime(2026, 3, 2, 9, 0, tzinfo=UTC)),
    ("2026-03-02T09:00:00Z", datetime(2026, 3, 2, 9, 0, tzinfo=UTC)),
    ("1900-01-01T00:00:00", None), ("1980-06-01T00:00:00", None), ("", None), ("garbage", None), (None, None),
])
def test_dates(raw: str | None, expected: datetime | None) -> None:
    assert m.parse_dt(raw) == expected


def test_format_dt_and_markers_and_html() -> None:
    assert m.format_dt(datetime(2026, 3, 2, 10, 0, tzinfo=UTC)) == "2026-03-02T10:00:00.000000Z"
    with pytest.raises(ValueError):
        m.format_dt(datetime(2026, 3, 2))  # noqa: DTZ001 - a naive datetime is refused
    assert m.marker_of(m.marker_value("abc-1")) == "abc-1"
    assert m.marker_of("INC-42") is None and m.marker_of("db:") is None
    assert m.html_to_text("<p>Hello&nbsp;<b>there</b></p><p>Line 2<br>Line 3</p>") == "Hello\xa0there\nLine 2\nLine 3"


# ---------------------------------------------------------------- tickets


async def test_ticket_from_list_and_record(fake: FakeHalo, halo: HaloClient) -> None:
    created = fake.add_ticket("VPN down", client_id=12, user_id=501, details="Since 9am", priority_id=1,
                              third_party_id_string="db:m-1", agent_id=3)
    closed = await _closed_ids(halo)
    assert closed == {"8", "9"}
    row = (await halo.get("Tickets", queries.tickets(client_id="12")))["tickets"][0]
    full = await halo.get_record("Tickets", created["id"], queries.ticket())
    for data in (row, full):
        t = m.ticket(data, closed_status_ids=closed)
        assert t.external_id == str(created["id"]) and t.summary == "VPN down" and t.description == "Since 9am"
        assert t.company == Ref("12", "Acme Corp") and t.contact == Ref("501", "Pat User-Acme")
        assert t.board == t.type == Ref("1", "Incident")
        assert t.status == Ref("1", "New") and t.status_closed is False
        assert t.priority == Ref("1", "Critical") and t.owner == Ref("3", "Bob Tech")
        assert t.created_at == created["dateoccurred"] and t.updated_at == created["last_update"]
        assert t.respond_by == t.created_at + timedelta(hours=1) and t.resolve_by == t.created_at + timedelta(hours=4)
        assert t.closed_at is None and t.responded_at is None and t.marker == "m-1"
        assert m.ticket_team(data) == "Service Desk"
    assert m.ticket(row).status_closed is None  # unknown without the tenant's closed statuses


async def test_unassigned_agent_and_placeholder_client_read_as_none(fake: FakeHalo, halo: HaloClient) -> None:
    t = fake.add_ticket("Walk-in")  # no client: Halo files it under client 1
    data = await halo.get_record("Tickets", t["id"])
    assert data["client_id"] == 1 and data["agent_id"] == 1
    mapped = m.ticket(data)
    assert mapped.company is None and mapped.owner is None


async def test_new_ticket_body_round_trip(fake: FakeHalo, halo: HaloClient) -> None:
    new = NewTicket(summary="Laptop request", marker="mk-7", description="For the new starter",
                    company_external_id="13", contact_external_id="502", board_external_id="2",
                    type_external_id="2", priority_external_id="2", owner_external_id="4")
    saved = await halo.post_one("Tickets", new_ticket_body(new, team_name="Second Line", quiet=True,
                                                           marker_field_id=101))
    t = m.ticket(saved, closed_status_ids={"8", "9"})  # a POST answer: `lastupdate`, not `last_update`
    assert t.updated_at is not None and t.marker == "mk-7" and t.board == Ref("2", "Service Request")
    assert t.company == Ref("13", "Globex") and t.owner == Ref("4", "Ana Lead") and t.status == Ref("1", "New")
    stored = fake.tickets[int(t.external_id)]
    assert stored["team"] == "Second Line" and stored["third_party_id_string"] == "db:mk-7"
    assert stored["_cf"] == {101: "db:mk-7"} and fake.automations[-1]["fired"] is False
    assert "mk-7" not in stored["summary"] + stored["details"]  # never in the text the end user reads


async def test_new_ticket_refusals(halo: HaloClient) -> None:
    with pytest.raises(PsaValidationError) as info:  # Service Request makes user_id mandatory
        await halo.post_one("Tickets", new_ticket_body(NewTicket(summary="x", marker="m", company_external_id="12",
                                                                 board_external_id="2")))
    assert "user_id" in info.value.message
    with pytest.raises(PsaValidationError):
        new_ticket_body(NewTicket(summary="x", marker="m", board_external_id="1", type_external_id="2"))
    with pytest.raises(PsaValidationError) as bad_id:
        new_ticket_body(NewTicket(summary="x", marker="m", company_external_id="ACME"))
    assert bad_id.value.fields == {"company_external_id": "not a Halo id"}


async def test_ticket_update_body(fake: FakeHalo, halo: HaloClient) -> None:
    t = fake.add_ticket("Printer", client_id=12, agent_id=3)
    body = ticket_update_body(str(t["id"]), TicketPatch(status_external_id="9", priority_external_id="4",
                                                        summary="Printer (fixed)", unassign=True))
    assert body["id"] == t["id"]  # without it Halo would create a second ticket
    before = len(fake.tickets)
    mapped = m.ticket(await halo.post_one("Tickets", body), closed_status_ids={"8", "9"})
    assert len(fake.tickets) == before and mapped.summary == "Printer (fixed)" and mapped.owner is None
    assert mapped.status_closed and mapped.closed_at is not None and mapped.priority == Ref("4", "Low")
    with pytest.raises(PsaValidationError) as info:  # status 8 is not allowed on Service Request
        await halo.post_one("Tickets", ticket_update_body(str(t["id"]), TicketPatch(board_external_id="2",
                                                                                    status_external_id="8")))
    assert "not valid for ticket type" in info.value.message
    assert ticket_update_body("5", TicketPatch(owner_external_id="3"), team_name="Second Line") == {
        "id": 5, "agent_id": 3, "team": "Second Line"}


# ---------------------------------------------------------------- actions: notes and e-mail


async def test_notes_visibility_and_email_per_action(fake: FakeHalo, halo: HaloClient) -> None:
    t = fake.add_ticket("Outage", client_id=12, user_id=501)
    tid = str(t["id"])
    internal = NewNote(ticket_external_id=tid, text="Checked the logs", visibility=NoteVisibility.INTERNAL,
                       marker="n1", email_contact=True)  # e-mail asked for, but internal never mails
    public = NewNote(ticket_external_id=tid, text="We are on it", visibility=NoteVisibility.PUBLIC, marker="n2",
                     email_contact=True, author_member_external_id="3")
    quiet = NewNote(ticket_external_id=tid, text="Portal only", visibility=NoteVisibility.PUBLIC, marker="n3")
    await halo.post_one("Actions", note_body(internal, outcome_id=EMAIL_USER))  # outcome default would mail
    await halo.post_one("Actions", note_body(public, outcome_id=PUBLIC_NOTE, email_to="pat@acme.example",
                                             email_subject="Outage update"))
    await halo.post_one("Actions", note_body(quiet, outcome="public note"))
    assert [(e["to"], e["subject"], e["body"]) for e in fake.emails] == [
        ("pat@acme.example", "Outage update", "We are on it")]
    fake.add_reply(t["id"], "Thanks!")
    notes = [m.note(a, tid) for a in await _actions(halo, tid)]
    by_text = {n.text: n for n in notes}
    assert set(by_text) == {"Checked the logs", "We are on it", "Portal only", "Thanks!"}  # system action left out
    assert by_text["Checked the logs"].visibility is NoteVisibility.INTERNAL
    assert by_text["We are on it"].visibility is NoteVisibility.PUBLIC
    assert by_text["We are on it"].author == Ref("3", "Bob Tech") and not by_text["We are on it"].author_is_contact
    assert by_text["Portal only"].author == Ref("2", "Deskbridge API")
    assert by_text["Thanks!"].author_is_contact and by_text["Thanks!"].author == Ref("501", "Pat User-Acme")
    assert all(n.created_at is not None and n.ticket_external_id == tid for n in notes)


async def test_outcome_defaults_are_the_trap_explicit_flags_avoid(fake: FakeHalo, halo: HaloClient) -> None:
    t = fake.add_ticket("x", client_id=12, user_id=501)
    await halo.post_one("Actions", {"ticket_id": t["id"], "note": "internal?", "outcome_id": EMAIL_USER,
                                    "hiddenfromuser": True})  # sendemail left out: the outcome mails it
    assert [e["hidden"] for e in fake.emails] == [True]
    body = note_body(NewNote(ticket_external_id=str(t["id"]), text="x", visibility=NoteVisibility.INTERNAL,
                             marker="m"), outcome_id=EMAIL_USER)
    assert body["hiddenfromuser"] is True and body["sendemail"] is False
    with pytest.raises(PsaValidationError):
        note_body(NewNote(ticket_external_id="1", text="x", visibility=NoteVisibility.PUBLIC, marker="m"))


async def test_action_ids_are_per_ticket_and_status_rides_on_an_action(fake: FakeHalo, halo: HaloClient) -> None:
    a, b = fake.add_ticket("a", client_id=12), fake.add_ticket("b", client_id=13)
    saved = []
    for t in (a, b):
        note = NewNote(ticket_external_id=str(t["id"]), text="Resolved it", visibility=NoteVisibility.PUBLIC,
                       marker="m")
        saved.append(await halo.post_one("Actions", note_body(note, outcome_id=PUBLIC_NOTE, new_status_id="8")))
    assert [s["id"] for s in saved] == [2, 2]  # action 1 is the system "Ticket logged" on each
    one = await halo.get_record("Actions", 2, queries.action(str(b["id"])))
    assert one["ticket_id"] == b["id"] and fake.tickets[b["id"]]["status_id"] == 8
    resolution = m.note(one, str(b["id"]), resolution_outcomes={"Public Note"})
    assert resolution.visibility is NoteVisibility.RESOLUTION


async def test_a_lost_action_write_is_found_again_by_natural_key(fake: FakeHalo, halo: HaloClient) -> None:
    t = fake.add_ticket("Lost answers", client_id=12)
    tid = str(t["id"])
    me = str((await halo.get("Agent/me"))["id"])
    note = note_body(NewNote(ticket_external_id=tid, text="Rebooted the switch", visibility=NoteVisibility.INTERNAL,
                             marker="n"), outcome_id=INTERNAL_NOTE)
    entry = time_entry_body(NewTimeEntry(ticket_external_id=tid, minutes=45, marker="t", notes="Rebooted the switch",
                                         started_at=datetime(2026, 3, 2, 10, 0, tzinfo=UTC)), outcome_id=TIME_ENTRY)
    fake.lose_next_response(times=2, match="POST /api/Actions")
    for body in (note, entry):
        with pytest.raises(PsaTimeout):
            await halo.post_one("Actions", body)
    fake.add_note(t["id"], "Rebooted the switch", agent_id=3)  # same words, another author
    rows = await halo.get_list("Actions", queries.actions(tid, agent_only=True), key="actions")
    assert [r["id"] for r in rows if m.action_matches(r, note, api_agent_id=me)] == [2]
    assert [r["id"] for r in rows if m.action_matches(r, entry, api_agent_id=me)] == [3]
    assert not [r for r in rows if m.action_matches(r, {**note, "note": "Something else"}, api_agent_id=me)]


# ---------------------------------------------------------------- time and attachments


async def test_time_entries_as_actions(fake: FakeHalo, halo: HaloClient) -> None:
    t = fake.add_ticket("Server patching", client_id=14)
    start = datetime(2026, 3, 2, 13, 30, tzinfo=UTC)
    for minutes, billable in ((90, True), (20, False)):
        entry = NewTimeEntry(ticket_external_id=str(t["id"]), minutes=minutes, started_at=start, marker="t",
                             member_external_id="3", notes=f"{minutes} min", billable=billable)
        await halo.post_one("Actions", time_entry_body(entry, outcome_id=TIME_ENTRY))
    fake.add_note(t["id"], "Plain note, no time")
    rows = await _actions(halo, str(t["id"]), time_only=True)
    entries = sorted((m.time_entry(r, str(t["id"])) for r in rows), key=lambda e: e.minutes)
    assert [(e.minutes, e.billable, e.notes) for e in entries] == [(20, False, "20 min"), (90, True, "90 min")]
    assert all(e.started_at == start and e.member == Ref("3", "Bob Tech") for e in entries)
    assert all(m.is_time_action(r) for r in rows) and fake.emails == []
    assert all(a["hiddenfromuser"] for a in fake.actions[t["id"]].values() if a["timetaken"])


async def test_attachments_round_trip(fake: FakeHalo, halo: HaloClient) -> None:
    t = fake.add_ticket("Screenshot", client_id=12)
    att = NewAttachment(ticket_external_id=str(t["id"]), filename="error.png", content=b"\x89PNG fake",
                        marker="a-1", content_type="image/png")
    body = attachment_body(att)
    assert body["data_base64"].startswith("data:image/png;base64,") and body["showforusers"] is False
    saved = await halo.post_one("Attachment", body)
    listed = await halo.get_list("Attachment", queries.attachments(str(t["id"])), key="attachments")
    mapped = [m.attachment(r, str(t["id"])) for r in listed]
    assert [(a.external_id, a.filename, a.size, a.marker, a.content_type) for a in mapped] == [
        (str(saved["id"]), "error.png", len(att.content), "a-1", "image/png")]
    download = await halo.request("GET", f"Attachment/{saved['id']}")
    assert download.content == b"\x89PNG fake"
    with pytest.raises(PsaValidationError):  # no data-URI prefix: refused
        await halo.post_one("Attachment", {**body, "data_base64": body["data_base64"].split(",", 1)[1]})
    fake.max_attachment_bytes = 4
    with pytest.raises(PsaTooLarge):
        await halo.post_one("Attachment", body)


# ---------------------------------------------------------------- people and picklists


async def test_companies_contacts_members(halo: HaloClient) -> None:
    clients = await halo.get_all("Client", "clients", queries.clients(include_inactive=True))
    companies = [m.company(c) for c in clients if not m.is_placeholder_client(c)]
    assert [(c.external_id, c.name, c.active) for c in companies] == [
        ("12", "Acme Corp", True), ("13", "Globex", True), ("14", "Initech", True), ("15", "Umbrella", False)]
    users = await halo.get_all("Users", "users", queries.users(client_id="12", include_inactive=True))
    contacts = {c.email: c for c in map(m.contact, users)}
    assert contacts["pat@acme.example"].company_external_id == "12" and contacts["pat@acme.example"].active
    assert contacts["pat@acme.example"].phone == "+1 555 0212" and not contacts["gone@acme.example"].active
    agents = await halo.get_list("Agent", queries.agents())
    members = [m.member(a) for a in agents]
    assert [(x.name, x.identifier, x.active) for x in members] == [
        ("Bob Tech", "BT", True), ("Ana Lead", "AL", True), ("Old Timer", "OT", False)]
    assert not any(m.is_unassigned_agent(a) for a in agents)


async def test_picklists_statuses_per_ticket_type(halo: HaloClient) -> None:
    statuses = await halo.get_list("Status")
    assert any(s["type"] != 0 for s in statuses)  # opportunity statuses come along: filter them
    closed = await _closed_ids(halo)
    types = await halo.get_list("TicketType", queries.ticket_types())
    assert [m.board(t).name for t in types] == ["Incident", "Service Request", "Change"]  # inactive left out
    details = {t["id"]: await halo.get_record("TicketType", t["id"], queries.ticket_type()) for t in types}
    incident = m.statuses_for_type(details[1], statuses, closed)
    request = m.statuses_for_type(details[2], statuses, closed)
    assert [s.name for s in incident] == ["New", "In Progress", "Waiting on Customer", "Resolved", "Closed"]
    assert [(s.external_id, s.closed, s.default) for s in request] == [
        ("1", False, True), ("2", False, False), ("3", False, False), ("9", True, False)]
    assert {s.board_external_id for s in request} == {"2"}
    per_type = await halo.get_list("Status", queries.statuses(ticket_type_id="2"))
    assert [str(s["id"]) for s in per_type] == [s.external_id for s in request]  # Halo agrees
    assert m.required_fields(details[2]) == {"user_id"} and m.required_fields(details[3]) == {"category_1"}
    assert m.required_fields(details[1]) == frozenset()
    assert m.ticket_type(types[1]).board_external_id == "2"


async def test_priorities_and_teams(halo: HaloClient) -> None:
    rows = await halo.get_list("Priority")
    assert len({r["id"] for r in rows}) == len(rows) and len({r["priorityid"] for r in rows}) == 5
    everything = m.priorities(rows)
    assert [(p.external_id, p.name) for p in everything] == [("1", "Critical"), ("2", "High"), ("3", "Medium"),
                                                             ("4", "Low")]  # hidden "Planned" left out
    premium = m.priorities(await halo.get_list("Priority", queries.priorities(sla_id="2")), sla_id=2)
    assert [p.external_id for p in premium] == ["1", "2", "3", "4"]
    teams = [m.team(t) for t in await halo.get_list("Team", queries.teams())]
    assert teams == [Ref("1", "Service Desk"), Ref("2", "Second Line")]
