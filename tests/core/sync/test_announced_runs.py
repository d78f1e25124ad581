"""A scheduled run that finds many changed tickets announces them in groups, oldest change first: the first
notes reach the notifier before the later tickets' children are even read (issue 20, no-callback freshness).
Fake ConnectWise over real HTTP on loopback."""

from __future__ import annotations

from core.notify import NoteAdded
from core.sync.engine import EMIT_CHUNK
from tests.core.sync.conftest import SyncEnv
from tests.core.sync.test_callback_refresh import loop_env  # noqa: F401 - the fixture
from tests.core.sync.test_engine import seed


class NoteReadsAtNotify:
    """Records, for each NoteAdded, how many note lists the PSA had served when it was announced."""

    def __init__(self, env: SyncEnv) -> None:
        self.env, self.seen = env, []  # type: ignore[var-annotated]

    async def notify(self, event) -> None:  # type: ignore[no-untyped-def]
        if isinstance(event, NoteAdded):
            self.seen.append((event.body, self.env.fake.count("GET /service/tickets/{id}/notes")))


async def test_a_scheduled_run_announces_changed_tickets_in_groups_oldest_change_first(loop_env: SyncEnv):  # noqa: F811
    env = loop_env
    n = 2 * EMIT_CHUNK + 5
    ids = seed(env.fake, n)
    assert (await env.sync.run(env.connection_id)).ok  # the first import: silent
    order = list(reversed(ids))  # changed newest-id first, so change order differs from id order
    for i, tid in enumerate(order):
        env.fake.clock.advance(1)
        env.fake.add_note(tid, f"reply {i}", contact_id=min(env.fake.contacts))
    env.fake.reset_counts()
    probe = NoteReadsAtNotify(env)
    env.engine.notifier = probe
    outcome = await env.sync.run(env.connection_id)
    assert outcome.ok and outcome.counts["updated"] == n
    # Every 4th seeded ticket is resolved: its history was never read, so its notes are its past (no
    # announcement, no note read: core/sync/history.py). The rest are announced oldest change first.
    is_open = {tid: ids.index(tid) % 4 != 3 for tid in ids}
    announced = [i for i, tid in enumerate(order) if is_open[tid]]
    assert [body for body, _ in probe.seen] == [f"reply {i}" for i in announced]

    def reads_by_end_of_group(k: int) -> int:
        return sum(1 for tid in order[: (k + 1) * EMIT_CHUNK] if is_open[tid])

    # Each group was announced once its own note lists were read, before the next group's were.
    for (body, reads), i in zip(probe.seen, announced, strict=True):
        assert reads == reads_by_end_of_group(i // EMIT_CHUNK), body
    assert probe.seen[0][1] < len(announced)
