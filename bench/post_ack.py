"""Post-ack throughput: Slack jobs finished per second by one process (issue 20 item 4).

In one process, as in the tests' harness: the real bolt app inside the real FastAPI app (ASGI transport),
SQLite file, the fake Slack Web API on loopback. `--jobs` signed requests are acked as fast as they come
(half "Change status" button clicks, which open a status form with views.open; half `/tickets mine`,
answered on the response_url; `--mix slash|click` for one kind only, to see each kind's CPU), then the clock
runs until the post-ack queue (bot/slack/work.py) has drained. jobs/s = jobs / (last job done - first request sent). Rounds repeat for the spread; `--profile`
writes a cProfile of one round (the event loop thread's CPU time, not wall time: a wall-clock profile charges
GIL waits and other threads' work to whatever numpy or socket call released the GIL).

    .venv/bin/python bench/post_ack.py [--jobs 400] [--rounds 3] [--profile /tmp/post_ack.prof]
    .venv/bin/python bench/post_ack.py --compare     # same-run baseline: rounds alternate without/with the caches

`--baseline-ref REF` is the same-run baseline of the code itself: processes alternate between REF's tree (`git
archive`) and this one, one round each, `--rounds` times; the figures per side are medians and the ratios are
this tree over REF (jobs/s, CPU per job). Both sides run this script (its harness, seed and settings) on their
own code (`--code DIR`), so only the code under test differs.

The garbage collector is set up as `deskbridge serve` sets it (bot/gctune.py: collect and freeze what start-up
left, higher generation-0 threshold) after the warm-up request; `--gc default` keeps CPython's defaults (how
this bench ran before session 8: ~10% more CPU per job, every side alike).

`--compare` alternates rounds in one process: "without" (SLA setup and board statuses read per request, every
event claim its own write transaction, an HTTP session per Slack call: the code before issue 20 item 4) and
"with" (cached, claims batched, one shared HTTP session).

Figures go to bench/results/post_ack.json (pass --label to keep a before/after pair in one file).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# `--code DIR`: measure the code of another tree (a baseline's `git archive`) with this harness and these settings
CODE = Path(sys.argv[sys.argv.index("--code") + 1]).resolve() if "--code" in sys.argv[:-1] else ROOT
sys.path[:] = [str(CODE)] + [p for p in sys.path if Path(p or ".").resolve() not in (ROOT / "bench", ROOT)]

from bot.api.app import create_app  # noqa: E402
from bot.main import build  # noqa: E402
from bot.settings import Settings  # noqa: E402
from core.scheduling import EventClaims, mark_event_processed  # noqa: E402
from core.workspaces import WorkspaceService  # noqa: E402
from store import migrate  # noqa: E402
from store.crypto import generate_key  # noqa: E402
from store.db import Database, Scope  # noqa: E402
from store.tables import Ticket  # noqa: E402
from tests.bot.slack.conftest import SIGNING_SECRET, TEAM, TECH, SlackHarness  # noqa: E402
from tests.factories import BOARD, psa_backed  # noqa: E402
from tests.fakes.slack_api import FakeSlackApi  # noqa: E402

TARGET_JOBS_PER_S = 300.0


class LoneClaims:
    """The old dedupe: one write transaction per claim (the "without" rounds of --compare)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.transactions = 0

    async def claim(self, source: str, event_id: str, workspace_id: int | None = None) -> bool:
        self.transactions += 1
        return await mark_event_processed(self.db, source, event_id, workspace_id)


def _switch(c: Any, on: bool) -> None:
    """Item 4's caches and batched claims on or off in a built container (ttl 0: every read loads)."""
    for cache in (c.sla.configs, c.chat_views.forms.statuses):
        cache.ttl = 10.0 if on else 0.0
        cache.clear()
    c.chat.installations.claims = EventClaims(c.db) if on else LoneClaims(c.db)
    http = c.slack.http if on else None  # the shared aiohttp session, or one session per Slack call (as before)
    c.slack.client.session = c.slack.notifier.session = c.slack.context.session = http


