"""REST API list endpoint under load: `GET /api/msp-portal/tickets` with 50 concurrent clients on loopback,
100,000 tickets in SQLite (issue 8).

The server (uvicorn, the real app from bot.api.app with a bearer key, rate limit lifted) runs in a
subprocess on 127.0.0.1; the load generator runs here with 50 concurrent httpx clients in a closed loop.
Baselines measured in the same run, so the figures are ratios:
  - `GET /healthz` under the same 50-client load (the HTTP + framework floor of this machine),
  - the same queue pages through QueueService directly, without HTTP: per kind with one caller, and with
    the same 50 callers in a closed loop (the service's own ceiling on this database).

    .venv/bin/python bench/api.py [--tickets 100000] [--clients 50] [--seconds 15] [--label after]
                                  [--py-spy /tmp/x.txt]   (sample the server during the list load)
                                  [--baseline-ref main --rounds 3]

`--baseline-ref REF` adds a same-run baseline of the code itself: REF's tree (`git archive`) serves the same
database from a second server process, and list rounds alternate REF / this tree (`--rounds` each), so the
ratio "this tree over REF" (req/s, p99, server CPU per request) is measured under the same machine load.

Figures go to bench/results/api.json (one entry per `--label`; the newest run of a label replaces it).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from bench._http import Conn  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "api.json"
WORKDIR = Path(f"/tmp/deskbridge-bench-api-{os.getpid()}")
STAGES = ["new", "in_progress", "waiting", "resolved", "closed", "closed", "closed", "resolved"]
PRIOS = [("critical", 0), ("high", 1), ("medium", 2), ("low", 3)]
WORDS = ["VPN", "printer", "email", "laptop", "Outlook", "backup", "firewall", "Teams"]
T0 = datetime(2025, 1, 1, tzinfo=UTC)
COLS = ("workspace_id, number, customer_id, subject, description, priority, priority_rank, stage, psa_status_name, "
        "assignee_member_id, source, created_at, updated_at, version")


def _env(db_url: str) -> dict[str, str]:
    return {**os.environ, "DESKBRIDGE_DATABASE_URL": db_url, "DESKBRIDGE_SANDBOX": "off",
            "DESKBRIDGE_SECRET_KEY_FILE": str(WORKDIR / "secret.key"), "DESKBRIDGE_RUN_SCHEDULER": "false",
            "DESKBRIDGE_RUN_OUTBOX_WORKER": "false", "DESKBRIDGE_LOG_LEVEL": "WARNING",
            "DESKBRIDGE_API_RATE_PER_SECOND": "1000000000", "DESKBRIDGE_API_RATE_BURST": "1000000000",
            "DESKBRIDGE_WORKSPACE_SLUG": "default"}


def seed(path: Path, n: int, customers: int, members: int) -> None:
    """Bulk-insert the workspace, customers, members and `n` tickets straight into SQLite."""
    rnd = random.Random(8)
    span = 365 * 86400
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA synchronous=OFF")
    with conn:
        conn.execute("INSERT INTO workspace (id, slug, name, timezone, next_ticket_number, settings, created_at) "
                     f"VALUES (1, 'default', 'Bench MSP', 'UTC', {n + 1}, '{{}}', '2025-01-01 00:00:00')")
        conn.executemany("INSERT INTO customer (workspace_id, identifier, name, active, created_at) VALUES "
                         "(1, ?, ?, 1, '2025-01-01 00:00:00')",
                         [(f"C{i:03}", f"Customer {i}") for i in range(1, customers + 1)])
        conn.executemany("INSERT INTO member (workspace_id, name, is_admin, active, created_at) VALUES "
                         "(1, ?, 0, 1, '2025-01-01 00:00:00')", [(f"Tech {i}",) for i in range(1, members + 1)])

        def rows():
            for i in range(1, n + 1):
                stage = STAGES[rnd.randrange(len(STAGES))]
                prio, rank = PRIOS[rnd.randrange(4)]
                created = T0 + timedelta(seconds=rnd.randrange(span))
                assignee = rnd.randrange(1, members + 1) if rnd.random() < 0.8 else None
                yield (1, i, rnd.randrange(1, customers + 1), f"Ticket {i}: {rnd.choice(WORDS)} issue", "", prio, rank,
                       stage, stage.replace("_", " ").title(), assignee, "psa",
                       created.replace(tzinfo=None).isoformat(" "),
                       (created + timedelta(hours=rnd.randrange(1, 300))).replace(tzinfo=None).isoformat(" "), 1)

        conn.executemany(f"INSERT INTO ticket ({COLS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)", rows())
    conn.execute("ANALYZE")
    conn.close()


KINDS = ("open_queue", "customer_queue", "technician_by_priority", "customer_waiting", "board_new_urgent_newest")


def queries(customers: int, members: int, rnd: random.Random) -> tuple[str, str]:
    """One realistic list request (kind, path): whole open queue, a customer's, a technician's by priority, a
    customer's waiting tickets, and the board's new urgent tickets newest first."""
    kind = rnd.randrange(5)
    path = [
        "/api/msp-portal/tickets",
        f"/api/msp-portal/tickets?customer={rnd.randrange(1, customers + 1)}",
        f"/api/msp-portal/tickets?assignee={rnd.randrange(1, members + 1)}&sort=priority",
        f"/api/msp-portal/tickets?customer={rnd.randrange(1, customers + 1)}&stage=waiting",
        "/api/msp-portal/tickets?stage=new&priority=critical,high&sort=newest",
    ][kind]
    return KINDS[kind], path


def direct_filter(kind: str, customers: int, members: int, rnd: random.Random):
    """The QueueFilter the API builds for the same kind of request."""
    from core.queue import QueueFilter, QueueSort
    from store.enums import Priority, Stage

    return {
        "open_queue": lambda: QueueFilter(),
        "customer_queue": lambda: QueueFilter(customer_id=rnd.randrange(1, customers + 1)),
        "technician_by_priority": lambda: QueueFilter(assignee=rnd.randrange(1, members + 1), sort=QueueSort.PRIORITY),
        "customer_waiting": lambda: QueueFilter(customer_id=rnd.randrange(1, customers + 1), stages=(Stage.WAITING,)),
        "board_new_urgent_newest": lambda: QueueFilter(stages=(Stage.NEW,), priorities=(Priority.CRITICAL,
                                                                                        Priority.HIGH),
                                                       sort=QueueSort.NEWEST),
    }[kind]()


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


def summary(lat_s: list[float], wall: float, errors: int) -> dict:
    ms = [x * 1000 for x in lat_s]
    return {"requests": len(ms), "errors": errors, "rps": round(len(ms) / wall, 1),
            "p50_ms": round(statistics.median(ms), 2), "p99_ms": round(pct(ms, 0.99), 2),
            "max_ms": round(max(ms), 2)}


async def load(host: str, port: int, token: str, make_path, clients: int, seconds: float, warmup: float) -> dict:
    """`clients` concurrent closed-loop clients for `seconds` (after `warmup`); latencies seen by the client."""
    lat: list[float] = []
    by_kind: dict[str, list[float]] = {}
    errors = answered = 0
    start = time.perf_counter()
    measure_from = start + warmup
    stop = measure_from + seconds

    async def worker(seed: int) -> None:
        nonlocal errors, answered
        rnd = random.Random(seed)
        conn = Conn(host, port, token)
        try:
            while True:
                t = time.perf_counter()
                if t >= stop:
                    return
                kind, path = make_path(rnd)
                status, body = await conn.get(path)
                if status == 200 and path.startswith("/api/") and not body.startswith(b'{"items":'):
                    status = 599
                done = time.perf_counter()
                answered += 1
                if t >= measure_from:
                    errors += status != 200
                    lat.append(done - t)
                    by_kind.setdefault(kind, []).append(done - t)
        finally:
            await conn.close()

    await asyncio.gather(*(worker(i) for i in range(clients)))
    out = summary(lat, seconds, errors)
    out["answered"] = answered
    if len(by_kind) > 1:
        out["by_kind_p50_ms"] = {k: round(statistics.median(v) * 1000, 2) for k, v in sorted(by_kind.items())}
    return out


async def direct_baseline(db_url: str, customers: int, members: int, iterations: int, clients: int,
                          seconds: float) -> dict:
    """The same pages through QueueService without HTTP: one caller per kind (p50), then `clients` callers in a
    closed loop like the HTTP run (the service's own ceiling on this database)."""
    from core.context import Actor
    from core.queue import QueueService
    from store.db import Database
    from store.enums import Origin

    db = Database(db_url)
    queue = QueueService(db)
    actor = Actor(workspace_id=1, origin=Origin.API, display="apikey:bench")
    rnd = random.Random(3)
    out: dict = {"sequential_p50_ms": {}}
    try:
        for kind in KINDS:
            lat = []
            for i in range(iterations // len(KINDS) + 5):
                t = time.perf_counter()
                await queue.list(actor, direct_filter(kind, customers, members, rnd), limit=25)
                if i >= 5:
                    lat.append(time.perf_counter() - t)
            out["sequential_p50_ms"][kind] = round(statistics.median(lat) * 1000, 3)
        lat, stop = [], time.perf_counter() + seconds

        async def worker(seed: int) -> None:
            r = random.Random(seed)
            while time.perf_counter() < stop:
                t = time.perf_counter()
                await queue.list(actor, direct_filter(KINDS[r.randrange(len(KINDS))], customers, members, r), limit=25)
                lat.append(time.perf_counter() - t)

        await asyncio.gather(*(worker(i) for i in range(clients)))
        out["concurrent"] = summary(lat, seconds, 0)
    finally:
        await db.dispose()
    return out


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc), threads included."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def make_key(env: dict[str, str]) -> str:
    """A read key in the database `env` names (built by this tree's code; migrations are not run here)."""
    from bot.main import build, settings_from_env

    os.environ.update(env)
    c = build(settings_from_env())
    try:
        return (await c.apikeys.create(1, name="bench", scopes=["read"]))[1]
    finally:
        await c.aclose()


def export_tree(ref: str, dest: Path) -> Path:
    """REF's files (git archive) in `dest`, to run the baseline server from."""
    dest.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return dest


def start_server(tree: Path, env: dict[str, str]) -> tuple[subprocess.Popen, int]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, str(tree / "bench" / "api.py"), "--serve", str(port)], env=env, cwd=tree)
    try:
        wait_up(f"http://127.0.0.1:{port}", proc)
    except BaseException:
        stop_server(proc)
        raise
    return proc, port


