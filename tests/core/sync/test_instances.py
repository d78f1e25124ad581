"""Several instances: ticks claimed once in the database, per-connection leases, crashed holders taken over."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from datetime import timedelta
from types import SimpleNamespace

import pytest
import sqlalchemy as sa
from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, EVENT_JOB_SUBMITTED, JobEvent
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.jobs import add_sync_jobs
from core import scheduling
from core.sync.runs import RunStatus
from store.db import Database, Scope
from store.tables import JobTick, SyncRun, Ticket, TimelineEntry
from tests.core.sync.conftest import SyncEnv, make_env
from tests.core.sync.test_engine import seed
from tests.fakes.connectwise import FakeConnectWise


async def test_a_crashed_instances_lease_is_taken_over_after_it_expires(env: SyncEnv):
    seed(env.fake, 3)
    name = f"sync:{env.connection_id}"
    assert await scheduling.acquire_lease(env.db, name, "crashed-instance/1", timedelta(minutes=5), env.now())
    busy = await env.sync.run(env.connection_id)
    assert busy.status == RunStatus.SKIPPED and await env.tickets() == {}
    env.fake.clock.advance(6 * 60)  # the dead holder never renewed
    done = await env.sync.run(env.connection_id)
    assert done.status == RunStatus.OK and len(await env.tickets()) == 3


def _count_jobs(in_flight: Counter[str]):
    def on_event(event: JobEvent) -> None:
        in_flight["jobs"] += 1 if event.code == EVENT_JOB_SUBMITTED else -1
    return on_event


@pytest.mark.slow
async def test_two_instances_share_one_postgres_database(db: Database, db_url: str, workspace_id: int,
                                                         database_backend: str):
    if database_backend != "postgresql":
        pytest.skip("several instances coordinate through PostgreSQL; SQLite is the one-process embedded mode "
                    "(set DESKBRIDGE_TEST_DATABASE_URL to a PostgreSQL URL to run this)")
    fake = FakeConnectWise()
    ids = seed(fake, 30)
    base = await make_env(db, workspace_id, fake, instance_id="a")
    await base.sync.refresh_picklists(base.connection_id)
    dbs = [Database(db_url), Database(db_url)]
    ran: Counter[str] = Counter()
    in_flight: Counter[str] = Counter()
    schedulers = []
    for i, idb in enumerate(dbs):
        other = await _engine_on(idb, base, f"inst-{i}")

        class Counting:
            def __init__(self, inner, who):
                self.inner, self.who = inner, who

            async def run(self, cid, **kw):
                ran[self.who] += 1
                in_flight["runs"] += 1
                try:
                    return await self.inner.run(cid, **kw)
                finally:
                    in_flight["runs"] -= 1

            def __getattr__(self, name):
                return getattr(self.inner, name)

        container = SimpleNamespace(db=idb, sync=Counting(other, f"inst-{i}"), settle_gc=False,
                                    settings=SimpleNamespace(instance_id=f"inst-{i}"))
        sched = AsyncIOScheduler()
        add_sync_jobs(sched, container, base.connection_id, every=timedelta(seconds=1),
                      picklists_every=timedelta(hours=1), reconcile_every=timedelta(hours=1))
        # Every job the scheduler started, until it ends: a sync tick still claiming its period, and the picklist
        # and reconcile jobs (their first run is 2 s in; reconcile holds the connection's lease) are not in `ran`.
        sched.add_listener(_count_jobs(in_flight), EVENT_JOB_SUBMITTED | EVENT_JOB_EXECUTED | EVENT_JOB_ERROR)
        schedulers.append(sched)

    rng = random.Random(7)
    edits: dict[int, str] = {}

    async def psa_users() -> None:  # people keep working in ConnectWise while both instances sync
        for n in range(40):
            fake.clock.advance(5)
            tid = rng.choice(ids)
            if n % 2:
                edits[tid] = f"edit {n}"
                fake.edit_ticket(tid, summary=edits[tid])
            else:
                fake.add_note(tid, f"note {n}", contact_id=min(fake.contacts))
            await asyncio.sleep(0.15)

    async def claimed_ticks() -> list:
        async with db.read(Scope.system_wide()) as s:
            return list((await s.exec(sa.select(JobTick.period_start, JobTick.claimed_by).where(
                JobTick.job == f"sync:{base.connection_id}"))).all())

    for sched in schedulers:
        sched.start()
    try:
        await psa_users()
        fake.clock.advance(5)
        await asyncio.sleep(1.5)  # a tick or two while the PSA is quiet (not relied upon: see below)
        # pause, not shutdown: no new ticks start, and a tick already started (perhaps between its claim and
        # its run) finishes; shutdown would cancel it and leave a claimed tick that never ran.
        for sched in schedulers:
            sched.pause()
        # wait (with a deadline) until every claimed tick has finished its run, and stays so for a moment,
        # before reading what the ticks did.
        loop = asyncio.get_running_loop()
        deadline, settled = loop.time() + 60, 0
        while settled < 3 and loop.time() < deadline:
            ticks = await claimed_ticks()
            idle = not in_flight["runs"] and not in_flight["jobs"]
            settled = settled + 1 if idle and sum(ran.values()) == len(ticks) else 0
            await asyncio.sleep(0.2)
        assert settled == 3, f"the schedulers' jobs never settled: {dict(in_flight)}, ran {dict(ran)}, {len(ticks)} ticks"
    finally:
        for sched in schedulers:
            sched.shutdown(wait=False)
    ticks = await claimed_ticks()
    async with db.read(Scope.system_wide()) as s:
        runs = (await s.exec(sa.select(SyncRun.status).where(SyncRun.kind.in_(["incremental", "full"])))).all()
    # The last PSA edits may have landed after the last tick: one explicit sync catches up (no timing bet).
    final = await base.sync.run(base.connection_id)
    assert final.status == RunStatus.OK, final.error
    async with db.read(Scope.system_wide()) as s:
        tickets = (await s.exec(sa.select(Ticket.external_id, Ticket.subject))).all()
        read = {r[0] for r in (await s.exec(sa.select(Ticket.external_id).where(
            Ticket.history_at.is_not(None)))).all()}  # type: ignore[union-attr]
        entries = (await s.exec(sa.select(TimelineEntry.ticket_id, TimelineEntry.kind,
                                          TimelineEntry.external_id))).all()
    for idb in dbs:
        await idb.dispose()
    assert len(ticks) >= 4
    assert len({p for p, _ in ticks}) == len(ticks)  # one claim per period
    assert sum(ran.values()) == len(ticks)  # every claimed tick ran exactly once, on exactly one instance
    assert runs and all(status == RunStatus.OK for (status,) in runs)  # (a lease-skipped tick leaves no run row)
    assert len(runs) <= len(ticks)
    assert len(tickets) == len(fake.tickets) == len({e for e, _ in tickets})  # no duplicate rows
    # Every note of every ticket whose history was read, once. A closed ticket's history is read when someone
    # opens it (core/sync/history.py), so whether the instances read it depends on which run saw it first;
    # every open ticket's history is read by the end.
    closed = {str(tid) for tid, t in fake.tickets.items() if t.get("closedFlag")}
    assert {str(tid) for tid in fake.tickets} - closed <= read
    assert len(entries) == len(set(entries))
    assert {int(e) for _, _, e in entries} == {nid for nid, n in fake.notes.items() if str(n["ticketId"]) in read}
    subjects = dict(tickets)
    assert all(subjects[str(tid)] == summary for tid, summary in edits.items())  # no lost updates


async def _engine_on(idb: Database, base: SyncEnv, instance: str):
    from core.connections import ConnectionService
    from core.sync.engine import SyncEngine
    from core.sync.service import SyncService

    conns = ConnectionService(idb, cipher=base.connections.cipher, checker=base.connections._checker,
                              factory=base.connections._factory, known_kinds=base.connections.known_kinds)
    engine = SyncEngine(idb, conns, base.notifier, instance_id=instance, clock=base.engine.clock,
                        sleep=base.engine.sleep)
    return SyncService(engine)
