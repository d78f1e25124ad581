"""Event claims in batches (issue 20 item 4): one write per intent across concurrent duplicates, retries in
another process and restarts, in fewer write transactions than claims."""

from __future__ import annotations

import asyncio

import pytest
import sqlalchemy as sa

from core import scheduling
from core.scheduling import EventClaims, mark_event_processed
from store.db import Database, Scope
from store.tables import ProcessedEvent


async def _rows(db: Database) -> int:
    async with db.read(Scope.system_wide()) as s:
        return int((await s.execute(sa.select(sa.func.count()).select_from(ProcessedEvent))).scalar_one())


async def test_a_burst_of_claims_with_duplicates_wins_once_per_event_in_few_transactions(db: Database):
    claims = EventClaims(db)
    ids = [f"ev{i % 30}" for i in range(60)]  # 30 events, each delivered twice, all at once
    got = await asyncio.gather(*(claims.claim("slack:T1", e) for e in ids))
    won = [e for e, ok in zip(ids, got, strict=True) if ok]
    assert sorted(won) == sorted({*ids}) and len(won) == 30
    assert await _rows(db) == 30
    assert claims.transactions < 10  # 60 claims: one lone transaction, then the rest together


async def test_a_claim_is_committed_before_it_returns_so_retries_elsewhere_and_after_a_restart_lose(
        db: Database, db_url: str):
    claims = EventClaims(db)
    assert await claims.claim("slack-action:T1", "1.2:trig") is True
    other = Database(db_url)  # another process (or this one after a restart): nothing shared in memory
    try:
        assert await EventClaims(other).claim("slack-action:T1", "1.2:trig") is False
        assert await mark_event_processed(other, "slack-action:T1", "1.2:trig") is False
        assert await EventClaims(other).claim("slack-action:T1", "1.3:trig") is True
    finally:
        await other.dispose()
    assert await claims.claim("slack-action:T1", "1.3:trig") is False  # and back: the other one's row counts
    assert await claims.claim("slack-action:T2", "1.2:trig") is True  # the source is part of the key


async def test_sources_and_long_ids_are_cut_like_mark_event_processed(db: Database):
    claims = EventClaims(db)
    long_id = "x" * 300
    assert await claims.claim("s" * 80, long_id) is True
    assert await mark_event_processed(db, "s" * 80, long_id) is False


async def test_a_failed_batch_fails_every_claim_in_it_and_claims_nothing(db: Database, monkeypatch: pytest.MonkeyPatch):
    claims = EventClaims(db)
    real = claims._write
    calls = 0

    async def broken(rows):
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("database is locked")
        return await real(rows)

    monkeypatch.setattr(claims, "_write", broken)
    results = await asyncio.gather(claims.claim("s", "a"), return_exceptions=True)
    assert isinstance(results[0], RuntimeError)
    assert await _rows(db) == 0
    assert await claims.claim("s", "a") is True  # the retry of a failed claim is taken (it was never written)


async def test_claims_begun_at_the_ack_are_written_together_and_each_work_wins_once(db: Database):
    claims = EventClaims(db)
    ids = [f"{i}.1:trig{i}" for i in range(40)] + ["3.1:trig3"]  # a burst of 40 clicks and one Slack retry
    for e in ids:  # the acks: nothing awaits the claims yet
        claims.begin("slack-action:T1", e)
    await asyncio.sleep(0)
    assert claims.transactions == 0  # waiting for the rest of the burst, not one transaction per ack
    got = [await claims.claim("slack-action:T1", e) for e in ids]  # the work, one job after another
    assert got == [True] * 40 + [False]  # the retry's work finds the click already claimed
    assert claims.transactions <= 2  # without begin, claims awaited one after another: one transaction each
    assert await _rows(db) == 40
    assert not claims._ahead  # every begun claim was taken by its work
    assert await claims.claim("slack-action:T1", "0.1:trig0") is False  # a later retry loses too


async def test_a_begun_claim_nobody_takes_is_still_written_and_a_later_claim_loses(db: Database):
    claims = EventClaims(db)
    claims.begin("slack-action:T1", "9.9:trig")
    await asyncio.sleep(0.2)  # its work never ran (e.g. a shutdown): the claim went out after the window
    assert claims.transactions == 1 and await _rows(db) == 1
    claims._ahead.clear()
    assert await claims.claim("slack-action:T1", "9.9:trig") is False


async def test_an_awaited_claim_does_not_wait_for_the_window(db: Database, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(scheduling, "AHEAD_WINDOW_S", 30.0)
    claims = EventClaims(db)
    claims.begin("slack-action:T1", "1.1:a")
    await asyncio.sleep(0)  # the batch is waiting for more of its burst
    # the window is for claims nobody awaits yet: the work's own claim is written at once
    assert await asyncio.wait_for(claims.claim("slack-action:T1", "1.1:a"), 10) is True


async def test_a_batch_returns_exactly_the_new_claims_whatever_its_size(db: Database):
    """The batch statement is built once and run with the rows as parameters (insertmanyvalues): batches of
    every size, some rows already claimed (by a lone claim, by an earlier batch), say exactly which are new."""
    claims = EventClaims(db)
    assert await mark_event_processed(db, "slack:T1", "old-1") is True
    taken = {("slack:T1", "old-1")}
    for size in (1, 7, 200, 450):  # 450: more rows than one statement of CLAIMS_PER_STATEMENT holds
        rows: dict[tuple[str, str], int | None] = {("slack:T1", f"{size}-{i}"): None for i in range(size)}
        rows |= dict.fromkeys(taken, None)  # already claimed: never returned again
        won = await claims._write(rows)
        assert won == set(rows) - taken
        taken |= won
    assert await _rows(db) == len(taken)


async def test_batches_of_different_sizes_reuse_one_compiled_statement(db: Database):
    """A claim batch used to carry its rows in the statement: every new batch size was a new statement to
    compile (~9 ms of CPU for 50 claims). Now every batch runs the same compiled INSERT."""
    claims = EventClaims(db)
    await claims._write({("s", "warm-1"): None, ("s", "warm-2"): None})  # the first batch compiles it
    misses: list[str] = []

    def seen(conn, cursor, statement, parameters, context, executemany):
        if "processed_event" in statement and context.cache_hit != context.cache_hit.__class__.CACHE_HIT:
            misses.append(str(context.cache_hit))

    engine = db.engine.sync_engine
    sa.event.listen(engine, "before_cursor_execute", seen)
    try:
        for size in (3, 17, 40, 41, 99):
            won = await claims._write({("s", f"{size}-{i}"): None for i in range(size)})
            assert len(won) == size
    finally:
        sa.event.remove(engine, "before_cursor_execute", seen)
    assert misses == []
