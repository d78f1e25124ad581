"""The sync engine against the fake ConnectWise: full, incremental, boundary, bad records, outages."""

from __future__ import annotations

import httpx
from sqlmodel import select

from core.notify import NoteAdded, TicketChanged, TicketCreated
from core.sync.runs import RunStatus, get_cursor, parse_cursor
from store.db import Scope
from store.enums import EntryKind, Origin
from store.tables import Contact, Customer, Member, PriorityMapping, StatusMapping, SyncRun
from tests.core.sync.conftest import SyncEnv, make_env
from tests.fakes.connectwise import FakeConnectWise


def seed(fake: FakeConnectWise, n: int = 25) -> list[int]:
    """n tickets: varied status/priority/owner/contact, each with a discussion and an internal note."""
    board = min(fake.boards)
    companies = sorted(fake.companies)
    contacts = sorted(fake.contacts)
    members = sorted(fake.members)
    statuses = ["New", "In Progress", "Waiting Customer", "Resolved"]
    ids = []
    for i in range(n):
        t = fake.add_ticket(f"Ticket {i}", company={"id": companies[i % 3]}, contact={"id": contacts[i % 3]},
                            status={"name": statuses[i % 4]}, priority={"id": 1 + i % 4},
                            owner={"id": members[1 + i % 2]}, board={"id": board})
        fake.add_note(t["id"], f"customer says {i}", contact_id=contacts[i % 3])
        fake.add_note(t["id"], f"tech thinks {i}", internal=True, member_id=members[1])
        ids.append(t["id"])
    return ids


async def test_first_full_sync(env: SyncEnv):
    ids = seed(env.fake)
    outcome = await env.sync.run(env.connection_id)
    assert outcome.status == RunStatus.OK, outcome.error
    tickets = await env.tickets()
    assert set(tickets) == {str(i) for i in ids}
    t0 = tickets[str(ids[0])]
    assert t0.number == ids[0] and t0.subject == "Ticket 0" and t0.source == Origin.PSA
    assert (t0.stage, t0.priority) == ("new", "critical")
    assert tickets[str(ids[1])].stage == "in_progress" and tickets[str(ids[2])].stage == "waiting"
    assert tickets[str(ids[3])].stage == "resolved" and tickets[str(ids[3])].closed_at is not None
    assert tickets[str(ids[3])].priority == "low"
    async with env.db.read(Scope.workspace(env.workspace_id)) as s:
        customers = (await s.exec(select(Customer))).all()
        members = (await s.exec(select(Member))).all()
        contacts = (await s.exec(select(Contact))).all()
        smaps = (await s.exec(select(StatusMapping))).all()
        pmaps = (await s.exec(select(PriorityMapping))).all()
    assert {c.external_id for c in customers} == {str(c) for c in env.fake.companies}
    assert {c.id for c in customers} >= {t.customer_id for t in tickets.values()}
    assert all(t.assignee_member_id in {m.id for m in members} for t in tickets.values())
    assert len(contacts) == 3 and all(t.contact_id for t in tickets.values())
    assert len(smaps) == len(env.fake.statuses)  # every status of every board, from the picklists
    assert {(m.board_external_id, m.psa_status_name) for m in smaps} >= {  # CW statuses are per board
        (str(min(env.fake.boards)), "New"), (str(max(env.fake.boards)), "Open")}
    assert len(pmaps) == 4
    entries = await env.timeline(t0.id)
    assert sorted((e.kind, e.body) for e in entries) == [(EntryKind.NOTE_INTERNAL, "tech thinks 0"),
                                                         (EntryKind.NOTE_PUBLIC, "customer says 0")]
    assert all(e.origin == Origin.PSA and e.external_id for e in entries)
    assert next(e for e in entries if e.kind == EntryKind.NOTE_PUBLIC).author_is_contact
    # watermark = the max lastUpdated the PSA reported, not our clock
    cursor = parse_cursor(await get_cursor(env.db, env.workspace_id, env.connection_id))
    assert cursor == max(t.psa_updated_at for t in tickets.values())
    # The 19 open tickets' notes are read in the same run; the 6 resolved ones' wait until someone opens one.
    assert outcome.counts["created"] == 25 and outcome.counts["notes_added"] == 38 and outcome.counts["pages"] == 3
    assert outcome.counts["history_closed_on_demand"] == 6 and outcome.counts["histories_read"] == 19
    assert env.notifier.events == []  # the first import is silent: no flood of chat messages
    async with env.db.read(Scope.workspace(env.workspace_id)) as s:
        kinds = [r.kind for r in (await s.exec(select(SyncRun).order_by(SyncRun.id))).all()]
        run = (await s.exec(select(SyncRun).where(SyncRun.kind == "full"))).one()
    assert kinds == ["picklists", "full"]  # picklists are cached before the first ticket sync
    assert run.status == "ok" and run.finished_at and run.counts["created"] == 25 and run.cursor_after


