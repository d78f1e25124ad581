"""The callback refresh worker process: its composition root, and the parent's client of it.

`python -m bot.refresh_worker` is started by the app (never by hand): it reads the parent's settings from its
first frame on stdin, builds only what a re-read needs (database engine, credential cipher, connector registry,
ConnectionService, SyncEngine) and serves batches (core/sync/worker.py). Its stdout is the pipe back to the
parent; anything printed goes to stderr, with the parent's log lines. It exits when the parent says "stop" or
goes away (stdin closed).

`DESKBRIDGE_REFRESH_WORKER=inline` keeps re-reads in the app's own process (tests, small deployments); an app
built with an injected HTTP transport (tests) always re-reads inline, since a transport cannot cross processes.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from pathlib import Path

from bot import logging as logs
from bot.settings import Settings
from bot.wiring import _load_keys, connector_options
from connectors.registry import Registry
from core.connections import ConnectionService
from core.notify import DomainEvent, Notifier
from core.sync.engine import SyncEngine
from core.sync.journal import EventJournal, EventRelay
from core.sync.worker import WakeNotifier, WorkerClient, read_frame, serve
from store.db import Database

log = logging.getLogger("deskbridge.refresh_worker")


def client(settings: Settings, db: Database, notifier: Notifier) -> WorkerClient:
    """The parent's side: batches to a `python -m bot.refresh_worker` child built from these settings, running the
    same code as this process (its source tree first on the child's path, whatever the working directory)."""
    tree = str(Path(__file__).resolve().parents[1])
    path = os.pathsep.join(p for p in (tree, os.environ.get("PYTHONPATH", "")) if p)
    relay = EventRelay(EventJournal(db, settings.instance_id), notifier)
    # -P: the working directory is not put before PYTHONPATH (else `-m` could import another checkout's code)
    return WorkerClient([sys.executable, "-P", "-m", "bot.refresh_worker"], settings, relay, db,
                        env={**os.environ, "PYTHONPATH": path})


class _DieOnce:
    """Test fault (`DESKBRIDGE_REFRESH_WORKER_DIE_ONCE`=a file): the first worker to see events after its commit
    removes the file and dies at once, before the parent hears of them (killed between commit and pipe)."""

    def __init__(self, inner: Notifier, flag: str) -> None:
        self.inner, self.flag = inner, flag

    async def notify(self, event: DomainEvent) -> None:
        try:
            os.remove(self.flag)
        except FileNotFoundError:
            return await self.inner.notify(event)
        os._exit(137)


def _registry(settings: Settings, db: Database) -> tuple[Registry, ConnectionService]:
    cipher, _, _ = _load_keys(settings)  # the parent created the key file if there was none
    registry = Registry(options=connector_options(settings, db, cipher))
    connections = ConnectionService(db, cipher=cipher, checker=registry.check, factory=registry.build,
                                    known_kinds=registry.kinds())
    return registry, connections


async def _main(proto_out: int) -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin.buffer)
    transport, protocol = await loop.connect_write_pipe(asyncio.streams.FlowControlMixin,
                                                        os.fdopen(proto_out, "wb"))
    writer = asyncio.StreamWriter(transport, protocol, reader, loop)
    try:
        hello = await read_frame(reader)
    except EOFError:
        return
    kind, settings, watched, owner = hello
    assert kind == "hello" and isinstance(settings, Settings)
    logs.configure(settings.log_level, settings.log_format, levels=settings.log_levels, stream=sys.stderr)
    db = Database(settings.database_url, read_threads=0)  # a re-read reads through its session, never one-hop
    _, connections = _registry(settings, db)
    engine = SyncEngine(db, connections, instance_id=f"{settings.instance_id}/refresh")
    try:
        flag = os.environ.get("DESKBRIDGE_REFRESH_WORKER_DIE_ONCE")
        await serve(engine, reader, writer, watched, owner,
                    _DieOnce(WakeNotifier(writer), flag) if flag else None)
    finally:
        await connections.aclose()
        await db.dispose()
        writer.close()


def main() -> None:
    # Ctrl-C in `make run` reaches the whole process group: the parent stops us ("stop", or stdin closed).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    proto_out = os.dup(1)  # the pipe to the parent; stray prints go to stderr instead
    os.dup2(2, 1)
    asyncio.run(_main(proto_out))


if __name__ == "__main__":
    main()
