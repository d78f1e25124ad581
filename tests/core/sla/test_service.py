"""Clock semantics through the service: start, pauses, first response, priority changes, reopen,
PSA due dates beside ours, queue figures and the breaching query."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa

from core.errors import InvalidInput, NotFound
from core.sla.risk import RISK_PCT
from core.views import QueuePage
from store.db import Scope
from store.tables import SlaClock, Ticket
from tests.core.sla.conftest import NY, Sla

H = 3600.0


async def calendar_time(sla: Sla, **extra) -> None:
    await sla.config.set_policy(sla.ws, {"mode": "calendar", **extra})


async def metric(sla: Sla, ticket_id: int, name: str):
    view = (await sla.sla.views(sla.ws, [ticket_id]))[ticket_id]
    return view.metric(name)


async def test_defaults_and_customer_override(sla: Sla):
    policy, own = await sla.config.policy(sla.ws)
    assert own == {} and policy.target("critical", "first_response") == 15 * 60
    assert policy.target("low", "resolution") == 72 * 3600 and policy.business_hours
    from core.workspaces import DirectoryService
    acme = await DirectoryService(sla.db).add_customer(sla.ws, identifier="ACME", name="Acme")
    await sla.config.set_policy(sla.ws, {"targets": {"high": {"resolution": "6h"}}})
    await sla.config.set_policy(sla.ws, {"targets": {"high": {"first_response": "30m"}}, "reopen": "new_cycle"},
                                customer_id=acme.id)
    cust, own = await sla.config.policy(sla.ws, acme.id)
    assert cust.target("high", "resolution") == 6 * 3600  # from the workspace layer
    assert cust.target("high", "first_response") == 30 * 60 and cust.reopen.value == "new_cycle"
    assert own["targets"] == {"high": {"first_response": 1800}}
    ws_policy, _ = await sla.config.policy(sla.ws)
    assert ws_policy.target("high", "first_response") == 3600 and ws_policy.reopen.value == "resume"
    with pytest.raises(InvalidInput):
        await sla.config.set_policy(sla.ws, {"targets": {"urgentest": {"resolution": "1h"}}})
    with pytest.raises(InvalidInput):
        await sla.config.set_policy(sla.ws, {"thresholds": [0, 150]})
    with pytest.raises(NotFound):
        await sla.config.set_policy(sla.ws, {"calendar": "nope"})


async def test_calendars_validate_and_list_holidays(sla: Sla):
    info = await sla.config.set_calendar(sla.ws, "us-east", timezone="America/New_York",
                                         windows="mon-fri 08:00-17:00", country="US", add_holidays=["2026-12-24"])
    assert info.version == 1 and info.windows == "mon-fri 08:00-17:00"
    year, days = await sla.config.holidays(sla.ws, "us-east", 2026)
    hols = dict(days)
    assert year == 2026
    assert "Thanksgiving" in hols[datetime(2026, 11, 26).date()] and datetime(2026, 12, 24).date() in hols
    info = await sla.config.set_calendar(sla.ws, "us-east", subdiv="CA")
    assert info.version == 2 and info.holiday_subdiv == "CA"
    for bad in ({"timezone": "Mars/Olympus"}, {"windows": "mon 9-5"}, {"country": "XX"},
                {"add_holidays": ["24/12/2026"]}):
        with pytest.raises(InvalidInput):
            await sla.config.set_calendar(sla.ws, "us-east", **bad)
    names = [c.name for c in await sla.config.calendars(sla.ws)]
    assert names == ["default", "us-east"]


async def test_created_friday_afternoon_is_due_monday_on_business_hours(sla: Sla):
    sla.clock.set(datetime(2026, 12, 4, 16, 0, tzinfo=NY))  # Friday 16:00
    t = await sla.tickets.create(sla.tech, subject="Printer", priority="critical")  # resolution 4 h
    sla.clock.set(datetime(2026, 12, 7, 9, 0, tzinfo=NY))  # Monday 09:00
    res = await metric(sla, t.summary.id, "resolution")
    assert res.due_at == datetime(2026, 12, 7, 11, 0, tzinfo=NY)
    assert res.used_s == 2 * H and res.remaining_s == 2 * H and res.calendar_name == "default"
    fr = await metric(sla, t.summary.id, "first_response")
    assert fr.breached and fr.breached_at == datetime(2026, 12, 4, 16, 15, tzinfo=NY)


async def test_first_response_stops_at_the_first_public_member_reply(sla: Sla):
    await calendar_time(sla)
    t = await sla.tickets.create(sla.tech, subject="VPN", priority="high")
    sla.clock.advance(minutes=10)
    await sla.tickets.comment(sla.tech, t.summary.number, "internal only", visibility="internal")
    sla.clock.advance(minutes=10)
    await sla.tickets.comment(sla.tech, t.summary.number, "On it", visibility="public")
    sla.clock.advance(hours=3)
    fr = await metric(sla, t.summary.id, "first_response")
    assert fr.state == "stopped" and fr.used_s == 20 * 60 and not fr.breached
    res = await metric(sla, t.summary.id, "resolution")
    assert res.state == "running" and res.used_s == 3 * H + 20 * 60


async def test_waiting_on_customer_pauses_even_between_passes(sla: Sla):
    await calendar_time(sla)
    t = await sla.tickets.create(sla.tech, subject="Mail", priority="medium")
    await sla.sla.refresh(sla.ws)
    sla.clock.advance(hours=1)
    await sla.tickets.change_status(sla.tech, t.summary.number, "waiting")
    sla.clock.advance(hours=2)
    await sla.tickets.change_status(sla.tech, t.summary.number, "in progress")
    sla.clock.advance(hours=2)
    results = await sla.sla.refresh(sla.ws)  # the pause started and ended since the last pass
    res = next(r for r in results if r.metric.value == "resolution")
    assert res.figures.used == 3 * H and res.state.paused_acc_s == 2 * H
    assert [e["event"] for e in res.state.log] == ["started", "paused", "resumed"]
    assert (await metric(sla, t.summary.id, "resolution")).used_s == 3 * H  # read path agrees with stored state


async def test_priority_change_keeps_elapsed_and_breach_stays_recorded(sla: Sla):
    await calendar_time(sla)
    created = sla.clock.now
    t = await sla.tickets.create(sla.tech, subject="Server", priority="medium")  # resolution 24 h
    sla.clock.advance(hours=5)
    await sla.tickets.change_priority(sla.tech, t.summary.number, "critical")  # 4 h: already over
    res = await metric(sla, t.summary.id, "resolution")
    assert res.target_s == 4 * H and res.used_s == 5 * H and res.breached
    assert res.breached_at == created + timedelta(hours=4)
    sla.clock.advance(hours=1)
    await sla.tickets.change_priority(sla.tech, t.summary.number, "medium")
    res = await metric(sla, t.summary.id, "resolution")
    assert res.target_s == 24 * H and res.remaining_s == 18 * H
    assert res.breached_at == created + timedelta(hours=4)  # a longer target never un-breaches


@pytest.mark.parametrize("mode", ["resume", "new_cycle"])
async def test_reopen_resumes_or_starts_a_new_cycle(sla: Sla, mode: str):
    await calendar_time(sla, reopen=mode)
    t = await sla.tickets.create(sla.tech, subject="Laptop", priority="low")
    sla.clock.advance(hours=2)
    await sla.tickets.change_status(sla.tech, t.summary.number, "resolved")
    sla.clock.advance(hours=5)
    await sla.tickets.change_status(sla.tech, t.summary.number, "in progress")
    sla.clock.advance(hours=1)
    res = await metric(sla, t.summary.id, "resolution")
    if mode == "resume":
        assert res.cycle == 1 and res.used_s == 3 * H  # the 5 h resolved do not count
    else:
        assert res.cycle == 2 and res.used_s == 1 * H
    fr = await metric(sla, t.summary.id, "first_response")
    assert fr.cycle == 1 and fr.used_s == 3 * H  # first response never starts a new cycle


async def test_change_made_by_a_sync_without_timeline_is_dated_at_updated_at(sla: Sla):
    await calendar_time(sla)
    t = await sla.tickets.create(sla.tech, subject="Sync", priority="low")
    await sla.sla.refresh(sla.ws)
    async with sla.db.write(Scope.workspace(sla.ws)) as s:
        await s.execute(sa.update(Ticket).where(Ticket.id == t.summary.id).values(
            stage="waiting", psa_status_name="Waiting Customer", updated_at=sla.clock.now + timedelta(hours=2),
            version=Ticket.version + 1))
    sla.clock.advance(hours=6)
    res = await metric(sla, t.summary.id, "resolution")
    assert res.state == "paused" and res.used_s == 2 * H


async def test_status_name_override_keeps_a_clock_running(sla: Sla):
    await calendar_time(sla, status_names={"Waiting on Vendor": {"resolution": "running"}})
    t = await sla.tickets.create(sla.tech, subject="Vendor", priority="low")
    async with sla.db.write(Scope.workspace(sla.ws)) as s:
        await s.execute(sa.update(Ticket).where(Ticket.id == t.summary.id).values(
            stage="waiting", psa_status_name="Waiting on Vendor", version=Ticket.version + 1))
    sla.clock.advance(hours=1)
    assert (await metric(sla, t.summary.id, "resolution")).state == "running"
    assert (await metric(sla, t.summary.id, "first_response")).state == "paused"


async def test_psa_due_dates_are_shown_beside_ours_and_disagreement_flagged(sla: Sla):
    await calendar_time(sla)
    t = await sla.tickets.create(sla.tech, subject="PSA", priority="high")  # 1 h / 8 h
    ours_fr = sla.clock.now + timedelta(hours=1)
    async with sla.db.write(Scope.workspace(sla.ws)) as s:
        await s.execute(sa.update(Ticket).where(Ticket.id == t.summary.id).values(
            psa_respond_by=ours_fr + timedelta(minutes=2), psa_resolve_by=ours_fr + timedelta(hours=9)))
    view = (await sla.sla.views(sla.ws, [t.summary.id]))[t.summary.id]
    fr, res = view.metric("first_response"), view.metric("resolution")
    assert fr.psa_due_at == ours_fr + timedelta(minutes=2) and fr.psa_disagreement_s is None  # within 5 min
    assert res.psa_disagreement_s == -2 * H  # ours is 2 h earlier than the PSA's


async def test_queue_figures_and_breaching_query(sla: Sla):
    await calendar_time(sla)
    a = await sla.tickets.create(sla.tech, subject="A", priority="critical")  # 15 m / 4 h
    b = await sla.tickets.create(sla.tech, subject="B", priority="low")  # 24 h / 72 h
    c = await sla.tickets.create(sla.tech, subject="C", priority="high")  # 1 h / 8 h
    await sla.tickets.comment(sla.tech, c.summary.number, "hello", visibility="public")
    sla.clock.advance(minutes=50)
    rem = await sla.sla.remaining(sla.ws, [a.summary.id, b.summary.id, c.summary.id], sla.clock.now)
    assert rem[a.summary.id] == -35 * 60  # first response exceeded
    assert rem[b.summary.id] == 24 * H - 50 * 60
    assert rem[c.summary.id] == 8 * H - 50 * 60  # first response stopped: resolution is what is left
    by_metric = await sla.sla.remaining_by_metric(sla.ws, [c.summary.id])
    assert set(by_metric[c.summary.id]) == {"resolution"}
    assert await sla.sla.breaching_ids(sla.ws, sla.clock.now) == [a.summary.id]
    # "within X% of the target": remaining <= X% of the target (c has 89.6% left, b 96.5%).
    assert await sla.sla.breaching_ids(sla.ws, sla.clock.now, within_pct=90) == sorted([a.summary.id, c.summary.id])
    assert len(await sla.sla.breaching_ids(sla.ws, sla.clock.now, within_pct=97)) == 3
    page = QueuePage(items=(b.summary, a.summary))
    annotated = await sla.sla.annotate(sla.ws, page)
    assert [i.sla_remaining_s for i in annotated.items] == [24 * H - 50 * 60, -35 * 60]
    await sla.tickets.change_status(sla.tech, a.summary.number, "closed")
    assert await sla.sla.breaching_ids(sla.ws, sla.clock.now) == []


async def risk_from(sla: Sla) -> dict[tuple[int, str], datetime | None]:
    async with sla.db.read(Scope.workspace(sla.ws)) as s:
        rows = (await s.execute(sa.select(SlaClock.ticket_id, SlaClock.metric, SlaClock.risk_from))).all()
    return {(t, m): r for t, m, r in rows}


async def agrees(sla: Sla) -> int:
    """After a pass, the overview's count equals deriving every open ticket's clocks (at RISK_PCT)."""
    await sla.sla.refresh(sla.ws)  # what the monitor does each minute
    full = await sla.sla.breaching_ids(sla.ws, sla.clock.now, within_pct=RISK_PCT)
    n = await sla.sla.at_risk_count(sla.ws, sla.clock.now)
    assert n == len(full), (n, full)
    return n


async def test_at_risk_count_is_the_stored_instant_and_follows_the_time(sla: Sla):
    """Each clock stores the instant it reaches RISK_PCT% left; between passes the count moves with the time."""
    await calendar_time(sla)
    start = sla.clock.now
    a = await sla.tickets.create(sla.tech, subject="A", priority="critical")  # 15 m / 4 h
    await sla.tickets.create(sla.tech, subject="B", priority="low")  # 24 h / 72 h
    c = await sla.tickets.create(sla.tech, subject="C", priority="high")  # 1 h / 8 h
    await sla.tickets.comment(sla.tech, c.summary.number, "hello", visibility="public")
    assert await agrees(sla) == 0
    stored = await risk_from(sla)
    assert stored[(a.summary.id, "first_response")] == start + timedelta(minutes=12)  # 80% of 15 m used
    assert stored[(a.summary.id, "resolution")] == start + timedelta(minutes=192)  # 80% of 4 h
    assert stored[(c.summary.id, "first_response")] is None  # stopped by the reply
    async with sla.db.read(Scope.workspace(sla.ws)) as s:  # the ticket's earliest, on its resolution row only
        rows = dict((await s.execute(sa.select(SlaClock.metric, SlaClock.ticket_risk_from).where(
            SlaClock.ticket_id == a.summary.id))).all())
    assert rows == {"resolution": start + timedelta(minutes=12), "first_response": None}
    sla.clock.advance(minutes=11, seconds=59)
    assert await sla.sla.at_risk_count(sla.ws, sla.clock.now) == 0  # no pass in between: the instant decides
    sla.clock.advance(seconds=1)
    assert await sla.sla.at_risk_count(sla.ws, sla.clock.now) == 1
    sla.clock.advance(hours=7)  # C's resolution 8 h: 80% at 6 h 24 m; B's first response 24 h: not yet
    assert await sla.sla.at_risk_count(sla.ws, sla.clock.now) == 2
    assert await agrees(sla) == 2
    await sla.tickets.change_status(sla.tech, a.summary.number, "closed")
    assert await agrees(sla) == 1  # closing stops both clocks: cleared by the pass


async def test_every_change_of_a_clock_moves_its_risk_instant(sla: Sla):
    """Pause, resume, first response, priority change, calendar edit and deletion each reach the stored instant
    at the next pass, and after each the count equals the full derivation (business hours, both metrics)."""
    sla.clock.set(datetime(2026, 12, 7, 9, 0, tzinfo=NY))  # Monday 09:00, default calendar 08:00-17:00
    t = await sla.tickets.create(sla.tech, subject="Printer", priority="high")  # 1 h / 8 h
    key = (t.summary.id, "resolution")
    assert await agrees(sla) == 0
    assert (await risk_from(sla))[key] == datetime(2026, 12, 7, 15, 24, tzinfo=NY)  # 6 h 24 m of business time
    sla.clock.advance(minutes=50)  # first response: 50 of 60 m used
    await sla.tickets.change_status(sla.tech, t.summary.number, "waiting")  # pause
    sla.clock.advance(hours=2)
    assert await agrees(sla) == 1  # paused with 10 m (16.7%) of the first response left
    stored = await risk_from(sla)
    assert stored[(t.summary.id, "first_response")] == datetime(2026, 12, 7, 9, 50, tzinfo=NY)  # the pause
    assert stored[key] is None  # paused far from its share: never while paused
    await sla.tickets.change_status(sla.tech, t.summary.number, "in progress")  # resume at 11:50
    assert await agrees(sla) == 1  # the first response's 48 m + the 2 h pause: at risk since 11:48
    # 6 h 24 m of work from 09:00 plus the 2 h pause: 8 h 24 m, so past Monday's 17:00, 24 m into Tuesday.
    assert (await risk_from(sla))[key] == datetime(2026, 12, 8, 8, 24, tzinfo=NY)
    await sla.tickets.comment(sla.tech, t.summary.number, "On it", visibility="public")  # first response
    assert await agrees(sla) == 0
    assert (await risk_from(sla))[(t.summary.id, "first_response")] is None
    await sla.tickets.change_priority(sla.tech, t.summary.number, "critical")  # resolution 4 h: 80% is 3 h 12 m
    assert await agrees(sla) == 0
    assert (await risk_from(sla))[key] == datetime(2026, 12, 7, 14, 12, tzinfo=NY)  # 09:00 + 3 h 12 m + the pause
    await sla.config.set_calendar(sla.ws, "default", windows="mon-fri 08:00-13:00")  # calendar edit
    assert await agrees(sla) == 0
    # 5 h 12 m from 09:00 on 08:00-13:00: 4 h on Monday, 1 h 12 m on Tuesday.
    assert (await risk_from(sla))[key] == datetime(2026, 12, 8, 9, 12, tzinfo=NY)
    sla.clock.set(datetime(2026, 12, 8, 9, 11, tzinfo=NY))
    assert await sla.sla.at_risk_count(sla.ws, sla.clock.now) == 0
    sla.clock.set(datetime(2026, 12, 8, 9, 12, tzinfo=NY))
    assert await sla.sla.at_risk_count(sla.ws, sla.clock.now) == 1
    assert await agrees(sla) == 1
    async with sla.db.write(Scope.workspace(sla.ws)) as s:  # the PSA deleted it (core/ticket_gone.py does this)
        await s.execute(sa.update(Ticket).where(Ticket.id == t.summary.id).values(
            deleted_at=sla.clock.now, version=Ticket.version + 1))
    assert await agrees(sla) == 0
    assert (await risk_from(sla))[key] is None


async def test_explain_shows_windows_holidays_pauses_and_the_psa(sla: Sla):
    from core.sla.explain import explain

    await sla.config.set_calendar(sla.ws, "default", country="US")
    sla.clock.set(datetime(2026, 11, 25, 15, 0, tzinfo=NY))  # Wednesday before Thanksgiving
    t = await sla.tickets.create(sla.tech, subject="Across the holiday", priority="critical")
    await sla.tickets.comment(sla.tech, t.summary.number, "on it", visibility="public")
    sla.clock.set(datetime(2026, 11, 25, 16, 0, tzinfo=NY))
    await sla.tickets.change_status(sla.tech, t.summary.number, "waiting")
    sla.clock.set(datetime(2026, 11, 27, 9, 0, tzinfo=NY))
    await sla.tickets.change_status(sla.tech, t.summary.number, "in progress")
    async with sla.db.write(Scope.workspace(sla.ws)) as s:
        await s.execute(sa.update(Ticket).where(Ticket.id == t.summary.id).values(
            psa_resolve_by=datetime(2026, 11, 27, 10, 0, tzinfo=NY)))
    sla.clock.set(datetime(2026, 11, 27, 9, 30, tzinfo=NY))
    out = await explain(sla.sla, sla.tech, t.summary.number)
    text = "\n".join(out.lines)
    res = out.view.metric("resolution")
    # 1 h Wed + (paused Wed 16-17, Thanksgiving closed, paused Fri 08-09) + 30 m Fri -> 2 h 30 m left
    assert res.used_s == 1.5 * 3600 and res.due_at == datetime(2026, 11, 27, 12, 0, tzinfo=NY)
    assert "2026-11-26 Thanksgiving" in text and "paused: 2h of business time" in text
    assert "Wed 25 Nov 15:00-16:00 EST  1h\n    Fri 27 Nov 09:00-09:30 EST  30m\n" in text  # pauses left out
    assert "met with 15m to spare" in text
    assert "DIFFERS by 2h" in text and "stopped (first_response)" in text
    with pytest.raises(NotFound):
        await explain(sla.sla, sla.tech, 99999)


async def test_a_queue_page_reads_its_sla_data_in_its_own_read(sla: Sla, monkeypatch: pytest.MonkeyPatch):
    """`/tickets` (ChatRunner.queue) reads the page, its count and its SLA data in one read (one hop, one
    snapshot): the figures are those `remaining` gives, and an empty page reads no SLA data."""
    from core.chat.sla_info import PageSla
    from core.queue import QueueFilter, QueueService

    await calendar_time(sla)
    a = await sla.tickets.create(sla.tech, subject="A", priority="critical")
    b = await sla.tickets.create(sla.tech, subject="B", priority="low")
    sla.clock.advance(minutes=50)
    assert isinstance(sla.sla, PageSla)
    reads: list[object] = []
    real = sla.db.read_sync

    async def counted(scope, fn):  # type: ignore[no-untyped-def]
        reads.append(fn)
        return await real(scope, fn)

    monkeypatch.setattr(sla.db, "read_sync", counted)
    queue = QueueService(sla.db)
    page, loaded = await queue.list_with(sla.tech, QueueFilter(), sla.sla.load_for_page, limit=15, with_total=True)
    assert len(reads) == 1 and page.total == 2 and {t.id for t in page.items} == {a.summary.id, b.summary.id}
    one_hop = await sla.sla.remaining_loaded(sla.ws, loaded, sla.clock.now)
    assert one_hop == {a.summary.id: -35 * 60, b.summary.id: 24 * H - 50 * 60}
    assert one_hop == await sla.sla.remaining(sla.ws, [a.summary.id, b.summary.id], sla.clock.now)
    empty, nothing = await queue.list_with(sla.tech, QueueFilter(text="no such subject"), sla.sla.load_for_page,
                                           limit=15, with_total=True)
    assert empty.items == () and empty.total == 0 and nothing is None
    assert await sla.sla.remaining_loaded(sla.ws, nothing, sla.clock.now) == {}
