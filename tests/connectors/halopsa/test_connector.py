"""HaloPsaConnector beyond the shared contract: keyset paging under change, stamps shared by more than a page,
time as TimesheetEvents, outcomes the API agent may not use, webhook modes and registration housekeeping."""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from connectors.base import NewNote, NewTimeEntry, NoteVisibility, WriteKind, WriteProbe
from connectors.errors import PsaValidationError, WebhookRejected
from connectors.halopsa import webhooks as wh
from connectors.halopsa.connector import HaloPsaConnector
from tests.connectors.halopsa.conftest import T0
from tests.fakes.halopsa import FakeHalo


def _make(fake: FakeHalo, page_size: int = 5, **settings: object) -> HaloPsaConnector:
    config = dataclasses.replace(fake.config(**settings), credentials=fake.credentials(webhook_secret="s3cret"))
    return HaloPsaConnector(config, transport=fake.transport(), clock=fake.clock.epoch, page_size=page_size)


@pytest.fixture
async def halo(fake: FakeHalo) -> AsyncIterator[HaloPsaConnector]:
    conn = _make(fake)
    yield conn
    await conn.aclose()


async def test_a_ticket_changed_mid_scan_is_not_skipped(fake: FakeHalo, halo: HaloPsaConnector) -> None:
    ids = fake.bulk_tickets(12)
    first = await halo.list_changed_tickets(None)
    fake.edit_ticket(ids[0], summary="changed while we paged")  # row 1 moves to the end of the order
    seen = [t.external_id for t in first.items]
    cursor = first.next_cursor
    while cursor:
        page = await halo.list_changed_tickets(None, cursor)
        seen += [t.external_id for t in page.items]
        cursor = page.next_cursor
    assert set(seen) == {str(i) for i in ids}  # nobody shifted off a page
    assert seen.count(str(ids[0])) == 2  # the changed one is read again, at its new place


async def test_more_changes_in_one_instant_than_a_page_holds(fake: FakeHalo, halo: HaloPsaConnector) -> None:
    fake.clock.step = timedelta(0)
    ids = fake.bulk_tickets(13)  # all share one last_update
    seen, cursor, pages = [], None, 0
    while True:
        page = await halo.list_changed_tickets(T0 - timedelta(hours=1), cursor)
        seen += [t.external_id for t in page.items]
        pages += 1
        cursor = page.next_cursor
        if cursor is None:
            break
        assert pages < 20
    assert sorted(seen, key=int) == [str(i) for i in ids]
    # the first page, then that instant from page 1 (already read: move on), 2 and 3: each page read once more at most
    assert fake.count("GET /api/Tickets") == 4


async def test_time_as_timesheet_events(fake: FakeHalo) -> None:
    conn = _make(fake, time_mode="timesheet")
    t = fake.add_ticket("Onsite visit", client_id=12)
    entry = await conn.add_time_entry(NewTimeEntry(ticket_external_id=str(t["id"]), minutes=90, started_at=T0,
                                                   marker="m1", member_external_id="3", notes="Rack work"))
    [listed] = await conn.list_time_entries(str(t["id"]))
    assert (listed.external_id, listed.minutes, listed.notes) == (entry.external_id, 90, "Rack work")
    assert listed.member is not None and listed.member.id == "3"
    assert fake.count("POST /api/TimesheetEvent") == 1 and fake.count("POST /api/Actions") == 0
    found = await conn.find_write(WriteProbe(kind=WriteKind.TIME_ENTRY, marker="m1", ticket_external_id=str(t["id"]),
                                             since=fake.clock.now - timedelta(minutes=5), text="Rack work",
                                             minutes=90, started_at=T0, author_external_id="3"))
    assert found is not None and found.external_id == entry.external_id
    await conn.aclose()


