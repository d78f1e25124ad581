"""aiosqlite connections whose statements cost ONE trip to the connection's thread instead of four.

aiosqlite runs each sqlite3 call on the connection's own thread; SQLAlchemy's adapter makes four calls per
statement (open a cursor, execute, fetch the rows, close the cursor), so each statement hands the GIL to
that thread and back four times and waits for it to be scheduled four times. On a busy machine those waits,
not SQLite, were most of an alert storm's time (py-spy, issue 21: ~60% of the event loop's samples sat in
aiosqlite's queue hand-off and the adapter's execute). `OneHopConnection.cursor()` returns a cursor that
does the whole statement (cursor, execute, description, every row, rowcount, lastrowid, close) in one call
on the thread; fetching and closing are then local. Results are read whole, as SQLAlchemy's adapter
already does for every non-streaming cursor (the project streams no query results from SQLite).

Everything else (commit, rollback, isolation level, create_function, close) is aiosqlite's, unchanged.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Sequence
from typing import Any

import aiosqlite

Row = Any


class OneHopCursor:
    """The cursor SQLAlchemy's aiosqlite adapter drives (`AsyncIODBAPICursor`), one thread trip per statement."""

    arraysize = 1

    def __init__(self, connection: OneHopConnection) -> None:
        self._connection = connection
        self.description: Any = None
        self.rowcount = -1
        self.lastrowid: int | None = None
        self._rows: list[Row] = []

    async def __aenter__(self) -> OneHopCursor:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._rows = []

    async def execute(self, sql: str, parameters: Any = None) -> OneHopCursor:
        self._take(await self._connection.run_statement(sql, parameters, many=False))
        return self

    async def executemany(self, sql: str, parameters: Sequence[Any]) -> OneHopCursor:
        self._take(await self._connection.run_statement(sql, parameters, many=True))
        return self

    def _take(self, result: tuple[Any, list[Row], int, int | None]) -> None:
        self.description, self._rows, self.rowcount, self.lastrowid = result

    async def fetchall(self) -> list[Row]:
        rows, self._rows = self._rows, []
        return rows

    async def fetchone(self) -> Row | None:
        return self._rows.pop(0) if self._rows else None

    async def fetchmany(self, size: int | None = None) -> list[Row]:
        n = size or self.arraysize
        rows, self._rows = self._rows[:n], self._rows[n:]
        return rows

    async def close(self) -> None:
        self._rows = []

    async def nextset(self) -> None:
        return None

    async def setinputsizes(self, *sizes: Any) -> None:
        return None

    def setoutputsize(self, size: Any, column: Any = None) -> None:
        return None


def _statement(conn: sqlite3.Connection, sql: str, parameters: Any,
               many: bool) -> tuple[Any, list[Row], int, int | None]:
    """On the connection's thread: the whole statement, its rows and counts."""
    cur = conn.cursor()
    try:
        if many:
            cur.executemany(sql, parameters)
        elif parameters is None:
            cur.execute(sql)
        else:
            cur.execute(sql, parameters)
        description = cur.description
        rows = cur.fetchall() if description else []
        return description, rows, cur.rowcount, cur.lastrowid
    finally:
        cur.close()


class OneHopConnection(aiosqlite.Connection):
    """An aiosqlite connection whose cursors run each statement in one trip (module doc)."""

    def cursor(self) -> OneHopCursor:  # type: ignore[override]
        return OneHopCursor(self)

    async def run_statement(self, sql: str, parameters: Any, *, many: bool) -> tuple[Any, list[Row], int, int | None]:
        result: tuple[Any, list[Row], int, int | None] = await self._execute(
            _statement, self._conn, sql, parameters, many)
        return result


def async_creator(connect: Callable[[], sqlite3.Connection]) -> Callable[[], Any]:
    """`create_async_engine(..., async_creator=…)` for a sqlite3 connect function."""

    async def create() -> OneHopConnection:
        connection = OneHopConnection(connect, 64)
        connection._thread.daemon = True  # as SQLAlchemy does for aiosqlite: never keeps the process alive
        # aiosqlite's `await connection` starts the connection's thread on the event loop, and Thread.start()
        # blocks until the new thread has run (tens of ms on a busy machine): it is started off the loop here.
        await asyncio.get_running_loop().run_in_executor(None, connection._thread.start)
        await connection._connect()
        return connection

    return create
