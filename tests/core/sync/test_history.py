"""First sync in phases (issue 20 item 3): every ticket first, then open tickets' histories, closed ones on demand."""

from __future__ import annotations

import asyncio

import httpx

from core.context import Actor
from core.notify import NoteAdded
from core.queue import QueueFilter, QueueService
from core.sla.service import SlaService
from core.sync.engine import Progress
from core.sync.runs import RunStatus, get_cursor
from core.tickets import TicketService
from store.enums import EntryKind, Origin
from tests.core.sync.conftest import SyncEnv, make_env
from tests.core.sync.test_engine import seed
from tests.fakes.connectwise import FakeConnectWise

CHILD_ROUTES = ("GET /service/tickets/{id}/notes", "GET /time/entries", "GET /system/documents")


class GatedTransport(httpx.AsyncBaseTransport):
    """The fake's transport, holding the first notes request until `gate` opens (phase 2 paused)."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.gate = asyncio.Event()
        self.waiting = asyncio.Event()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/notes") and not self.gate.is_set():
            self.waiting.set()
            await self.gate.wait()
        return await self.inner.handle_async_request(request)


def tech(env: SyncEnv) -> Actor:
    return Actor(workspace_id=env.workspace_id, origin=Origin.SLACK, display="tech")


def child_calls(fake: FakeConnectWise) -> int:
    return sum(fake.count(r) for r in CHILD_ROUTES)


async def test_phases_run_in_order_and_the_queue_is_usable_before_any_history(db, workspace_id) -> None:
    fake = FakeConnectWise()
    ids = seed(fake)  # 25 tickets, 19 open, 6 resolved; two notes each
    gated = GatedTransport(fake.transport())
    env = await make_env(db, workspace_id, fake, transport=gated)
    seen: list[Progress] = []
    run = asyncio.create_task(env.sync.run(env.connection_id, progress=seen.append))
    await asyncio.wait_for(gated.waiting.wait(), 30)
    # Phase 2 is paused on its first notes request: phase 1 is over, the queue is whole and current.
    queue = await QueueService(db).list(tech(env), QueueFilter(), limit=100)
    tickets = await env.tickets()
    open_ids = {str(i) for i in ids if tickets[str(i)].is_open}
    assert len(open_ids) == 19 and {str(s.number) for s in queue.items} == open_ids
    assert all(s.priority and s.stage and s.customer_name for s in queue.items)
    sla = await SlaService(db).views(workspace_id, [tickets[i].id for i in open_ids], now=fake.clock.now)
    assert set(sla) == {tickets[i].id for i in open_ids}  # SLA state from the header fields alone
    assert await get_cursor(db, workspace_id, env.connection_id) is not None  # the cursor moved after phase 1
    assert all(t.history_at is None for t in tickets.values())
    assert not await env.timeline()
    assert [p.phase for p in seen] == ["tickets"] * 3 + ["history"]
    gated.gate.set()
    outcome = await asyncio.wait_for(run, 30)
    assert outcome.status == RunStatus.OK, outcome.error
    phases = [p.phase for p in seen]
    assert phases == sorted(phases, key=["tickets", "history"].index)  # never back to phase 1
    assert (seen[-1].histories_done, seen[-1].histories_total) == (19, 19)
    # Requests: every ticket page before the first child request; children of open tickets only.
    routes = [r.key for r in fake.requests]
    first_child = min(k for k, r in enumerate(routes) if r in CHILD_ROUTES)
    assert "GET /service/tickets" not in routes[first_child:]
    assert fake.count("GET /service/tickets/{id}/notes") == 19
    assert fake.count("GET /time/entries") == 1  # the 19 tickets' time entries in one `chargeToId in (...)` read
    tickets = await env.tickets()
    assert {e for e, t in tickets.items() if t.history_at is not None} == open_ids
    assert not [e for e in env.notifier.events if isinstance(e, NoteAdded)]  # a first import is silent


async def test_a_closed_tickets_history_is_read_when_someone_opens_it(env: SyncEnv) -> None:
    ids = seed(env.fake)
    assert (await env.sync.run(env.connection_id)).ok
    closed = next(t for t in (await env.tickets()).values() if not t.is_open)
    assert closed.history_at is None and not await env.timeline(closed.id)
    env.fake.reset_counts()
    env.notifier.events.clear()
    service = TicketService(env.db, history=env.sync.load_history)
    detail = await service.get(tech(env), closed.number)  # type: ignore[arg-type]
    assert sorted((i.kind, i.body) for i in detail.timeline) == [
        (EntryKind.NOTE_INTERNAL, f"tech thinks {ids.index(int(closed.external_id))}"),  # type: ignore[arg-type]
        (EntryKind.NOTE_PUBLIC, f"customer says {ids.index(int(closed.external_id))}")]  # type: ignore[arg-type]
    assert not detail.history_unread
    assert child_calls(env.fake) == 3 and env.fake.count("GET /service/tickets") == 0
    assert not env.notifier.events  # history is the past: nobody is told about it
    # Read once: opening it again (or a ticket whose history the sync read) asks the PSA nothing.
    await service.get(tech(env), closed.number)  # type: ignore[arg-type]
    opened = next(t for t in (await env.tickets()).values() if t.is_open)
    await service.get(tech(env), opened.number)  # type: ignore[arg-type]
    assert child_calls(env.fake) == 3


async def test_two_people_opening_the_same_closed_ticket_share_one_read(env: SyncEnv) -> None:
    seed(env.fake)
    assert (await env.sync.run(env.connection_id)).ok
    closed = next(t for t in (await env.tickets()).values() if not t.is_open)
    env.fake.reset_counts()
    service = TicketService(env.db, history=env.sync.load_history)
    a, b = await asyncio.gather(service.get(tech(env), closed.number), service.get(tech(env), closed.number))  # type: ignore[arg-type]
    assert len(a.timeline) == len(b.timeline) == 2
    assert env.fake.count("GET /service/tickets/{id}/notes") == 1
    assert len(await env.timeline(closed.id)) == 2  # stored once


async def test_opening_while_the_psa_is_down_shows_what_is_stored_and_reads_it_later(env: SyncEnv) -> None:
    seed(env.fake)
    assert (await env.sync.run(env.connection_id)).ok
    closed = next(t for t in (await env.tickets()).values() if not t.is_open)
    env.fake.fail_next(503, times=None, match="GET /service/tickets/{id}/notes")
    service = TicketService(env.db, history=env.sync.load_history)
    detail = await service.get(tech(env), closed.number)  # type: ignore[arg-type]
    assert detail.history_unread and detail.timeline == () and detail.summary.number == closed.number
    env.fake.clear_faults()
    detail = await service.get(tech(env), closed.number)  # type: ignore[arg-type]
    assert not detail.history_unread and len(detail.timeline) == 2


async def test_incremental_runs_leave_closed_histories_unread_and_read_a_reopened_ones_quietly(env: SyncEnv) -> None:
    ids = seed(env.fake)
    assert (await env.sync.run(env.connection_id)).ok
    tickets = await env.tickets()
    closed = [t for t in tickets.values() if not t.is_open]
    still_closed, reopened = closed[0], closed[1]
    live = next(t for t in tickets.values() if t.is_open)
    env.fake.clock.advance(3600)
    env.fake.add_note(int(still_closed.external_id), "late remark", internal=True)  # type: ignore[arg-type]
    env.fake.edit_ticket(int(reopened.external_id), status={"name": "New"})  # type: ignore[arg-type]
    env.fake.add_note(int(live.external_id), "any news?", contact_id=sorted(env.fake.contacts)[0])  # type: ignore[arg-type]
    env.fake.reset_counts()
    env.notifier.events.clear()
    outcome = await env.sync.run(env.connection_id)
    assert outcome.status == RunStatus.OK, outcome.error
    after = await env.tickets()
    assert after[still_closed.external_id].history_at is None  # type: ignore[index]
    assert not await env.timeline(still_closed.id)
    assert after[reopened.external_id].history_at is not None  # type: ignore[index]
    assert len(await env.timeline(reopened.id)) == 2  # its past, read in phase 2
    notes = [e for e in env.notifier.events if isinstance(e, NoteAdded)]
    assert [(n.ticket_id, n.body) for n in notes] == [(live.id, "any news?")]  # only the news is announced
    # Children were read for the open ticket with news and the reopened one, never for the closed one.
    assert env.fake.count("GET /service/tickets/{id}/notes") == 2
    assert len(ids) == len(after)


async def test_an_outage_while_reading_histories_keeps_the_queue_and_the_next_run_resumes(env: SyncEnv) -> None:
    seed(env.fake)
    env.fake.fail_next(503, times=None, match="GET /service/tickets/{id}/notes", after=5)
    outcome = await env.sync.run(env.connection_id)
    assert outcome.status == RunStatus.PARTIAL and outcome.counts["history_interrupted"] == 1
    assert outcome.error and outcome.error.startswith("histories:")
    tickets = await env.tickets()
    assert len(tickets) == 25 and await get_cursor(env.db, env.workspace_id, env.connection_id)
    unread = [t for t in tickets.values() if t.is_open and t.history_at is None]
    assert unread
    env.fake.clear_faults()
    env.fake.reset_counts()
    again = await env.sync.run(env.connection_id)
    assert again.status == RunStatus.OK, again.error
    assert again.counts["histories_read"] == len(unread)
    assert env.fake.count("GET /service/tickets/{id}/notes") == len(unread)
    assert all(t.history_at is not None for t in (await env.tickets()).values() if t.is_open)


async def test_a_form_reads_only_the_ticket_header_never_the_psa(env: SyncEnv) -> None:
    seed(env.fake)
    assert (await env.sync.run(env.connection_id)).ok
    closed = next(t for t in (await env.tickets()).values() if not t.is_open)
    asked: list[tuple[int, str]] = []

    async def reader(connection_id: int, external_id: str) -> bool:
        asked.append((connection_id, external_id))
        return True

    service = TicketService(env.db, history=reader)
    head = await service.header(tech(env), closed.number)  # type: ignore[arg-type]
    assert head.summary.number == closed.number and head.board_external_id == closed.board_external_id
    assert head.summary.customer_name and not asked
    await service.get(tech(env), closed.number)  # type: ignore[arg-type]
    assert asked == [(env.connection_id, closed.external_id)]
