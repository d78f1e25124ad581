"""AutotaskConnector beyond the shared contract: call counts of sync reads, read lag, picklists per part, the
database's request budget, upload budget, deep links and members."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest

from connectors.autotask.connector import AutotaskConnector
from connectors.autotask.limits import Throttles, policy_from
from connectors.base import NewAttachment, NewNote, NewTicket, NoteVisibility, TicketPatch
from connectors.errors import PsaNotFound, PsaRateLimited, PsaValidationError
from tests.connectors.autotask.conftest import T0
from tests.fakes.autotask import FakeAutotask
from tests.fakes.autotask_harness import config

ACME = 175


async def _no_sleep(_: float) -> None:
    return None


@pytest.fixture
async def conn(fake: FakeAutotask) -> AsyncIterator[AutotaskConnector]:
    c = AutotaskConnector(config(fake), transport=fake.transport(), sleep=_no_sleep)
    yield c
    await c.aclose()


def _make(fake: FakeAutotask, **settings: Any) -> AutotaskConnector:
    return AutotaskConnector(config(fake, **settings), transport=fake.transport(), sleep=_no_sleep)


async def _pages(c: AutotaskConnector, since: Any = None) -> list[list[str]]:
    out, cursor = [], None
    while True:
        page = await c.list_changed_tickets(since, cursor)
        out.append([t.external_id for t in page.items])
        if page.next_cursor is None:
            return out
        cursor = page.next_cursor


async def test_changed_tickets_cost_one_query_per_500_and_come_oldest_first(fake: FakeAutotask,
                                                                           conn: AutotaskConnector) -> None:
    ids = fake.bulk_tickets(1_200, companyID=ACME)
    fake.edit_ticket(ids[0], title="Edited last")  # the oldest id changed most recently: served last
    fake.reset_counts()
    pages = await _pages(conn)
    flat = [i for p in pages for i in p]
    assert [len(p) for p in pages] == [500, 500, 200]
    assert flat[-1] == str(ids[0]) and sorted(flat, key=int) == [str(i) for i in ids]
    assert fake.count("POST /Tickets/query") == 3  # the minimum for 1,200 rows: 500 a call
    assert fake.count("POST /Tickets/query/next") == 0  # paged by id, never by next-page URLs


async def test_a_cursor_outlives_the_process(fake: FakeAutotask) -> None:
    fake.bulk_tickets(30, companyID=ACME)
    first = _make(fake, page_size=10)
    page = await first.list_changed_tickets(None)
    await first.aclose()
    second = _make(fake, page_size=10)  # a new process: no scan in memory
    rest: list[str] = []
    cursor = page.next_cursor
    while cursor:
        nxt = await second.list_changed_tickets(None, cursor)
        rest.extend(t.external_id for t in nxt.items)
        cursor = nxt.next_cursor
    await second.aclose()
    seen = [t.external_id for t in page.items] + rest
    assert len(seen) == len(set(seen)) == len(fake.tables["Tickets"])


async def test_children_of_a_page_are_read_in_one_query_per_kind(fake: FakeAutotask, conn: AutotaskConnector) -> None:
    ids = fake.bulk_tickets(40, companyID=ACME)
    for tid in ids[:10]:
        fake.add_note(tid, f"note on {tid}", publish=2)
    page = await conn.list_changed_tickets(None)
    fake.reset_counts()
    notes = {t.external_id: await conn.list_notes(t.external_id) for t in page.items}
    times = [await conn.list_time_entries(t.external_id) for t in page.items]
    files = [await conn.list_attachments(t.external_id) for t in page.items]
    assert fake.count("POST /TicketNotes/query") == 1 and fake.count("POST /TimeEntries/query") == 1
    assert fake.count("POST /TicketAttachments/query") == 1
    assert [n.text for n in notes[str(ids[3])]] == [f"note on {ids[3]}"]
    assert notes[str(ids[3])][0].visibility is NoteVisibility.INTERNAL
    assert sum(len(v) for v in notes.values()) == 10 and times == [[]] * 40 and files == [[]] * 40
    fake.add_note(ids[3], "written after the batch", publish=1)
    await conn.add_note(NewNote(ticket_external_id=str(ids[3]), text="ours", visibility=NoteVisibility.PUBLIC,
                                marker="m1"))  # a write to the ticket: its batch copy is stale, read it again
    texts = [n.text for n in await conn.list_notes(str(ids[3]))]
    assert texts[-2:] == ["written after the batch", "ours"]


async def test_create_tolerates_read_lag_without_creating_twice(fake: FakeAutotask, conn: AutotaskConnector) -> None:
    await conn.picklists()
    fake.read_lag = 50  # the new ticket stays invisible for a while
    made = await conn.create_ticket(NewTicket(summary="Laptop for Sam", marker="lag-1", company_external_id=str(ACME)))
    assert made.summary == "Laptop for Sam" and made.marker == "lag-1"
    assert fake.count("POST /Tickets") == 1
    [row] = [t for t in fake.tables["Tickets"].values() if t["externalID"] == "lag-1"]
    assert made.external_id == str(row["id"]) and row["queueID"] is None and row["status"] == 1


async def test_default_queue_and_assignment_reach_autotask(fake: FakeAutotask) -> None:
    c = _make(fake, default_board_id="29682969")
    bob = fake.tech_id
    made = await c.create_ticket(NewTicket(summary="Printer", marker="q-1", company_external_id=str(ACME),
                                           owner_external_id=str(bob)))
    row = fake.tables["Tickets"][int(made.external_id)]
    assert row["queueID"] == 29682969 and row["assignedResourceID"] == bob and row["assignedResourceRoleID"] == 29683461
    assert made.board is not None and made.board.name == "Level II Support"
    await c.aclose()


async def test_a_deleted_ticket_is_not_found_for_reads_and_writes(fake: FakeAutotask, conn: AutotaskConnector) -> None:
    tid = fake.add_ticket("Gone soon", companyID=ACME)["id"]
    fake.delete_ticket(tid)
    with pytest.raises(PsaNotFound):
        await conn.get_ticket(str(tid))
    with pytest.raises(PsaNotFound):
        await conn.update_ticket(str(tid), TicketPatch(summary="x"))


async def test_one_failing_picklist_keeps_the_others(fake: FakeAutotask, conn: AutotaskConnector) -> None:
    fake.deny("GET /TicketAttachments/entityInformation")
    picks = await conn.picklists()
    assert {b.name for b in picks.boards} >= {"Level I Support", "Level II Support"}
    assert [s.name for s in picks.statuses if s.closed] == ["Complete"]
    assert "attachment" in picks.problems and "permission" in picks.problems["attachment"].lower()
    assert picks.complete  # tickets' picklists were read in full
    fake.clear_faults()
    assert (await conn.picklists()).problems == {}


async def test_required_ticket_udfs_are_asked_for_on_create(fake: FakeAutotask, conn: AutotaskConnector) -> None:
    fake.udfs["Tickets"][1].required = True  # "Customer PO"
    picks = await conn.picklists()
    assert all("custom:Customer PO" in b.create_requires for b in picks.boards)
    # what the form asked for is written as the UDF, beside our marker
    made = await conn.create_ticket(NewTicket(summary="Toner", marker="udf-1", company_external_id=str(ACME),
                                              extra_fields={"Customer PO": "PO-778"}))
    udfs = {u["name"]: u["value"] for u in fake.tables["Tickets"][int(made.external_id)]["userDefinedFields"]}
    assert udfs["Customer PO"] == "PO-778"


async def test_the_api_user_is_not_a_technician(fake: FakeAutotask, conn: AutotaskConnector) -> None:
    members = {m.external_id: m for m in await conn.list_members()}
    assert members[str(fake.api_resource_id)].api is True
    assert members[str(fake.tech_id)].api is False and members[str(fake.tech_id)].email == "bob@msp.example"


async def test_reads_stop_before_the_tenant_threshold_but_a_reply_still_goes(fake: FakeAutotask) -> None:
    tid = fake.add_ticket("Busy tenant", companyID=ACME)["id"]
    fake.use_budget(8_300)  # other integrations have used 83% of the hour
    c = _make(fake)
    with pytest.raises(PsaRateLimited) as caught:
        await c.list_changed_tickets(None)
    assert caught.value.code == "TenantThreshold" and caught.value.retry_after
    sent = fake.count("POST /Tickets/query")
    note = await c.add_note(NewNote(ticket_external_id=str(tid), text="On my way.", visibility=NoteVisibility.PUBLIC,
                                    marker="busy"))
    assert note.text == "On my way." and fake.count("POST /Tickets/query") == sent
    assert c.throttle.paced > 0  # above half the threshold every call was paced
    await c.aclose()


async def test_the_own_hourly_budget_is_never_exceeded(fake: FakeAutotask) -> None:
    throttles = Throttles()
    c = AutotaskConnector(config(fake, hourly_request_budget=6), transport=fake.transport(), throttles=throttles,
                          sleep=_no_sleep)
    other = AutotaskConnector(config(fake, hourly_request_budget=6), transport=fake.transport(), throttles=throttles,
                              sleep=_no_sleep)  # the outbox's connector of the same database shares the budget
    fake.reset_counts()
    await c.get_ticket(str(fake.add_ticket("one", companyID=ACME)["id"]))
    refused = 0
    for _ in range(10):
        try:
            await other.list_ticket_ids()
        except PsaRateLimited as exc:
            refused += 1
            assert exc.code == "OwnBudget" and exc.retry_after and exc.retry_after > 3000
    api_calls = [r for r in fake.requests if r.zone is not None]
    assert len(api_calls) == 6 and refused == 10  # the reading, picklists and the get used all 6
    await c.aclose()
    await other.aclose()


async def test_a_429_cools_the_database_down_for_every_connector(fake: FakeAutotask) -> None:
    now = [0.0]
    throttles = Throttles(clock=lambda: now[0])
    a = AutotaskConnector(config(fake), transport=fake.transport(), throttles=throttles, clock=lambda: now[0])
    b = AutotaskConnector(config(fake), transport=fake.transport(), throttles=throttles, clock=lambda: now[0])
    fake.add_ticket("Exists", companyID=ACME)
    await a.list_ticket_ids()
    fake.fail_next(429, retry_after=30)
    with pytest.raises(PsaRateLimited):
        await a.list_ticket_ids()
    fake.reset_counts()
    with pytest.raises(PsaRateLimited) as caught:
        await b.list_ticket_ids()  # refused locally: Autotask is not asked again during the cool-down
    assert caught.value.code == "CoolDown" and [r for r in fake.requests if r.zone is not None] == []
    now[0] += 31
    assert (await b.list_ticket_ids()).items
    await a.aclose()
    await b.aclose()


async def test_uploads_respect_the_cap_and_the_five_minute_byte_budget(fake: FakeAutotask,
                                                                      conn: AutotaskConnector) -> None:
    tid = str(fake.add_ticket("Files", companyID=ACME)["id"])
    six_mb = b"x" * (6 * 1024 * 1024)
    await conn.upload_attachment(NewAttachment(ticket_external_id=tid, filename="a.bin", content=six_mb, marker="a"))
    fake.reset_counts()
    with pytest.raises(PsaRateLimited) as caught:
        await conn.upload_attachment(NewAttachment(ticket_external_id=tid, filename="b.bin", content=six_mb,
                                                   marker="b"))
    assert caught.value.retry_after and fake.count("POST /Tickets/{id}/Attachments") == 0
    [row] = fake.tables["TicketAttachments"].values()
    assert row["publish"] == fake.pick("TicketAttachments", "publish", "Internal Users Only")  # never left public


async def test_bad_settings_say_what_to_fix(fake: FakeAutotask) -> None:
    with pytest.raises(PsaValidationError) as caught:
        _make(fake, hourly_request_budget="lots")
    assert "hourly_request_budget" in caught.value.message and "10000" in caught.value.message.replace(",", "")


async def test_ticket_url_opens_the_ticket_in_its_zone(fake: FakeAutotask, conn: AutotaskConnector) -> None:
    await conn.check_credentials()
    url = conn.ticket_url("7001")
    assert url.startswith("https://ww2.autotask.net/Autotask/AutotaskExtend/ExecuteCommand.aspx?")
    assert "Code=OpenTicketDetail" in url and "TicketID=7001" in url
    assert _make(fake, ui_url="https://ww5.autotask.net/").ticket_url("9").startswith("https://ww5.autotask.net/Auto")


async def test_check_credentials_reports_zone_usage_and_the_email_rule(fake: FakeAutotask,
                                                                      conn: AutotaskConnector) -> None:
    fake.use_budget(1_234)
    info = await conn.check_credentials()
    assert "acting as Deskbridge API" in info.display_name
    assert info.details["api_resource_id"] == str(fake.api_resource_id)
    assert "of 10,000" in info.details["threshold"] and "workflow rule" in info.details["email_to_contacts"]
    assert fake.secret not in repr(info)


async def test_time_entry_uses_the_resources_default_role(fake: FakeAutotask, conn: AutotaskConnector) -> None:
    from connectors.base import NewTimeEntry

    tid = str(fake.add_ticket("Time", companyID=ACME)["id"])
    entry = await conn.add_time_entry(NewTimeEntry(ticket_external_id=tid, minutes=30, started_at=T0 - timedelta(hours=1),
                                                   marker="t1", member_external_id=str(fake.tech_id), notes="Fixed"))
    [row] = fake.tables["TimeEntries"].values()
    assert row["roleID"] == 29683461 and row["summaryNotes"] == "Fixed" and entry.minutes == 30
    assert ("TimeEntries", "hoursToBill", "read-only") not in fake.ignored_fields


async def test_a_write_to_a_ticket_deleted_in_autotask_says_so(fake: FakeAutotask, conn: AutotaskConnector) -> None:
    from connectors.base import NewTimeEntry

    tid = fake.add_ticket("Deleted while we typed", companyID=ACME)["id"]
    await conn.picklists()
    fake.delete_ticket(tid)
    for write in (conn.add_note(NewNote(ticket_external_id=str(tid), text="hello", visibility=NoteVisibility.INTERNAL,
                                        marker="d1")),
                  conn.add_time_entry(NewTimeEntry(ticket_external_id=str(tid), minutes=15, started_at=T0,
                                                   marker="d2")),
                  conn.upload_attachment(NewAttachment(ticket_external_id=str(tid), filename="a.txt", content=b"a",
                                                       marker="d3"))):
        with pytest.raises(PsaNotFound) as caught:
            await write
        assert caught.value.code == "TicketDeleted" and "deleted in Autotask" in caught.value.message
    tid2 = fake.add_ticket("Still here", companyID=ACME)["id"]
    fake.note_title_required = True
    with pytest.raises(PsaValidationError):  # other refusals stay what they are
        await conn.add_note(NewNote(ticket_external_id=str(tid2), text="", visibility=NoteVisibility.INTERNAL,
                                    marker="d4"))


async def test_a_cursor_from_elsewhere_is_refused_clearly(conn: AutotaskConnector) -> None:
    for call in (conn.list_changed_tickets(None, "not-a-cursor"), conn.list_ticket_ids("eyJrIjoieCJ9"),
                 conn.list_companies("eyJrIjoieCJ9")):
        with pytest.raises(PsaValidationError) as caught:
            await call
        assert caught.value.fields == {"cursor": "invalid"}


async def test_connectors_of_one_process_share_the_databases_budget(fake: FakeAutotask) -> None:
    from connectors.registry import Registry

    registry = Registry(transport=fake.transport())  # as the composition root builds the sync's and outbox's
    cfg = config(fake)
    sync, outbox = registry.build(cfg), registry.build(cfg)
    assert sync.throttle is outbox.throttle  # type: ignore[attr-defined]
    assert _make(fake).throttle is not sync.throttle  # type: ignore[attr-defined]  # another transport: a test's
    other_db = registry.build(config(fake, zone_url="https://webservices5.autotask.net/ATServicesRest/"))
    assert other_db.throttle is not sync.throttle  # type: ignore[attr-defined]
    for c in (sync, outbox, other_db):
        await c.aclose()


def test_a_process_wide_throttle_serves_one_event_loop_after_another() -> None:
    import asyncio

    throttle = Throttles().get("db", policy_from({}))

    async def busy() -> None:
        gate = throttle.gate("tickets", 1)

        async def one() -> None:
            async with gate:
                await asyncio.sleep(0.005)

        await asyncio.gather(one(), one(), one())  # contention: the gate's waiters belong to this loop
        async with throttle.reading_lock:
            pass

    asyncio.run(busy())
    asyncio.run(busy())  # a CLI command after another, in one process
