"""The rig of bench/e2e_latency.py: fake ConnectWise (child process), fake Slack (thread), Deskbridge (uvicorn in
this loop), a ConnectWise connection synced once, one dispatch channel per customer, carded tickets."""

from __future__ import annotations

import asyncio
import json
import multiprocessing as mp
import socket
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import sqlalchemy as sa

HOST = "127.0.0.1"
TEAM = "T0001"
USER = "U_E2E_BOB"
SECRET = "e2e-signing-secret"  # noqa: S105 - a loopback-only test secret


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


class SlackThread:
    """The fake Slack Web API on its own loop in a thread (it stamps each call with time.monotonic())."""

    def __init__(self) -> None:
        from tests.fakes.slack_api import FakeSlackApi

        self.fake = FakeSlackApi(team_id=TEAM)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True, name="fake-slack")
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.fake.start(), self.loop).result(10)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.fake.stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)


class Rig:
    def __init__(self, tmp: Path, *, customers: int, cards_per_customer: int) -> None:
        self.tmp, self.customers, self.cards_per_customer = tmp, customers, cards_per_customer
        self.port = free_port()
        self.carded: list[int] = []  # PSA ids of tickets with a card in a dispatch channel
        self.token: dict[int, str] = {}  # PSA id -> the unique summary its card shows
        self.threads: dict[int, dict[str, Any]] = {}  # PSA id -> channel, thread_ts, card_ts, number
        self._lock = asyncio.Lock()
        self._scanned: dict[str, list[tuple[float, str, dict[str, Any]]]] = {}
        self._seen_n = 0
        self.burst_times: list[float] = []  # when each chat -> PSA burst was written (bench/_e2e_trace.py)

    # ------------------------------------------------------------ the PSA child process

    async def ask(self, cmd: str, arg: Any = None) -> Any:
        async with self._lock:
            return await asyncio.to_thread(self._ask, cmd, arg)

    def _ask(self, cmd: str, arg: Any) -> Any:
        self.pipe.send((cmd, arg))
        return self.pipe.recv()

    # ------------------------------------------------------------ start / stop

    async def start(self) -> None:
        import uvicorn

        from bench._cw_proc import serve
        from bot.api.app import create_app
        from bot.main import build
        from bot.settings import Settings
        from core.chat import ChatUser
        from core.context import Actor
        from store.crypto import generate_key

        self.pipe, child = mp.Pipe()
        self.proc = mp.get_context("spawn").Process(target=serve, args=(child, self.customers), daemon=True)
        self.proc.start()
        wiring = await asyncio.to_thread(self.pipe.recv)
        self.slack = SlackThread()
        self.slack.fake.add_user(USER, email="bob@msp.example", name="Bob Tech")
        settings = Settings(database_url=f"sqlite:///{self.tmp / 'e2e.db'}", secret_key=generate_key(),
                            secret_key_file=self.tmp / "secret.key", sandbox="off", workspace_slug="e2e",
                            run_scheduler=False, run_outbox_worker=True, slack_signing_secret=SECRET,
                            slack_bot_token="xoxb-test-token",  # noqa: S106 - the fake's token
                            slack_api_url=self.slack.fake.api_url, log_level="ERROR")
        self.c = build(settings)
        app = create_app(self.c)
        self.server = uvicorn.Server(uvicorn.Config(app, host=HOST, port=self.port, log_level="error",
                                                   access_log=False, lifespan="on"))
        self.server_task = asyncio.create_task(self.server.serve())
        while not self.server.started:
            if self.server_task.done():
                raise SystemExit("the server did not start")
            await asyncio.sleep(0.05)
        self.ws = int(self.c.default_workspace_id)  # type: ignore[arg-type]
        conn, _ = await self.c.connections.add(self.ws, kind="connectwise", name="cw", settings=wiring["settings"],
                                               credentials=wiring["credentials"])
        self.conn_id = int(conn.id)  # type: ignore[arg-type]
        self.webhook_path = f"/webhooks/{self.conn_id}/connectwise"
        outcome = await self.c.sync.run(self.conn_id)  # the first import: silent
        assert outcome.ok, outcome
        actor = Actor.system(self.ws)
        for i in range(self.customers):
            user = ChatUser(platform="slack", team_id=TEAM, user_id="U_ADMIN", channel_id=f"C_E2E{i}")
            await self.c.chat.bind(actor, user, "dispatch", f"E2E Customer {i}")
        await self._cards()

    async def _cards(self) -> None:
        """Tickets opened in the PSA (callback each), carded by dispatch; wait until every card is posted."""
        from store.db import Scope

        n = 0
        for _ in range(self.cards_per_customer):
            for i in range(self.customers):
                n += 1
                summary = f"E2E card k{n}x"
                got = await self.ask("new", (i, summary))
                headers, body = got["callback"]
                await self.c.sync.ingest_webhook(self.conn_id, "connectwise", headers, body)
                self.carded.append(int(got["id"]))
                self.token[int(got["id"])] = summary
        settled = getattr(self.c.sync.webhooks, "settled", None)  # absent in older code (--code): refreshed inline
        if settled is not None:
            await settled()  # callbacks are re-read after their answer (core/sync/callbacks.py)
        await self.settle(120)
        t = sa.table("ticket", sa.column("id"), sa.column("external_id"), sa.column("number"))
        async with self.c.db.read(Scope.workspace(self.ws)) as s:
            rows = (await s.execute(sa.select(t.c.id, t.c.external_id, t.c.number).where(
                t.c.external_id.in_([str(x) for x in self.carded])))).all()
        for local, ext, number in rows:
            posts = await self.c.chat.posts_for_ticket(self.ws, local, "slack")
            if posts:
                p = posts[0]
                self.threads[int(ext)] = {"channel": p.channel_id, "thread_ts": p.thread_ts, "card_ts": p.card_ts,
                                          "number": number}
        missing = [x for x in self.carded if x not in self.threads]
        if missing:
            raise SystemExit(f"{len(missing)} tickets got no dispatch card")

    def dispatch_channel(self, customer: int) -> str:
        """The dispatch channel of the customer a "new" edit with this index opens its ticket for (as bound in
        `start`: channel C_E2E{i} for "E2E Customer {i}"; bench/_cw_proc.py takes the index modulo customers)."""
        return f"C_E2E{customer % self.customers}"

    async def settle(self, within_s: float = 60.0) -> None:
        """Wait (bounded) until queued Slack work is done."""
        slack = self.c.slack
        if slack is None:
            return
        try:
            await asyncio.wait_for(slack.drain(), within_s)
        except TimeoutError:
            pass

    async def sync_every(self, interval: float) -> None:
        """What the scheduler's sync job does for this connection, every `interval` s."""
        nxt = time.monotonic()
        while True:
            nxt += interval
            await self.c.sync.run(self.conn_id)
            await asyncio.sleep(max(0.0, nxt - time.monotonic()))

    async def stop(self) -> None:
        try:
            self.server.should_exit = True
            await asyncio.wait_for(self.server_task, 30)
        finally:
            await self.c.aclose()
            self.pipe.send(("stop", None))
            self.proc.join(timeout=10)
            self.slack.stop()

    # ------------------------------------------------------------ what Slack received

    def _calls(self, method: str) -> list[tuple[float, str, dict[str, Any]]]:
        calls = self.slack.fake.calls
        end = len(calls)
        for call in calls[self._seen_n:end]:
            self._scanned.setdefault(call.method, []).append((call.at, json.dumps(call.args), call.args))
        self._seen_n = end
        return self._scanned.get(method, [])

    def seen_at(self, row: dict[str, Any]) -> float | None:
        """When Slack first received a call of row["method"] after row["at"] holding every needle."""
        if "seen" in row:
            return float(row["seen"])
        calls = self._calls(row["method"])
        start = row.get("_scan", 0)
        for i in range(start, len(calls)):
            at, text, args = calls[i]
            if at >= row["at"] and all(n in text for n in row["needles"]) and row.get("match", _any)(args):
                row["seen"] = at
                return at
        row["_scan"] = len(calls)
        return None

    def unseen(self, rows: list[dict[str, Any]]) -> int:
        return sum(1 for r in rows if self.seen_at(r) is None)

    def slack_counts(self) -> dict[str, int]:
        return dict(Counter(c.method for c in self.slack.fake.calls))


def _any(_: dict[str, Any]) -> bool:
    return True