async def test_incremental_picks_up_edits_and_notes(env: SyncEnv):
    ids = seed(env.fake)
    await env.sync.run(env.connection_id)
    env.fake.clock.advance(600)
    board = min(env.fake.boards)
    env.fake.edit_ticket(ids[0], status={"id": env.fake.status_named(board, "In Progress")["id"]},
                         owner={"id": sorted(env.fake.members)[2]})
    note = env.fake.add_note(ids[5], "any update?", contact_id=sorted(env.fake.contacts)[0])
    env.fake.add_note(ids[6], "checked logs", internal=True, member_id=sorted(env.fake.members)[1])
    env.fake.reset_counts()
    outcome = await env.sync.run(env.connection_id)
    assert outcome.status == RunStatus.OK and outcome.counts["updated"] == 3
    assert env.fake.count("GET /service/tickets/{id}/notes") == 3  # only the changed tickets' children
    tickets = await env.tickets()
    assert tickets[str(ids[0])].stage == "in_progress"
    changed = env.notifier.of(TicketChanged)
    assert len(changed) == 1 and changed[0].changes["stage"] == ("new", "in_progress")
    assert "assignee_member_id" in changed[0].changes and changed[0].origin == "psa"
    notes = env.notifier.of(NoteAdded)
    assert sorted((n.visibility, n.body) for n in notes) == [("internal", "checked logs"), ("public", "any update?")]
    assert all(n.origin == "psa" for n in notes)
    assert {n.ticket_number for n in notes} == {ids[5], ids[6]}
    entries = await env.timeline(tickets[str(ids[5])].id)
    assert [e.external_id for e in entries if e.body == "any update?"] == [str(note["id"])]


async def test_nothing_changed_makes_one_list_call(env: SyncEnv):
    ids = seed(env.fake)
    env.fake.clock.advance(3600)
    env.fake.edit_ticket(ids[0], summary="last change")  # the only ticket inside the overlap window
    await env.sync.run(env.connection_id)
    env.fake.clock.advance(3600)
    env.fake.reset_counts()
    outcome = await env.sync.run(env.connection_id)
    assert outcome.status == RunStatus.OK
    # The connector is kept across runs (ConnectionService.shared): not even a codebase lookup this time.
    assert dict(env.fake.counts) == {"GET /service/tickets": 1}
    assert outcome.counts.get("created", 0) == outcome.counts.get("updated", 0) == 0


async def test_ticket_updated_exactly_at_the_cursor_is_not_missed(env: SyncEnv):
    seed(env.fake, 5)
    await env.sync.run(env.connection_id)
    cursor = parse_cursor(await get_cursor(env.db, env.workspace_id, env.connection_id))
    assert cursor is not None
    env.fake.clock.set(cursor)  # the PSA stamps the next change with the very same second
    late = env.fake.add_ticket("Same second", company={"id": min(env.fake.companies)})
    assert late["_info"]["lastUpdated"] == cursor.strftime("%Y-%m-%dT%H:%M:%SZ")
    outcome = await env.sync.run(env.connection_id)
    assert outcome.counts["created"] == 1
    assert str(late["id"]) in await env.tickets()
    assert [e.subject for e in env.notifier.of(TicketCreated)] == ["Same second"]


async def test_bad_record_is_counted_and_the_rest_saved(env: SyncEnv):
    ids = seed(env.fake, 12)
    env.fake.tickets[ids[4]]["owner"] = {"id": "x" * 90, "identifier": "ghost"}  # an id our store cannot hold
    outcome = await env.sync.run(env.connection_id)
    assert outcome.status == RunStatus.PARTIAL and outcome.counts["bad"] == 1
    assert str(ids[4]) in (outcome.error or "")
    assert set(await env.tickets()) == {str(i) for i in ids if i != ids[4]}
    assert outcome.cursor_after is not None  # never fatal: the run completed and advanced


class Outage(httpx.AsyncBaseTransport):
    """The PSA goes down after `ok_lists` ticket-list pages (every later request gets 503)."""

    def __init__(self, inner: httpx.AsyncBaseTransport, ok_lists: int) -> None:
        self.inner, self.ok_lists, self.lists, self.down = inner, ok_lists, 0, False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/service/tickets") and request.method == "GET":
            self.lists += 1
            if self.lists > self.ok_lists:
                self.down = True
        if self.down:
            return httpx.Response(503, json={"code": "ServiceUnavailable", "message": "down"})
        return await self.inner.handle_async_request(request)


