"""Time to ack Slack requests under load, while a PSA sync runs in the same server (issue 7).

Three processes on 127.0.0.1, so none steals another's event loop:
  - the server: `deskbridge serve` (uvicorn, 1 process; SQLite, sandbox PSA synced every 5 s, scheduler and
    outbox worker on, Slack token mode) with the Slack Web API pointed at
  - the fake Slack Web API (tests/fakes/slack_api.py), in a thread of this (otherwise idle) orchestrator;
  - the load generator: this file with `--client`, a separate process driving raw HTTP/1.1 keep-alive
    connections (bench/_http.py). Every body is built and signed (v0 HMAC, fresh timestamp) before timing
    starts; each latency is client-side, from writing the request to reading the whole HTTP response (the ack).

Patterns, each for `GET /healthz` (the baseline: HTTP + framework floor of this machine) and for Slack
requests (signed `/tickets mine` slash commands and "Change status" button clicks, 50/50):
  - burst: 200 requests written at once, one per connection (simultaneous arrival), `--rounds` times; each
    round waits for the scheduled sync to be running first;
  - sustained: 200 closed-loop clients (each sends its next request as soon as its previous ack arrives)
    for `--seconds` after a 1 s warm-up.
After each Slack pattern the orchestrator waits until the fake has received every follow-up the listeners
make after the ack (one response_url post per command, one views.open per click) and reports when that
work finished. Whether each measurement overlapped a sync run is read from the sync_run table. Requests the
server sheds because its post-ack queue is full (503, or a "very busy" slash answer; Slack retries or tells
the user) are counted apart as `shed`: the sustained pattern offers far more than post-ack work can follow.

    .venv/bin/python bench/slack_ack.py [--rounds 5] [--concurrency 200] [--seconds 5]

Loopback only, bounded (about a minute). Writes bench/results/slack_ack.json.
"""

from __future__ import annotations

import sys
from pathlib import Path

# bench/ holds modules named like stdlib ones (bench/queue.py): never let it shadow them.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse  # noqa: E402
import asyncio  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import socket  # noqa: E402
import sqlite3  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from datetime import UTC, datetime, timedelta  # noqa: E402
from typing import Any  # noqa: E402
from urllib.parse import urlencode  # noqa: E402

from bench._http import Conn, build_request  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SECRET = "bench-signing-secret"  # noqa: S105 - a loopback-only test secret
TEAM = "T0001"
USER = "U_BENCH"
HOST = "127.0.0.1"
TARGET_P99_MS = 150.0
TRIGGER_TTL_S = 3.0  # Slack's validity of a trigger id


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


def summary(ms: list[float]) -> dict[str, float]:
    return {"n": len(ms), "p50_ms": round(statistics.median(ms), 2), "p90_ms": round(pct(ms, 90), 2),
            "p99_ms": round(pct(ms, 99), 2), "max_ms": round(max(ms), 2)}


# ---------------------------------------------------------------------------------------------- load client


class Signer:
    """Builds signed Slack requests (slash commands and block_actions clicks) as raw HTTP bytes."""

    def __init__(self, fake_port: int, number: str) -> None:
        from slack_sdk.signature import SignatureVerifier

        self.verifier = SignatureVerifier(SECRET)
        self.fake_port = fake_port
        self.number = number
        self.n = 0

    def _raw(self, body: str) -> bytes:
        ts = str(int(time.time()))
        headers = {"X-Slack-Request-Timestamp": ts,
                   "X-Slack-Signature": self.verifier.generate_signature(timestamp=ts, body=body),
                   "Content-Type": "application/x-www-form-urlencoded"}
        return build_request("POST", "/slack/events", HOST, headers, body.encode())

    def next(self) -> bytes:
        self.n += 1
        n = self.n
        hook = f"http://127.0.0.1:{self.fake_port}/webhook/b{n}"
        if n % 2:
            return self._raw(urlencode({"team_id": TEAM, "channel_id": "C_BENCH", "user_id": USER,
                                        "command": "/tickets", "text": "mine", "response_url": hook,
                                        "trigger_id": f"t.{n}"}))
        payload = {"type": "block_actions", "team": {"id": TEAM}, "user": {"id": USER, "team_id": TEAM},
                   "trigger_id": f"t.{n}", "response_url": hook, "channel": {"id": "C_BENCH"},
                   "container": {"type": "message", "message_ts": "1.1"}, "message": {"ts": "1.1"},
                   "actions": [{"action_id": "db_status", "value": self.number, "action_ts": f"{time.time()}.{n}"}]}
        return self._raw(urlencode({"payload": json.dumps(payload)}))


