"""One intent, one write, whatever Teams redelivers: the same thread reply (same activity id) sent again, one after
the other and at the same moment, is one note for the PSA and one confirmation in the thread."""

from __future__ import annotations

import asyncio

import sqlalchemy as sa

from store.db import Scope
from store.tables import OutboxOp
from tests.bot.teams.test_threads import in_thread, notes, open_thread


async def test_a_redelivered_thread_reply_is_one_note(teams):
    thread, _ = await open_thread(teams)
    body = teams.activity("!public Rebooted the switch", conversation=thread)
    first = await teams.send(body)
    again = await teams.send(body)
    assert first.status_code == again.status_code == 200
    assert [n["text"] for n in await notes(teams)] == ["Rebooted the switch"]
    assert len(in_thread(teams, thread)) == 1


async def test_a_thread_reply_delivered_twice_at_once_is_one_note(teams):
    thread, _ = await open_thread(teams)
    body = teams.activity("!time 15m swapped the cable", conversation=thread)
    codes = await asyncio.gather(*(teams.send(body, settle=False) for _ in range(3)))
    await teams.settle()
    assert {r.status_code for r in codes} == {200}
    async with teams.c.db.read(Scope.workspace(teams.ws)) as s:
        ops = (await s.exec(sa.select(OutboxOp.kind))).scalars().all()
    assert ops == ["add_time_entry"]
