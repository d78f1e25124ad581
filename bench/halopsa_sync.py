"""First and incremental sync of 20,000 HaloPSA tickets from the fake, under hosted Halo's budget (issue 16).

The fake Halo (tests/fakes/halopsa.py, in-process transport) holds N tickets and enforces hosted Halo's limit:
300 requests per rolling 5 minutes, token calls included, 429 past it. Time is the fake's clock: a request
takes no time, and the connector's request budget waits by moving that clock, so "time" below is how long a
sync takes when the budget is the only limit (Halo's own latency comes on top).

The sync is driven as core/sync/engine.py drives it: changed-ticket pages, then notes, time entries and
attachments of every ticket (8 at a time). Meanwhile an outbox writes notes through a second connector.

    ours      HaloPsaConnector as shipped: one GET Actions serves notes and time, GET Attachment only for
              tickets whose list row counts attachments; sync and outbox draw on ONE RequestBudgets
    baseline  measured in the same run: a connector that asks for notes, time and attachments separately
              (three calls per ticket), with the outbox on its own budget beside the sync's

Minimum calls: ceil(N/100) pages (Halo's page_size cap), one GET Actions per ticket (Halo lists actions only
per ticket), one GET Attachment per ticket that has files, plus authinfo, the token and the two Status
reads for closed statuses. Figures go to bench/results/halopsa_sync.json.

    .venv/bin/python bench/halopsa_sync.py [--tickets 20000] [--changed 200] [--notes 60]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))

from connectors.base import NewNote, NoteVisibility, PsaAttachment  # noqa: E402
from connectors.errors import PsaRateLimited  # noqa: E402
from connectors.halopsa.budget import RequestBudgets  # noqa: E402
from connectors.halopsa.connector import HaloPsaConnector  # noqa: E402
from connectors.tokens import InMemoryTokenCache  # noqa: E402
from tests.fakes.halopsa import FakeHalo  # noqa: E402
from tests.fakes.halopsa_http import HaloClock  # noqa: E402

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
CHILD_CONCURRENCY = 8
OVERLAP = timedelta(minutes=3)


class NaiveHalo(HaloPsaConnector):
    """The baseline: each child list is its own request (no shared GET Actions, no skipping empty files)."""

    async def _actions_of(self, tid: str, *, fresh: bool = False) -> list[dict[str, Any]]:
        return await self._fetch_actions(tid)

    async def list_attachments(self, ticket_external_id: str) -> Sequence[PsaAttachment]:
        self._attachment_counts.pop(ticket_external_id, None)
        return await super().list_attachments(ticket_external_id)


def seed(n: int, with_files: int) -> FakeHalo:
    fake = FakeHalo(clock=HaloClock(T0, step=timedelta(milliseconds=50)))
    for i in range(n):
        t = fake.add_ticket(f"Ticket {i}", client_id=12 + i % 3, user_id=501 + i % 3)
        if i % max(1, n // max(1, with_files)) == 0:
            aid = 7_000_000 + i
            fake.attachments[aid] = {"id": aid, "ticket_id": t["id"], "action_id": 0, "filename": f"{i}.png",
                                     "filesize": 3, "content_type": "image/png", "isimage": True,
                                     "showforusers": False, "third_party_id": None, "note": "", "type": 0,
                                     "unique_id": aid, "datecreated": fake.clock.now}
            fake.attachment_content[aid] = b"png"
    fake.clock.step = timedelta(0)
    return fake


class Ticks:
    """Wakes whoever waits for the fake's clock to move (the outbox waiting for its next note)."""

    def __init__(self) -> None:
        self.moved = asyncio.Event()

    def tick(self) -> None:
        self.moved.set()
        self.moved = asyncio.Event()


