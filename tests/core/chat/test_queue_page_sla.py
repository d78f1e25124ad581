"""`/tickets mine`'s page (core/chat/runner.py `queue`, issue 20 item 4): its rows are made with their SLA figures
inside the page's read path (the page's own arithmetic, kept clock states, Core reads on the read session). The page a
technician sees must be the page of the plain path: the queue read on its own, each figure from a fresh SLA service's
vectorised pass (nothing kept), copied onto the rows. Compared after every kind of change, with the page read twice
(the second answered from kept states), down to the Slack blocks."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import pytest

from bot.main import build
from bot.settings import Settings
from bot.slack import blocks as bk
from core.chat import grammar
from core.context import Actor
from core.queue import QueueFilter, QueueService
from core.sla.service import SlaService
from store.crypto import generate_key
from store.enums import Origin
from store.types import utcnow


class Clock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
async def container(db_url, tmp_path, workspace_id):  # type: ignore[no-untyped-def]
    c = build(Settings(database_url=db_url, secret_key=generate_key(), sandbox="off", auto_migrate=False,
                       secret_key_file=tmp_path / "k"))
    c.default_workspace_id = workspace_id
    yield c
    await c.aclose()


async def test_the_mine_page_is_the_plain_paths_page_after_every_change(container: Any, workspace_id: int):
    c, ws = container, workspace_id
    member = await c.directory.add_member(ws, name="Ana Tech", email="ana@acme.example")
    tech = Actor(workspace_id=ws, origin=Origin.SLACK, member_id=member.id, display="slack:U1 (Ana)")
    acme = await c.directory.add_customer(ws, identifier="ACME", name="Acme")
    ids, opened = [], utcnow()
    for i, prio in enumerate(("low", "medium", "high", "critical", "medium", "high")):
        made = await c.tickets.create(tech, subject=f"Printer {i}", priority=prio, assignee_member_id=member.id,
                                      **({"customer_id": acme.id} if i % 2 else {}))
        ids.append(made.summary.id)
    clock = Clock(utcnow() + timedelta(minutes=5))
    c.chat_views._clock = clock  # the page's "now" (what the runner passes to the SLA engine)

    async def page_rows() -> tuple[Any, ...]:
        view = await c.chat_commands.queue(tech, grammar.ListTickets(assignee="mine"))
        again = await c.chat_commands.queue(tech, grammar.ListTickets(assignee="mine"))  # kept states in use
        plain = await QueueService(c.db).list(tech, QueueFilter(assignee=member.id), limit=15, with_total=True)
        fresh = await SlaService(c.db, clock=clock).remaining(ws, [t.id for t in plain.items], clock.now)
        reference = tuple(replace(t, sla_remaining_s=fresh.get(t.id)) for t in plain.items)
        assert view.rows == again.rows == reference and view.total == plain.total == len(reference)
        assert bk.queue_blocks(view) == bk.queue_blocks(replace(view, rows=reference))
        return view.rows

    hits = c.sla.memo.hits
    before = await page_rows()
    assert c.sla.memo.hits > hits and all(r.sla_remaining_s is not None for r in before)
    changes = [
        ("time", lambda: setattr(clock, "now", clock.now + timedelta(hours=72))),
        ("status: waiting pauses", lambda: c.tickets.change_status(tech, ids[0], "waiting")),
        ("priority", lambda: c.tickets.change_priority(tech, ids[1], "critical")),
        ("a public reply", lambda: c.tickets.comment(tech, ids[2], "Looking", visibility="public")),
        ("business hours", lambda: c.sla_config.set_calendar(ws, "default", timezone="UTC",
                                                             windows="mon-sun 09:00-12:00")),
        # the day after the tickets were opened: its 09:00-12:00 lies between then and now, whatever the weekday
        ("holiday", lambda: c.sla_config.set_calendar(ws, "default", add_holidays=[
            (opened + timedelta(days=1)).date().isoformat()])),
        ("policy", lambda: c.sla_config.set_policy(ws, {"targets": {"medium": {"first_response": "40h",
                                                                                "resolution": "50h"}}})),
        ("customer's policy", lambda: c.sla_config.set_policy(ws, {"mode": "calendar"}, customer_id=acme.id)),
        ("clocks written by the monitor", lambda: c.sla.refresh(ws)),
        ("time after the monitor", lambda: setattr(clock, "now", clock.now + timedelta(hours=7))),
        ("status: resolved leaves the page", lambda: c.tickets.change_status(tech, ids[3], "resolved")),
    ]
    for name, change in changes:
        done = change()
        if done is not None:
            await done
        hits = c.sla.memo.hits + c.sla.memo.misses
        rows = await page_rows()
        if name == "clocks written by the monitor":  # the same figures, now from the stored clocks (no derivation)
            assert rows == before and c.sla.memo.hits + c.sla.memo.misses == hits
            continue
        moved = [r.id for r, b in zip(rows, before, strict=False) if (r.id, r.sla_remaining_s) != (b.id, b.sla_remaining_s)]
        assert moved or len(rows) != len(before), f"{name}: the page did not change, the comparison proves nothing"
        before = rows
