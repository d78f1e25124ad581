"""Where a PSA -> chat edit's CPU goes: one mode of bench/e2e_latency.py (callbacks at `--rate`), profiled.

The rig of bench/e2e_latency.py (fake ConnectWise, fake Slack, Deskbridge under uvicorn, App Homes open), then
edits with callbacks at `--rate` for `--seconds`, and the CPU of that mode: per thread (bench/_e2e_cpu.py) and,
with `--spy FILE`, py-spy's samples of every thread of this process for the mode (collapsed stacks, `--format
raw`; needs `pip install py-spy`), summarised per file group (webhook intake and sync, notifier, outbound queue,
card build, App Home, Slack client, SQL, fake Slack, ...). `--cprofile FILE`: cProfile of the event loop's
thread instead (heavier, distorts asyncio; the top functions are printed).

    .venv/bin/python bench/e2e_profile.py --spy /tmp/spy.txt            # ~1 min, prints the groups
    .venv/bin/python bench/e2e_profile.py --summarise /tmp/spy.txt      # the groups of an earlier record
    .venv/bin/python bench/e2e_profile.py --code /work/main --spy /tmp/main.txt   # main's code, same bench
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
if "--code" in sys.argv:
    from bench._e2e_ab import shim

    sys.path.insert(0, shim(sys.argv[sys.argv.index("--code") + 1]))

import argparse  # noqa: E402
import asyncio  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import multiprocessing as mp  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections import Counter  # noqa: E402
from typing import Any  # noqa: E402

# Where a sample's time goes: the innermost frame of the stack whose file matches (first match wins, innermost
# first), so time in SQLAlchemy called from the notifier counts as SQL, and the notifier's own lines as notifier.
GROUPS = (
    ("fake Slack (not ours)", ("tests/fakes/",)),
    ("bench itself", ("bench/",)),
    ("SQL: sqlalchemy / sqlite", ("sqlalchemy/", "aiosqlite/", "sqlite3", "sqlmodel/")),
    ("HTTP client: slack_sdk", ("slack_sdk/",)),
    ("HTTP client: aiohttp / httpx", ("aiohttp/", "httpx/", "httpcore/", "yarl/", "multidict/")),
    ("HTTP server: uvicorn / starlette / fastapi", ("uvicorn/", "starlette/", "fastapi/", "h11/", "httptools/")),
    ("pydantic", ("pydantic/", "pydantic_core/")),
    ("json", ("json/",)),
    ("logging", ("logging/",)),
    ("Slack outbound queue", ("bot/slack/outbound.py",)),
    ("Slack notifier", ("bot/slack/notifier.py",)),
    ("App Home", ("bot/slack/home.py",)),
    ("Slack blocks", ("bot/slack/blocks.py", "bot/slack/text.py", "bot/slack/home_view")),
    ("Slack other", ("bot/slack/",)),
    ("card build (core/chat)", ("core/chat/cards.py", "core/chat/card_cache.py", "core/chat/visibility.py",
                                "core/chat/alert_chips.py")),
    ("core/chat other", ("core/chat/",)),
    ("sync / webhooks", ("core/sync/",)),
    ("connectors", ("connectors/",)),
    ("store", ("store/",)),
    ("core other", ("core/",)),
    ("bot other", ("bot/",)),
    ("asyncio", ("asyncio/",)),
)
# The work a sample belongs to: the outermost frame of one of these (under the event loop's Handle._run, the
# task or callback that runs: a notifier worker, a channel's drain task, a webhook request, an SQLite thread).
ENTRY = ("bot/", "core/", "store/", "connectors/", "tests/fakes/", "uvicorn/", "starlette/", "aiosqlite/",
         "concurrent/futures/", "bench/_")
OURS = ("bot/", "core/", "store/", "connectors/")


def _match(frame: str, patterns: tuple[str, ...]) -> bool:
    return any(p in frame for p in patterns)


def _file(frame: str) -> str:
    return frame.rpartition(" (")[2].rstrip(")")


def summarise(path: str, top: int = 30) -> dict[str, Any]:
    """py-spy raw (collapsed) stacks -> share of samples per group (innermost), per entry (the outermost frame of
    the work: which task or thread asked for it) and per innermost frame of our own code."""
    groups: Counter[str] = Counter()
    entries: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    total = 0
    for line in Path(path).read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = stack.split(";")
        inner = next((name for f in reversed(frames) for name, pats in GROUPS if _match(_file(f), pats)), "other")
        groups[inner] += n
        entry = next((f for f in frames if _file(f).startswith(ENTRY) and "e2e_profile" not in f), "other: " + frames[-1])
        entries[entry.split(" (")[0] + " (" + _file(entry).split(":")[0] + ")"] += n
        ours = next((f for f in reversed(frames) if _file(f).startswith(OURS)), None)
        leaves[ours or "(none of ours)"] += n

    def share(c: Counter[str]) -> dict[str, float]:
        return {k: round(100 * v / max(total, 1), 1) for k, v in c.most_common(top)}
    return {"samples": total, "pct_by_innermost_group": share(groups), "pct_by_entry": share(entries),
            "pct_by_innermost_frame_of_our_code": share(leaves)}


class TaskCpu:
    """CPU (this thread's clock) of every event-loop callback, by the task it steps: which coroutine, and for a
    notifier worker the kind of event it is delivering, for a channel's drain task what it is sending. SQL run in
    SQLAlchemy's greenlets counts for the task that awaited it; the SQLite threads are counted per thread."""

    def __init__(self) -> None:
        self.cpu: Counter[str] = Counter()
        self.calls: Counter[str] = Counter()
        self.labels: dict[Any, str] = {}  # task -> what it is doing now (set by the wrappers below)
        self._undo: list[tuple[Any, str, Any]] = []
        self._thread = 0

    def install(self) -> None:
        import threading
        from asyncio import events

        from bot.slack.notifier import SlackNotifier
        from bot.slack.outbound import SlackOutbound

        self._thread = threading.get_ident()
        me = self
        run = events.Handle._run

        def timed_run(handle: Any) -> None:
            if threading.get_ident() != me._thread:
                return run(handle)
            cb = handle._callback
            task = getattr(cb, "__self__", None)
            if isinstance(task, asyncio.Task):
                name = me.labels.get(task) or task.get_coro().__qualname__
            else:
                name = "callback " + getattr(cb, "__qualname__", type(cb).__name__)
            t = time.thread_time()
            try:
                return run(handle)
            finally:
                me.cpu[name] += time.thread_time() - t
                me.calls[name] += 1

        deliver = SlackNotifier.deliver

        async def labelled_deliver(notifier: Any, event: Any) -> None:
            task = asyncio.current_task()
            me.labels[task] = f"SlackNotifier.deliver {type(event).__name__}"
            try:
                await deliver(notifier, event)
            finally:
                me.labels.pop(task, None)

        send = SlackOutbound._send

        async def labelled_send(outbound: Any, item: Any) -> None:
            task = asyncio.current_task()
            what = "thread post" if item.kind == "post" and item.args.get("thread_ts") else item.kind
            me.labels[task] = f"SlackOutbound._send {what}{' (rendered)' if item.render else ''}"
            try:
                await send(outbound, item)
            finally:
                me.labels.pop(task, None)

        for owner, attr, new in ((events.Handle, "_run", timed_run), (SlackNotifier, "deliver", labelled_deliver),
                                 (SlackOutbound, "_send", labelled_send)):
            self._undo.append((owner, attr, getattr(owner, attr)))
            setattr(owner, attr, new)

    def uninstall(self) -> None:
        for owner, attr, old in reversed(self._undo):
            setattr(owner, attr, old)
        self._undo.clear()

    def summary(self, edits: int, top: int = 30) -> dict[str, Any]:
        n = max(edits, 1)
        return {"ms_per_edit": {k: round(v * 1000 / n, 2) for k, v in self.cpu.most_common(top)},
                "steps": {k: self.calls[k] for k, _ in self.cpu.most_common(top)},
                "sum_ms_per_edit": round(sum(self.cpu.values()) * 1000 / n, 1)}


def _spy(out: str, seconds: float) -> subprocess.Popen[bytes] | None:
    exe = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(exe).exists():
        print("py-spy not installed (.venv/bin/pip install py-spy): no samples", file=sys.stderr)
        return None
    return subprocess.Popen([exe, "record", "--pid", str(os.getpid()), "--format", "raw", "--rate", "200",
                             "--duration", str(int(seconds) + 1), "--output", out, "--nonblocking"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    from bench._e2e_home import open_homes
    from bench._e2e_setup import Rig
    from bench.e2e_latency import psa_to_chat

    logging.basicConfig(level=logging.WARNING)
    rig = Rig(Path(tempfile.mkdtemp(prefix="e2e_profile_")), customers=args.customers, cards_per_customer=args.cards)
    await rig.start()
    try:
        await open_homes(rig)
        await rig.settle()
        spy = _spy(args.spy, args.seconds + args.tail) if args.spy else None
        prof = None
        if args.cprofile:
            import cProfile

            prof = cProfile.Profile(time.thread_time)
            prof.enable()
        load = os.getloadavg()[0]
        tasks = TaskCpu()
        tasks.install()
        try:
            mode = await psa_to_chat(rig, rate=args.rate, seconds=args.seconds, callbacks=True, interval=10.0,
                                     drain_s=args.drain)
        finally:
            tasks.uninstall()
        if prof is not None:
            prof.disable()
            prof.dump_stats(args.cprofile)
        if spy is not None:
            await asyncio.to_thread(spy.wait)
    finally:
        await rig.stop()
    out = {"load_average_1m": [round(load, 2), round(os.getloadavg()[0], 2)], "rate": args.rate,
           "seconds": args.seconds, "edits": mode["edits"],
           # this process and the callback refresh worker process (bot/refresh_worker.py; 0 when re-reads run here)
           "cpu_ms_per_edit": mode["cpu_ms_per_edit"],
           "main_process_cpu_ms_per_edit": mode.get("main_process_cpu_ms_per_edit", mode["cpu_ms_per_edit"]),
           "refresh_worker_cpu_ms_per_edit": mode["cpu_split"].get("refresh_worker_ms_per_edit", 0.0),
           "loop_cpu_ms_per_edit": mode["cpu_split"]["by_thread_ms_per_edit"].get("loop"),
           "cpu_split": mode["cpu_split"], "loop_cpu_by_task": tasks.summary(mode["edits"]),
           "surfaces_p50_p95": {k: (v["p50_s"], v["p95_s"], v["n"]) for k, v in mode["surfaces"].items()}}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rate", type=float, default=20.0)
    ap.add_argument("--seconds", type=float, default=15.0)
    ap.add_argument("--customers", type=int, default=10)
    ap.add_argument("--cards", type=int, default=3)
    ap.add_argument("--drain", type=float, default=30.0)
    ap.add_argument("--tail", type=float, default=5.0, help="py-spy keeps sampling this long after the edits")
    ap.add_argument("--spy", help="py-spy raw samples of the mode written here, then summarised")
    ap.add_argument("--cprofile", help="cProfile (event loop thread) of the mode written here")
    ap.add_argument("--summarise", help="only summarise an earlier --spy file")
    ap.add_argument("--code", help="run this directory's product code with this tree's bench")
    ap.add_argument("--out", help="also write the JSON here")
    args = ap.parse_args()
    if args.summarise:
        print(json.dumps(summarise(args.summarise), indent=2))
        return
    out = asyncio.run(run(args))
    if args.spy and Path(args.spy).exists():
        out["spy"] = summarise(args.spy)
    out["code"] = args.code or "this tree"
    out["refresh_worker"] = os.environ.get("DESKBRIDGE_REFRESH_WORKER", "process (default)")
    print(json.dumps(out, indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    mp.set_start_method("spawn", force=True)
    main()
