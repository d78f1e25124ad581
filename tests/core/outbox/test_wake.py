"""An op enqueued in this process is claimed as soon as its transaction commits, not at the next idle poll."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import timedelta

import pytest

from connectors.base import WriteKind
from core.outbox import worker as worker_module
from tests.core.outbox.conftest import TEST_CONFIG, make_worker


async def test_a_committed_op_wakes_the_idle_worker(rig, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(worker_module, "IDLE_MIN", 3600.0)  # idle, the worker would next poll in 30-90 minutes
    await rig.synced_ticket("901")
    worker = make_worker(rig.db, rig.connections, rig.notifier, rig.clock,
                         dataclasses.replace(TEST_CONFIG, poll_seconds=3600.0))
    task = asyncio.create_task(worker.run())
    try:
        await asyncio.sleep(0.2)  # the worker found nothing and went idle
        assert rig.psa.writes == []
        await rig.tickets.comment(rig.tech, 901, "on my way", visibility="public")
        async with asyncio.timeout(60):  # far below the idle poll: only the wake-up can deliver it in time
            while not rig.psa.of(WriteKind.NOTE):  # noqa: ASYNC110 - the fake PSA has no event to wait on
                await asyncio.sleep(0.02)
        assert [w.data.get("text") for w in rig.psa.of(WriteKind.NOTE)] == ["on my way"]
    finally:
        worker.stop()
        await task
    assert rig.db._listeners.get("outbox") == []  # the stopped worker no longer listens  # noqa: SLF001


async def test_a_claim_takes_one_write_turn_and_an_idle_poll_none(rig, monkeypatch: pytest.MonkeyPatch):
    """Write turns are SQLite's one lane for every writer of the process (a technician's note waits behind
    them): an idle poll (or a wake-up whose op another claim took) reads and takes no write turn; a claim
    takes one (parking unsafe takeovers happens in the claim's own transaction)."""
    from core.outbox import queries

    if not rig.db.is_sqlite:
        pytest.skip("the read before the claim is for SQLite's single writer")
    await rig.synced_ticket("902")
    turns = 0
    take = rig.db._write_turn  # noqa: SLF001

    async def counted():  # type: ignore[no-untyped-def]
        nonlocal turns
        turns += 1
        return await take()

    monkeypatch.setattr(rig.db, "_write_turn", counted)
    worker = make_worker(rig.db, rig.connections, rig.notifier, rig.clock, TEST_CONFIG)
    assert await worker._claim(4) == []  # noqa: SLF001 - nothing due
    assert turns == 0
    await rig.tickets.comment(rig.tech, 902, "checking the printer", visibility="public")
    turns = 0
    claims = await worker._claim(4)  # noqa: SLF001
    assert [c.op.kind for c in claims] == ["add_note"]
    assert turns == 1
    assert await queries.claim(rig.db, now=rig.clock(), lease=timedelta(seconds=30)) == []  # taken: nothing due
    assert turns == 1
