"""Callback re-reads in a worker process: the PSA side of a callback off the chat side's core.

At 20 callbacks/s a re-read batch (PSA reads, the sync write, SLA, events) was about half of the event loop's CPU,
and the GIL lets no thread help. `RefreshPool` (core/sync/callbacks.py) keeps deciding *what* to re-read (queue,
coalescing, retries); with `WorkerClient` it hands each batch (connection id + ticket ids) to a child process with
its own event loop, database engine and connectors, which runs `refresh_batch` there (read + write + forget the
pending rows). The batch's domain events are committed in the write's own transaction (core/sync/journal.py,
table event_journal) and delivered by the parent's `EventRelay`; the pipe carries only what the parent must know
at once:

    parent -> worker   ("hello", payload, watched tables, journal owner)   once, first
                       ("refresh", request id, connection id, ticket ids)
                       ("stop",)                                 finish running batches, then exit
    worker -> parent   ("tables", names)   a write committed to tables the parent's caches watch (dropped at once)
                       ("wake",)           events were committed: the relay reads the journal
                       ("done", request id, {ticket id: why it failed})

Frames are a 4-byte length and a pickle (parent and child are the same code; nothing else writes to the pipes).

Guarantees (tests/bot/test_refresh_worker.py, test_refresh_worker_journal.py):
- Nothing lost: the pending rows are deleted by the worker only after the batch's write committed, and the
  write's events are committed with it. A worker that dies fails its running batches in the parent ("the refresh
  worker stopped"), so the pool retries them after `RETRY_S[0]`; the relay reads the journal at once (events the
  dead worker committed but never announced are delivered then); a new worker is started (backoff when it keeps
  dying). The re-read of an already written ticket writes nothing new and announces nothing.
- Events once, in order: one relay per app hands the journal's rows to the Notifier in id order and deletes them;
  a batch resolves only once the relay delivered what was announced before its "done" (`settled()` means
  delivered); a ticket is in one batch at a time (the pool), so its events keep their commit order across
  batches and deaths.
  The window left: the app dies after handing a block of events to the notifier and before deleting it (one
  DELETE): that block is delivered again by its next start (core/sync/journal.py).
- One process writes what a batch writes; the parent writes the callback records and chat rows. On SQLite both
  processes' writes queue on SQLite's lock (WAL, BEGIN IMMEDIATE, busy_timeout: store/db.py).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import pickle
import struct
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from core.notify import DomainEvent, Notifier
from core.sync.callbacks import CallbackLog, refresh_batch
from core.sync.engine import SyncEngine
from core.sync.journal import EventJournal, EventRelay
from store.db import Database

log = logging.getLogger(__name__)

HEADER = struct.Struct(">I")
STOPPED = "the refresh worker stopped before finishing this batch; retried"
RESTART_S = (0.5, 1.0, 2.0, 5.0, 15.0, 30.0)  # waits before starting a worker again after quick deaths
STABLE_S = 30.0  # a worker that lived this long resets the backoff


def frame(message: Any) -> bytes:
    """One message as written to a pipe."""
    body = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return HEADER.pack(len(body)) + body


async def read_frame(reader: asyncio.StreamReader) -> Any:
    """The next message; EOFError when the other side closed the pipe (or died)."""
    try:
        head = await reader.readexactly(HEADER.size)
        body = await reader.readexactly(HEADER.unpack(head)[0])
    except asyncio.IncompleteReadError as exc:
        raise EOFError from exc
    return pickle.loads(body)  # noqa: S301 - our own child process, over its own pipes


class WorkerClient:
    """The parent's side: starts the worker (`argv`), sends it batches; `relay` delivers the events it commits."""

    def __init__(self, argv: Sequence[str], hello: Any, relay: EventRelay, db: Database, *,
                 env: Mapping[str, str] | None = None, restart_s: Sequence[float] = RESTART_S) -> None:
        self.argv = list(argv)
        self.env = dict(env) if env is not None else None
        self.hello = hello
        self.relay = relay
        self.db = db
        self.restart_s = tuple(restart_s)
        self.starts = 0  # processes started (tests look at it)
        self._proc: asyncio.subprocess.Process | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self._starting: asyncio.Lock | None = None
        self._pending: dict[int, tuple[asyncio.Future[dict[str, str]], list[str]]] = {}
        self._ids = itertools.count(1)
        self._deaths = 0
        self._started_at = 0.0
        self._stopping = False
        self._restarting: asyncio.Task[None] | None = None

    @property
    def events(self) -> int:
        """Events of the worker's writes handed to the notifier (by the relay)."""
        return self.relay.delivered

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None and self._proc.returncode is None else None

    async def start(self) -> None:
        """Deliver events a stopped app left in the journal, and start the worker now (else on the first batch)."""
        self._stopping = False
        await self.relay.start()
        await self._ensure()

    async def _ensure(self) -> asyncio.subprocess.Process:
        if self._starting is None:
            self._starting = asyncio.Lock()
        async with self._starting:
            if self._proc is not None and self._proc.returncode is None and self._reader_task is not None \
                    and not self._reader_task.done():
                return self._proc
            if self._deaths:
                await asyncio.sleep(self.restart_s[min(self._deaths, len(self.restart_s)) - 1])
            proc = await asyncio.create_subprocess_exec(*self.argv, stdin=asyncio.subprocess.PIPE,
                                                        stdout=asyncio.subprocess.PIPE, env=self.env,
                                                        start_new_session=True)  # a terminal's Ctrl-C is ours
            assert proc.stdin is not None and proc.stdout is not None
            proc.stdin.write(frame(("hello", self.hello, self.db.watched_tables(), self.relay.journal.owner)))
            self._proc, self._started_at = proc, time.monotonic()
            self.starts += 1
            self._reader_task = asyncio.create_task(self._read(proc), name="refresh-worker-reader")
            log.info("refresh worker started", extra={"pid": proc.pid})
            return proc

    async def refresh(self, cid: int, exts: list[str]) -> dict[str, str]:
        """Run one batch in the worker (the pool's Refresher); the ids that failed, with why."""
        if self._stopping:
            return dict.fromkeys(exts, STOPPED)
        proc = await self._ensure()
        rid = next(self._ids)
        fut: asyncio.Future[dict[str, str]] = asyncio.get_running_loop().create_future()
        self._pending[rid] = (fut, exts)
        assert proc.stdin is not None
        try:
            proc.stdin.write(frame(("refresh", rid, cid, exts)))
            await proc.stdin.drain()
        except (ConnectionError, RuntimeError):
            pass  # it died: the reader fails the batch
        try:
            return await fut
        finally:
            self._pending.pop(rid, None)

    async def _read(self, proc: asyncio.subprocess.Process) -> None:
        """Everything the worker says, in order; when it ends (death or stop), its running batches fail."""
        assert proc.stdout is not None
        try:
            while True:
                msg = await read_frame(proc.stdout)
                await self._handle(msg)
        except EOFError:
            pass
        except Exception:  # noqa: BLE001 - a broken frame: this worker is not trusted any more
            log.exception("refresh worker sent something unreadable; restarting it")
            proc.kill()
        await proc.wait()
        lived = time.monotonic() - self._started_at
        self.relay.wake()  # what it committed and never announced (killed between its commit and the pipe)
        for fut, exts in self._pending.values():
            if not fut.done():
                fut.set_result(dict.fromkeys(exts, STOPPED))
        if self._stopping:
            return
        self._deaths = 0 if lived > STABLE_S else self._deaths + 1
        log.warning("refresh worker stopped; starting another", extra={"pid": proc.pid, "code": proc.returncode})
        self._restarting = asyncio.create_task(self._restart(), name="refresh-worker-restart")

    async def _restart(self) -> None:
        if self._stopping:
            return
        try:
            await self._ensure()
        except Exception:  # noqa: BLE001 - the next batch tries again
            log.exception("could not start the refresh worker again")

    async def _handle(self, msg: tuple[Any, ...]) -> None:
        kind = msg[0]
        if kind == "wake":
            self.relay.wake()
        elif kind == "tables":
            self.db.tables_changed(msg[1])
        elif kind == "done":
            got = self._pending.get(msg[1])
            if got is not None and not got[0].done():
                # The batch resolves once its events are delivered (their "wake" came before this "done").
                self.relay.caught_up().add_done_callback(_resolver(got[0], dict(msg[2])))

    async def stop(self, grace_s: float = 5.0) -> None:
        """Ask the worker to finish its running batches and exit; killed after `grace_s`."""
        self._stopping = True
        try:
            await self._stop_process(grace_s)
        finally:
            await self.relay.stop()  # what its last batches committed (and nothing left running)

    async def _stop_process(self, grace_s: float) -> None:
        proc, task = self._proc, self._reader_task
        if proc is None or proc.returncode is not None:
            if task is not None:
                await asyncio.gather(task, return_exceptions=True)
            return
        assert proc.stdin is not None
        try:
            proc.stdin.write(frame(("stop",)))
            await proc.stdin.drain()
            proc.stdin.close()
        except (ConnectionError, RuntimeError):
            pass
        try:
            await asyncio.wait_for(proc.wait(), grace_s)
        except TimeoutError:
            log.warning("refresh worker did not stop in time; killed", extra={"pid": proc.pid})
            proc.kill()
            await proc.wait()
        if task is not None:
            await asyncio.gather(task, return_exceptions=True)


