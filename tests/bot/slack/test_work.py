"""The bounded pool that runs Slack work after the ack (bot/slack/work.py)."""

from __future__ import annotations

import asyncio
import logging

from bot.slack.work import AfterAck


async def test_at_most_workers_jobs_run_at_once_and_all_finish():
    work = AfterAck(workers=3, quiet_s=0.001)
    running, peak, done = 0, 0, []

    async def job(i: int) -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.005)
        running -= 1
        done.append(i)

    for i in range(20):
        assert work.submit(lambda i=i: job(i))
    await work.drain()
    assert peak == 3 and sorted(done) == list(range(20))
    await work.close()


async def test_a_failing_job_is_logged_and_the_worker_goes_on(caplog):
    work = AfterAck(workers=1, quiet_s=0.001)
    done = []

    async def boom() -> None:
        raise RuntimeError("psa down")

    async def ok() -> None:
        done.append(1)

    with caplog.at_level(logging.ERROR, logger="deskbridge.slack"):
        work.submit(boom)
        work.submit(ok)
        await work.drain()
    assert done == [1] and "work after the ack failed" in caplog.text
    await work.close()


async def test_jobs_wait_while_acks_are_in_progress_but_not_beyond_max_defer():
    # The queue's clock moves only when the test moves it (a real one made the max_defer_s window a race on a
    # loaded machine); the worker still polls on real sleeps of quiet_s.
    now = [100.0]
    work = AfterAck(workers=1, quiet_s=0.002, max_defer_s=0.2, clock=lambda: now[0])
    started = asyncio.Event()

    async def job() -> None:
        started.set()

    with work.acking():
        work.submit(job)
        await asyncio.sleep(0.05)
        assert not started.is_set()  # an ack is in progress: the job waits
    await asyncio.sleep(0.05)
    assert not started.is_set()  # the last ack was less than quiet_s ago: still a burst
    now[0] += 0.01
    await asyncio.wait_for(started.wait(), 30)  # a quiet moment: it runs

    started.clear()
    with work.acking():  # steady traffic never ends: the job still runs after max_defer_s
        work.submit(job)
        await asyncio.sleep(0.05)
        now[0] += 0.15
        await asyncio.sleep(0.05)
        assert not started.is_set()  # within max_defer_s it waits for the acks
        now[0] += 0.1
        await asyncio.wait_for(started.wait(), 30)  # past it, it runs although acks go on
    await work.close()


async def test_a_full_backlog_refuses_new_work_instead_of_growing():
    work = AfterAck(workers=1, max_backlog=2, quiet_s=0.001)
    gate = asyncio.Event()

    async def blocked() -> None:
        await gate.wait()

    results = [work.submit(blocked) for _ in range(4)]  # no await in between: the worker has taken none yet
    assert results == [True, True, False, False] and work.refused == 2
    gate.set()
    await work.drain()
    await work.close()


async def test_the_door_sheds_load_before_the_queue_is_full():
    """Requests already being parsed when the door closes still find room for their work."""
    from bot.slack.work import AfterAck

    work = AfterAck(workers=0, max_backlog=10)  # nothing drains it; headroom is capped at half the queue
    assert not work.full and not work.nearly_full
    for _ in range(5):
        assert work.submit(asyncio.sleep)
    assert work.nearly_full and not work.full  # the door is shut with 5 slots left
    for _ in range(5):
        assert work.submit(asyncio.sleep)
    assert work.full and not work.submit(asyncio.sleep) and work.refused == 1


async def test_jobs_holding_a_trigger_run_before_jobs_that_can_wait():
    """Deadlines first: 100 slash-command answers queued ahead of 100 modal opens no longer make the
    modals wait for them (Slack refuses a trigger id 3 s after the click)."""
    work = AfterAck(workers=2, quiet_s=0.0005)
    order: list[str] = []
    gate = asyncio.Event()

    async def job(name: str) -> None:
        if name == "blocker":
            await gate.wait()
        order.append(name)

    work.submit(lambda: job("blocker"))
    work.submit(lambda: job("blocker"))
    await asyncio.sleep(0.01)  # both workers are busy
    for i in range(100):
        work.submit(lambda i=i: job(f"post{i}"))
        work.submit(lambda i=i: job(f"modal{i}"), urgent=True)
    gate.set()
    await work.drain()
    await work.close()
    done = [n for n in order if n != "blocker"]
    assert done[:100] == [f"modal{i}" for i in range(100)]  # every modal first, in arrival order
    assert done[100:] == [f"post{i}" for i in range(100)]


def test_which_requests_will_open_a_modal():
    from bot.slack import urgency

    def action(name: str, **extra: object) -> dict[str, object]:
        return {"trigger_id": "t.1", "actions": [{"action_id": f"db_{name}"}], **extra}

    assert urgency.command_opens_modal({"command": "/ticket", "text": "new printer jammed", "trigger_id": "t"})
    assert not urgency.command_opens_modal({"command": "/tickets", "text": "mine", "trigger_id": "t"})
    assert not urgency.command_opens_modal({"command": "/tickets", "text": "stage:bogus", "trigger_id": "t"})
    assert all(urgency.action_opens_modal(action(n)) for n in ("reply", "note", "status", "time"))
    assert not urgency.action_opens_modal(action("assign_me"))
    assert urgency.action_opens_modal(action("assign_me", view={"type": "modal"}))  # answered inside the modal
    assert not urgency.action_opens_modal({"actions": [{"action_id": "db_reply"}]})  # no trigger, nothing to open
