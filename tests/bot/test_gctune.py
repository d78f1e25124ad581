"""The server's GC settings (bot/gctune.py): start-up objects are frozen, young collections are rarer."""

from __future__ import annotations

import gc

from bot import gctune


def test_settle_freezes_survivors_and_raises_the_young_threshold(monkeypatch) -> None:
    # An app started earlier in this process may have switched the thresholds to their quiet-time values
    # (`collect_when_quiet`, a process-wide setting): start from the plain server's.
    monkeypatch.setattr(gctune, "_active", gctune.THRESHOLDS)
    before = gc.get_threshold()
    try:
        survivor = [object() for _ in range(1000)]  # alive across the call: must end up frozen
        frozen = gctune.settle()
        assert frozen >= len(survivor)
        assert gc.get_freeze_count() == frozen
        assert gc.get_threshold() == gctune.THRESHOLDS
        assert gc.get_threshold()[0] > 700  # above CPython's default
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)


def test_with_a_quiet_time_collector_the_older_generations_wait_for_it(monkeypatch) -> None:
    monkeypatch.setattr(gctune, "_active", gctune.THRESHOLDS)
    before = gc.get_threshold()
    try:
        gctune.collect_when_quiet()
        assert gc.get_threshold() == gctune.QUIET_THRESHOLDS
        gctune.settle()  # a later settle keeps the quiet-time thresholds
        assert gc.get_threshold() == gctune.QUIET_THRESHOLDS
        assert gctune.QUIET_THRESHOLDS[1] > gctune.THRESHOLDS[1]
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)


async def test_after_first_settles_once_after_the_first_run_only() -> None:
    before = gc.get_threshold()
    runs: list[int] = []

    async def sync() -> int:
        runs.append(gc.get_freeze_count())
        return len(runs)

    try:
        gc.unfreeze()
        job = gctune.after_first(sync)
        assert await job() == 1
        frozen = gc.get_freeze_count()
        assert runs == [0] and frozen > 0  # settled after (not before) the first run
        gc.unfreeze()
        assert await job() == 2
        assert gc.get_freeze_count() == 0  # the second run does not settle again
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)


def test_sync_jobs_of_a_server_settle_after_their_first_run(tmp_path) -> None:
    from datetime import timedelta
    from types import SimpleNamespace

    from apscheduler.schedulers.asyncio import AsyncIOScheduler

    from bot import jobs

    class Sync:
        async def run(self, cid: int) -> str:
            return f"synced {cid}"

        async def refresh_picklists(self, cid: int) -> None: ...

        async def reconcile(self, cid: int) -> None: ...

    settings = SimpleNamespace(sync_interval_seconds=60, picklist_interval_seconds=600,
                               reconcile_interval_seconds=3600)
    for settle_gc, wrapped in ((True, True), (False, False)):
        sched = AsyncIOScheduler()
        container = SimpleNamespace(settings=settings, sync=Sync(), settle_gc=settle_gc)
        jobs.add_sync_jobs(sched, container, 7, every=timedelta(seconds=60))  # type: ignore[arg-type]
        body = sched.get_job("sync:7").func
        # claimed() closes over the body: find whether it is gctune's wrapper
        inner = [c.cell_contents for c in body.__closure__ or () if callable(c.cell_contents)]
        assert any(getattr(f, "__qualname__", "").startswith("after_first") for f in inner) is wrapped
