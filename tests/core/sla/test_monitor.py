"""Threshold warnings: each (ticket, metric, cycle, threshold) posted once, also with two monitors
sweeping one database at the same time (the suite runs this on SQLite and on PostgreSQL)."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime, timedelta

from core.notify import RecordingNotifier, SlaWarningEvent
from core.sla.config import SlaConfigService
from core.sla.monitor import SlaMonitor
from core.sla.service import SlaService
from core.tickets import TicketService
from core.views import SlaWarningView, human_duration, sla_text
from core.workspaces import DirectoryService
from store.db import Database
from tests.core.sla.conftest import Sla


async def test_each_threshold_is_posted_once(sla: Sla):
    await sla.config.set_policy(sla.ws, {"mode": "calendar"})
    t = await sla.tickets.create(sla.tech, subject="DNS", priority="high")  # first response 1 h
    await sla.tickets.comment(sla.tech, t.summary.number, "looking", visibility="public")  # stops first response
    posted: list[tuple[int, str]] = []
    for minutes in (0, 5 * 60, 6 * 60 + 1, 6 * 60 + 2, 7 * 60 + 13, 8 * 60, 8 * 60, 9 * 60):
        sla.clock.now = t.summary.created_at + timedelta(minutes=minutes)
        report = await sla.monitor.sweep()
        posted += [(k[3], k[1]) for k in report.posted]
    assert posted == [(75, "resolution"), (90, "resolution"), (100, "resolution")]
    events = sla.notifier.of(SlaWarningEvent)
    assert [e.threshold for e in events] == [75, 90, 100]
    breach = events[-1]
    assert breach.ticket_id == t.summary.id and breach.remaining_s <= 0 and breach.priority == "high"
    assert breach.due_at == t.summary.created_at + timedelta(hours=8)
    assert len(await sla.monitor.warnings(sla.ws, t.summary.id)) == 3


async def test_a_jump_past_several_thresholds_posts_only_the_highest(sla: Sla):
    await sla.config.set_policy(sla.ws, {"mode": "calendar", "thresholds": [50, 75, 90, 100]})
    acme = await DirectoryService(sla.db).add_customer(sla.ws, identifier="ACME", name="Acme")
    t = await sla.tickets.create(sla.tech, subject="Late", priority="critical", customer_id=acme.id)
    sla.clock.advance(minutes=14)  # first response 15 m: 93% used at the first look
    report = await sla.monitor.sweep()
    assert [(k[1], k[3]) for k in report.posted] == [("first_response", 90)]
    rows = await sla.monitor.warnings(sla.ws, t.summary.id)
    assert sorted((r.threshold, r.posted) for r in rows) == [(50, False), (75, False), (90, True)]
    event = sla.notifier.of(SlaWarningEvent)[0]
    assert event.customer_id == acme.id and event.metric == "first_response" and event.subject == "Late"
    assert (await sla.monitor.sweep()).posted == []  # a re-run posts nothing


async def test_paused_and_stopped_clocks_do_not_warn_and_a_new_cycle_warns_again(sla: Sla):
    await sla.config.set_policy(sla.ws, {"mode": "calendar", "reopen": "new_cycle", "thresholds": [100]})
    t = await sla.tickets.create(sla.tech, subject="Cycle", priority="critical")  # resolution 4 h
    await sla.tickets.comment(sla.tech, t.summary.number, "hi", visibility="public")
    await sla.tickets.change_status(sla.tech, t.summary.number, "waiting")
    sla.clock.advance(hours=10)
    assert (await sla.monitor.sweep()).posted == []  # paused from the start
    await sla.tickets.change_status(sla.tech, t.summary.number, "in progress")
    sla.clock.advance(hours=4)
    assert [k[2:] for k in (await sla.monitor.sweep()).posted] == [(1, 100)]
    await sla.tickets.change_status(sla.tech, t.summary.number, "resolved")
    sla.clock.advance(hours=1)
    await sla.tickets.change_status(sla.tech, t.summary.number, "in progress")
    sla.clock.advance(hours=3)
    assert (await sla.monitor.sweep()).posted == []  # cycle 2: 3 h of 4 h
    sla.clock.advance(hours=1)
    assert [k[2:] for k in (await sla.monitor.sweep()).posted] == [(2, 100)]


async def test_two_monitors_racing_post_each_threshold_once(sla: Sla, db_url: str):
    await sla.config.set_policy(sla.ws, {"mode": "calendar", "thresholds": [25, 50, 75, 90, 100]})
    tickets = [await sla.tickets.create(sla.tech, subject=f"T{i}", priority=p)
               for i, p in enumerate(["critical", "high", "medium", "low"] * 3)]
    other_db = Database(db_url)
    notifiers = [sla.notifier, RecordingNotifier()]
    monitors = [sla.monitor, SlaMonitor(other_db, SlaService(other_db, clock=sla.clock), notifiers[1],
                                        clock=sla.clock, plan_ahead_s=0)]
    try:
        for _ in range(12):  # 12 steps of 6 h: every ticket crosses every threshold of both metrics
            sla.clock.advance(hours=6)
            await asyncio.gather(*(m.sweep() for m in monitors), *(m.sweep() for m in monitors))
    finally:
        await other_db.dispose()
    events = [e for n in notifiers for e in n.of(SlaWarningEvent)]
    counts = Counter((e.ticket_id, e.metric, e.threshold) for e in events)
    assert counts and max(counts.values()) == 1, [k for k, v in counts.items() if v > 1]
    assert all((t.summary.id, "resolution", 100) in counts for t in tickets)  # every ticket breached once
    rows = [r for t in tickets for r in await sla.monitor.warnings(sla.ws, t.summary.id)]
    assert sum(r.posted for r in rows) == len(events)


class SteppedTime:
    """A clock and the timers' sleep, moving together and only when the test says: the timers are planned and
    fire at exact instants, however loaded the machine (wall time and real sleeps made these tests race: a
    re-check 0.75 s late, or a status change after the instant it had to precede)."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC).replace(microsecond=0)
        self.sleepers: list[tuple[float, asyncio.Future[None]]] = []

    def __call__(self) -> datetime:
        return self.now

    async def sleep(self, seconds: float) -> None:
        wake = asyncio.get_running_loop().create_future()
        self.sleepers.append((self.now.timestamp() + seconds, wake))
        await wake

    async def next_timer(self) -> float:
        """Move the clock to the earliest sleeper's instant and wake it; returns that instant."""
        for _ in range(3000):  # the timer task may not have started sleeping yet
            if self.sleepers:
                break
            await asyncio.sleep(0.01)
        self.sleepers.sort(key=lambda s: s[0])
        at, wake = self.sleepers.pop(0)
        self.now = datetime.fromtimestamp(at, UTC)
        wake.set_result(None)
        return at


