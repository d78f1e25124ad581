"""Derived clock states kept between reads (core/sla/memo.py): every change to what a clock is derived from is
seen on the next read, and a kept state is reused only while nothing it was derived from has changed.

Each test reads through the service under test (its memo filled by earlier reads) and through a fresh service
(nothing kept, the SLA setup read now), and holds them equal after a change that moves the figures (so the
equality could fail), and shows the kept state was in use before the change."""

from __future__ import annotations

import random
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from core.cache import ConfigCache
from core.errors import InvalidInput
from core.queue import QueueFilter, QueueService
from core.sla.config import SlaConfigService
from core.sla.service import CONFIG_TABLES, CONFIG_TTL_S, SlaService
from core.views import SlaView
from core.workspaces import DirectoryService
from store.db import Database, Scope
from store.tables import Ticket, TimelineEntry
from tests.core.sla.conftest import Sla
from tests.core.sla.test_config_cache import Ticks

H = 3600.0
ROOT = Path(__file__).resolve().parents[3]


async def fresh(sla: Sla, ids: list[int]) -> dict[int, SlaView]:
    """What a service that has kept nothing shows (the reference)."""
    return await SlaService(sla.db, clock=sla.clock).views(sla.ws, ids)


async def page_remaining(service: SlaService, sla: Sla, ids: list[int]) -> dict[int, float]:
    """`remaining` the way a queue page reads it (its SLA data inside the page's read, set on the page's rows as
    they are made: core/chat/runner.py `queue`)."""
    async def remaining(loaded: object) -> dict[int, float]:
        return await service.remaining_loaded(sla.ws, loaded, sla.clock.now)

    page, _ = await QueueService(sla.db).list_with(sla.tech, QueueFilter(ticket_ids=tuple(ids), include_closed=True),
                                                   service.load_for_page, limit=50, remaining=remaining)
    assert {t.id for t in page.items} == set(ids)
    return {t.id: t.sla_remaining_s for t in page.items if t.sla_remaining_s is not None}


async def same(sla: Sla, ids: list[int]) -> dict[int, SlaView]:
    """Views, remaining (both ways) and breaching ids agree with a fresh service's; the views."""
    kept = await sla.sla.views(sla.ws, ids)
    assert kept == await fresh(sla, ids)
    ref = SlaService(sla.db, clock=sla.clock)
    on_page = await page_remaining(sla.sla, sla, ids)
    assert on_page == await page_remaining(ref, sla, ids)
    now = sla.clock.now
    # the page's own arithmetic (no pass objects, plain floats) against the vectorised pass of a fresh service
    assert on_page == await SlaService(sla.db, clock=sla.clock).remaining(sla.ws, ids, now)
    assert await sla.sla.breaching_ids(sla.ws, now, within_pct=50) == await ref.breaching_ids(sla.ws, now,
                                                                                               within_pct=50)
    return kept


async def kept_in_use(sla: Sla, ids: list[int]) -> None:
    """A second read with nothing changed is answered from kept states (no derivation)."""
    await sla.sla.views(sla.ws, ids)
    hits, misses = sla.sla.memo.hits, sla.sla.memo.misses
    await sla.sla.views(sla.ws, ids)
    assert sla.sla.memo.hits - hits == len(ids) and sla.sla.memo.misses == misses


def res(view: SlaView) -> Any:
    return view.metric("resolution")


async def new_ticket(sla: Sla, priority: str = "medium", **extra: Any) -> int:
    t = await sla.tickets.create(sla.tech, subject="Printer", priority=priority, **extra)
    return t.summary.id


async def test_nothing_changed_reuses_the_kept_state_and_time_still_moves_the_figures(sla: Sla):
    tid = await new_ticket(sla)
    sla.clock.advance(hours=1)
    await kept_in_use(sla, [tid])
    before = res((await same(sla, [tid]))[tid])
    sla.clock.advance(hours=2)
    hits = sla.sla.memo.hits
    after = res((await same(sla, [tid]))[tid])
    assert sla.sla.memo.hits > hits  # still kept: only "now" moved
    assert after.used_s == before.used_s + 2 * H and after.remaining_s == before.remaining_s - 2 * H