async def _seed(url: str, tickets: int) -> tuple[int, Any]:
    migrate.upgrade(url)
    db = Database(url)
    ws = await WorkspaceService(db).create(slug="acme-msp", name="Acme MSP")
    assert ws.id is not None
    setup = await psa_backed(db, ws.id)
    now = datetime.now(UTC)
    async with db.write(Scope.workspace(ws.id)) as s:
        for n in range(tickets):
            s.add(Ticket(workspace_id=ws.id, number=5001 + n, external_id=str(5001 + n), connection_id=setup.connection_id,
                         customer_id=setup.customer_id, subject=f"Ticket {n}", priority="medium", priority_rank=2,
                         stage="new", psa_status_id="10", psa_status_name="New", board_external_id=BOARD,
                         board_name="Service Desk", source="psa", assignee_member_id=setup.member_id,
                         history_at=now))
    await db.dispose()
    return ws.id, setup


async def _acks_only(h: SlackHarness, jobs: int, tickets: int, mix: str) -> dict[str, Any]:
    """`--ack-only`: the CPU of the acks alone (harness client, FastAPI, front door, bolt, the listener's ack),
    with every post-ack worker held so no job runs meanwhile; the jobs then drain outside the timing."""
    bodies = [("slash", None) if mix == "slash" or (mix == "both" and k % 2)
              else ("click", h.action_payload("status", str(5001 + k % tickets))) for k in range(jobs)]
    h.fake.clear()
    acks = []
    async with h.workers_held():
        await asyncio.sleep(0.05)  # the workers' hold jobs have started; nothing else is pending
        cpu = time.process_time()
        start = time.perf_counter()
        for kind, payload in bodies:
            t0 = time.perf_counter()
            resp = await (h.slash("/tickets", "mine", settle=False) if kind == "slash"
                          else h.interactive(payload, settle=False))
            acks.append(time.perf_counter() - t0)
            assert resp.status_code == 200, resp.text
        ack_cpu = time.process_time() - cpu
        acked = time.perf_counter() - start
    await asyncio.wait_for(h.c.slack.drain(), 600)
    acks.sort()
    return {"jobs": jobs, "acked_in_s": round(acked, 2), "ack_cpu_ms_per_job": round(ack_cpu / jobs * 1000, 3),
            "cpu_ms_per_job": round(ack_cpu / jobs * 1000, 3), "jobs_per_s": round(jobs / acked, 1),
            "ack_p99_ms": round(acks[int(len(acks) * 0.99) - 1] * 1000, 1)}


async def _round(h: SlackHarness, jobs: int, tickets: int, mix: str = "both") -> dict[str, Any]:
    bodies = []
    for k in range(jobs):
        if mix == "slash" or (mix == "both" and k % 2):
            bodies.append(("slash", None))
        else:
            bodies.append(("click", h.action_payload("status", str(5001 + k % tickets))))
    h.fake.clear()
    cpu = time.process_time()  # this process's CPU (all threads): less at the mercy of the machine's load than wall time
    start = time.perf_counter()
    acks = []
    for kind, payload in bodies:
        t0 = time.perf_counter()
        if kind == "slash":
            resp = await h.slash("/tickets", "mine", settle=False)
        else:
            resp = await h.interactive(payload, settle=False)
        acks.append(time.perf_counter() - t0)
        assert resp.status_code == 200, resp.text
    acked = time.perf_counter() - start
    await asyncio.wait_for(h.c.slack.drain(), 600)
    wall = time.perf_counter() - start
    opened = len([c for c in h.fake.calls if c.method == "views.open"])
    updated = len([c for c in h.fake.calls if c.method == "views.update"])
    posted = len(h.fake.webhooks)
    acks.sort()
    return {"jobs": jobs, "acked_in_s": round(acked, 2), "drained_in_s": round(wall, 2),
            "jobs_per_s": round(jobs / wall, 1), "cpu_ms_per_job": round((time.process_time() - cpu) / jobs * 1000, 2),
            "ack_p99_ms": round(acks[int(len(acks) * 0.99) - 1] * 1000, 1),
            "views_opened": opened, "views_updated": updated, "response_url_posts": posted}