def _resolver(fut: asyncio.Future[dict[str, str]], result: dict[str, str]) -> Callable[[asyncio.Future[None]], None]:
    def resolve(_: asyncio.Future[None]) -> None:
        if not fut.done():
            fut.set_result(result)
    return resolve


class WakeNotifier:
    """The worker's Notifier: its events are already in the journal (committed with the write); the parent is only
    told to read it, once per burst of events."""

    WAKE = frame(("wake",))

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        self._due = False

    async def notify(self, event: DomainEvent) -> None:
        if not self._due:
            self._due = True
            asyncio.get_running_loop().call_soon(self._send)

    def _send(self) -> None:
        self._due = False
        self.writer.write(self.WAKE)


def _reporter(writer: asyncio.StreamWriter, table: str) -> Callable[[], None]:
    message = frame(("tables", [table]))
    return lambda: writer.write(message)


async def serve(engine: SyncEngine, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                watched: Sequence[str], owner: str, notifier: Notifier | None = None) -> None:
    """The worker's side: run each batch the parent sends (concurrently, as the parent's pool asks), until "stop"
    or the parent goes away; running batches finish first. Events go to the journal of `owner` (the parent)."""
    engine.journal = EventJournal(engine.db, owner).add
    engine.notifier = notifier or WakeNotifier(writer)
    callbacks = CallbackLog(engine.db)
    for table in watched:
        engine.db.on_table_change(table, _reporter(writer, table))
    running: set[asyncio.Task[None]] = set()

    async def one(rid: int, cid: int, exts: list[str]) -> None:
        try:
            failed = await refresh_batch(engine, callbacks, cid, exts)
        except Exception as exc:  # noqa: BLE001 - refresh_batch catches its own; this is a last resort
            failed = dict.fromkeys(exts, f"{type(exc).__name__}: {exc}")
        writer.write(frame(("done", rid, failed)))
        await writer.drain()

    while True:
        try:
            msg = await read_frame(reader)
        except EOFError:
            break
        if msg[0] == "stop":
            break
        if msg[0] == "refresh":
            task = asyncio.create_task(one(msg[1], msg[2], list(msg[3])))
            running.add(task)
            task.add_done_callback(running.discard)
    await asyncio.gather(*running, return_exceptions=True)
