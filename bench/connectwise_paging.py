"""Listing 50,000 changed ConnectWise tickets over loopback HTTP (issue 3).

Serves the fake ConnectWise server (tests/fakes/connectwise.py) on 127.0.0.1 with N changed tickets and
lists them all through ConnectWiseConnector.list_changed_tickets (pageSize=1000, keyset cursor). Reports
the API calls made (target: ceil(N/1000) list pages plus the companyinfo lookup) and tickets/s parsed into
canonical PsaTicket models, against a baseline fetching the SAME pages (the exact query strings the
connector sent) with plain httpx + json + dict access, measured in the same run (best of --rounds,
alternating). Figures go to bench/results/connectwise_paging.json.

    .venv/bin/python bench/connectwise_paging.py [--tickets 50000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
# bench/queue.py shadows the stdlib `queue`; keep bench/ off the path so imports find the real one.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))

from connectors.connectwise import mapping  # noqa: E402
from connectors.connectwise.connector import ConnectWiseConnector  # noqa: E402
from tests.fakes.connectwise import FakeClock, FakeConnectWise  # noqa: E402


async def via_connector(fake: FakeConnectWise, root: str, since: Any) -> tuple[int, float, int]:
    """(tickets, seconds, list pages) through the connector."""
    connector = ConnectWiseConnector(fake.config(root))
    fake.reset_counts()
    fake.list_cache.clear()  # both sides pay the fake's filtering
    start = time.perf_counter()
    count, cursor = 0, None
    while True:
        page = await connector.list_changed_tickets(since, cursor)
        count += sum(1 for t in page.items if t.updated_at is not None)
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    elapsed = time.perf_counter() - start
    await connector.aclose()
    return count, elapsed, fake.count("GET /service/tickets")


async def via_plain_httpx(fake: FakeConnectWise, root: str, queries: list[dict[str, str]]) -> tuple[int, float]:
    """The same pages with httpx + json + dict access (no models, no error translation)."""
    auth = (f"{fake.company_id}+{fake.public_key}", fake.private_key)
    headers = {"clientId": fake.client_id, "Accept": "application/vnd.connectwise.com+json; version=2020.4"}
    fake.list_cache.clear()
    start = time.perf_counter()
    count = 0
    async with httpx.AsyncClient(base_url=root, auth=auth, headers=headers) as client:
        for q in queries:
            resp = await client.get(f"/{fake.codebase}apis/3.0/service/tickets", params=q)
            for row in json.loads(resp.content):
                if row["_info"]["lastUpdated"] and row["id"] and row["summary"] is not None and row["status"]["name"]:
                    count += 1
    return count, time.perf_counter() - start


def parse_only(bodies: list[bytes]) -> tuple[float, float]:
    """CPU seconds to turn the same page bodies into models vs into checked dict fields."""
    t = time.perf_counter()
    models = [mapping.ticket(row) for body in bodies for row in json.loads(body)]
    with_models = time.perf_counter() - t
    t = time.perf_counter()
    plain = [(row["id"], row["summary"], row["status"]["name"], row["_info"]["lastUpdated"])
             for body in bodies for row in json.loads(body)]
    with_dicts = time.perf_counter() - t
    assert len(models) == len(plain)
    return with_models, with_dicts


async def page_bodies(fake: FakeConnectWise, root: str, queries: list[dict[str, str]]) -> list[bytes]:
    auth = (f"{fake.company_id}+{fake.public_key}", fake.private_key)
    async with httpx.AsyncClient(base_url=root, auth=auth, headers={"clientId": fake.client_id}) as client:
        return [(await client.get(f"/{fake.codebase}apis/3.0/service/tickets", params=q)).content for q in queries]


async def main(n: int, rounds: int) -> dict[str, Any]:
    fake = FakeConnectWise(clock=FakeClock(step=timedelta(seconds=1)))
    fake.record_bodies = False
    since = fake.clock.now
    t = time.perf_counter()
    fake.bulk_tickets(n)
    seed_s = time.perf_counter() - t
    results: dict[str, Any] = {}
    with fake.serve() as root:
        best_conn = best_base = math.inf
        for _ in range(rounds):
            count, secs, pages = await via_connector(fake, root, since)
            calls = dict(fake.counts)
            queries = [{k: v for k, v in r.query.items()} for r in fake.requests if r.key == "GET /service/tickets"]
            # restore the parameter names' case for the baseline (the fake lower-cases them)
            names = {"conditions": "conditions", "orderby": "orderBy", "pagesize": "pageSize", "page": "page"}
            queries = [{names.get(k, k): v for k, v in q.items()} for q in queries]
            assert count == n, (count, n)
            best_conn = min(best_conn, secs)
            base_count, base_secs = await via_plain_httpx(fake, root, queries)
            assert base_count == n, base_count
            best_base = min(best_base, base_secs)
        bodies = await page_bodies(fake, root, queries)
        parse_models = parse_dicts = math.inf
        for _ in range(rounds):
            a, b = parse_only(bodies)
            parse_models, parse_dicts = min(parse_models, a), min(parse_dicts, b)
        results = {
            "tickets": n,
            "page_size": 1000,
            "list_pages": pages,
            "expected_list_pages": math.ceil(n / 1000),
            "api_calls": calls,
            "total_api_calls": sum(calls.values()),
            "connector_seconds": round(best_conn, 3),
            "connector_tickets_per_s": round(n / best_conn),
            "baseline_seconds": round(best_base, 3),
            "baseline_tickets_per_s": round(n / best_base),
            "connector_vs_baseline_throughput": round(best_base / best_conn, 3),
            "parse_only_models_tickets_per_s": round(n / parse_models),
            "parse_only_dicts_tickets_per_s": round(n / parse_dicts),
            "parse_only_models_vs_dicts": round(parse_dicts / parse_models, 3),
            "rounds": rounds,
            "seed_seconds": round(seed_s, 2),
            "note": "loopback HTTP to a Python fake server whose per-page filtering of all tickets dominates both sides; the "
                    "baseline fetches the exact query strings the connector sent; parse_only isolates client-side parsing",
        }
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    out = asyncio.run(main(args.tickets, args.rounds))
    path = ROOT / "bench" / "results" / "connectwise_paging.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(f"{'tickets':<34}{out['tickets']:>12,}")
    print(f"{'list pages (expected)':<34}{out['list_pages']:>8} ({out['expected_list_pages']})")
    print(f"{'all API calls':<34}{out['total_api_calls']:>12}  {out['api_calls']}")
    print(f"{'connector tickets/s':<34}{out['connector_tickets_per_s']:>12,}")
    print(f"{'plain httpx+json tickets/s':<34}{out['baseline_tickets_per_s']:>12,}")
    print(f"{'connector / baseline throughput':<34}{out['connector_vs_baseline_throughput']:>12}")
    print(f"{'parse only: models / dicts':<34}{out['parse_only_models_vs_dicts']:>12}  "
          f"({out['parse_only_models_tickets_per_s']:,} vs {out['parse_only_dicts_tickets_per_s']:,} tickets/s)")
    print(f"written to {path.relative_to(ROOT)}")
