"""Time to ack Slack requests under load, while a PSA sync runs in the same server.

Starts `deskbridge serve` (uvicorn, SQLite, sandbox PSA, Slack token mode) on 127.0.0.1 with the Slack
Web API pointed at a loopback fake in this process. Waits until the server's scheduled sync of the
sandbox is running, then fires bursts of 200 concurrent requests:
  - baseline: GET /healthz;
  - slack: signed slash commands (/tickets mine) and button clicks (Change status) mixed 50/50.
Each burst is repeated a few times; the figures are client-side latency to the HTTP response (the ack).
Loopback only, bounded (a few rounds, a minute or two). Writes bench/results/slack_ack.json.

    .venv/bin/python bench/slack_ack.py [--rounds 3] [--concurrency 200]
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
import time  # noqa: E402
from urllib.parse import urlencode  # noqa: E402

import httpx  # noqa: E402
from slack_sdk.signature import SignatureVerifier  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

from store.crypto import generate_key  # noqa: E402
from tests.fakes.slack_api import FakeSlackApi  # noqa: E402

SECRET = "bench-signing-secret"  # noqa: S105 - a loopback-only test secret
TEAM = "T0001"
USER = "U_BENCH"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


def summary(ms: list[float]) -> dict[str, float]:
    return {"n": len(ms), "p50_ms": round(statistics.median(ms), 2), "p99_ms": round(pct(ms, 99), 2),
            "max_ms": round(max(ms), 2)}


class Load:
    def __init__(self, base: str, fake: FakeSlackApi) -> None:
        self.base = base
        self.fake = fake
        self.verifier = SignatureVerifier(SECRET)
        self.n = 0

    def signed(self, body: str) -> dict[str, str]:
        ts = str(int(time.time()))
        return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": self.verifier.generate_signature(
            timestamp=ts, body=body), "Content-Type": "application/x-www-form-urlencoded"}

    def slash(self) -> str:
        self.n += 1
        return urlencode({"team_id": TEAM, "channel_id": "C_BENCH", "user_id": USER, "command": "/tickets",
                          "text": "mine", "response_url": self.fake.response_url(f"b{self.n}"),
                          "trigger_id": f"t.{self.n}"})

    def click(self, number: str) -> str:
        self.n += 1
        payload = {"type": "block_actions", "team": {"id": TEAM}, "user": {"id": USER, "team_id": TEAM},
                   "trigger_id": f"t.{self.n}", "response_url": self.fake.response_url(f"b{self.n}"),
                   "channel": {"id": "C_BENCH"}, "container": {"type": "message", "message_ts": "1.1"},
                   "message": {"ts": "1.1"}, "actions": [{"action_id": "db_status", "value": number,
                                                          "action_ts": f"{time.time()}.{self.n}"}]}
        return urlencode({"payload": json.dumps(payload)})

    async def one(self, client: httpx.AsyncClient, method: str, path: str, body: str | None) -> tuple[float, int]:
        t0 = time.perf_counter()
        if body is None:
            r = await client.get(path)
        else:
            r = await client.post(path, content=body, headers=self.signed(body))
        return (time.perf_counter() - t0) * 1000, r.status_code

    async def burst(self, client: httpx.AsyncClient, kind: str, concurrency: int, number: str) -> list[float]:
        jobs = []
        for i in range(concurrency):
            if kind == "healthz":
                jobs.append(self.one(client, "GET", "/healthz", None))
            else:
                jobs.append(self.one(client, "POST", "/slack/events", self.slash() if i % 2 == 0 else self.click(number)))
        results = await asyncio.gather(*jobs)
        bad = [s for _, s in results if s != 200]
        if bad:
            raise SystemExit(f"{len(bad)} requests failed in the {kind} burst: {bad[:5]}")
        return [ms for ms, _ in results]


def sync_running(db: Path) -> tuple[int, int]:
    with sqlite3.connect(db) as conn:
        running = conn.execute("SELECT count(*) FROM sync_run WHERE status = 'running'").fetchone()[0]
        done = conn.execute("SELECT count(*) FROM sync_run WHERE status != 'running'").fetchone()[0]
    return int(running), int(done)


def member_email(db: Path) -> tuple[str, str]:
    with sqlite3.connect(db) as conn:
        row = conn.execute("SELECT m.email, t.number FROM member m JOIN ticket t ON t.assignee_member_id = m.id "
                           "WHERE m.email IS NOT NULL AND t.number IS NOT NULL AND t.stage IN ('new','in_progress',"
                           "'waiting') ORDER BY m.id LIMIT 1").fetchone()
    if row is None:
        raise LookupError("no synced ticket with an assigned technician yet")
    return str(row[0]), str(row[1])


async def main(rounds: int, concurrency: int, *, during_sync: bool = True) -> dict[str, object]:
    fake = await FakeSlackApi(team_id=TEAM).start()
    tmp = Path(tempfile.mkdtemp(prefix="slack_ack_"))
    db = tmp / "bench.db"
    port = free_port()
    env = {**os.environ, "DESKBRIDGE_DATABASE_URL": f"sqlite:///{db}", "DESKBRIDGE_SECRET_KEY": generate_key(),
           "DESKBRIDGE_SECRET_KEY_FILE": str(tmp / "secret.key"), "DESKBRIDGE_SLACK_BOT_TOKEN": "xoxb-test-token",
           "DESKBRIDGE_SLACK_SIGNING_SECRET": SECRET, "DESKBRIDGE_SLACK_API_URL": fake.api_url,
           "DESKBRIDGE_LOG_LEVEL": "ERROR", "DESKBRIDGE_SYNC_INTERVAL_SECONDS": "5" if during_sync else "3600", "DESKBRIDGE_SANDBOX": "on"}
    server = subprocess.Popen([str(  # noqa: ASYNC220 - started once, before any load
        Path(sys.executable).parent / "deskbridge"), "serve", "--host", "127.0.0.1",
                               "--port", str(port)], cwd=tmp, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    out: dict[str, object] = {}
    try:
        async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:
            for _ in range(300):
                try:
                    if (await client.get("/readyz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
            else:
                raise SystemExit("server did not become ready")
            # the first (full) sync runs a couple of seconds after start; wait for tickets, then warm up
            for _ in range(600):
                try:
                    email, number = member_email(db)
                    break
                except (LookupError, sqlite3.OperationalError):
                    await asyncio.sleep(0.1)
            else:
                raise SystemExit("the sandbox sync brought no tickets")
            fake.add_user(USER, email=email, name="Bench Tech")
            load = Load(base, fake)
            await load.burst(client, "slack", 4, number)
            await load.burst(client, "healthz", concurrency, number)  # open the keep-alive pool
            await asyncio.sleep(1.0)
            results: dict[str, list[float]] = {"healthz": [], "slack": []}
            overlapped = 0
            for _ in range(rounds):
                # wait for the next scheduled sync run to start, then fire while it runs
                before = sync_running(db)[1]
                for _ in range(150 if during_sync else 0):
                    running, _done = sync_running(db)
                    if running:
                        break
                    await asyncio.sleep(0.02)
                for kind in ("healthz", "slack"):
                    results[kind] += await load.burst(client, kind, concurrency, number)
                if during_sync and (sync_running(db)[0] or sync_running(db)[1] > before):
                    overlapped += 1
                await asyncio.sleep(2.0)  # the slack burst's work after the ack finishes before the next round
            out = {
                "concurrency": concurrency, "rounds": rounds, "rounds_overlapping_a_sync": overlapped,
                "server": "deskbridge serve (uvicorn, 1 process), SQLite, sandbox PSA, scheduler + outbox worker on",
                "client": "httpx in one Python process on the same 2 cores, keep-alive pool opened before timing",
                "during_sync": during_sync,
                "healthz_baseline": summary(results["healthz"]),
                "slack_ack": summary(results["slack"]),
            }
            out["ratio_p50"] = round(out["slack_ack"]["p50_ms"] / out["healthz_baseline"]["p50_ms"], 2)  # type: ignore[index]
            out["ratio_p99"] = round(out["slack_ack"]["p99_ms"] / out["healthz_baseline"]["p99_ms"], 2)  # type: ignore[index]
            out["target_p99_ms"] = 150
            out["meets_target"] = out["slack_ack"]["p99_ms"] < 150  # type: ignore[index]
            await asyncio.sleep(2.0)  # let lazy listeners finish before the server stops
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        await fake.stop()
    return out


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--concurrency", type=int, default=200)
    ap.add_argument("--idle", action="store_true", help="no sync during the bursts (for comparison)")
    args = ap.parse_args()
    result = asyncio.run(main(args.rounds, args.concurrency, during_sync=not args.idle))
    path = ROOT / "bench" / "results" / "slack_ack.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"{'burst':<10}{'n':>6}{'p50 ms':>10}{'p99 ms':>10}{'max ms':>10}")
    for key in ("healthz_baseline", "slack_ack"):
        r = result[key]
        print(f"{key:<10}{r['n']:>6}{r['p50_ms']:>10}{r['p99_ms']:>10}{r['max_ms']:>10}")  # type: ignore[index]
    print(f"ratio p50 {result['ratio_p50']}, p99 {result['ratio_p99']}; rounds overlapping a sync: "
          f"{result['rounds_overlapping_a_sync']}/{result['rounds']}; p99 < 150 ms: {result['meets_target']}")
