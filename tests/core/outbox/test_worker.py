"""The worker end to end against the in-process fake PSA: delivery, local effects, order, dead letters."""

from __future__ import annotations

from sqlmodel import select

from connectors.base import WriteKind
from core.notify import WriteDead, WriteDelivered
from core.outbox import queries
from core.outbox.admin import OutboxAdmin
from store.db import Scope
from store.enums import OutboxStatus
from store.tables import AttachmentBlob, TimelineEntry
from tests.fakes.outbox_psa import Fault


async def test_create_then_note_delivered_in_order_and_linked(rig):
    d = await rig.tickets.create(rig.tech, subject="Printer on fire", customer_id=rig.setup.customer_id)
    tid = d.summary.id
    assert d.summary.number is None  # a PSA-backed ticket is numbered by the PSA
    await rig.run()
    t = await rig.ticket(tid)
    [created] = rig.psa.of(WriteKind.TICKET)
    assert t.external_id == created.external_id and t.number == int(created.external_id)
    assert created.marker == t.marker
    ops = await rig.ops()
    assert [o.status for o in ops] == ["done"]
    assert ops[0].result["url"].endswith(created.external_id)
    [ev] = rig.notifier.of(WriteDelivered)
    assert ev.ticket_number == t.number and ev.external_id == created.external_id
    [row] = await rig.audit(ops[0].id)
    assert (row.outcome, row.action, row.actor) == ("ok", "create_ticket", "slack:U1 (Ana)")


async def test_ops_of_one_ticket_apply_in_order(rig):
    d = await rig.tickets.create(rig.tech, subject="Order matters", customer_id=rig.setup.customer_id)
    # Queue three more writes behind the create (the ticket has no PSA id yet).
    async with rig.db.write(Scope.workspace(rig.tech.workspace_id)) as s:
        from core.outbox.ops import AddNote, enqueue

        for i in range(3):
            enqueue(s, workspace_id=rig.tech.workspace_id, connection_id=rig.setup.connection_id,
                    payload=AddNote(text=f"n{i}", visibility="internal"), ticket_id=d.summary.id, actor="t")
    # Only the create is claimable while it is unfinished.
    claimed = await queries.claim(rig.db, now=rig.clock(), lease=_lease(), limit=10)
    assert [c.op.kind for c in claimed] == ["create_ticket"]
    rig.clock.advance(30)  # its lease expires; reclaimed as "outcome unknown"
    await rig.run()
    texts = [w.data.get("text") for w in rig.psa.writes]
    assert texts == [None, "n0", "n1", "n2"]
    assert rig.psa.calls[0] == "find_write"  # the reclaimed create looked for its marker first


async def test_note_time_attachment_set_external_ids_and_prune_blob(rig):
    tid = await rig.synced_ticket("900")
    await rig.tickets.comment(rig.tech, 900, "hello customer", visibility="public")
    await rig.tickets.log_time(rig.tech, 900, 30, notes="fixed")
    await rig.tickets.attach(rig.tech, 900, filename="log.txt", content=b"x" * 5000, content_type="text/plain")
    await rig.run()
    assert [w.kind for w in rig.psa.writes] == [WriteKind.NOTE, WriteKind.TIME_ENTRY, WriteKind.ATTACHMENT]
    async with rig.db.read(Scope.system_wide()) as s:
        entries = (await s.exec(select(TimelineEntry).where(TimelineEntry.ticket_id == tid)
                                .order_by(TimelineEntry.id))).all()
        blobs = (await s.exec(select(AttachmentBlob))).all()
    assert [e.external_id for e in entries] == [w.external_id for w in rig.psa.writes]
    assert blobs == []  # pruned after delivery
    upload = (await rig.audit())[-1]
    assert upload.request["content"] == "[5000 bytes]" and "x" * 100 not in str(upload.request)


async def test_validation_error_is_dead_at_once_and_blocks_followers(rig):
    await rig.synced_ticket("901")
    rig.psa.script("add_note", Fault.VALIDATION)
    await rig.tickets.comment(rig.tech, 901, "first", visibility="internal")
    await rig.tickets.comment(rig.tech, 901, "second", visibility="internal")
    await rig.run()
    first, second = await rig.ops()
    assert (first.status, first.attempts) == ("dead", 1)
    assert "Summary may not exceed" in first.last_error and first.last_status_code == 400
    assert second.status == OutboxStatus.BLOCKED and second.attempts == 0
    [dead] = rig.notifier.of(WriteDead)
    assert dead.op_id == first.id and dead.ticket_number == 901 and "invalid" in dead.error
    assert rig.psa.writes == []

    admin = OutboxAdmin(rig.db, clock=rig.clock)
    page = await admin.list_ops(rig.tech.workspace_id, status="dead,blocked")
    assert [v.id for v in page.items] == [second.id, first.id]
    await admin.redrive(rig.tech.workspace_id, first.id, rig.tech.__class__.system(rig.tech.workspace_id))
    await rig.run()
    assert [o.status for o in await rig.ops()] == ["done", "done"]
    assert [w.data["text"] for w in rig.psa.writes] == ["first", "second"]
    detail = await admin.get_op(rig.tech.workspace_id, first.id)
    assert [a.outcome for a in detail.audit] == ["dead", "redriven", "ok"]
    assert detail.op.marker == first.marker  # same marker after a redrive