HEALTHZ = build_request("GET", "/healthz", HOST)


async def _fresh(conns: list[Conn]) -> None:
    """(Re)open every connection and send one /healthz on each, before timing (uvicorn drops idle ones)."""
    for c in conns:
        await c.close()
    await asyncio.gather(*(c.send(HEALTHZ) for c in conns))
    await asyncio.sleep(0.2)


async def client_main(port: int, fake_port: int, number: str, concurrency: int) -> None:
    """`--client` mode: JSON commands on stdin, one JSON result per line on stdout."""
    conns = [Conn(HOST, port) for _ in range(concurrency)]
    signer = Signer(fake_port, number)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    prepared: Any = None
    while line := await reader.readline():
        cmd = json.loads(line)
        if cmd["op"] == "quit":
            break
        if cmd["op"] == "prepare":  # sign the bodies and open fresh connections; nothing is timed yet
            kind = cmd["kind"]
            if cmd["pattern"] == "burst":
                raws = [HEALTHZ if kind == "healthz" else signer.next() for _ in conns]
                prepared = lambda raws=raws: _burst(conns, raws)  # noqa: E731
            else:
                per_client = int(cmd["per_client"])
                pools = [[HEALTHZ if kind == "healthz" else signer.next() for _ in range(per_client)] for _ in conns]
                prepared = lambda pools=pools, c=cmd: _sustained(  # noqa: E731
                    conns, pools, float(c["seconds"]), float(c["warmup"]))
            await _fresh(conns)
            result: dict[str, Any] = {"ready": True, "n_errors": 0}
        else:  # go
            result = await prepared()
        sys.stdout.write(json.dumps(result) + "\n")
        sys.stdout.flush()
    for c in conns:
        await c.close()


def shed(status: int, body: bytes) -> bool:
    """The server refused the request because its post-ack queue was full (load shedding, not an error):
    503 for events and clicks, a 200 "very busy" answer for slash commands."""
    return status == 503 or (status == 200 and b"very busy" in body)


async def _burst(conns: list[Conn], raws: list[bytes]) -> dict[str, Any]:
    lat: list[float] = []
    bad: list[int] = []
    n_shed = 0

    async def one(c: Conn, raw: bytes) -> None:
        nonlocal n_shed
        t = time.perf_counter()
        status, body = await c.send(raw)
        lat.append((time.perf_counter() - t) * 1000)
        if shed(status, body):
            n_shed += 1
        elif status != 200:
            bad.append(status)

    start = time.monotonic()
    await asyncio.gather(*(one(c, r) for c, r in zip(conns, raws, strict=True)))
    return {"ms": lat, "errors": bad[:5], "n_errors": len(bad), "start": start, "end": time.monotonic(),
            "sent": len(raws), "n_shed": n_shed}