def budget_clock(fake: FakeHalo, ticks: Ticks) -> RequestBudgets:
    """A request budget on the fake's clock: waiting moves the clock (one budget = waits never overlap)."""
    async def sleep(seconds: float) -> None:
        fake.clock.advance(seconds)
        ticks.tick()
        await asyncio.sleep(0)

    return RequestBudgets(clock=fake.clock.epoch, sleep=sleep)


async def sync(conn: HaloPsaConnector, since: datetime | None, fake: FakeHalo) -> dict[str, Any]:
    """One sync run as the engine does it (a 429 waits Retry-After and tries again, as SyncEngine.call does);
    returns what it read, the watermark and how often it was throttled."""
    gate = asyncio.Semaphore(CHILD_CONCURRENCY)
    seen, watermark, cursor, throttled = 0, since, None, 0

    async def call(fn: Any, *args: Any) -> Any:
        nonlocal throttled
        while True:
            try:
                return await fn(*args)
            except PsaRateLimited as exc:
                throttled += 1
                fake.clock.advance(min(exc.retry_after or 60.0, 60.0))

    async def children(ext: str) -> None:
        async with gate:
            await asyncio.gather(call(conn.list_notes, ext), call(conn.list_time_entries, ext),
                                 call(conn.list_attachments, ext))

    while True:
        page = await call(conn.list_changed_tickets, since - OVERLAP if since else None, cursor)
        seen += len(page.items)
        await asyncio.gather(*(children(t.external_id) for t in page.items if since is None or
                               (t.updated_at is not None and t.updated_at > since)))
        for t in page.items:
            if t.updated_at and (watermark is None or t.updated_at > watermark):
                watermark = t.updated_at
        cursor = page.next_cursor
        if cursor is None:
            return {"tickets_listed": seen, "watermark": watermark, "throttled": throttled}


async def outbox(conn: HaloPsaConnector, ticket_ids: list[int], notes: int, every: float, fake: FakeHalo,
                 sync_done: asyncio.Event, ticks: Ticks) -> dict[str, int]:
    """Write `notes` internal notes, one per `every` seconds of the fake's clock; count throttling errors."""
    written = throttled = 0
    for i in range(notes):
        target = T0 + timedelta(hours=1) + timedelta(seconds=every * i)
        while fake.clock.now < target:
            if sync_done.is_set():
                fake.clock.set(target)
                break
            moved = ticks.moved
            await asyncio.wait([asyncio.ensure_future(moved.wait()), asyncio.ensure_future(sync_done.wait())],
                               return_when=asyncio.FIRST_COMPLETED)
        try:
            await conn.add_note(NewNote(ticket_external_id=str(ticket_ids[i % len(ticket_ids)]),
                                        text=f"outbox note {i}", visibility=NoteVisibility.INTERNAL, marker=f"m{i}"))
            written += 1
        except PsaRateLimited:
            throttled += 1
    return {"written": written, "throttled": throttled}


