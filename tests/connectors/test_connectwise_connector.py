"""ConnectWise connector specifics against the fake server (the shared contract is in test_contract.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from connectors.base import (
    MemoryJournal,
    NewAttachment,
    NewNote,
    NewTicket,
    NewTimeEntry,
    NoteVisibility,
    TicketPatch,
    WriteKind,
    WriteProbe,
)
from connectors.connectwise.connector import EMAIL_FLAG, ConnectWiseConnector
from connectors.errors import (
    PsaAuthError,
    PsaNotFound,
    PsaRateLimited,
    PsaTimeout,
    PsaTooLarge,
    PsaUnavailable,
    PsaValidationError,
)
from tests.fakes.connectwise import FakeClock, FakeConnectWise

T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


@pytest.fixture
def fake() -> FakeConnectWise:
    return FakeConnectWise(clock=FakeClock(T0, step=timedelta(seconds=1)))


@pytest.fixture
async def cw(fake: FakeConnectWise):  # type: ignore[no-untyped-def]
    conn = ConnectWiseConnector(fake.config(), transport=fake.transport())
    yield conn
    await conn.aclose()


def _ticket_lists(fake: FakeConnectWise) -> list[dict[str, str]]:
    return [r.query for r in fake.requests if r.key == "GET /service/tickets"]


async def _new(cw: ConnectWiseConnector, fake: FakeConnectWise, marker: str = "m-1") -> str:
    t = await cw.create_ticket(NewTicket(summary="Printer on fire", marker=marker, description="Smoke everywhere",
                                         company_external_id=str(min(fake.companies)),
                                         contact_external_id=str(min(fake.contacts))))
    return t.external_id


async def test_paging_carries_every_parameter_to_the_end(fake: FakeConnectWise, cw: ConnectWiseConnector) -> None:
    fake.bulk_tickets(2500)
    since = T0 + timedelta(seconds=30)
    fake.reset_counts()
    seen, cursor, pages = [], None, 0
    while True:
        page = await cw.list_changed_tickets(since, cursor)
        seen += page.items
        pages += 1
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    expected = {str(t["id"]) for t in fake.tickets.values() if t["_info"]["lastUpdated"] >= "2026-01-05T12:00:30Z"}
    assert [t.external_id for t in seen] == sorted(expected, key=int) and len(expected) > 2000
    assert pages == 3 and fake.count("GET /service/tickets") == 3
    for q in _ticket_lists(fake):
        assert q["pagesize"] == "1000" and q["orderby"] == "_info/lastUpdated asc, id asc"
        assert q["conditions"].startswith("lastUpdated>=[2026-01-05T12:00:30Z]")
    assert fake.count("GET /login/companyinfo") == 1  # codebase cached


async def test_since_boundary_is_inclusive_and_naive_option(fake: FakeConnectWise) -> None:
    fake.clock.step = timedelta(0)
    fake.clock.set(T0 + timedelta(hours=1))
    boundary = fake.add_ticket("At the boundary")["id"]
    naive = ConnectWiseConnector(fake.config(naive_datetimes="true"), transport=fake.transport())
    page = await naive.list_changed_tickets(T0 + timedelta(hours=1, microseconds=500))
    assert [t.external_id for t in page.items] == [str(boundary)]
    assert _ticket_lists(fake)[-1]["conditions"] == "lastUpdated>=[2026-01-05T13:00:00]"
    await naive.aclose()


async def test_patch_sends_only_changed_fields(fake: FakeConnectWise, cw: ConnectWiseConnector) -> None:
    tid = await _new(cw, fake)
    board = fake.boards[min(fake.boards)]
    status = fake.status_named(board["id"], "In Progress")
    patched = await cw.update_ticket(tid, TicketPatch(status_external_id=str(status["id"])))
    body = [r for r in fake.requests if r.key == "PATCH /service/tickets/{id}"][-1].json()
    assert body == [{"op": "replace", "path": "status", "value": {"id": status["id"]}}]
    assert patched.status is not None and patched.status.name == "In Progress"
    assert (await cw.get_ticket(tid)).summary == "Printer on fire"
    fake.reset_counts()
    assert (await cw.update_ticket(tid, TicketPatch())).external_id == tid
    assert fake.count("PATCH /service/tickets/{id}") == 0


async def test_create_body_and_validation(fake: FakeConnectWise, cw: ConnectWiseConnector) -> None:
    tid = await _new(cw, fake, marker="xref-42")
    body = [r for r in fake.requests if r.key == "POST /service/tickets"][-1].json()
    assert body["externalXRef"] == "xref-42" and body["initialDescription"] == "Smoke everywhere"
    assert body["company"] == {"id": min(fake.companies)}
    assert fake.tickets[int(tid)]["externalXRef"] == "xref-42"
    with pytest.raises(PsaValidationError) as caught:
        await cw.create_ticket(NewTicket(summary="No company", marker="m"))
    assert "company" in caught.value.fields
    other_board = max(fake.boards)
    foreign = fake.board_statuses(other_board)[0]["id"]
    with pytest.raises(PsaValidationError) as bad:
        await cw.update_ticket(tid, TicketPatch(status_external_id=str(foreign)))
    assert "status" in bad.value.fields and bad.value.status == 400


@pytest.mark.parametrize("vis,flag", [(NoteVisibility.PUBLIC, "detailDescriptionFlag"),
                                      (NoteVisibility.INTERNAL, "internalAnalysisFlag"),
                                      (NoteVisibility.RESOLUTION, "resolutionFlag")])
async def test_note_flags(fake: FakeConnectWise, cw: ConnectWiseConnector, vis: NoteVisibility, flag: str) -> None:
    tid = await _new(cw, fake)
    note = await cw.add_note(NewNote(ticket_external_id=tid, text="Hello", visibility=vis, marker="n1"))
    body = [r for r in fake.requests if r.key == "POST /service/tickets/{id}/notes"][-1].json()
    assert body[flag] is True and body["processNotifications"] is False
    assert sum(body[f] for f in ("detailDescriptionFlag", "internalAnalysisFlag", "resolutionFlag")) == 1
    assert body["text"] == "Hello" and note.text == "Hello" and note.marker is None  # exactly as typed
    assert note.visibility is vis and fake.emails == []


async def test_a_customers_reply_is_recorded_as_theirs(fake: FakeConnectWise, cw: ConnectWiseConnector) -> None:
    """A customer's reply from their chat channel carries their contact and the customer-updated flag, as
    ConnectWise records a reply from its e-mail connector; nothing is mailed back to them."""
    tid = await _new(cw, fake)
    contact = min(fake.contacts)
    await cw.add_note(NewNote(ticket_external_id=tid, text="It works again", visibility=NoteVisibility.PUBLIC,
                              marker="c1", author_contact_external_id=str(contact)))
    body = [r for r in fake.requests if r.key == "POST /service/tickets/{id}/notes"][-1].json()
    assert body["contact"] == {"id": contact} and body["customerUpdatedFlag"] is True
    assert body["text"] == "It works again" and body["processNotifications"] is False and fake.emails == []
    await cw.add_note(NewNote(ticket_external_id=tid, text="internal", visibility=NoteVisibility.INTERNAL,
                              marker="c2", author_contact_external_id=str(contact)))
    body = [r for r in fake.requests if r.key == "POST /service/tickets/{id}/notes"][-1].json()
    assert "contact" not in body and body["customerUpdatedFlag"] is False  # only a public reply is theirs


async def test_public_reply_emails_contact_but_internal_never(fake: FakeConnectWise, cw: ConnectWiseConnector) -> None:
    tid = await _new(cw, fake)
    await cw.add_note(NewNote(ticket_external_id=tid, text="Secret", visibility=NoteVisibility.INTERNAL,
                              marker="i1", email_contact=True))
    assert fake.emails == []
    body = [r for r in fake.requests if r.key == "POST /service/tickets/{id}/notes"][-1].json()
    assert body["processNotifications"] is False
    await cw.add_note(NewNote(ticket_external_id=tid, text="We are on it", visibility=NoteVisibility.PUBLIC,
                              marker="p1", email_contact=True))
    assert [e["text"] for e in fake.emails] == ["We are on it"]  # what the customer receives: the words
    # the flag was set for that note only: the ticket is as the MSP had it
    assert fake.tickets[int(tid)]["automaticEmailContactFlag"] is False
    flags = [r.json()[0]["value"] for r in fake.requests if r.key == "PATCH /service/tickets/{id}"]
    assert flags == [True, False]
    # a note an MSP technician writes in the PSA afterwards e-mails nobody, as before the reply
    fake.add_note(int(tid), "Written in ConnectWise", member_id=min(fake.members))
    assert len(fake.emails) == 1


async def test_customer_note_is_read_back_as_public_from_contact(fake: FakeConnectWise,
                                                                  cw: ConnectWiseConnector) -> None:
    tid = await _new(cw, fake)
    fake.add_note(int(tid), "Still broken", contact_id=min(fake.contacts))
    notes = await cw.list_notes(tid)
    customer = [n for n in notes if n.text == "Still broken"][0]
    assert customer.author_is_contact and customer.visibility is NoteVisibility.PUBLIC and customer.marker is None


async def test_time_entry(fake: FakeConnectWise, cw: ConnectWiseConnector) -> None:
    tid = await _new(cw, fake)
    entry = await cw.add_time_entry(NewTimeEntry(ticket_external_id=tid, minutes=90, started_at=T0, marker="t1",
                                                 notes="Swapped the fuser", billable=False))
    body = [r for r in fake.requests if r.key == "POST /time/entries"][-1].json()
    assert body["chargeToType"] == "ServiceTicket" and body["chargeToId"] == int(tid)
    assert body["timeStart"] == "2026-01-05T12:00:00Z" and body["timeEnd"] == "2026-01-05T13:30:00Z"
    assert body["billableOption"] == "DoNotBill" and body["emailContactFlag"] is False
    assert body["notes"] == "Swapped the fuser"  # invoices print it: exactly as typed
    assert entry.minutes == 90 and entry.notes == "Swapped the fuser" and entry.marker is None
    assert not entry.billable
    found = await cw.find_write(WriteProbe(kind=WriteKind.TIME_ENTRY, marker="t1", ticket_external_id=tid,
                                           text="Swapped the fuser", minutes=90, started_at=T0))
    assert found is not None and found.external_id == entry.external_id


async def test_attachment_cap_checked_before_sending(fake: FakeConnectWise) -> None:
    cw = ConnectWiseConnector(fake.config(max_attachment_bytes=1000), transport=fake.transport())
    tid = await _new(cw, fake)
    with pytest.raises(PsaTooLarge):
        await cw.upload_attachment(NewAttachment(ticket_external_id=tid, filename="big.bin", content=b"x" * 1001,
                                                 marker="a1"))
    assert fake.count("POST /system/documents") == 0 and cw.capabilities.max_attachment_bytes == 1000
    att = await cw.upload_attachment(NewAttachment(ticket_external_id=tid, filename="ok.png", content=b"\x89PNG" * 10,
                                                   marker="a2", content_type="image/png"))
    req = [r for r in fake.requests if r.key == "POST /system/documents"][-1]
    assert req.headers["content-type"].startswith("multipart/form-data")
    assert fake.document_content[int(att.external_id)] == b"\x89PNG" * 10
    assert att.filename == "ok.png" and att.marker is None
    doc = fake.documents[int(att.external_id)]
    assert doc["title"] == "ok.png" and doc["publicFlag"] is False  # internal unless asked, never the default
    await cw.aclose()


async def test_default_cap_is_10_mb(cw: ConnectWiseConnector) -> None:
    assert cw.capabilities.max_attachment_bytes == 10 * 1024 * 1024 == ConnectWiseConnector.CAPABILITIES.max_attachment_bytes


async def test_auth_errors(fake: FakeConnectWise, cw: ConnectWiseConnector) -> None:
    fake.revoke_auth()
    with pytest.raises(PsaAuthError) as caught:
        await cw.list_members()
    assert "Authentication failed" in caught.value.message and caught.value.status == 401
    assert "priv-key-1" not in str(caught.value)
    fake.restore_auth()
    assert await cw.list_members()


async def test_rate_limit_and_server_errors(fake: FakeConnectWise, cw: ConnectWiseConnector) -> None:
    tid = await _new(cw, fake)
    fake.fail_next(429, retry_after=12)
    with pytest.raises(PsaRateLimited) as rl:
        await cw.get_ticket(tid)
    assert rl.value.retry_after == 12 and rl.value.retryable
    fake.fail_next(500)
    with pytest.raises(PsaUnavailable) as read:
        await cw.get_ticket(tid)
    assert not read.value.outcome_unknown
    fake.fail_next(503, match="POST")
    with pytest.raises(PsaUnavailable) as write:
        await cw.add_note(NewNote(ticket_external_id=tid, text="x", visibility=NoteVisibility.INTERNAL, marker="z"))
    assert write.value.outcome_unknown


async def test_lost_ticket_create_is_found_by_marker(fake: FakeConnectWise, cw: ConnectWiseConnector) -> None:
    await cw.check_credentials()
    fake.lose_next_response(match="POST /service/tickets")
    with pytest.raises(PsaTimeout) as caught:
        await _new(cw, fake, marker="lost-1")
    assert caught.value.outcome_unknown
    found = await cw.find_write(WriteProbe(kind=WriteKind.TICKET, marker="lost-1"))
    assert found is not None and fake.tickets[int(found.external_id)]["externalXRef"] == "lost-1"
    assert await cw.find_write(WriteProbe(kind=WriteKind.TICKET, marker="lost-2")) is None


async def test_lost_attachment_found_by_marker(fake: FakeConnectWise, cw: ConnectWiseConnector) -> None:
    tid = await _new(cw, fake)
    fake.lose_next_response(match="POST /system/documents")
    with pytest.raises(PsaTimeout):
        await cw.upload_attachment(NewAttachment(ticket_external_id=tid, filename="a.txt", content=b"a", marker="d9"))
    found = await cw.find_write(WriteProbe(kind=WriteKind.ATTACHMENT, marker="d9", ticket_external_id=tid,
                                           filename="a.txt", size=1))
    assert found is not None and fake.documents[int(found.external_id)]["fileName"] == "a.txt"
    # another file of that name already accounted for is not taken for it
    again = await cw.find_write(WriteProbe(kind=WriteKind.ATTACHMENT, marker="d9", ticket_external_id=tid,
                                           filename="a.txt", size=1, exclude=frozenset({found.external_id})))
    assert again is None


async def test_codebase_rediscovered_on_404(fake: FakeConnectWise, cw: ConnectWiseConnector) -> None:
    tid = await _new(cw, fake)
    fake.change_codebase("v2025_1/")
    note = await cw.add_note(NewNote(ticket_external_id=tid, text="After the upgrade",
                                     visibility=NoteVisibility.INTERNAL, marker="u1"))
    assert note.text == "After the upgrade"
    assert len([n for n in fake.notes.values() if n["text"] == "After the upgrade"]) == 1
    assert fake.count("GET /login/companyinfo") == 2 and cw.client.codebase == "v2025_1/"
    assert "/v2025_1/" in cw.ticket_url(tid)
    with pytest.raises(Exception) as missing:
        await cw.get_ticket("999999")
    assert type(missing.value).__name__ == "PsaNotFound"
    assert fake.count("GET /login/companyinfo") == 3  # re-read once, unchanged, so no second try


async def test_conditions_quoting_of_odd_text(fake: FakeConnectWise, cw: ConnectWiseConnector) -> None:
    odd = 'say "hi" [now] \\o/ and or ('
    fake.add_ticket("Odd", externalXRef=odd)
    fake.add_ticket("Decoy", externalXRef="say")
    found = await cw.find_write(WriteProbe(kind=WriteKind.TICKET, marker=odd))
    assert found is not None and fake.tickets[int(found.external_id)]["summary"] == "Odd"
    cond = [r.query["conditions"] for r in fake.requests if r.key == "GET /service/tickets"][-1]
    assert cond == 'externalXRef="say \\"hi\\" [now] \\\\o/ and or ("'


async def test_garbled_json_is_unavailable(fake: FakeConnectWise) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if "companyinfo" in request.url.path:
            return httpx.Response(200, json={"Codebase": "v2024_1/", "CompanyName": "X"})
        return httpx.Response(200, content=b"<html>oops")

    cw = ConnectWiseConnector(fake.config(), transport=httpx.MockTransport(handler))
    with pytest.raises(PsaUnavailable):
        await cw.get_ticket("1")
    await cw.aclose()


async def test_slow_answer_times_out(fake: FakeConnectWise) -> None:
    cw = ConnectWiseConnector(fake.config(), transport=fake.transport(), timeout=0.05)
    await cw.check_credentials()
    fake.slow(0.2, times=1, match="POST")
    with pytest.raises(PsaTimeout) as caught:
        await _new(cw, fake, marker="slow-1")
    assert caught.value.outcome_unknown
    assert await cw.find_write(WriteProbe(kind=WriteKind.TICKET, marker="slow-1")) is not None
    await cw.aclose()


async def test_over_loopback_a_dropped_connection_is_outcome_unknown(fake: FakeConnectWise) -> None:
    with fake.serve() as root:
        cw = ConnectWiseConnector(fake.config(root))
        info = await cw.check_credentials()
        assert "Deskbridge Test MSP" in info.display_name and info.details["codebase"] == "v2024_1/"
        tid = await _new(cw, fake)
        fake.lose_next_response(match="WRITE")
        with pytest.raises(PsaTimeout) as caught:
            await cw.add_note(NewNote(ticket_external_id=tid, text="hm", visibility=NoteVisibility.PUBLIC,
                                      marker="lb1"))
        assert caught.value.outcome_unknown
        assert (await cw.find_write(WriteProbe(kind=WriteKind.NOTE, marker="lb1", ticket_external_id=tid,
                                               text="hm", visibility=NoteVisibility.PUBLIC))) is not None
        assert cw.ticket_url(tid).startswith(root + "/v2024_1/services/system_io/")
        await cw.aclose()


async def test_unknown_company_is_an_auth_error(fake: FakeConnectWise) -> None:
    cw = ConnectWiseConnector(fake.config(company_id="nobody"), transport=fake.transport())
    with pytest.raises(PsaAuthError) as caught:
        await cw.check_credentials()
    assert "nobody" in caught.value.message
    await cw.aclose()


async def test_picklists_and_directory(fake: FakeConnectWise, cw: ConnectWiseConnector) -> None:
    picks = await cw.picklists()
    sd = next(b for b in picks.boards if b.name == "Service Desk")
    statuses = {s.name: s for s in picks.statuses if s.board_external_id == sd.external_id}
    assert statuses["New"].default and statuses["Closed"].closed
    assert not statuses["Cancelled - No Time"].time_entry_allowed
    assert {t.name for t in picks.types if t.board_external_id == sd.external_id} == {"Incident", "Request"}
    assert [p.name for p in picks.priorities][0] == "Priority 1 - Critical"
    members = await cw.list_members()
    assert {m.identifier for m in members} >= {"bob", "ana"}
    contacts = (await cw.list_contacts()).items
    assert all(c.email and c.email.startswith("pat@") for c in contacts)



# ---------------------------------------------------------------- the e-mail flag is put back, crash or not


async def test_a_failed_note_post_still_restores_the_email_flag(fake: FakeConnectWise, cw: ConnectWiseConnector) -> None:
    tid = await _new(cw, fake)
    fake.fail_next(400, match="POST /service/tickets/{id}/notes")
    journal = MemoryJournal()
    with pytest.raises(PsaValidationError):
        await cw.add_note(NewNote(ticket_external_id=tid, text="Reply", visibility=NoteVisibility.PUBLIC,
                                  marker="f1", email_contact=True), journal)
    assert fake.tickets[int(tid)]["automaticEmailContactFlag"] is False and journal.get(EMAIL_FLAG) is None


async def test_a_flag_left_set_by_a_killed_attempt_is_restored_on_the_next(fake: FakeConnectWise,
                                                                         cw: ConnectWiseConnector) -> None:
    tid = await _new(cw, fake)
    # What a worker SIGKILLed between "flag on" and "note posted" leaves: the journal entry and the flag on.
    journal = MemoryJournal({EMAIL_FLAG: {"ticket": int(tid), "restore": False}})
    fake.tickets[int(tid)]["automaticEmailContactFlag"] = True
    await cw.recover(journal)
    assert fake.tickets[int(tid)]["automaticEmailContactFlag"] is False and journal.get(EMAIL_FLAG) is None
    await cw.recover(journal)  # idempotent: nothing left to do, nothing sent
    assert fake.count("PATCH /service/tickets/{id}") == 1


async def test_restore_failing_after_the_note_reports_an_unknown_outcome(fake: FakeConnectWise,
                                                                        cw: ConnectWiseConnector) -> None:
    tid = await _new(cw, fake)
    journal = MemoryJournal()
    fake.fail_next(503, times=1, match="GET /service/tickets/{id}", after=1)  # the restore cannot read the ticket
    with pytest.raises(PsaTimeout) as caught:
        await cw.add_note(NewNote(ticket_external_id=tid, text="Sent?", visibility=NoteVisibility.PUBLIC,
                                  marker="r1", email_contact=True), journal)
    assert caught.value.outcome_unknown and journal.get(EMAIL_FLAG) is not None
    assert fake.tickets[int(tid)]["automaticEmailContactFlag"] is True  # still on: the retry must fix it
    await cw.recover(journal)  # what the outbox's next attempt does first
    assert fake.tickets[int(tid)]["automaticEmailContactFlag"] is False
    assert [n["text"] for n in fake.notes.values()].count("Sent?") == 1


async def test_ticket_device_is_the_first_attached_configuration(fake: FakeConnectWise,
                                                                  cw: ConnectWiseConnector) -> None:
    tid = fake.add_ticket("Laptop slow")["id"]
    first = fake.add_configuration("ACME-LT-7", serial="5CG741ACME", device_identifier="rmm-7", ticket_id=tid)
    fake.add_configuration("Dock", serial="D-1", ticket_id=tid)
    item = await cw.ticket_device(str(tid), None)
    assert item is not None and (item.external_id, item.name, item.serial) == (str(first["id"]), "ACME-LT-7",
                                                                               "5CG741ACME")
    bare = fake.add_ticket("No device")["id"]
    assert await cw.ticket_device(str(bare), None) is None
    del fake.configurations[first["id"]]  # deleted in CW since it was attached: the next one is read
    item = await cw.ticket_device(str(tid), None)
    assert item is not None and item.name == "Dock"
    fake.configurations.clear()
    assert await cw.ticket_device(str(tid), None) is None
    with pytest.raises(PsaNotFound):
        await cw.ticket_device("999999", None)


async def test_tickets_are_read_by_id_a_hundred_a_request_and_missing_ones_are_absent(
        fake: FakeConnectWise, cw: ConnectWiseConnector) -> None:
    from connectors.base import TicketBatchRead
    from connectors.connectwise.connector import BATCH_IDS

    assert isinstance(cw, TicketBatchRead)
    ids = [fake.add_ticket(f"Batch {i}")["id"] for i in range(BATCH_IDS + 5)]
    fake.delete_ticket(ids[3])
    fake.reset_counts()
    got = await cw.get_tickets([str(i) for i in ids] + ["999999", "not-a-number"])
    assert [t.external_id for t in got] == [str(i) for i in ids if i != ids[3]]
    assert got[0] == await cw.get_ticket(str(ids[0]))  # the same ticket as a read by its own URL
    lists = _ticket_lists(fake)
    assert len(lists) == 2 and all(q["conditions"].startswith("id in (") for q in lists)  # 105 ids: two reads
    assert [q["page"] for q in lists] == ["1", "1"]  # a short page each: no request for a next page


async def test_time_entries_of_many_tickets_are_read_in_one_query_each_under_its_ticket(
        fake: FakeConnectWise, cw: ConnectWiseConnector) -> None:
    from connectors.base import TimeEntryBatchRead

    assert isinstance(cw, TimeEntryBatchRead)
    a, b, c = await _new(cw, fake, "m-a"), await _new(cw, fake, "m-b"), await _new(cw, fake, "m-c")
    for tid, minutes in ((a, 30), (a, 45), (c, 60)):
        await cw.add_time_entry(NewTimeEntry(ticket_external_id=tid, minutes=minutes, started_at=T0, notes="work",
                                             marker=f"t-{tid}-{minutes}"))
    fake.reset_counts()
    got = await cw.list_time_entries_of([a, b, c])
    assert fake.count("GET /time/entries") == 1
    assert {k: [e.minutes for e in v] for k, v in got.items()} == {a: [30, 45], c: [60]}  # b has none
    assert got[a] == list(await cw.list_time_entries(a))  # the same entries as the per-ticket read