async def test_stale_attempt_cannot_overwrite_newer_outcome(rig):
    await rig.synced_ticket("902")
    await rig.tickets.comment(rig.tech, 902, "x", visibility="internal")
    [zombie] = await queries.claim(rig.db, now=rig.clock(), lease=_lease(), limit=1)
    rig.clock.advance(30)
    await rig.worker.drain()  # a second worker reclaims and delivers (attempt 2)
    await rig.worker.process(zombie)  # the first one wakes up and finishes attempt 1
    [op] = await rig.ops()
    assert (op.status, op.attempts) == ("done", 2)
    outcomes = [a.outcome for a in await rig.audit(op.id)]
    assert outcomes == ["ok", "stale"]
    assert len(rig.psa.of(WriteKind.NOTE)) == 1  # the zombie found the marker: no second note


async def test_breaker_parks_ops_without_spending_attempts(rig):
    for n in range(3):
        await rig.synced_ticket(str(910 + n))
        rig.psa.script("add_note", Fault.SERVER_ERROR)
        await rig.tickets.comment(rig.tech, 910 + n, f"n{n}", visibility="internal")
    await rig.worker.drain()  # three 500s: the breaker (fail_max=3) opens
    ops = await rig.ops()
    assert [o.attempts for o in ops] == [1, 1, 1]
    [opened] = [a for a in await rig.audit() if a.outcome == "breaker"]  # one row, not one per op
    assert opened.op_id is None and "Internal server error" in opened.error
    rig.clock.advance(10)  # backoff is due, breaker still open (reset 20 s): nothing is claimed
    assert await rig.worker.drain() == 0
    assert [o.attempts for o in await rig.ops()] == [1, 1, 1]
    rig.clock.advance(15)  # half-open: one probe succeeds, the breaker closes, the rest follow
    await rig.run()
    ops = await rig.ops()
    assert [o.status for o in ops] == ["done"] * 3 and [o.attempts for o in ops] == [2, 2, 2]
    assert len(rig.psa.of(WriteKind.NOTE)) == 3


def _lease():
    from datetime import timedelta

    return timedelta(seconds=10)




async def test_run_loop_delivers_concurrently_and_stops_gracefully(rig):
    import asyncio

    for n in range(4):
        await rig.synced_ticket(str(920 + n))
        for i in range(3):
            await rig.tickets.comment(rig.tech, 920 + n, f"t{n} n{i}", visibility="internal")
    task = asyncio.create_task(rig.worker.run())
    for _ in range(3000):  # "eventually" (4 s was not enough on a loaded machine)
        if all(o.status == "done" for o in await rig.ops()):
            break
        await asyncio.sleep(0.02)
    rig.worker.stop()
    await asyncio.wait_for(task, 30)
    assert [o.status for o in await rig.ops()] == ["done"] * 12
    for n in range(4):  # each ticket's notes in order, whatever the interleaving across tickets
        mine = [w.data["text"] for w in rig.psa.writes if w.data["text"].startswith(f"t{n} ")]
        assert mine == [f"t{n} n0", f"t{n} n1", f"t{n} n2"]
    assert len(rig.notifier.of(WriteDelivered)) == 12


async def test_concurrent_deliveries_share_one_connector_per_connection(rig):
    import asyncio

    built = []
    factory = rig.connections._factory

    def counting(config):
        built.append(config.connection_id)
        return factory(config)

    rig.connections._factory = counting
    for n in range(4):
        await rig.synced_ticket(str(930 + n))
        await rig.tickets.comment(rig.tech, 930 + n, "x", visibility="internal")
    claims = await queries.claim(rig.db, now=rig.clock(), lease=_lease(), limit=4)
    await asyncio.gather(*(rig.worker.process(c) for c in claims))
    assert len(rig.psa.writes) == 4 and built == [rig.setup.connection_id]