def stop_server(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


def baseline_database(tree: Path, args: argparse.Namespace) -> tuple[dict[str, str], str]:
    """The same seeded data in a database migrated by the baseline tree's own migrations (its schema and
    indexes, not this tree's), and a key for it."""
    path = WORKDIR / "baseline.db"
    url = f"sqlite:///{path}"
    subprocess.run([sys.executable, "-c", f"from store import migrate; migrate.upgrade({url!r})"], cwd=tree,
                   env={**os.environ, "PYTHONPATH": str(tree)}, check=True)
    seed(path, args.tickets, args.customers, args.members)
    env = {**_env(url), "DESKBRIDGE_AUTO_MIGRATE": "false"}
    return env, asyncio.run(make_key(env))


def list_round(tree: Path, env: dict[str, str], token: str, args: argparse.Namespace) -> dict:
    """One list load against a fresh server from `tree`, with its CPU per answered request."""
    proc, port = start_server(tree, env)
    try:
        cpu0 = cpu_seconds(proc.pid)
        out = asyncio.run(load("127.0.0.1", port, token, lambda rnd: queries(args.customers, args.members, rnd),
                               args.clients, args.seconds, args.warmup))
        out["server_cpu_ms_per_request"] = round((cpu_seconds(proc.pid) - cpu0) * 1000 / max(1, out.pop("answered")), 3)
        out["load_average_1m"] = round(os.getloadavg()[0], 2)
    finally:
        stop_server(proc)
    return out


def compare(ref: str, env: dict[str, str], token: str, args: argparse.Namespace) -> dict:
    """Rounds alternating REF's tree and this one; medians per side and the ratios of this tree over REF."""
    if args.baseline_env:  # the same code and database, other settings
        knobs = dict(kv.split("=", 1) for kv in args.baseline_env)
        sides = {"baseline": (ROOT, {**env, **knobs}, token), "this": (ROOT, env, token)}
    else:
        base_tree = export_tree(ref, WORKDIR / "baseline")
        sides = {"baseline": (base_tree, *baseline_database(base_tree, args)), "this": (ROOT, env, token)}
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", ref], capture_output=True, text=True)
    rounds: dict[str, list[dict]] = {"baseline": [], "this": []}
    for r in range(args.rounds):
        for side, (tree, side_env, side_token) in sides.items():
            rounds[side].append(list_round(tree, side_env, side_token, args))
            x = rounds[side][-1]
            print(f"  round {r + 1} {side:8} {x['rps']:7.1f} req/s  p50 {x['p50_ms']:7.2f}  p99 {x['p99_ms']:7.2f} ms  "
                  f"server CPU {x['server_cpu_ms_per_request']} ms/request  load {x['load_average_1m']}", flush=True)

    def med(side: str, key: str) -> float:
        return round(statistics.median(x[key] for x in rounds[side]), 3)

    keys = ("rps", "p50_ms", "p99_ms", "server_cpu_ms_per_request")
    medians = {side: {k: med(side, k) for k in keys} for side in rounds}
    return {"baseline_ref": ref, "baseline_commit": commit.stdout.strip(),
            "baseline_database": "same seed, migrated by the baseline tree's own migrations",
            "baseline_env": args.baseline_env,
            "rounds": rounds, "medians": medians,
            "this_over_baseline": {k: round(medians["this"][k] / medians["baseline"][k], 3) for k in keys}}


def serve(port: int) -> None:
    """Subprocess mode: the real app on 127.0.0.1 (settings from the environment set by the parent)."""
    import uvicorn

    from bot.api.app import create_app
    from bot.main import build, settings_from_env

    uvicorn.run(create_app(build(settings_from_env()), start_background=False), host="127.0.0.1", port=port,
                log_config=None, access_log=False, lifespan="on")


def wait_up(base: str, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit("the server exited during start-up")
        try:
            if httpx.get(base + "/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit("the server did not become ready")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tickets", type=int, default=100_000)
    ap.add_argument("--customers", type=int, default=200)
    ap.add_argument("--members", type=int, default=30)
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=15.0)
    ap.add_argument("--warmup", type=float, default=2.0)
    ap.add_argument("--label", default="latest", help="results entry for this run (e.g. before/after a change)")
    ap.add_argument("--out", default=str(RESULTS))
    ap.add_argument("--py-spy", dest="py_spy", help="record the server with py-spy (raw collapsed stacks) here")
    ap.add_argument("--baseline-ref", help="git ref whose code serves alternate list rounds (same-run baseline)")
    ap.add_argument("--rounds", type=int, default=3, help="list rounds per side with --baseline-ref")
    ap.add_argument("--baseline-env", action="append", default=[], metavar="NAME=VALUE",
                    help="with --baseline-ref HEAD: the baseline is this code with these settings (A/B of a knob)")
    ap.add_argument("--serve", type=int, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve is not None:
        serve(args.serve)
        return

    from store import migrate

    WORKDIR.mkdir(parents=True, exist_ok=True)
    db_path = WORKDIR / "api.db"
    for suffix in ("", "-wal", "-shm"):
        Path(str(db_path) + suffix).unlink(missing_ok=True)
    db_url = f"sqlite:///{db_path}"
    t = time.perf_counter()
    migrate.upgrade(db_url)
    seed(db_path, args.tickets, args.customers, args.members)
    seed_s = time.perf_counter() - t
    print(f"seeded {args.tickets:,} tickets in {seed_s:.1f} s", flush=True)

    env = _env(db_url)

    token = asyncio.run(make_key(env))
    direct = asyncio.run(direct_baseline(db_url, args.customers, args.members, 300, args.clients, args.seconds / 2))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--serve", str(port)], env=env, cwd=ROOT)
    try:
        wait_up(base, proc)
        health = asyncio.run(load("127.0.0.1", port, token, lambda rnd: ("healthz", "/healthz"), args.clients,
                                  args.seconds / 2, args.warmup))
        health.pop("answered")
        print(f"  /healthz           p50 {health['p50_ms']:7.2f} ms  p99 {health['p99_ms']:7.2f} ms  "
              f"{health['rps']:7.1f} req/s", flush=True)
        spy = None
        if args.py_spy:
            spy = subprocess.Popen([str(Path(sys.executable).parent / "py-spy"), "record", "--pid", str(proc.pid),
                                    "--format", "raw", "--threads", "--rate", "250", "--nonblocking",
                                    "--duration", str(int(args.seconds + args.warmup)), "-o", args.py_spy],
                                   stdout=subprocess.DEVNULL)
        cpu0 = cpu_seconds(proc.pid)
        listing = asyncio.run(load("127.0.0.1", port, token, lambda rnd: queries(args.customers, args.members, rnd),
                                   args.clients, args.seconds, args.warmup))
        # CPU per request: the server's CPU time over the whole load phase (warm-up included) per answer
        listing["server_cpu_ms_per_request"] = round((cpu_seconds(proc.pid) - cpu0) * 1000
                                                     / max(1, listing.pop("answered")), 3)
        print(f"  GET /tickets       p50 {listing['p50_ms']:7.2f} ms  p99 {listing['p99_ms']:7.2f} ms  "
              f"{listing['rps']:7.1f} req/s  errors {listing['errors']}  "
              f"server CPU {listing['server_cpu_ms_per_request']} ms/request", flush=True)
        if spy is not None:
            spy.wait(timeout=60)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
    versus = compare(args.baseline_ref, env, token, args) if args.baseline_ref else None
    dc = direct["concurrent"]
    print(f"  QueueService direct p50 {dc['p50_ms']:7.2f} ms  p99 {dc['p99_ms']:7.2f} ms  {dc['rps']:7.1f} calls/s "
          f"(no HTTP, {args.clients} callers)")
    print(f"  per kind, HTTP p50 ms: {listing.get('by_kind_p50_ms')}")
    print(f"  per kind, direct sequential p50 ms: {direct['sequential_p50_ms']}")
    result = {
        "benchmark": "api", "endpoint": "GET /api/msp-portal/tickets (25 per page, mixed filters)",
        "database": "sqlite", "tickets": args.tickets, "customers": args.customers, "members": args.members,
        "clients": args.clients, "seconds": args.seconds, "seed_seconds": round(seed_s, 1),
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"), "cpu_count": os.cpu_count(),
        "load_average_1m_at_end": round(os.getloadavg()[0], 2),
        "list": listing, "baseline_healthz": health, "baseline_queue_service_direct": direct,
        "versus_baseline_code": versus,
        "ratios": {
            "list_p50_over_healthz_p50": round(listing["p50_ms"] / health["p50_ms"], 2),
            "list_rps_over_healthz_rps": round(listing["rps"] / health["rps"], 3),
            "list_rps_over_direct_concurrent_rps": round(listing["rps"] / dc["rps"], 3),
            "list_p50_over_direct_concurrent_p50": round(listing["p50_ms"] / dc["p50_ms"], 2),
        },
        "note": "closed loop: each client sends its next request when the previous answer arrives; latency is "
                "client-side and includes queueing behind the other 49 clients; server and load generator share "
                "the machine's cores",
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        old = json.loads(out.read_text())
        runs = old.get("runs") or ({"session3": old} if "list" in old else {})
    except (OSError, ValueError):
        runs = {}
    runs[args.label] = result
    out.write_text(json.dumps({"benchmark": "api", "runs": runs}, indent=2) + "\n")
    if versus:
        print(f"this tree over {args.baseline_ref}: {versus['this_over_baseline']} (medians {versus['medians']})")
    print(f"ratios: {result['ratios']}\nwritten to {out} as {args.label!r}")
    shutil.rmtree(WORKDIR, ignore_errors=True)


if __name__ == "__main__":
    main()
