"""The PSA connector contract: every connector passes these, against its fake (one `harness` per connector).

The harness interface is in tests/connectors/contract.py; register a connector in tests/connectors/conftest.py.
Everything is discovered through the connector itself (boards, statuses, members, companies), so the
suite holds no vendor ids. Tests of features a PSA lacks are skipped by its capabilities.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import urlparse

import pytest

from connectors import errors
from connectors.base import (
    Feature,
    NewAttachment,
    NewNote,
    NewTicket,
    NewTimeEntry,
    NoteVisibility,
    PsaCompany,
    PsaConnector,
    PsaContact,
    PsaStatus,
    PsaTicket,
    TicketPatch,
    WriteKind,
    WriteProbe,
)
from tests.connectors.contract import FaultKind, Harness


def _probe(kind: WriteKind, marker: str, harness: Harness, ticket: str | None = None, **kw: object) -> WriteProbe:
    """A lost write, as the outbox would describe it (made a minute before the fake's clock)."""
    return WriteProbe(kind=kind, marker=marker, ticket_external_id=ticket,
                      since=harness.now() - timedelta(minutes=1), **kw)  # type: ignore[arg-type]


def _marker() -> str:
    return uuid.uuid4().hex[:20]


def _whole(when: datetime) -> datetime:
    return when.astimezone(UTC).replace(microsecond=0)


async def _all_changed(conn: PsaConnector, since: datetime | None) -> tuple[list[PsaTicket], int]:
    items: list[PsaTicket] = []
    cursor, pages = None, 0
    while True:
        page = await conn.list_changed_tickets(since, cursor)
        items.extend(page.items)
        pages += 1
        assert pages < 10_000, "paging never ends"
        if page.next_cursor is None:
            return items, pages
        cursor = page.next_cursor


async def _board_and_statuses(conn: PsaConnector) -> tuple[str, list[PsaStatus], list[PsaStatus]]:
    """A board with at least two open statuses and one closed one: (board id, open, closed)."""
    picks = await conn.picklists()
    for board in picks.boards:
        statuses = [s for s in picks.statuses if s.board_external_id in (board.external_id, None) and s.active]
        open_, closed = [s for s in statuses if not s.closed], [s for s in statuses if s.closed]
        if len(open_) >= 2 and closed:
            return board.external_id, open_, closed
    pytest.fail("the fake needs a board with two open statuses and a closed one")


async def _company_and_contact(conn: PsaConnector) -> tuple[str, str | None]:
    companies = (await conn.list_companies()).items
    assert companies, "the fake needs at least one company"
    company = next(c for c in companies if c.active)
    contacts = (await conn.list_contacts()).items
    contact = next((c.external_id for c in contacts if c.company_external_id == company.external_id), None)
    return company.external_id, contact


async def _create(conn: PsaConnector, marker: str, summary: str = "Contract test ticket") -> PsaTicket:
    """A ticket with every field the PSA requires on create (found through the connector)."""
    board, open_, _ = await _board_and_statuses(conn)
    company, contact = await _company_and_contact(conn)
    picks = await conn.picklists()
    requires = conn.capabilities.create_requires
    types = [t for t in picks.types if t.board_external_id in (board, None)]
    return await conn.create_ticket(NewTicket(
        summary=summary, marker=marker, description="Made by the contract suite.", company_external_id=company,
        contact_external_id=contact if contact and "contact_external_id" in requires else None,
        board_external_id=board,
        status_external_id=next((s.external_id for s in open_ if s.default), open_[0].external_id),
        priority_external_id=picks.priorities[0].external_id if "priority_external_id" in requires else None,
        type_external_id=types[0].external_id if types and "type_external_id" in requires else None))


# ---------------------------------------------------------------- credentials and shape


async def test_kind_and_capabilities_are_declared(harness: Harness) -> None:
    conn = harness.make_connector()
    assert isinstance(conn, PsaConnector)
    assert conn.kind == harness.name
    assert type(conn).CAPABILITIES.features == conn.capabilities.features  # type: ignore[attr-defined]
    assert conn.capabilities.max_attachment_bytes > 0 and conn.capabilities.page_size > 0


async def test_check_credentials_ok(harness: Harness) -> None:
    info = await harness.make_connector().check_credentials()
    assert info.display_name.strip()


async def test_bad_credentials_raise_auth_error(harness: Harness) -> None:
    conn = harness.make_connector(bad_credentials=True)
    with pytest.raises(errors.PsaAuthError) as caught:
        await conn.check_credentials()
    assert not caught.value.retryable and caught.value.message


# ---------------------------------------------------------------- reading tickets


async def test_paging_reaches_every_ticket_exactly_once(harness: Harness) -> None:
    conn = harness.make_connector()
    items, pages = await _all_changed(conn, None)
    ids = [t.external_id for t in items]
    assert pages >= 2, "the fake must hold more than one page of tickets"
    assert len(ids) == len(set(ids))
    assert set(ids) == harness.ticket_ids()
    stamps = [t.updated_at for t in items]
    assert all(s is not None for s in stamps)
    assert stamps == sorted(stamps), "oldest change first"  # type: ignore[type-var]


async def test_incremental_since_includes_the_boundary_ticket(harness: Harness) -> None:
    t0 = _whole(harness.now()) + timedelta(days=1)
    before = harness.seed_ticket("Changed before the watermark", at=t0 - timedelta(hours=1))
    boundary = harness.seed_ticket("Changed exactly at the watermark", at=t0)
    after = harness.seed_ticket("Changed after the watermark", at=t0 + timedelta(hours=1))
    old = sorted(harness.ticket_ids() - {before, boundary, after})[0]
    harness.touch_ticket(old, at=t0 + timedelta(minutes=30))
    harness.set_now(t0 + timedelta(hours=2))
    items, _ = await _all_changed(harness.make_connector(), t0)
    ids = [t.external_id for t in items]
    assert set(ids) == {boundary, after, old}
    assert all(t.updated_at is not None and t.updated_at >= t0 for t in items)
    assert ids.index(boundary) < ids.index(old) < ids.index(after)


async def test_get_ticket_round_trip_and_unknown(harness: Harness) -> None:
    conn = harness.make_connector()
    t0 = _whole(harness.now()) + timedelta(days=1)
    tid = harness.seed_ticket("Printer on fire", at=t0)
    ticket = await conn.get_ticket(tid)
    assert ticket.external_id == tid and ticket.summary == "Printer on fire"
    assert ticket.updated_at == t0 and ticket.updated_at.tzinfo is not None
    with pytest.raises(errors.PsaNotFound):
        await conn.get_ticket("987654321")


async def test_list_ticket_ids_detects_deletes(harness: Harness) -> None:
    conn = harness.make_connector()
    if not conn.capabilities.has(Feature.DELETE_DETECTION):
        pytest.skip("no delete detection")

    async def all_ids() -> list[str]:
        ids: list[str] = []
        cursor: str | None = None
        while True:
            page = await conn.list_ticket_ids(cursor)
            ids.extend(page.items)
            if page.next_cursor is None:
                return ids
            cursor = page.next_cursor

    ids = await all_ids()
    assert len(ids) == len(set(ids)) and set(ids) == harness.ticket_ids()
    harness.delete_ticket(ids[0])
    assert set(await all_ids()) == set(ids) - {ids[0]}
    with pytest.raises(errors.PsaNotFound):
        await conn.get_ticket(ids[0])


# ---------------------------------------------------------------- writing tickets


async def test_create_ticket_is_found_again_by_its_marker(harness: Harness) -> None:
    conn = harness.make_connector()
    marker = _marker()
    created = await _create(conn, marker, "New hire: laptop for Sam")
    assert created.summary == "New hire: laptop for Sam" and created.external_id
    again = await conn.get_ticket(created.external_id)
    assert again.summary == created.summary and again.company == created.company
    if conn.capabilities.has(Feature.TICKET_MARKER_FIELD):
        assert again.marker == marker
    found = await conn.find_write(_probe(WriteKind.TICKET, marker, harness))
    assert found is not None and found.external_id == created.external_id
    assert await conn.find_write(_probe(WriteKind.TICKET, _marker(), harness)) is None
    assert harness.count_writes(marker) == 1


async def test_update_ticket_changes_only_the_given_fields(harness: Harness) -> None:
    conn = harness.make_connector()
    board, open_, _ = await _board_and_statuses(conn)
    created = await _create(conn, _marker())
    picks = await conn.picklists()
    members = [m for m in await conn.list_members() if m.active]
    target = next(s for s in open_ if created.status is None or s.external_id != created.status.id)
    priority = next(p for p in picks.priorities if created.priority is None or p.external_id != created.priority.id)
    patched = await conn.update_ticket(created.external_id, TicketPatch(
        status_external_id=target.external_id, priority_external_id=priority.external_id,
        owner_external_id=members[0].external_id))
    again = await conn.get_ticket(created.external_id)
    for t in (patched, again):
        assert t.status is not None and t.status.id == target.external_id
        assert t.priority is not None and t.priority.id == priority.external_id
        assert t.owner is not None and t.owner.id == members[0].external_id
        assert t.summary == created.summary and t.company == created.company
        assert t.board is not None and t.board.id == board
    unassigned = await conn.update_ticket(created.external_id, TicketPatch(unassign=True))
    assert unassigned.owner is None
    assert unassigned.status is not None and unassigned.status.id == target.external_id
    assert unassigned.priority is not None and unassigned.priority.id == priority.external_id
    renamed = await conn.update_ticket(created.external_id, TicketPatch(summary="Renamed by the suite"))
    assert renamed.summary == "Renamed by the suite"
    assert renamed.status is not None and renamed.status.id == target.external_id


async def test_closing_status_is_reported_closed(harness: Harness) -> None:
    conn = harness.make_connector()
    _, _, closed = await _board_and_statuses(conn)
    created = await _create(conn, _marker())
    done = await conn.update_ticket(created.external_id, TicketPatch(status_external_id=closed[0].external_id))
    assert done.status is not None and done.status.id == closed[0].external_id
    assert done.status_closed is True


async def test_invalid_status_raises_validation_error(harness: Harness) -> None:
    conn = harness.make_connector()
    board, _, _ = await _board_and_statuses(conn)
    created = await _create(conn, _marker())
    picks = await conn.picklists()
    foreign = [s for s in picks.statuses if s.board_external_id not in (board, None)]
    bad = foreign[0].external_id if conn.capabilities.has(Feature.BOARD_SCOPED_STATUSES) and foreign else "987654"
    with pytest.raises(errors.PsaValidationError) as caught:
        await conn.update_ticket(created.external_id, TicketPatch(status_external_id=bad))
    assert not caught.value.retryable and caught.value.message
    assert (await conn.get_ticket(created.external_id)).status == created.status


# ---------------------------------------------------------------- notes, time, attachments


async def test_notes_round_trip_with_visibility_and_exact_text(harness: Harness) -> None:
    conn = harness.make_connector()
    created = await _create(conn, _marker())
    visibilities = [NoteVisibility.PUBLIC, NoteVisibility.INTERNAL]
    if conn.capabilities.has(Feature.RESOLUTION_NOTES):
        visibilities.append(NoteVisibility.RESOLUTION)
    made = {}
    for vis in visibilities:
        marker = _marker()
        text = f"A {vis.value} note.\n\nSecond paragraph, as typed."
        note = await conn.add_note(NewNote(ticket_external_id=created.external_id, text=text, visibility=vis,
                                           marker=marker))
        assert note.visibility is vis and note.text == text
        made[vis] = (marker, note.external_id, text)
    listed = {n.external_id: n for n in await conn.list_notes(created.external_id)}
    stored = harness.stored_texts(created.external_id)
    for vis, (marker, ext, text) in made.items():
        assert listed[ext].visibility is vis and listed[ext].text == text
        assert text in stored and not any(marker in t for t in stored)  # exactly as typed: no tag anywhere
        found = await conn.find_write(_probe(WriteKind.NOTE, marker, harness, created.external_id, text=text,
                                             visibility=vis))
        assert found is not None and found.external_id == ext
        # a record already accounted for (another op's) is never taken for this write
        other = await conn.find_write(_probe(WriteKind.NOTE, marker, harness, created.external_id, text=text,
                                             visibility=vis, exclude=frozenset({ext})))
        assert other is None


async def test_time_entry_round_trip(harness: Harness) -> None:
    conn = harness.make_connector()
    if not conn.capabilities.has(Feature.TIME_ENTRIES):
        pytest.skip("no time entries")
    created = await _create(conn, _marker())
    member = next(m for m in await conn.list_members() if m.active)
    marker = _marker()
    start = _whole(harness.now()) - timedelta(hours=1)
    entry = await conn.add_time_entry(NewTimeEntry(ticket_external_id=created.external_id, minutes=45,
                                                   started_at=start, marker=marker, member_external_id=member.external_id,
                                                   notes="Replaced the toner."))
    assert entry.minutes == 45 and entry.ticket_external_id == created.external_id
    listed = [e for e in await conn.list_time_entries(created.external_id) if e.external_id == entry.external_id]
    assert len(listed) == 1 and listed[0].minutes == 45 and listed[0].notes == "Replaced the toner."
    assert listed[0].member is not None and listed[0].member.id == member.external_id
    assert "Replaced the toner." in harness.stored_texts(created.external_id)  # invoices print it as typed
    assert not any(marker in t for t in harness.stored_texts(created.external_id))
    found = await conn.find_write(_probe(WriteKind.TIME_ENTRY, marker, harness, created.external_id,
                                         text="Replaced the toner.", minutes=45, started_at=start,
                                         author_external_id=member.external_id))
    assert found is not None and found.external_id == entry.external_id
    other = await conn.find_write(_probe(WriteKind.TIME_ENTRY, marker, harness, created.external_id,
                                         text="Replaced the toner.", minutes=30, started_at=start))
    assert other is None  # a different duration is a different entry


async def test_attachment_under_the_cap_is_uploaded_with_the_visibility_asked(harness: Harness) -> None:
    conn = harness.make_connector()
    if not conn.capabilities.has(Feature.ATTACHMENTS):
        pytest.skip("no attachments")
    created = await _create(conn, _marker())
    made = {}
    for vis, name in ((NoteVisibility.INTERNAL, "firewall-screenshot.png"), (NoteVisibility.PUBLIC, "guide.pdf")):
        marker = _marker()
        att = await conn.upload_attachment(NewAttachment(
            ticket_external_id=created.external_id, filename=name, content=b"line 1\nline 2\n", marker=marker,
            content_type="application/octet-stream", visibility=vis))
        made[vis] = (marker, att.external_id, name)
    listed = {a.external_id: a for a in await conn.list_attachments(created.external_id)}
    stored = harness.stored_texts(created.external_id)
    for vis, (marker, ext, name) in made.items():
        assert listed[ext].filename == name and listed[ext].visibility is vis
        assert not any(marker in t for t in stored)  # the title the portal shows is the file's name
        found = await conn.find_write(_probe(WriteKind.ATTACHMENT, marker, harness, created.external_id,
                                             filename=name, size=14))
        assert found is not None and found.external_id == ext


async def test_attachment_over_the_cap_is_refused_before_sending(harness: Harness) -> None:
    conn = harness.make_connector()
    if not conn.capabilities.has(Feature.ATTACHMENTS):
        pytest.skip("no attachments")
    created = await _create(conn, _marker())
    marker = _marker()
    sent_before = harness.request_count()
    with pytest.raises(errors.PsaTooLarge):
        await conn.upload_attachment(NewAttachment(
            ticket_external_id=created.external_id, filename="huge.bin", marker=marker,
            content=b"\0" * (conn.capabilities.max_attachment_bytes + 1)))
    assert harness.request_count() == sent_before
    assert harness.count_writes(marker) == 0


# ---------------------------------------------------------------- faults


async def test_401_raises_auth_error(harness: Harness) -> None:
    conn = harness.make_connector()
    tid = sorted(harness.ticket_ids())[0]
    harness.fail_next(FaultKind.AUTH)
    with pytest.raises(errors.PsaAuthError):
        await conn.get_ticket(tid)
    assert (await conn.get_ticket(tid)).external_id == tid  # only the next request failed


async def test_429_raises_rate_limited_with_retry_after(harness: Harness) -> None:
    conn = harness.make_connector()
    harness.fail_next(FaultKind.RATE_LIMIT, retry_after=7)
    with pytest.raises(errors.PsaRateLimited) as caught:
        await conn.list_changed_tickets(None)
    assert caught.value.retryable and caught.value.retry_after == pytest.approx(7)


async def test_500_raises_retryable_unavailable(harness: Harness) -> None:
    conn = harness.make_connector()
    harness.fail_next(FaultKind.SERVER_ERROR)
    with pytest.raises(errors.PsaUnavailable) as caught:
        await conn.get_ticket(sorted(harness.ticket_ids())[0])
    assert caught.value.retryable


async def test_lost_response_note_is_found_again_and_not_repeated(harness: Harness) -> None:
    conn = harness.make_connector()
    created = await _create(conn, _marker())
    marker = _marker()
    text = "Did this land?"
    probe = _probe(WriteKind.NOTE, marker, harness, created.external_id, text=text,
                   visibility=NoteVisibility.INTERNAL)
    assert await conn.find_write(probe) is None
    harness.fail_next(FaultKind.LOST_RESPONSE)
    with pytest.raises(errors.PsaTimeout) as caught:
        await conn.add_note(NewNote(ticket_external_id=created.external_id, text=text,
                                    visibility=NoteVisibility.INTERNAL, marker=marker))
    assert caught.value.outcome_unknown and caught.value.retryable
    assert harness.stored_texts(created.external_id).count(text) == 1  # applied, exactly as typed
    found = await conn.find_write(probe)
    assert found is not None
    assert [n.external_id for n in await conn.list_notes(created.external_id) if n.text == text] == [found.external_id]


async def test_a_public_reply_that_emails_the_contact_leaves_the_ticket_as_it_was(harness: Harness) -> None:
    conn = harness.make_connector()
    created = await _create(conn, _marker())
    before = harness.ticket_fields(created.external_id)
    await conn.add_note(NewNote(ticket_external_id=created.external_id, text="We replaced the switch.",
                                visibility=NoteVisibility.PUBLIC, marker=_marker(), email_contact=True))
    await conn.add_note(NewNote(ticket_external_id=created.external_id, text="Internal: RMA 4411.",
                                visibility=NoteVisibility.INTERNAL, marker=_marker()))
    assert harness.ticket_fields(created.external_id) == before


async def test_lost_response_ticket_is_found_by_its_marker(harness: Harness) -> None:
    conn = harness.make_connector()
    await _board_and_statuses(conn)  # lookups first: the fault must hit the write
    marker = _marker()
    harness.fail_next(FaultKind.LOST_RESPONSE)
    with pytest.raises(errors.PsaTimeout) as caught:
        await _create(conn, marker, "Created while the network hiccupped")
    assert caught.value.outcome_unknown
    found = await conn.find_write(_probe(WriteKind.TICKET, marker, harness))
    assert found is not None
    assert (await conn.get_ticket(found.external_id)).summary == "Created while the network hiccupped"
    assert harness.count_writes(marker) == 1


# ---------------------------------------------------------------- picklists and directory


async def test_picklists_have_board_scoped_statuses(harness: Harness) -> None:
    conn = harness.make_connector()
    picks = await conn.picklists()
    boards = {b.external_id for b in picks.boards}
    assert boards and len(picks.priorities) >= 2
    assert any(s.closed for s in picks.statuses) and any(not s.closed for s in picks.statuses)
    if conn.capabilities.has(Feature.BOARD_SCOPED_STATUSES):
        assert all(s.board_external_id in boards for s in picks.statuses)
    assert len({s.external_id for s in picks.statuses}) == len(picks.statuses)


async def test_members_companies_and_contacts_page_to_the_end(harness: Harness) -> None:
    conn = harness.make_connector()
    members = await conn.list_members()
    assert members and any(m.email for m in members)
    companies: list[PsaCompany] = []
    cursor: str | None = None
    while True:
        page = await conn.list_companies(cursor)
        companies.extend(page.items)
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    company_ids = [c.external_id for c in companies]
    assert company_ids and len(company_ids) == len(set(company_ids))
    contacts: list[PsaContact] = []
    cursor = None
    while True:
        cpage = await conn.list_contacts(cursor)
        contacts.extend(cpage.items)
        if cpage.next_cursor is None:
            break
        cursor = cpage.next_cursor
    assert contacts and len({c.external_id for c in contacts}) == len(contacts)
    assert {c.company_external_id for c in contacts if c.company_external_id} <= set(company_ids)


# ---------------------------------------------------------------- webhooks and links


async def test_webhook_signatures_are_verified(harness: Harness) -> None:
    conn = harness.make_connector()
    if not conn.capabilities.has(Feature.WEBHOOKS):
        pytest.skip("no webhooks")
    tid = sorted(harness.ticket_ids())[0]
    headers, body = harness.webhook(tid)
    event = await conn.parse_webhook(headers, body)
    assert event.ticket_external_id == tid and event.entity == "ticket"
    assert event.verified is conn.capabilities.has(Feature.WEBHOOK_SIGNATURES)
    if conn.capabilities.has(Feature.WEBHOOK_SIGNATURES):
        bad_headers, bad_body = harness.webhook(tid, valid=False)
        with pytest.raises(errors.WebhookRejected):
            await conn.parse_webhook(bad_headers, bad_body)


async def test_ticket_url_is_a_deep_link(harness: Harness) -> None:
    conn = harness.make_connector()
    tid = sorted(harness.ticket_ids())[0]
    url = conn.ticket_url(tid)
    parsed = urlparse(url)
    assert parsed.scheme in ("http", "https") and parsed.netloc
    assert tid in url
    assert conn.ticket_url(tid) != conn.ticket_url(tid + "0")