async def test_a_status_change_pauses_resumes_and_stops_the_clock(sla: Sla):
    tid = await new_ticket(sla)
    sla.clock.advance(hours=1)
    await kept_in_use(sla, [tid])
    await sla.tickets.change_status(sla.tech, tid, "waiting")
    sla.clock.advance(hours=2)
    assert res((await same(sla, [tid]))[tid]).state == "paused"
    await kept_in_use(sla, [tid])
    await sla.tickets.change_status(sla.tech, tid, "in progress")
    sla.clock.advance(hours=1)
    view = res((await same(sla, [tid]))[tid])
    assert view.state == "running" and view.used_s == 2 * H
    await sla.tickets.change_status(sla.tech, tid, "resolved")
    assert res((await same(sla, [tid]))[tid]).state == "stopped"


async def test_a_priority_change_swaps_the_target(sla: Sla):
    tid = await new_ticket(sla, "low")
    sla.clock.advance(hours=1)
    await kept_in_use(sla, [tid])
    assert res((await same(sla, [tid]))[tid]).target_s == 72 * H
    await sla.tickets.change_priority(sla.tech, tid, "critical")
    assert res((await same(sla, [tid]))[tid]).target_s == 4 * H


async def test_a_first_public_reply_stops_the_first_response_clock(sla: Sla):
    tid = await new_ticket(sla)
    sla.clock.advance(minutes=30)
    await kept_in_use(sla, [tid])
    await sla.tickets.comment(sla.tech, tid, "On it", visibility="public")
    sla.clock.advance(minutes=30)
    fr = (await same(sla, [tid]))[tid].metric("first_response")
    assert fr.state == "stopped" and fr.used_s == 30 * 60


async def test_policy_edits_of_the_workspace_and_of_a_customer(sla: Sla):
    acme = await DirectoryService(sla.db).add_customer(sla.ws, identifier="ACME", name="Acme")
    tid, other = await new_ticket(sla, customer_id=acme.id), await new_ticket(sla)
    sla.clock.advance(hours=1)
    await kept_in_use(sla, [tid, other])
    await sla.config.set_policy(sla.ws, {"targets": {"medium": {"resolution": "10h"}}})
    views = await same(sla, [tid, other])
    assert res(views[tid]).target_s == 10 * H and res(views[other]).target_s == 10 * H
    await kept_in_use(sla, [tid, other])
    await sla.config.set_policy(sla.ws, {"targets": {"medium": {"resolution": "5h"}}, "mode": "calendar"},
                                customer_id=acme.id)
    sla.clock.advance(hours=16)  # 01:00 the next night: calendar time counts it, business hours do not
    views = await same(sla, [tid, other])
    assert res(views[tid]).target_s == 5 * H and not res(views[tid]).business_hours
    assert res(views[tid]).used_s == 17 * H and res(views[other]).used_s == 8 * H
    await kept_in_use(sla, [tid, other])
    await sla.config.set_policy(sla.ws, {"states": {"resolution": {"new": "paused"}}})  # the stage map
    assert res((await same(sla, [other]))[other]).state == "paused"


async def test_calendar_edits_hours_holidays_and_time_zone(sla: Sla):
    tid = await new_ticket(sla)  # Tuesday 09:00 New York, default calendar Mon-Fri 08:00-17:00
    sla.clock.advance(hours=24)  # Wednesday 09:00
    await kept_in_use(sla, [tid])
    assert res((await same(sla, [tid]))[tid]).used_s == 9 * H
    await sla.config.set_calendar(sla.ws, "default", windows="mon-fri 08:00-12:00")
    assert res((await same(sla, [tid]))[tid]).used_s == 4 * H
    await kept_in_use(sla, [tid])
    await sla.config.set_calendar(sla.ws, "default", add_holidays=["2026-12-01"])  # the Tuesday it was opened
    assert res((await same(sla, [tid]))[tid]).used_s == 1 * H
    await kept_in_use(sla, [tid])
    await sla.config.set_calendar(sla.ws, "default", timezone="Europe/London")  # 08:00-12:00 London = 03:00-07:00 NY
    assert res((await same(sla, [tid]))[tid]).used_s == 4 * H  # Wednesday 03:00-07:00 New York