async def test_an_attempt_first_undoes_what_a_killed_one_left_changed(rig):
    """The op's journal survives the process: the next attempt calls `recover` before anything else."""
    await rig.synced_ticket("910")
    await rig.tickets.comment(rig.tech, 910, "We replaced the switch", visibility="public", email_contact=True)
    [op] = await rig.ops()
    async with rig.db.write(Scope.workspace(rig.tech.workspace_id)) as s:  # as a killed attempt left it
        row = await s.get(type(op), op.id)
        row.journal = {"cw_email_contact_flag": {"ticket": 910, "restore": False}}
    await rig.run()
    assert rig.psa.calls[:2] == ["recover", "add_note"]
    [row] = await rig.audit(op.id)
    assert row.outcome == "ok" and row.request["calls"] == ["recover", "add_note"]


async def test_a_stale_attempt_cannot_write_the_journal(rig):
    from core.outbox.journal import LeaseLost, OpJournal

    await rig.synced_ticket("911")
    await rig.tickets.comment(rig.tech, 911, "hello", visibility="internal")
    [claim] = await queries.claim(rig.db, now=rig.clock(), lease=_lease(), limit=1)
    stale = OpJournal(rig.db, claim.op)
    rig.clock.advance(600)  # its lease lapses and another worker takes the op over
    [again] = await queries.claim(rig.db, now=rig.clock(), lease=_lease(), limit=1)
    current = OpJournal(rig.db, again.op)
    await current.put("k", {"restore": True})
    try:
        await stale.put("k", {"restore": False})
    except LeaseLost:
        pass
    else:
        raise AssertionError("a stale attempt overwrote the journal")
    assert (await rig.op(claim.op.id)).journal == {"k": {"restore": True}}


async def test_a_dead_workers_op_is_taken_over_after_the_short_lease(rig):
    """Killed before it sent anything: taken over as soon as its (30 s) lease lapses."""
    from datetime import timedelta

    await rig.synced_ticket("930")
    await rig.tickets.comment(rig.tech, 930, "taken over", visibility="internal")
    lease, unsafe = timedelta(seconds=30), timedelta(seconds=75)
    [dead] = await queries.claim(rig.db, now=rig.clock(), lease=lease, unsafe=unsafe)
    rig.clock.advance(20)
    assert await queries.claim(rig.db, now=rig.clock(), lease=lease, unsafe=unsafe) == []  # still its lease
    rig.clock.advance(11)
    [taken] = await queries.claim(rig.db, now=rig.clock(), lease=lease, unsafe=unsafe)
    assert taken.op.id == dead.op.id and taken.op.attempts == 2 and taken.op.outcome_unknown


async def test_a_takeover_right_after_a_write_started_waits_until_it_cannot_land(rig):
    from datetime import timedelta

    await rig.synced_ticket("931")
    await rig.tickets.comment(rig.tech, 931, "maybe sent", visibility="internal")
    lease, unsafe = timedelta(seconds=30), timedelta(seconds=75)
    [dying] = await queries.claim(rig.db, now=rig.clock(), lease=lease, unsafe=unsafe)
    assert await queries.mark_sent(rig.db, dying.op, now=rig.clock())  # it started the PSA write, then died
    sent_at = rig.clock()
    rig.clock.advance(31)
    assert await queries.claim(rig.db, now=rig.clock(), lease=lease, unsafe=unsafe) == []
    parked = await rig.op(dying.op.id)
    assert parked.status == "pending" and parked.outcome_unknown
    assert abs((parked.next_attempt_at - (sent_at + unsafe)).total_seconds()) < 1
    # the dead attempt, if it came back to life, could no longer send: it does not own the op
    assert not await queries.mark_sent(rig.db, dying.op, now=rig.clock())
    rig.clock.advance(45)
    [again] = await queries.claim(rig.db, now=rig.clock(), lease=lease, unsafe=unsafe)
    assert again.op.id == dying.op.id and again.op.outcome_unknown


async def test_a_long_attempt_keeps_its_lease_by_heartbeat(rig):
    """While an attempt works, its lease is renewed: nobody takes a live worker's op."""
    from dataclasses import replace
    from datetime import timedelta

    from tests.core.outbox.conftest import make_worker

    await rig.synced_ticket("932")
    await rig.tickets.comment(rig.tech, 932, "slow PSA", visibility="internal")
    worker = make_worker(rig.db, rig.connections, rig.notifier, rig.clock,
                         replace(rig.worker.config, lease_seconds=1.2))
    [claim] = await worker._claim(1)
    original = claim.op.lease_until
    async with worker._heartbeat(claim.op):
        import asyncio

        rig.clock.advance(1)
        for _ in range(3000):  # until a heartbeat (every 0.4 s) renewed it; a fixed 0.9 s wait raced under load
            if (await rig.op(claim.op.id)).lease_until > original + timedelta(seconds=0.5):
                break
            await asyncio.sleep(0.01)
    renewed = (await rig.op(claim.op.id)).lease_until
    assert renewed > original + timedelta(seconds=0.5)
    await worker.aclose()