async def _sustained(conns: list[Conn], pools: list[list[bytes]], seconds: float, warmup: float) -> dict[str, Any]:
    lat: list[float] = []
    bad: list[int] = []
    sent = 0
    exhausted = 0
    n_shed = shed_all = 0
    start = time.perf_counter()
    measure_from, stop = start + warmup, start + warmup + seconds

    async def worker(c: Conn, pool: list[bytes]) -> None:
        nonlocal sent, exhausted, n_shed, shed_all
        for raw in pool:
            t = time.perf_counter()
            if t >= stop:
                return
            status, body = await c.send(raw)
            sent += 1
            shed_all += shed(status, body)
            if t >= measure_from:
                lat.append((time.perf_counter() - t) * 1000)
                if shed(status, body):
                    n_shed += 1
                elif status != 200:
                    bad.append(status)
        exhausted += 1

    mono = time.monotonic() - (time.perf_counter() - start)
    await asyncio.gather(*(worker(c, p) for c, p in zip(conns, pools, strict=True)))
    return {"ms": lat, "errors": bad[:5], "n_errors": len(bad), "start": mono + warmup, "end": time.monotonic(),
            "sent": sent, "rps": round(len(lat) / seconds, 1), "clients_out_of_signed_bodies": exhausted,
            "n_shed": n_shed, "shed_all": shed_all}


# ---------------------------------------------------------------------------------------------- orchestrator


def capacity(rounds: list[dict[str, Any]], n: int, slack_rps: float, healthz_rps: float) -> dict[str, Any]:
    """Server wall time per ack, from the bursts (last ack / N) and from the closed loop (1 / rate)."""
    last = [r["slack_last_ack_ms"] for r in rounds]
    return {
        "note": "one event loop acks everything: a simultaneous burst of N ends at about N x the time per ack, plus "
                "whatever else holds the loop meanwhile (the sync's own steps, jobs already started)",
        "burst_ms_per_ack_fastest_round": round(min(last) / n, 3),
        "burst_ms_per_ack_slowest_round": round(max(last) / n, 3),
        "closed_loop_ms_per_ack": round(1000 / slack_rps, 3),
        "closed_loop_ms_per_healthz": round(1000 / healthz_rps, 3),
        "burst_rounds_with_p99_under_target": sum(r["slack_p99_ms"] < TARGET_P99_MS for r in rounds),
    }



class FakeThread:
    """The fake Slack Web API on its own event loop in a thread; records when each follow-up arrived."""

    def __init__(self) -> None:
        from tests.fakes.slack_api import FakeSlackApi

        class TimedFake(FakeSlackApi):
            async def _webhook(self, request: Any) -> Any:
                resp = await super()._webhook(request)
                self.webhooks[-1]["at"] = time.monotonic()
                return resp

        self.fake = TimedFake(team_id=TEAM)
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True, name="fake-slack")
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.fake.start(), self.loop).result(10)

    def followups(self, since: float) -> tuple[int, float | None]:
        """Follow-ups (response_url posts, views.open calls) received since `since`, and the last one's time."""
        times = [float(w["at"]) for w in list(self.fake.webhooks) if w.get("at", 0) >= since]
        times += [c.at for c in list(self.fake.calls) if c.method == "views.open" and c.at >= since]
        return len(times), (max(times) if times else None)

    def trigger_ages(self, since: float) -> list[float]:
        """Seconds from the burst's start to each views.open received since (the trigger's age when used:
        Slack refuses a trigger id older than 3 s)."""
        return [c.at - since for c in list(self.fake.calls) if c.method == "views.open" and c.at >= since]

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.fake.stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def member_and_ticket(db: Path) -> tuple[str, str]:
    with sqlite3.connect(db) as conn:
        row = conn.execute("SELECT m.email, t.number FROM member m JOIN ticket t ON t.assignee_member_id = m.id "
                           "WHERE m.email IS NOT NULL AND t.number IS NOT NULL AND t.stage IN ('new','in_progress',"
                           "'waiting') ORDER BY m.id LIMIT 1").fetchone()
    if row is None:
        raise LookupError("no synced ticket with an assigned technician yet")
    return str(row[0]), str(row[1])


def sync_runs(db: Path) -> list[tuple[datetime, datetime | None, str]]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT started_at, finished_at, status FROM sync_run").fetchall()
    return [(datetime.fromisoformat(s).replace(tzinfo=UTC), datetime.fromisoformat(f).replace(tzinfo=UTC) if f
             else None, st) for s, f, st in rows]