async def test_psa_outage_mid_run_keeps_cursor_and_next_run_completes(db, workspace_id):
    fake = FakeConnectWise()
    outage = Outage(fake.transport(), ok_lists=10_000)
    env = await make_env(db, workspace_id, fake, transport=outage)
    ids = seed(fake, 5)
    await env.sync.run(env.connection_id)
    before = await get_cursor(env.db, env.workspace_id, env.connection_id)
    fake.clock.advance(600)
    for i in ids:
        fake.edit_ticket(i, summary=f"edited {i}")
    more = seed(fake, 20)
    outage.lists, outage.ok_lists = 0, 1  # the first page lands, then the PSA is down
    failed = await env.sync.run(env.connection_id)
    assert failed.status == RunStatus.FAILED and "503" in (failed.error or "")
    assert await get_cursor(env.db, env.workspace_id, env.connection_id) == before
    partial = await env.tickets()
    assert 5 < len(partial) < 30  # the first page committed, the rest did not
    outage.down, outage.ok_lists = False, 10_000
    done = await env.sync.run(env.connection_id)
    assert done.status == RunStatus.OK
    tickets = await env.tickets()
    assert set(tickets) == {str(i) for i in ids + more}
    assert all(tickets[str(i)].subject == f"edited {i}" for i in ids)
    assert await get_cursor(env.db, env.workspace_id, env.connection_id) != before
    async with env.db.read(Scope.workspace(env.workspace_id)) as s:
        runs = (await s.exec(select(SyncRun).where(SyncRun.kind != "picklists").order_by(SyncRun.id))).all()
    assert [r.status for r in runs] == ["ok", "failed", "ok"]


async def test_rate_limit_is_waited_out(env: SyncEnv):
    seed(env.fake, 3)
    waits: list[float] = []

    async def sleep(s: float) -> None:
        waits.append(s)

    env.engine.sleep = sleep
    env.fake.fail_next(429, times=2, match="GET /service/tickets", retry_after=7)
    outcome = await env.sync.run(env.connection_id)
    assert outcome.status == RunStatus.OK and waits == [7, 7] and outcome.counts["rate_limited"] == 2


async def test_cursor_stops_below_a_record_it_could_not_write(env: SyncEnv):
    ids = seed(env.fake, 6)
    env.fake.clock.advance(3600)  # later changes move the watermark far past the bad record (beyond the overlap)
    late = env.fake.add_ticket("Later", company={"id": min(env.fake.companies)})
    good_owner = env.fake.tickets[ids[2]]["owner"]
    env.fake.tickets[ids[2]]["owner"] = {"id": "x" * 90, "identifier": "ghost"}  # a fault, not a PSA edit
    first = await env.sync.run(env.connection_id)
    assert first.status == RunStatus.PARTIAL and first.counts["bad"] == 1
    assert str(ids[2]) not in await env.tickets() and str(late["id"]) in await env.tickets()
    bad_stamp = parse_cursor(env.fake.tickets[ids[2]]["_info"]["lastUpdated"].replace("Z", "+00:00"))
    cursor = parse_cursor(await get_cursor(env.db, env.workspace_id, env.connection_id))
    assert cursor is not None and bad_stamp is not None and cursor < bad_stamp
    env.fake.tickets[ids[2]]["owner"] = good_owner  # the fault clears; the PSA's change time is unchanged
    env.fake.clock.advance(60)
    second = await env.sync.run(env.connection_id)
    assert second.status == RunStatus.OK and second.counts["created"] == 1
    assert (await env.tickets())[str(ids[2])].subject == "Ticket 2"
    cursor = parse_cursor(await get_cursor(env.db, env.workspace_id, env.connection_id))
    assert cursor == parse_cursor(env.fake.tickets[late["id"]]["_info"]["lastUpdated"].replace("Z", "+00:00"))


async def test_a_note_the_database_rejects_never_fails_the_run(env: SyncEnv):
    ids = seed(env.fake, 3)
    env.fake.add_note(ids[1], "pasted from a terminal:\x00\x00 done", member_id=sorted(env.fake.members)[1])
    outcome = await env.sync.run(env.connection_id)  # PostgreSQL text cannot hold NUL: this used to abort the run
    assert outcome.status == RunStatus.OK, outcome.error
    tickets = await env.tickets()
    assert len(tickets) == 3
    bodies = [e.body for e in await env.timeline(tickets[str(ids[1])].id)]
    assert "pasted from a terminal: done" in bodies