async def _eventually(check, what: str) -> None:  # noqa: ANN001
    for _ in range(3000):
        if check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(what)


async def test_each_threshold_is_announced_at_its_instant_with_the_share_actually_used(sla: Sla):
    """One sweep plans the thresholds due before the next sweep; each is posted at its instant (a per-minute
    sweep alone skipped 90% and posted 'breached' up to 60 s late)."""
    clock = SteppedTime()
    service = SlaService(sla.db, clock=clock)
    monitor = SlaMonitor(sla.db, service, sla.notifier, clock=clock, sleep=clock.sleep)
    tickets = TicketService(sla.db, clock=clock)
    await SlaConfigService(sla.db, clock=clock).set_policy(sla.ws, {
        "mode": "calendar", "thresholds": [50, 75, 90, 100],
        "targets": {"critical": {"first_response": 2, "resolution": "4h"}}})
    try:
        t = await tickets.create(sla.tech, subject="Server down", priority="critical")
        created = t.summary.created_at.timestamp()
        report = await monitor.sweep()
        assert report.posted == [] and [tid for _, _, tid in report.upcoming] == [t.summary.id]
        assert abs(report.upcoming[0][0] - (created + 1.0)) < 0.05  # 50% of 2 s
        woken = []
        for n in range(1, 5):  # each re-check plans the next threshold's
            woken.append(await clock.next_timer() - created)
            await _eventually(lambda n=n: len(sla.notifier.of(SlaWarningEvent)) == n, f"threshold {n} not posted")
        events = sla.notifier.of(SlaWarningEvent)
        assert [(e.metric, e.threshold) for e in events] == [("first_response", th) for th in (50, 75, 90, 100)]
        for e, at in zip(events, woken, strict=True):
            due = created + 2.0 * e.threshold / 100
            assert abs(at - (due - created) - 0.05) < 0.01, (e.threshold, at)  # woken just past its instant
            assert -0.01 <= e.occurred_at.timestamp() - due < 0.1, (e.threshold, e.occurred_at.timestamp() - due)
            assert e.used_pct is not None and e.threshold <= e.used_pct < e.threshold + 40
        assert events[-1].remaining_s <= 0
        await _eventually(lambda: monitor.timers.running == 0, "a timer is still planned after the breach")
        assert monitor.timers.pending == 0
    finally:
        await monitor.aclose()


async def test_a_threshold_the_calendar_postpones_is_not_posted_early(sla: Sla):
    """The re-check at the earliest possible instant finds the clock paused by a status change: nothing
    is posted, and the paused clock plans nothing more."""
    clock = SteppedTime()
    service = SlaService(sla.db, clock=clock)
    monitor = SlaMonitor(sla.db, service, sla.notifier, clock=clock, sleep=clock.sleep)
    tickets = TicketService(sla.db, clock=clock)
    await SlaConfigService(sla.db, clock=clock).set_policy(sla.ws, {
        "mode": "calendar", "thresholds": [100], "targets": {"critical": {"first_response": "1h",
                                                                           "resolution": 1}}})
    try:
        t = await tickets.create(sla.tech, subject="Printer", priority="critical")
        await tickets.comment(sla.tech, t.summary.number, "on it", visibility="public")
        report = await monitor.sweep()
        assert [tid for _, _, tid in report.upcoming] == [t.summary.id]
        await tickets.change_status(sla.tech, t.summary.number, "waiting")  # resolution clock pauses
        await clock.next_timer()  # the planned instant comes
        await _eventually(lambda: monitor.timers.running == 0, "the re-check did not finish")
        assert sla.notifier.of(SlaWarningEvent) == [] and monitor.timers.pending == 0  # and nothing more is planned
    finally:
        await monitor.aclose()


def test_short_durations_are_shown_in_seconds_not_as_zero_minutes():
    assert human_duration(39) == "39s" and sla_text(39) == "39s left" and sla_text(-5) == "exceeded by 5s"
    assert human_duration(61) == "1m"
    view = SlaWarningView(ticket_number=1, subject="x", customer_name=None, priority="high", metric="resolution",
                          threshold=75, remaining_s=39, due_at=None, used_pct=87.4)
    assert view.used_text == "87% used"
