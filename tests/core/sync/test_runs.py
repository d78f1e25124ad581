"""RecordedRun (core/sync/runs.py): the one way a sync run opens and closes its SyncRun row."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from sqlmodel import select

from core.sync.runs import RecordedRun, RunKind, RunStatus
from store.db import Database, Scope
from store.tables import SyncRun
from store.types import utcnow
from tests.core.sync.conftest import make_env
from tests.factories import psa_backed
from tests.fakes.connectwise import FakeConnectWise


async def _row(db: Database, ws: int, run_id: int) -> SyncRun:
    async with db.read(Scope.workspace(ws)) as s:
        return (await s.exec(select(SyncRun).where(SyncRun.id == run_id))).one()


async def _recorded(db: Database, ws: int, *, cursor_before: str | None = None,
                    counts: dict[str, int] | None = None) -> RecordedRun:
    setup = await psa_backed(db, ws)
    return RecordedRun(db, ws, setup.connection_id, RunKind.INCREMENTAL, clock=utcnow, cursor_before=cursor_before,
                       counts=counts)


async def test_a_run_is_running_inside_the_block_and_finished_with_its_counts(db, workspace_id):
    run = await _recorded(db, workspace_id, cursor_before="c1", counts={"pages": 0})
    async with run:
        row = await _row(db, workspace_id, run.id)
        assert (row.status, row.finished_at, row.cursor_before) == (RunStatus.RUNNING, None, "c1")
        assert row.started_at is not None and run.started_at is not None
        run.counts["pages"] = 3
        outcome = await run.finish(RunStatus.PARTIAL, error="7: bad date", cursor_after="c2")
    row = await _row(db, workspace_id, run.id)
    assert (row.status, row.counts, row.cursor_after, row.error) == ("partial", {"pages": 3}, "c2", "7: bad date")
    assert row.finished_at is not None
    assert (outcome.status, outcome.run_id, outcome.counts, outcome.error, outcome.cursor_after, outcome.ok) == (
        "partial", run.id, {"pages": 3}, "7: bad date", "c2", True)


async def test_an_absorbed_failure_is_recorded_and_returned_not_raised(db, workspace_id):
    run = await _recorded(db, workspace_id, cursor_before="c1")
    async with run:
        run.counts["api_calls"] = 2
        try:
            raise ValueError("PSA said no")
        except ValueError as exc:
            outcome = await run.fail(exc)
    row = await _row(db, workspace_id, run.id)
    assert (row.status, row.error, row.cursor_after, row.counts) == (
        "failed", "ValueError: PSA said no", "c1", {"api_calls": 2})  # the cursor stays where it was
    assert (outcome.status, outcome.error, outcome.cursor_after, outcome.ok) == ("failed", "PSA said no", "c1", False)


async def test_an_exception_leaving_the_block_is_recorded_and_raised(db, workspace_id):
    run = await _recorded(db, workspace_id, cursor_before="c1")
    with pytest.raises(KeyError):
        async with run:
            raise KeyError("ticket")
    row = await _row(db, workspace_id, run.id)
    assert (row.status, row.error, row.cursor_after) == ("failed", "KeyError: 'ticket'", "c1")
    assert row.finished_at is not None


async def test_a_closed_run_is_not_rewritten_by_a_later_exception(db, workspace_id):
    run = await _recorded(db, workspace_id)
    with pytest.raises(OSError):
        async with run:
            await run.finish(RunStatus.OK)
            raise OSError("closing the connector failed")
    row = await _row(db, workspace_id, run.id)
    assert (row.status, row.error) == ("ok", None)


async def test_a_failure_closed_by_the_caller_keeps_its_own_wording(db, workspace_id):
    run = await _recorded(db, workspace_id, cursor_before="c1")
    with pytest.raises(RuntimeError):
        async with run:
            exc = RuntimeError("the credentials cannot be decrypted")
            await run.finish(RunStatus.FAILED, error=str(exc))
            raise exc
    row = await _row(db, workspace_id, run.id)
    assert (row.status, row.error, row.cursor_after) == ("failed", "the credentials cannot be decrypted", None)


async def test_a_cancelled_run_is_recorded_as_failed_and_stays_cancelled(db, workspace_id):
    run = await _recorded(db, workspace_id, cursor_before="c1")
    inside = asyncio.Event()

    async def body() -> None:
        async with run:
            inside.set()
            await asyncio.Event().wait()

    task = asyncio.create_task(body())
    await inside.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    row = await _row(db, workspace_id, run.id)
    assert (row.status, row.cursor_after) == ("failed", "c1") and row.error.startswith("CancelledError")


async def test_a_block_that_forgets_to_close_the_run_fails_loudly(db, workspace_id):
    run = await _recorded(db, workspace_id)
    with pytest.raises(RuntimeError, match="without finish"):
        async with run:
            pass
    assert (await _row(db, workspace_id, run.id)).status == "failed"


class _Gate(httpx.AsyncBaseTransport):
    """The fake PSA's transport, until `hang` is set: then every request waits forever."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner, self.hang, self.entered = inner, False, asyncio.Event()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.hang:
            self.entered.set()
            await asyncio.Event().wait()
        return await self.inner.handle_async_request(request)


@pytest.mark.parametrize("kind", ["incremental", "picklists", "reconcile", "webhook"])
async def test_every_kind_of_run_closes_its_row_when_cancelled(db, workspace_id, kind):
    fake = FakeConnectWise()
    gate = _Gate(fake.transport())
    env = await make_env(db, workspace_id, fake, transport=gate)
    fake.add_ticket("one")
    gate.hang = True
    call = {"incremental": lambda: env.engine.run(env.connection_id),
            "picklists": lambda: env.sync.refresh_picklists(env.connection_id),
            "reconcile": lambda: env.sync.reconcile(env.connection_id),
            "webhook": lambda: env.sync.refresh_ticket(env.connection_id, "1")}[kind]
    task = asyncio.create_task(call())
    await asyncio.wait_for(gate.entered.wait(), 30)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    async with db.read(Scope.workspace(workspace_id)) as s:
        rows = (await s.exec(select(SyncRun).where(SyncRun.connection_id == env.connection_id))).all()
    assert [(r.kind, r.status) for r in rows] == [("full" if kind == "incremental" else kind, "failed")]
    assert all((r.error or "").startswith("CancelledError") and r.finished_at for r in rows)