async def test_a_policy_naming_another_calendar(sla: Sla):
    tid = await new_ticket(sla)
    sla.clock.advance(hours=24)
    await kept_in_use(sla, [tid])
    await sla.config.set_calendar(sla.ws, "round-the-clock", windows="mon-sun 00:00-24:00")
    await sla.config.set_policy(sla.ws, {"calendar": "round-the-clock"})
    view = res((await same(sla, [tid]))[tid])
    assert view.calendar_name == "round-the-clock" and view.used_s == 24 * H


async def test_another_process_edit_is_seen_once_the_config_cache_expires(sla: Sla, db_url: str):
    ticks = Ticks()
    sla.sla.configs = ConfigCache(sla.db, CONFIG_TABLES, ttl=CONFIG_TTL_S, clock=ticks)
    tid = await new_ticket(sla)
    sla.clock.advance(hours=1)
    await kept_in_use(sla, [tid])
    other = Database(db_url)  # another process: its writes do not reach this one's config cache
    try:
        await SlaConfigService(other, clock=sla.clock).set_policy(sla.ws, {"targets": {"medium": {"resolution": "9h"}}})
    finally:
        await other.dispose()
    ticks.now += CONFIG_TTL_S - 0.1
    assert res((await sla.sla.views(sla.ws, [tid]))[tid]).target_s == 24 * H  # within the TTL, as before
    ticks.now += 0.2
    assert res((await same(sla, [tid]))[tid]).target_s == 9 * H


async def test_a_sync_change_without_a_timeline_entry_and_a_new_customer(sla: Sla):
    acme = await DirectoryService(sla.db).add_customer(sla.ws, identifier="ACME", name="Acme")
    await sla.config.set_policy(sla.ws, {"targets": {"medium": {"resolution": "2h"}}}, customer_id=acme.id)
    tid = await new_ticket(sla)
    sla.clock.advance(hours=1)
    await kept_in_use(sla, [tid])
    async with sla.db.write(Scope.workspace(sla.ws)) as s:  # what a PSA sync writes: no timeline entry
        await s.execute(sa.update(Ticket).where(Ticket.id == tid).values(
            stage="waiting", psa_status_name="Waiting Customer", updated_at=sla.clock.now, version=Ticket.version + 1))
    sla.clock.advance(hours=1)
    assert res((await same(sla, [tid]))[tid]).state == "paused"
    await kept_in_use(sla, [tid])
    async with sla.db.write(Scope.workspace(sla.ws)) as s:
        await s.execute(sa.update(Ticket).where(Ticket.id == tid).values(customer_id=acme.id))  # not even a version
    assert res((await same(sla, [tid]))[tid]).target_s == 2 * H


async def test_the_monitor_writing_clocks_and_a_change_after_it(sla: Sla):
    tid = await new_ticket(sla)
    sla.clock.advance(hours=1)
    await kept_in_use(sla, [tid])
    await sla.config.set_policy(sla.ws, {"targets": {"medium": {"resolution": "30h"}}})
    await sla.sla.refresh(sla.ws)  # stored clocks now (with the 30 h target)
    await sla.config.set_policy(sla.ws, {"targets": {"medium": {"resolution": "20h"}}})
    assert res((await same(sla, [tid]))[tid]).target_s == 30 * H  # a stored clock keeps its target until a change
    sla.clock.advance(hours=1)
    await sla.tickets.change_status(sla.tech, tid, "waiting")  # stale again: derived from the stored rows
    view = res((await same(sla, [tid]))[tid])
    assert view.state == "paused" and view.target_s == 20 * H and view.used_s == 2 * H
    await kept_in_use(sla, [tid])
    async with sla.db.write(Scope.workspace(sla.ws)) as s:  # another monitor pass moved the stored clock
        await s.execute(sa.text("UPDATE sla_clock SET paused_acc_s = paused_acc_s + 3600 WHERE ticket_id = :t"),
                        {"t": tid})
    assert res((await same(sla, [tid]))[tid]).used_s == 1 * H  # the stored clock's hour of pause counts now