async def run(variant: str, n: int, changed: int, notes: int, with_files: int) -> dict[str, Any]:
    fake = seed(n, with_files)
    fake.rate_limit = (300, 300.0)  # hosted Halo: 300 requests per rolling 5 minutes, 429 past it
    fake.clock.set(T0 + timedelta(hours=1))
    cls = HaloPsaConnector if variant == "ours" else NaiveHalo
    tokens = InMemoryTokenCache(clock=fake.clock.epoch)
    ticks = Ticks()
    shared = budget_clock(fake, ticks)
    sync_conn = cls(fake.config(), transport=fake.transport(), clock=fake.clock.epoch, token_cache=tokens,
                    budgets=shared)
    out_conn = HaloPsaConnector(fake.config(internal_outcome_id=7), transport=fake.transport(),
                                clock=fake.clock.epoch, token_cache=tokens,
                                budgets=shared if variant == "ours" else budget_clock(fake, ticks))
    ids = sorted(fake.tickets)
    fake.reset_counts()
    wall, start = time.perf_counter(), fake.clock.now
    done = asyncio.Event()

    async def first_sync() -> dict[str, Any]:
        try:
            return await sync(sync_conn, None, fake)
        finally:
            done.set()

    first, writes = await asyncio.gather(first_sync(), outbox(out_conn, ids, notes, 30.0, fake, done, ticks))
    first_calls = dict(fake.counts)
    first_seconds = (fake.clock.now - start).total_seconds()
    first_429 = sum(1 for r in fake.requests if r.status == 429)
    first_wall = time.perf_counter() - wall
    # ten minutes later, `changed` tickets changed in Halo (a fifth of them with an end-user reply)
    fake.clock.advance(600)
    fake.clock.step = timedelta(milliseconds=10)
    for i, tid in enumerate(ids[3::97][:changed]):  # spread over the tenant, about 1 in 20 with files
        fake.edit_ticket(tid, summary=f"changed {i}")
        if i % 5 == 0:
            fake.add_reply(tid, f"reply {i}")
    fake.clock.step = timedelta(0)
    fake.reset_counts()
    start = fake.clock.now
    second = await sync(sync_conn, first["watermark"], fake)
    inc_calls = dict(fake.counts)
    inc_seconds = (fake.clock.now - start).total_seconds()
    inc_429 = sum(1 for r in fake.requests if r.status == 429)
    for c in (sync_conn, out_conn):
        await c.aclose()
    files = sum(1 for a in fake.attachments.values() if a["ticket_id"] in fake.tickets)
    return {"first": {"tickets": first["tickets_listed"], "api_calls": sum(first_calls.values()),
                      "by_route": first_calls, "minutes_under_budget": round(first_seconds / 60, 1),
                      "responses_429": first_429, "sync_reads_throttled": first["throttled"],
                      "wall_seconds": round(first_wall, 1),
                      "minimum_calls": math.ceil(n / 100) + n + files + 4},
            "incremental": {"tickets_listed": second["tickets_listed"], "changed": changed,
                            "api_calls": sum(inc_calls.values()), "by_route": inc_calls,
                            "seconds_under_budget": round(inc_seconds, 1), "responses_429": inc_429,
                            "sync_reads_throttled": second["throttled"]},
            "outbox": writes}


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tickets", type=int, default=20_000)
    ap.add_argument("--changed", type=int, default=200)
    ap.add_argument("--notes", type=int, default=60)
    ap.add_argument("--with-files", type=int, default=1_000)
    args = ap.parse_args()
    ours = await run("ours", args.tickets, args.changed, args.notes, args.with_files)
    base = await run("baseline", args.tickets, args.changed, args.notes, args.with_files)
    result = {
        "tickets": args.tickets, "budget": "300 requests per rolling 300 s (hosted Halo), token calls included",
        "ours": ours, "baseline": base,
        "first_sync_calls_vs_minimum": round(ours["first"]["api_calls"] / ours["first"]["minimum_calls"], 3),
        "first_sync_calls_vs_baseline": round(ours["first"]["api_calls"] / base["first"]["api_calls"], 3),
        "first_sync_time_vs_baseline": round(ours["first"]["minutes_under_budget"]
                                             / base["first"]["minutes_under_budget"], 3),
        "note": ("first-sync tickets listed exceed N by the tickets the outbox wrote to meanwhile (a change moves a "
                 "ticket to the end of the keyset scan, so it is read again, never skipped); time is the fake's clock: requests take no time and the budget's waits move the clock, so it is "
                 "the time the 300-per-5-minutes budget alone imposes; the outbox writes one note every 30 s of "
                 "that clock during the first sync"),
    }
    out = ROOT / "bench" / "results" / "halopsa_sync.json"
    out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k not in ("ours", "baseline")}, indent=2))
    print(json.dumps({"ours": {k: {kk: vv for kk, vv in v.items() if kk != "by_route"} for k, v in ours.items()},
                      "baseline": {k: {kk: vv for kk, vv in v.items() if kk != "by_route"}
                                   for k, v in base.items()}}, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