class Clock:
    """Maps time.monotonic() (shared by the processes on Linux) to UTC wall time."""

    def __init__(self) -> None:
        self.mono, self.utc = time.monotonic(), datetime.now(UTC)

    def at(self, mono: float) -> datetime:
        return self.utc + timedelta(seconds=mono - self.mono)


def overlapped(db: Path, clock: Clock, start: float, end: float) -> bool:
    a, b = clock.at(start), clock.at(end)
    return any(s <= b and (f is None or f >= a) for s, f, _ in sync_runs(db))


def sync_running(db: Path) -> bool:
    return any(st == "running" for _, _, st in sync_runs(db))


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.tmp = Path(tempfile.mkdtemp(prefix="slack_ack_"))
        self.db = self.tmp / "bench.db"
        self.port = free_port()
        self.fake = FakeThread()
        self.clock = Clock()
        self.client: subprocess.Popen[str] | None = None
        self.server: subprocess.Popen[bytes] | None = None
        self.background: subprocess.Popen[bytes] | None = None

    def start_server(self) -> None:
        from store.crypto import generate_key

        env = {**os.environ, "DESKBRIDGE_DATABASE_URL": f"sqlite:///{self.db}", "DESKBRIDGE_SECRET_KEY": generate_key(),
               "DESKBRIDGE_SECRET_KEY_FILE": str(self.tmp / "secret.key"),
               "DESKBRIDGE_SLACK_BOT_TOKEN": "xoxb-test-token", "DESKBRIDGE_SLACK_SIGNING_SECRET": SECRET,
               "DESKBRIDGE_SLACK_API_URL": self.fake.fake.api_url, "DESKBRIDGE_LOG_LEVEL": "ERROR",
               "DESKBRIDGE_SYNC_INTERVAL_SECONDS": str(self.args.sync_interval), "DESKBRIDGE_SANDBOX": "on"}
        if self.args.split:
            # Split deployment: the web process only answers; `deskbridge background` syncs and delivers.
            env = {**env, "DESKBRIDGE_RUN_SCHEDULER": "false", "DESKBRIDGE_RUN_OUTBOX_WORKER": "false"}
            self.background = subprocess.Popen(
                [str(Path(sys.executable).parent / "deskbridge"), "background"], cwd=self.tmp,
                env={**env, "DESKBRIDGE_RUN_SCHEDULER": "true", "DESKBRIDGE_RUN_OUTBOX_WORKER": "true"},
                stdout=subprocess.DEVNULL, stderr=(self.tmp / "background.log").open("wb"))
        self.server = subprocess.Popen([str(Path(sys.executable).parent / "deskbridge"), "serve", "--host", HOST,
                                        "--port", str(self.port)], cwd=self.tmp, env=env,
                                       stdout=subprocess.DEVNULL, stderr=(self.tmp / "server.log").open("wb"))
        for _ in range(300):
            if self.server.poll() is not None:
                raise SystemExit("the server exited during start-up")
            try:
                with socket.create_connection((HOST, self.port), timeout=1) as s:
                    s.sendall(build_request("GET", "/readyz", HOST, {"Connection": "close"}))
                    if s.recv(64).startswith(b"HTTP/1.1 200"):
                        break
            except OSError:
                pass
            time.sleep(0.1)
        else:
            raise SystemExit("the server did not become ready")

    def start_client(self, number: str) -> None:
        self.client = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--client", str(self.port),
                                        str(self.fake.fake.port), number, str(self.args.concurrency)],
                                       stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT)

    def ask(self, **cmd: Any) -> dict[str, Any]:
        assert self.client is not None and self.client.stdin and self.client.stdout
        self.client.stdin.write(json.dumps(cmd) + "\n")
        self.client.stdin.flush()
        line = self.client.stdout.readline()
        if not line:
            raise SystemExit("the load client died")
        out = json.loads(line)
        if out["n_errors"]:
            raise SystemExit(f"{out['n_errors']} requests failed in {cmd}: {out['errors']} (server log: "
                             f"{self.tmp / 'server.log'})")
        return out

    def measure(self, pattern: str, kind: str, *, align_with_sync: bool = False, **extra: Any) -> dict[str, Any]:
        """Prepare the client (sign bodies, fresh sockets), optionally wait for a sync to start, then go."""
        if align_with_sync:
            self.wait_until_shortly_before_next_sync()
        for _ in range(5):
            self.ask(op="prepare", pattern=pattern, kind=kind, **extra)
            # uvicorn closes keep-alive sockets idle for 5 s: if no sync started within 3 s, open fresh ones
            if not align_with_sync or self.wait_for_sync(timeout=3.0):
                break
        return self.ask(op="go")

    def wait_until_shortly_before_next_sync(self, lead_s: float = 1.0) -> None:
        """Sleep until about `lead_s` before the next scheduled sync (keep-alive sockets idle < 5 s)."""
        runs = sync_runs(self.db)
        if not runs:
            return
        last = max(s for s, _, _ in runs)
        due = last + timedelta(seconds=self.args.sync_interval) - timedelta(seconds=lead_s)
        wait = (due - datetime.now(UTC)).total_seconds()
        if 0 < wait < self.args.sync_interval:
            time.sleep(wait)

    def wait_followups(self, since: float, expected: int, timeout: float = 180) -> float | None:
        """Seconds from `since` until the last expected follow-up reached the fake (None: not all arrived)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            n, last = self.fake.followups(since)
            if n >= expected and last is not None:
                return round(last - since, 3)
            time.sleep(0.05)
        return None

    def wait_for_sync(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if sync_running(self.db):
                return True
            time.sleep(0.005)
        return False

    def run(self) -> dict[str, Any]:
        a = self.args
        self.start_server()
        for _ in range(600):  # the first (full) sandbox sync brings tickets a couple of seconds after start
            try:
                email, number = member_and_ticket(self.db)
                break
            except (LookupError, sqlite3.OperationalError):
                time.sleep(0.1)
        else:
            raise SystemExit("the sandbox sync brought no tickets")
        self.fake.fake.add_user(USER, email=email, name="Bench Tech")
        self.start_client(number)
        load_before = os.getloadavg()[0]
        measuring_from = datetime.now(UTC)
        # warm-up: links the Slack user (users.info), fills caches, opens the keep-alive sockets
        w = self.measure("burst", "slack")
        self.wait_followups(w["start"], w["sent"])
        self.measure("burst", "healthz")
        time.sleep(1.0)

        bursts: dict[str, list[float]] = {"healthz": [], "slack": []}
        triggers: list[float] = []
        rounds = []
        for _ in range(a.rounds):
            h = self.measure("burst", "healthz", align_with_sync=True)
            s = self.measure("burst", "slack", align_with_sync=True)
            done = self.wait_followups(s["start"], s["sent"])
            ages = self.fake.trigger_ages(s["start"])
            triggers += ages
            bursts["healthz"] += h["ms"]
            bursts["slack"] += s["ms"]
            rounds.append({"healthz_p99_ms": round(pct(h["ms"], 99), 2), "slack_p50_ms": round(pct(s["ms"], 50), 2),
                           "slack_p99_ms": round(pct(s["ms"], 99), 2),
                           "slack_last_ack_ms": round(max(s["ms"]), 2),
                           "followups_done_ms_after_burst_start": None if done is None else round(done * 1000),
                           "modals_opened": len(ages), "triggers_expired": sum(a > TRIGGER_TTL_S for a in ages),
                           "oldest_trigger_used_ms": round(max(ages) * 1000) if ages else None,
                           "healthz_overlapped_sync": overlapped(self.db, self.clock, h["start"], h["end"]),
                           "slack_overlapped_sync": overlapped(self.db, self.clock, s["start"], s["end"])})
            time.sleep(0.5)

        per_client = max(60, int((a.seconds + 1) * 25))  # signed bodies per client: ~3x what 6 s have used here
        sustained: dict[str, Any] = {}
        for kind in ("healthz", "slack"):
            r = self.measure("sustained", kind, seconds=a.seconds, warmup=1.0, per_client=per_client)
            entry: dict[str, Any] = {**summary(r["ms"]), "rps": r["rps"],
                                     "overlapped_sync": overlapped(self.db, self.clock, r["start"], r["end"]),
                                     "clients_out_of_signed_bodies": r["clients_out_of_signed_bodies"],
                                     "shed": r.get("n_shed", 0),
                                     "shed_share": round(r.get("n_shed", 0) / max(1, len(r["ms"])), 3)}
            if kind == "slack":
                t_end = r["end"]
                # requests shed (queue full: 503 / "very busy") start no follow-up
                done = self.wait_followups(r["start"] - 1.0, r["sent"] - r.get("shed_all", 0))
                entry["followups_all_done_s_after_load_end"] = (
                    None if done is None else round(r["start"] - 1.0 + done - t_end, 2))
            sustained[kind] = entry
        hb, sb = summary(bursts["healthz"]), summary(bursts["slack"])
        runs = sorted(sync_runs(self.db))
        durations = [(f - st).total_seconds() for st, f, _ in runs if f is not None and st >= measuring_from]
        return {
            "benchmark": "slack_ack", "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "cpu_count": os.cpu_count(), "load_average_1m_before": round(load_before, 2),
            "load_average_1m_after": round(os.getloadavg()[0], 2),
            "server": ("deskbridge serve (web only) + deskbridge background (scheduler, outbox) in a second "
                       "process" if a.split else "deskbridge serve (uvicorn, 1 process), scheduler + outbox worker on")
                      + f", SQLite, sandbox PSA synced every {a.sync_interval} s, Slack token mode",
            "client": "separate process, raw HTTP/1.1 keep-alive (bench/_http.py), one connection per concurrent "
                      "request, bodies signed before timing; latency = write of the request -> whole response read",
            "fake_slack_api": "aiohttp in a thread of the orchestrator process (idle while measuring)",
            "sync_runs_during_bench": {
                "incremental_runs": len(durations), "median_s": round(statistics.median(durations), 3) if durations
                else None, "max_s": round(max(durations), 3) if durations else None,
                "note": "the sandbox's incremental sync is short; each burst is fired the moment a run is seen "
                        "running (polled every 5 ms), and overlap is read back from sync_run"},
            "mix": "50% signed `/tickets mine` slash commands, 50% `Change status` block_actions clicks",
            "target_p99_ms": TARGET_P99_MS,
            "burst": {"pattern": f"{a.concurrency} requests written at once (simultaneous arrival), {a.rounds} rounds, "
                                 "each round started while a scheduled sync was running",
                      "healthz_baseline": hb, "slack_ack": sb,
                      "ratio_p50": round(sb["p50_ms"] / hb["p50_ms"], 2),
                      "ratio_p99": round(sb["p99_ms"] / hb["p99_ms"], 2),
                      "meets_target": sb["p99_ms"] < TARGET_P99_MS,
                      "triggers": {
                          "note": "each click's views.open, timed from the burst's start (all 200 requests written at "
                                  "once) to its arrival at the fake Slack API; Slack refuses triggers older than 3 s. "
                                  "Modal opens run ahead of response_url answers (bot/slack/work.py)",
                          "modals_opened": len(triggers), "expired": sum(a > TRIGGER_TTL_S for a in triggers),
                          "p50_ms": round(statistics.median(triggers) * 1000) if triggers else None,
                          "p99_ms": round(pct(triggers, 99) * 1000) if triggers else None,
                          "max_ms": round(max(triggers) * 1000) if triggers else None,
                          "meets_target": bool(triggers) and max(triggers) <= TRIGGER_TTL_S},
                      "rounds": rounds},
            "sustained": {"pattern": f"closed loop, {a.concurrency} clients, each sends its next request when its "
                                     f"previous ack arrives; {a.seconds} s measured after a 1 s warm-up",
                          "healthz_baseline": sustained["healthz"], "slack_ack": sustained["slack"],
                          "ratio_p50": round(sustained["slack"]["p50_ms"] / sustained["healthz"]["p50_ms"], 2),
                          "ratio_p99": round(sustained["slack"]["p99_ms"] / sustained["healthz"]["p99_ms"], 2),
                          "meets_target": sustained["slack"]["p99_ms"] < TARGET_P99_MS},
            "capacity": capacity(rounds, a.concurrency, sustained["slack"]["rps"], sustained["healthz"]["rps"]),
        }

    def close(self) -> None:
        if self.client is not None:
            try:
                if self.client.stdin:
                    self.client.stdin.write('{"op": "quit"}\n')
                    self.client.stdin.close()
                self.client.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self.client.kill()
        for proc in (self.server, self.background):
            if proc is None:
                continue
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
        self.fake.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--concurrency", type=int, default=200)
    ap.add_argument("--seconds", type=float, default=5.0, help="measured seconds of the sustained pattern")
    ap.add_argument("--sync-interval", type=int, default=5, help="the server's sync period (>= 5 s)")
    ap.add_argument("--no-write", action="store_true", help="print only; leave bench/results alone")
    ap.add_argument("--split", action="store_true",
                    help="split deployment: serve (web only) + deskbridge background (sync, outbox); results "
                         "go to slack_ack_split.json")
    ap.add_argument("--client", nargs=4, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.client:
        port, fake_port, number, concurrency = args.client
        asyncio.run(client_main(int(port), int(fake_port), number, int(concurrency)))
        return
    bench = Bench(args)
    try:
        result = bench.run()
    finally:
        bench.close()
    if not args.no_write:
        path = ROOT / "bench" / "results" / ("slack_ack_split.json" if args.split else "slack_ack.json")
        path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"{'pattern':<11}{'kind':<9}{'n':>7}{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}{'max ms':>9}{'req/s':>9}")
    for pattern in ("burst", "sustained"):
        for key, name in (("healthz_baseline", "healthz"), ("slack_ack", "slack")):
            r = result[pattern][key]
            print(f"{pattern:<11}{name:<9}{r['n']:>7}{r['p50_ms']:>9}{r['p90_ms']:>9}{r['p99_ms']:>9}{r['max_ms']:>9}"
                  f"{r.get('rps', ''):>9}")
    b, s = result["burst"], result["sustained"]
    print(f"burst: ratio p50 {b['ratio_p50']} p99 {b['ratio_p99']}; rounds overlapping a sync "
          f"{sum(r['slack_overlapped_sync'] for r in b['rounds'])}/{len(b['rounds'])}; follow-ups done (ms after "
          f"burst start) {[r['followups_done_ms_after_burst_start'] for r in b['rounds']]}")
    tr = b["triggers"]
    print(f"burst triggers: {tr['modals_opened']} modals opened, {tr['expired']} past 3 s; age when used p50 "
          f"{tr['p50_ms']} ms, p99 {tr['p99_ms']} ms, max {tr['max_ms']} ms")
    print(f"burst per round: slack p99 ms {[r['slack_p99_ms'] for r in b['rounds']]}, overlapped a sync "
          f"{[r['slack_overlapped_sync'] for r in b['rounds']]}")
    print(f"sustained: ratio p50 {s['ratio_p50']} p99 {s['ratio_p99']}; shed {s['slack_ack']['shed']} "
          f"({s['slack_ack']['shed_share']:.1%}, queue full); overlapped sync "
          f"{s['slack_ack']['overlapped_sync']}; follow-ups done "
          f"{s['slack_ack'].get('followups_all_done_s_after_load_end')} s after the load ended")
    print(f"p99 < {TARGET_P99_MS:.0f} ms: burst {b['meets_target']}, sustained {s['meets_target']}")


if __name__ == "__main__":
    main()