async def test_instants_after_now_are_never_kept(sla: Sla):
    tid = await new_ticket(sla)
    sla.clock.advance(hours=3)
    await sla.tickets.change_status(sla.tech, tid, "waiting")  # at 12:00
    sla.clock.advance(hours=-2)  # a read "at 10:00" (a test clock, a skewed host): the pause has not begun yet
    early = res((await same(sla, [tid]))[tid])
    assert early.state == "paused" and early.used_s == 1 * H
    sla.clock.advance(hours=4)  # 14:00
    late = res((await same(sla, [tid]))[tid])
    assert late.state == "paused" and late.used_s == 3 * H
    await kept_in_use(sla, [tid])  # derived at 14:00: kept now
    sla.clock.advance(hours=-3)  # 11:00, before the pause it kept: derived again
    hits = sla.sla.memo.hits
    again = res((await same(sla, [tid]))[tid])
    assert again.used_s == 2 * H and sla.sla.memo.hits == hits  # paused "now", at 11:00 (kept: 3 h, from 12:00)


async def test_every_status_or_priority_entry_comes_with_a_version_bump(sla: Sla):
    """What the memo's reuse of timeline changes rests on: the ticket's version moves with each such entry."""
    tid = await new_ticket(sla)
    kinds = ("status_change", "priority_change")

    async def state() -> tuple[int, int]:
        async with sla.db.read(Scope.workspace(sla.ws)) as s:
            version = (await s.execute(sa.select(Ticket.version).where(Ticket.id == tid))).scalar_one()
            n = (await s.execute(sa.select(sa.func.count()).select_from(TimelineEntry).where(
                TimelineEntry.ticket_id == tid, TimelineEntry.kind.in_(kinds)))).scalar_one()  # type: ignore[attr-defined]
        return version, n

    v, n = await state()
    for op in (lambda: sla.tickets.change_status(sla.tech, tid, "waiting"),
               lambda: sla.tickets.change_priority(sla.tech, tid, "high"),
               lambda: sla.tickets.update(sla.tech, tid, status="in progress", priority="low")):
        await op()
        v2, n2 = await state()
        assert n2 > n and v2 - v >= n2 - n
        v, n = v2, n2


def test_only_the_ticket_service_writes_status_and_priority_entries():
    """A new writer of these kinds must bump the ticket's version too (core/sla/memo.py): this lists where the
    kinds are named in product code; a new place fails here until it is checked and added."""
    pattern = re.compile(r"STATUS_CHANGE|PRIORITY_CHANGE|[\"']status_change[\"']|[\"']priority_change[\"']")
    found = set()
    for top in ("core", "bot", "connectors", "store"):
        for path in (ROOT / top).rglob("*.py"):
            if "migrations" not in path.parts and pattern.search(path.read_text(encoding="utf-8")):
                found.add(str(path.relative_to(ROOT)))
    assert found == {
        "core/tickets.py",  # the writer: `_set_status` and `_set_priority` call `_touch` (version + 1)
        "store/enums.py",  # the names
        "core/sla/service.py", "core/ai/risk.py", "core/chat/cards.py",  # readers
        "bot/api/portal/models.py",  # API documentation
    }