def versus(ref: str, args: argparse.Namespace) -> dict[str, Any]:
    """Alternate processes: REF's tree, then this one, one round each, `args.rounds` times."""
    import subprocess

    with tempfile.TemporaryDirectory() as d:
        base = Path(d) / "baseline"
        base.mkdir()
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref], check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(base)], input=archive, check=True)
        # Byte-compile the fresh tree first: a module imported lazily during a round (first click, first form)
        # was compiled inside the baseline's timed round but loaded from __pycache__ on this side, which
        # favoured this side by ~3-5% CPU per job (`--baseline-ref HEAD` on a clean tree gave 0.95x).
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(base)], check=True, stdout=subprocess.DEVNULL)
        subprocess.run([sys.executable, "-m", "compileall", "-q", *(str(ROOT / d) for d in
                        ("bot", "core", "connectors", "store", "tests", "bench"))], check=False, stdout=subprocess.DEVNULL)
        rounds: dict[str, list[dict[str, Any]]] = {"baseline": [], "this": []}
        for r in range(args.rounds):
            for side, tree in (("baseline", base), ("this", ROOT)):
                out = Path(d) / f"{side}{r}.json"
                subprocess.run([sys.executable, str(ROOT / "bench" / "post_ack.py"), "--jobs", str(args.jobs),
                                "--rounds", "1", "--tickets", str(args.tickets), "--out", str(out), "--label", side,
                                "--mix", args.mix, *(["--ack-only"] if args.ack_only else []),
                                "--gc", args.gc, "--code", str(tree)],
                               cwd=tree, check=True, stdout=subprocess.DEVNULL)
                rounds[side].append(json.loads(out.read_text())[side]["rounds"][0])
                x = rounds[side][-1]
                print(f"round {r + 1} {side:8} {x['jobs_per_s']:6.1f} jobs/s  CPU {x['cpu_ms_per_job']:6.2f} ms/job  "
                      f"ack p99 {x['ack_p99_ms']} ms  load {x['load_average_1m']}", flush=True)
    med = {side: {k: statistics.median(x[k] for x in rs) for k in ("jobs_per_s", "cpu_ms_per_job", "ack_p99_ms")}
           for side, rs in rounds.items()}
    return {"baseline_ref": ref, "rounds": rounds, "medians": med,
            "this_over_baseline": {k: round(med["this"][k] / med["baseline"][k], 3) for k in med["this"]}}


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=400)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--tickets", type=int, default=200)
    ap.add_argument("--profile", help="cProfile the last round into this file")
    ap.add_argument("--compare", action="store_true", help="alternate rounds without/with item 4's caches")
    ap.add_argument("--label", default="run", help="key of this run in the results file (e.g. before, after)")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "post_ack.json"))
    ap.add_argument("--baseline-ref", help="alternate processes with this git ref's code (same-run baseline)")
    ap.add_argument("--code", help="the tree whose code is measured (default: this one); --baseline-ref sets it")
    ap.add_argument("--mix", choices=("both", "slash", "click"), default="both",
                    help="the jobs: half clicks and half `/tickets mine` (default), or only one kind (CPU per kind)")
    ap.add_argument("--ack-only", action="store_true",
                    help="time only the acks (post-ack workers held, jobs drained untimed): CPU per ack, acks/s")
    ap.add_argument("--gc", choices=("serve", "default"), default="serve",
                    help="garbage collector as `deskbridge serve` sets it (default), or CPython's defaults")
    args = ap.parse_args()
    load_before = os.getloadavg()
    if args.baseline_ref:
        result = {**versus(args.baseline_ref, args), "gc": args.gc, "load_average_before": [round(x, 2) for x in load_before],
                  "load_average_after": [round(x, 2) for x in os.getloadavg()], "cpus": os.cpu_count(),
                  "jobs_per_round": args.jobs, "mix": args.mix, "target_jobs_per_s": TARGET_JOBS_PER_S,
                  "measured_at": datetime.now(UTC).isoformat(timespec="seconds")}
        out = Path(args.out)
        doc = json.loads(out.read_text()) if out.exists() else {"benchmark": "post_ack"}  # noqa: ASYNC240
        doc[args.label] = result
        out.write_text(json.dumps(doc, indent=2) + "\n")  # noqa: ASYNC240 - once, at the end
        print(f"{args.label}: this over {args.baseline_ref}: {result['this_over_baseline']}; wrote {out}")
        return
    fake = await FakeSlackApi(team_id=TEAM).start()
    fake.add_user(TECH, email="bob@acme-msp.example", name="Bob Tech")
    with tempfile.TemporaryDirectory() as d:
        url = f"sqlite:///{Path(d) / 'post_ack.db'}"
        ws, setup = await _seed(url, args.tickets)
        settings = Settings(database_url=url, secret_key=generate_key(), sandbox="off", auto_migrate=False,
                            secret_key_file=Path(d) / "k", workspace_slug="acme-msp", run_scheduler=False,
                            run_outbox_worker=False, slack_bot_token="xoxb-test-token",  # noqa: S106 - the fake's
                            slack_signing_secret=SIGNING_SECRET, slack_api_url=fake.api_url)
        container = build(settings)
        container.default_workspace_id = ws
        await container.slack.start()
        h = SlackHarness(create_app(container, start_background=False), container, fake, ws, setup)
        await h.slash("/tickets", "mine")  # warm: installation, identity link, caches
        if args.gc == "serve":  # as `deskbridge serve` does once it has started (bot/cli/serve.py)
            from bot import gctune

            gctune.settle()
        rounds = []
        for r in range(args.rounds * (2 if args.compare else 1)):
            mode = ("without", "with")[r % 2] if args.compare else "as built"
            if args.compare:
                _switch(container, mode == "with")
            prof = cProfile.Profile(time.thread_time) if args.profile and r == args.rounds - 1 else None  # loop CPU
            if prof:
                prof.enable()
            claims = container.chat.installations.claims
            before = (claims.transactions, container.sla.configs.loads, container.chat_views.forms.statuses.loads)
            one = _acks_only if args.ack_only else _round
            rounds.append({"mode": mode, "ack_only": args.ack_only, **await one(h, args.jobs, args.tickets, args.mix),
                           "claim_transactions": claims.transactions - before[0],
                           "sla_config_loads": container.sla.configs.loads - before[1],
                           "status_option_loads": container.chat_views.forms.statuses.loads - before[2],
                           "load_average_1m": round(os.getloadavg()[0], 2)})
            if prof:
                prof.disable()
                prof.dump_stats(args.profile)
            print(f"round {r + 1}: {rounds[-1]}", flush=True)
        await h.http.aclose()
        await container.aclose()
    await fake.stop()
    rates = [r["jobs_per_s"] for r in rounds]
    by_mode = {m: [r["jobs_per_s"] for r in rounds if r["mode"] == m] for m in dict.fromkeys(r["mode"] for r in rounds)}
    medians = {m: statistics.median(v) for m, v in by_mode.items()}
    cpu = {m: statistics.median(r["cpu_ms_per_job"] for r in rounds if r["mode"] == m) for m in by_mode}
    result = {"jobs_per_s_median": statistics.median(rates), "jobs_per_s": rates, "rounds": rounds,
              "jobs_per_s_median_by_mode": medians, "cpu_ms_per_job_median_by_mode": cpu,
              "ratio_with_vs_without": round(medians["with"] / medians["without"], 2) if args.compare else None,
              "target_jobs_per_s": TARGET_JOBS_PER_S, "gc": args.gc, "code": str(CODE),
              "load_average_before": [round(x, 2) for x in load_before],
              "load_average_after": [round(x, 2) for x in os.getloadavg()], "cpus": os.cpu_count(),
              "measured_at": datetime.now(UTC).isoformat(timespec="seconds")}
    out = Path(args.out)
    doc = json.loads(out.read_text()) if out.exists() else {"benchmark": "post_ack"}  # noqa: ASYNC240
    doc[args.label] = result
    out.write_text(json.dumps(doc, indent=2) + "\n")  # noqa: ASYNC240 - once, at the end
    print(f"{args.label}: median {result['jobs_per_s_median']} jobs/s (target {TARGET_JOBS_PER_S}); wrote {out}")


if __name__ == "__main__":
    asyncio.run(main())