async def test_an_outcome_the_api_agent_may_not_use_names_the_setting(fake: FakeHalo) -> None:
    conn = _make(fake, internal_outcome_id=10)  # "Escalate": not allowed for the API agent
    t = fake.add_ticket("x", client_id=12)
    with pytest.raises(PsaValidationError) as caught:
        await conn.add_note(NewNote(ticket_external_id=str(t["id"]), text="hi", visibility=NoteVisibility.INTERNAL,
                                    marker="m"))
    assert caught.value.fields == {"internal_outcome_id": "not allowed for the API agent"}
    assert "You do not have access to this Action" in caught.value.message and not caught.value.retryable
    await conn.aclose()


async def test_an_internal_note_is_never_mailed_even_under_an_emailing_outcome(fake: FakeHalo) -> None:
    conn = _make(fake, internal_outcome_id=5, public_outcome_id=5)  # "Email User" mails by default
    t = fake.add_ticket("x", client_id=12, user_id=501)
    await conn.add_note(NewNote(ticket_external_id=str(t["id"]), text="internal", visibility=NoteVisibility.INTERNAL,
                                marker="m", email_contact=True))
    await conn.add_note(NewNote(ticket_external_id=str(t["id"]), text="public, not mailed",
                                visibility=NoteVisibility.PUBLIC, marker="n"))
    assert fake.emails == []
    await conn.add_note(NewNote(ticket_external_id=str(t["id"]), text="mailed", visibility=NoteVisibility.PUBLIC,
                                marker="o", email_contact=True))
    assert [(e["to"], e["body"]) for e in fake.emails] == [("pat@acme.example", "mailed")]
    await conn.aclose()


async def test_webhook_modes(fake: FakeHalo) -> None:
    t = fake.add_ticket("x", client_id=12)
    body = b'{"ticket": {"id": %d, "summary": "x"}}' % t["id"]
    hmac_conn, basic_conn, hint_conn = (_make(fake, webhook_mode=m) for m in ("hmac", "basic", "hint"))
    event = await hmac_conn.parse_webhook({"Token": wh.signature("s3cret", body)}, body)
    assert event.verified and event.ticket_external_id == str(t["id"]) and event.entity == "ticket"
    with pytest.raises(WebhookRejected):
        await hmac_conn.parse_webhook({"Token": wh.signature("wrong", body)}, body)
    basic = "Basic " + base64.b64encode(b"deskbridge:s3cret").decode()
    assert (await basic_conn.parse_webhook({"Authorization": basic}, body)).verified
    with pytest.raises(WebhookRejected):
        await basic_conn.parse_webhook({"Authorization": "Basic ZGVza2JyaWRnZTp4"}, body)
    hint = await hint_conn.parse_webhook({}, b'{"action": {"id": 4, "ticket_id": %d}}' % t["id"])
    assert not hint.verified and hint.ticket_external_id == str(t["id"])
    for c in (hmac_conn, basic_conn, hint_conn):
        await c.aclose()


async def test_webhook_registration_is_reconciled_by_name(fake: FakeHalo, halo: HaloPsaConnector) -> None:
    url = "https://deskbridge.example/webhooks/7/tok"
    first = await halo.ensure_callbacks(url)
    second = await halo.ensure_callbacks(url)
    assert first["created"] and not second["created"] and first["webhook_id"] == second["webhook_id"]
    assert sorted(n["eventno"] for n in fake.notifications.values()) == [3, 61]  # subscribed once
    hook = fake.webhooks[first["webhook_id"]]
    assert (hook["authentication_type"], hook["authentication_header"], hook["basic_password"]) == (3, "Token", "s3cret")
    # a duplicate left by an earlier run, with an id sorting before any GUID: the subscribed one is kept
    fake.webhooks["0-dup"] = {**hook, "id": "0-dup"}
    fake.webhooks["theirs"] = {"id": "theirs", "name": "Their integration", "url": "https://else.example"}
    third = await halo.ensure_callbacks(url)
    assert third["deleted"] == ["0-dup"] and "theirs" in fake.webhooks and not third["subscribed"]
    assert await halo.remove_callbacks(url) == [first["webhook_id"]] and set(fake.webhooks) == {"theirs"}
    assert halo.ticket_url("2001") == "https://acme.halopsa.com/ticket?id=2001"