@pytest.mark.parametrize("seed", [1, 2])
async def test_random_changes_always_read_the_same_as_a_fresh_service(sla: Sla, seed: int):
    rnd = random.Random(seed)
    acme = await DirectoryService(sla.db).add_customer(sla.ws, identifier="ACME", name="Acme")
    ids = [await new_ticket(sla, p, **({"customer_id": acme.id} if i % 2 else {}))
           for i, p in enumerate(("low", "medium", "high", "critical"))]
    await sla.config.set_calendar(sla.ws, "late", windows="mon-sat 12:00-22:00")
    statuses, prios = ("new", "in progress", "waiting", "resolved"), ("low", "medium", "high", "critical")
    ops = {
        "status": lambda: sla.tickets.change_status(sla.tech, rnd.choice(ids), rnd.choice(statuses)),
        "priority": lambda: sla.tickets.change_priority(sla.tech, rnd.choice(ids), rnd.choice(prios)),
        "reply": lambda: sla.tickets.comment(sla.tech, rnd.choice(ids), "Looking", visibility=rnd.choice(
            ("public", "internal"))),
        "policy": lambda: sla.config.set_policy(sla.ws, {"targets": {rnd.choice(prios): {"resolution": rnd.choice(
            ("2h", "6h", "30h"))}}, "mode": rnd.choice(("calendar", "business")), "reopen": rnd.choice(
            ("resume", "new_cycle"))}, customer_id=rnd.choice((None, acme.id))),
        "calendar": lambda: sla.config.set_calendar(sla.ws, rnd.choice(("default", "late")), windows=rnd.choice(
            ("mon-fri 08:00-17:00", "mon-fri 09:00-13:00", "tue-sun 06:00-23:00"))),
        "use calendar": lambda: sla.config.set_policy(sla.ws, {"calendar": rnd.choice(("default", "late"))},
                                                      customer_id=rnd.choice((None, acme.id))),
        "monitor": lambda: sla.sla.refresh(sla.ws),
    }
    seen = set()
    for _ in range(40):
        name = rnd.choice([*ops, "time", "time", "time"])
        if name == "time":
            sla.clock.advance(minutes=rnd.choice((-30, 20, 90, 300, 1500)))
        else:
            try:
                await ops[name]()
            except InvalidInput:
                continue
        seen.add(name)
        await same(sla, ids)
    assert sla.sla.memo.hits > 0 and {"status", "priority", "policy", "calendar", "monitor", "time"} <= seen


def test_the_memo_reuses_a_state_only_for_the_same_inputs_and_never_hands_out_its_own():
    from datetime import UTC, datetime

    from core.sla.clock import IntervalTable
    from core.sla.memo import DerivedMemo
    from core.sla.policies import Metric, Policy
    from core.sla.service import TicketRow
    from core.sla.state import Change, ClockState
    from store.enums import Stage

    at = datetime(2026, 12, 1, 14, tzinfo=UTC)
    t = TicketRow(id=7, number=7, subject="s", customer_id=None, priority="medium", stage="new", status_name=None,
                  created_at=at, updated_at=at + timedelta(hours=1), version=2, first_response_at=None,
                  psa_respond_by=None, psa_resolve_by=None)
    change = Change(entry_id=3, at=(at + timedelta(hours=2)).timestamp(), kind="status", stage=Stage.WAITING)
    policy, table = Policy(), IntervalTable.continuous()
    state = ClockState(metric=Metric.RESOLUTION, priority="medium", start=at.timestamp(), target_s=86400.0,
                       last_at=at.timestamp(), log=[{"event": "started"}])
    latest = change.at
    memo = DerivedMemo(max_entries=10)
    memo.keep(t, (None,), [change], policy, (table,), [state], latest - 1)  # an input after "now": not kept
    assert len(memo) == 0 and memo.changes_of(t) is None
    memo.keep(t, (None,), [change], policy, (table,), [state], latest)
    state.breached_at = 1.0  # what an evaluation does to the state it was given: not to the kept copy
    got = memo.states(t, (None,), policy, (table,), latest + 5)
    assert got is not None and got[0] is not state and got[0].breached_at is None and got[0].log == state.log
    got[0].log.append({"event": "x"})
    assert memo.states(t, (None,), policy, (table,), latest)[0].log == [{"event": "started"}]  # type: ignore[index]
    assert memo.changes_of(t) == (change,)
    from dataclasses import replace
    for other in (replace(t, version=3), replace(t, stage="waiting"), replace(t, customer_id=5)):
        assert memo.states(other, (None,), policy, (table,), latest) is None and memo.changes_of(other) is None
    assert memo.states(t, (("row",),), policy, (table,), latest) is None  # a stored clock appeared
    assert memo.states(t, (None,), Policy(), (table,), latest) is None  # an equal but newer policy
    assert memo.states(t, (None,), policy, (IntervalTable.continuous(),), latest) is None  # another table
    assert memo.states(t, (None,), policy, (table,), latest - 0.5) is None  # before an instant it read
    for n in range(20):  # bounded: the oldest go first
        memo.keep(replace(t, id=100 + n), (None,), [], policy, (table,), [state], latest)
    assert len(memo) <= 10 and memo.changes_of(replace(t, id=119)) == ()
