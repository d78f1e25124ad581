"""Finding a lost write again without a marker in customer-visible text (connectors/autotask/dedupe.py)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from connectors.autotask import dedupe as d
from connectors.autotask import mapping as m
from connectors.autotask.client import AtClient
from connectors.base import NewAttachment, NewNote, NewTicket, NewTimeEntry, NoteVisibility
from connectors.errors import PsaTimeout, PsaUnavailable
from tests.connectors.autotask.conftest import T0, load_picklists
from tests.fakes.autotask import FakeAutotask


async def _lost(client: AtClient, fake: FakeAutotask, path: str, body: dict) -> None:
    fake.lose_next_response()
    with pytest.raises(PsaTimeout) as caught:
        await client.create(path, body)
    assert caught.value.outcome_unknown


@pytest.mark.parametrize("marker_udf", [None, "Deskbridge Ref"])
async def test_lost_ticket_is_found_by_its_marker(fake: FakeAutotask, client: AtClient, marker_udf: str | None) -> None:
    picks = await load_picklists(client)
    fake.add_ticket("Decoy", externalID="db-7x")
    body = m.new_ticket_body(NewTicket(summary="Lost", marker="db-7", company_external_id="175"), picks,
                             marker_udf=marker_udf)
    await _lost(client, fake, "Tickets", body)
    found = await client.query_all("Tickets", d.ticket_filters("db-7", marker_udf=marker_udf))
    assert [f["title"] for f in found] == ["Lost"]
    assert await client.query_all("Tickets", d.ticket_filters("db-8", marker_udf=marker_udf)) == []


async def test_lost_note_is_found_by_what_was_sent(fake: FakeAutotask, client: AtClient) -> None:
    picks = await load_picklists(client)
    tid = fake.add_ticket("Notes")["id"]
    fake.clock.advance(3600)
    since = fake.clock.now
    body = m.note_body(NewNote(ticket_external_id=str(tid), text="We replaced the fuser.",
                               visibility=NoteVisibility.PUBLIC, marker="n-1"), picks)
    fake.add_note(tid, "We replaced the fuser.", title="We replaced the fuser.")  # a technician, same words
    await _lost(client, fake, f"Tickets/{tid}/Notes", body)
    fake.add_note(tid, "Something else")
    candidates = await client.query_all("TicketNotes", d.note_filters(str(tid), since))
    assert len(candidates) == 3
    ours = [c for c in candidates if d.same_note(c, body, creator_resource_id=str(fake.api_resource_id))]
    assert len(ours) == 1 and ours[0]["creatorResourceID"] == fake.api_resource_id
    assert len([c for c in candidates if d.same_note(c, body)]) == 2  # content alone cannot tell them apart
    assert "n-1" not in str(fake.tables["TicketNotes"])  # nothing of the marker reached Autotask
    assert d.first_unclaimed(ours, claimed={str(ours[0]["id"])}) is None
    assert d.first_unclaimed(ours) == ours[0]


async def test_a_note_that_never_landed_is_not_found(fake: FakeAutotask, client: AtClient) -> None:
    picks = await load_picklists(client)
    tid = fake.add_ticket("Nothing landed")["id"]
    since = fake.clock.now
    body = m.note_body(NewNote(ticket_external_id=str(tid), text="Hello", visibility=NoteVisibility.INTERNAL,
                               marker="n-2"), picks)
    fake.fail_next(503, match="POST /Tickets/{id}/Notes")
    with pytest.raises(PsaUnavailable) as caught:
        await client.create(f"Tickets/{tid}/Notes", body)
    assert caught.value.outcome_unknown
    candidates = await client.query_all("TicketNotes", d.note_filters(str(tid), since))
    assert [c for c in candidates if d.same_note(c, body)] == []


async def test_lost_time_entry_is_found_by_its_natural_key(fake: FakeAutotask, client: AtClient) -> None:
    tid = str(fake.add_ticket("Time")["id"])
    start = T0 + timedelta(hours=2)
    entry = NewTimeEntry(ticket_external_id=tid, minutes=30, started_at=start, marker="t-1", notes="Cabling")
    body = m.time_entry_body(entry, resource_id=str(fake.api_resource_id))
    other = m.time_entry_body(NewTimeEntry(ticket_external_id=tid, minutes=45, started_at=start, marker="t-0",
                                           notes="Cabling"), resource_id=str(fake.api_resource_id))
    await client.create("TimeEntries", other)  # same start, different duration: not ours
    await _lost(client, fake, "TimeEntries", body)
    candidates = await client.query_all("TimeEntries", d.time_entry_filters(tid, str(fake.api_resource_id), start))
    assert len(candidates) == 2
    ours = [c for c in candidates if d.same_time_entry(c, body)]
    assert len(ours) == 1 and ours[0]["hoursWorked"] == 0.5
    assert not d.same_time_entry({**ours[0], "summaryNotes": "Other"}, body)


async def test_lost_attachment_is_found_by_name_and_size(fake: FakeAutotask, client: AtClient) -> None:
    picks = await load_picklists(client)
    tid = fake.add_ticket("Files")["id"]
    since = fake.clock.now
    content = b"%PDF-1.7 quote"
    body = m.attachment_body(NewAttachment(ticket_external_id=str(tid), filename="quote.pdf", content=content,
                                           marker="a-1"), picks)
    await client.create(f"Tickets/{tid}/Attachments", {**body, "data": m.attachment_body(NewAttachment(
        ticket_external_id=str(tid), filename="quote.pdf", content=b"other", marker="a-0"), picks)["data"]})
    await _lost(client, fake, f"Tickets/{tid}/Attachments", body)
    candidates = await client.query_all("TicketAttachments", d.attachment_filters(str(tid), since))
    ours = [c for c in candidates if d.same_attachment(c, body, len(content),
                                                       creator_resource_id=str(fake.api_resource_id))]
    assert len(candidates) == 2 and len(ours) == 1
    _, data = await client.download_attachment(tid, ours[0]["id"])
    assert data == content
