"""Tickets deleted in Autotask leave the local copy within one sync, read from `DeletedTicketLogs` since the
log's own watermark (query endpoint, `deletedDateTime` filter, paging by id), instead of listing every id."""

from __future__ import annotations

import json

from core.notify import TicketChanged
from core.sync import runs
from core.sync.deletions import DELETIONS
from core.sync.runs import RunStatus
from tests.connectors.autotask.test_sync import AtEnv, env, seed  # noqa: F401 - the `env` fixture

__all__ = ["env"]


def _log_queries(env: AtEnv) -> list[dict]:  # type: ignore[type-arg]
    return [json.loads(r.body) for r in env.fake.requests if (r.method, r.route) == ("POST", "/DeletedTicketLogs/query")]


async def test_deleted_tickets_leave_within_one_incremental_sync(env: AtEnv) -> None:  # noqa: F811
    ids = seed(env.fake, 6)
    assert (await env.sync.run(env.connection_id)).ok
    env.fake.clock.advance(600)
    env.fake.delete_ticket(ids[1])
    env.fake.delete_ticket(ids[4])
    env.fake.reset_counts()
    env.notifier.events.clear()
    outcome = await env.sync.run(env.connection_id)
    assert outcome.status == RunStatus.OK, outcome.error
    assert outcome.counts["deleted"] == 2
    tickets = await env.tickets()
    assert {e for e, t in tickets.items() if t.deleted_at is not None} == {str(ids[1]), str(ids[4])}
    assert env.fake.count("POST /DeletedTicketLogs/query") == 1
    assert env.fake.count("POST /Tickets/query") == 1  # the changed-ticket scan only: no id listing
    gone = [e for e in env.notifier.events if isinstance(e, TicketChanged) and "deleted" in e.changes]
    assert sorted(e.ticket_id for e in gone) == sorted(tickets[str(i)].id for i in (ids[1], ids[4]))
    [query] = _log_queries(env)
    [cond] = [c for c in query["filter"] if c.get("field") == "deletedDateTime"]
    assert cond["op"] == "gte" and "id" in query["IncludeFields"]

    # The log's watermark moved to the newest deletion: the next run asks from there (less the overlap) and
    # marks nothing again.
    watermark = runs.parse_cursor(await runs.get_cursor(env.db, env.workspace_id, env.connection_id, DELETIONS))
    deleted_at = max(r["deletedDateTime"] for r in env.fake.tables["DeletedTicketLogs"].values())
    assert watermark is not None and watermark.isoformat().startswith(deleted_at.rstrip("Z")[:19])
    env.fake.reset_counts()
    again = await env.sync.run(env.connection_id)
    assert again.ok and again.counts.get("deleted", 0) == 0
    assert env.fake.count("POST /DeletedTicketLogs/query") == 1


async def test_a_long_deletion_log_is_read_page_by_page(env: AtEnv) -> None:  # noqa: F811
    ids = seed(env.fake, 24)
    assert (await env.sync.run(env.connection_id)).ok
    for i in ids[:23]:
        env.fake.delete_ticket(i)
    env.fake.reset_counts()
    outcome = await env.sync.run(env.connection_id)
    assert outcome.ok and outcome.counts["deleted"] == 23
    assert env.fake.count("POST /DeletedTicketLogs/query") == 3  # 10 a page here (500 in production)
    pages = _log_queries(env)
    after = [[c["value"] for c in q["filter"] if c.get("field") == "id"] for q in pages]
    assert [len(a) for a in after] == [1, 1, 1] and after[0][0] < after[1][0] < after[2][0]  # id > last seen
    assert all(any(c.get("field") == "deletedDateTime" for c in q["filter"]) for q in pages)  # same filter each
    assert [t.external_id for t in (await env.tickets()).values() if t.deleted_at is None] == [str(ids[23])]


async def test_an_unreadable_log_makes_the_run_partial_and_the_next_run_catches_up(env: AtEnv) -> None:  # noqa: F811
    ids = seed(env.fake, 4)
    assert (await env.sync.run(env.connection_id)).ok
    env.fake.delete_ticket(ids[0])
    env.fake.edit_ticket(ids[2], title="Renamed meanwhile")
    env.fake.deny("POST /DeletedTicketLogs")  # the API user's security level lacks the log
    outcome = await env.sync.run(env.connection_id)
    assert outcome.status == RunStatus.PARTIAL and "deleted tickets could not be read" in (outcome.error or "")
    tickets = await env.tickets()
    assert tickets[str(ids[2])].subject == "Renamed meanwhile"  # the tickets themselves still landed
    assert tickets[str(ids[0])].deleted_at is None
    env.fake.clear_faults()
    outcome = await env.sync.run(env.connection_id)
    assert outcome.ok and outcome.counts["deleted"] == 1
    assert (await env.tickets())[str(ids[0])].deleted_at is not None
