"""Group commit: writes queued at the same moment share one transaction, each in its own SAVEPOINT.

A burst of chat clicks (200 Teams "Add time" clicks at once) queues 200 write transactions for SQLite's one writer,
each with its own BEGIN IMMEDIATE, connection check-out, COMMIT and return to the pool. Writes opened inside
`grouped_writes()` (a context variable: the Teams hold sets it around a held click's acceptance) instead join the
*group* that is open when they arrive:

- the group's first member takes the process's write turn (`Database._write_turn`), a connection and BEGIN; the
  members then run one after the other on that connection (FIFO, `_Group.baton`), each in a SAVEPOINT of its own,
  with its own session (its own scope, the same workspace checks as any write);
- a member whose block raises is rolled back to its savepoint alone: its exception is its own (a refused click
  says why), the others' writes stay;
- when no member waits any more (or `MOST` have joined), the last one commits the group and gives the turn back; a
  member's `write()` returns only once the group is committed (a click is never answered "queued" for a write that
  is not in the database), and raises if the commit failed (every member of the group then does: none was written);
- a write opened by a member inside its own block (a nested write) does not join its group (it would wait for
  itself): it goes the ordinary way, as before.

Each member is still its own write (its own rows, its own outbox op with its own marker, its own once-only claim):
only BEGIN/COMMIT and the connection are shared. PostgreSQL has no write turn: a group begins at once and the writes
that arrive while it runs join it (fewer commits; the same code on both databases).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncTransaction
from sqlmodel.ext.asyncio.session import AsyncSession

log = logging.getLogger(__name__)

MOST = 8  # members of one group: each waits for the last one's write (run 2, 32: no click of 200 answered within the
# hold at load 9-13, all 200 then needed a follow-up); also bounds how long other writers (the outbox worker) wait

_GROUPED: ContextVar[bool] = ContextVar("deskbridge_grouped_writes", default=False)
_MEMBER_OF: ContextVar[_Group | None] = ContextVar("deskbridge_group_member", default=None)


@contextlib.contextmanager
def grouped_writes() -> Iterator[None]:
    """Writes opened in this context (and in tasks it starts) may share one commit with others (module docstring)."""
    token = _GROUPED.set(True)
    try:
        yield
    finally:
        _GROUPED.reset(token)


def grouping() -> bool:
    """True when a write opened now joins a group: asked for, and not inside a member's own block."""
    return _GROUPED.get() and _MEMBER_OF.get() is None


@dataclass(eq=False)
class _Group:
    loop: asyncio.AbstractEventLoop
    baton: asyncio.Lock = field(default_factory=asyncio.Lock)  # one member at a time on the connection, FIFO
    committed: asyncio.Future[None] | None = None
    joined: int = 0
    waiting: int = 0  # joined, not yet run
    accepting: bool = True
    ended: bool = False
    conn: AsyncConnection | None = None
    trans: AsyncTransaction | None = None
    turn: asyncio.Lock | None = None
    broken: BaseException | None = None


class GroupCommits:
    """The open group per event loop, and what it takes to begin and end one (the database hands in its engine,
    its write turn and its session factory)."""

    def __init__(self, engine: AsyncEngine, write_turn: Callable[[], Any],
                 session_on: Callable[[Any, AsyncConnection], AsyncSession], *, most: int = MOST) -> None:
        self._engine = engine
        self._write_turn = write_turn
        self._session_on = session_on
        self.most = most
        self._open: _Group | None = None
        self._ending: set[asyncio.Future[None]] = set()
        self.groups = 0  # groups committed (tests and benches look at them)
        self.members = 0  # members written in them
        self.largest = 0

    def waiting(self) -> int:
        """Members of the open group waiting for their turn on its connection (tests)."""
        return self._open.waiting if self._open is not None else 0

    def _join(self) -> _Group:
        loop = asyncio.get_running_loop()
        group = self._open
        if group is None or group.loop is not loop or not group.accepting:
            group = self._open = _Group(loop, committed=loop.create_future())
        group.joined += 1
        if group.joined >= self.most:
            group.accepting = False
        return group

    @asynccontextmanager
    async def member(self, scope: Any) -> AsyncIterator[AsyncSession]:
        """One write of a group: a session in its own SAVEPOINT on the group's connection; returns after the
        group's COMMIT (raises if it failed)."""
        group = self._join()
        group.waiting += 1
        try:
            await group.baton.acquire()
        except BaseException:
            group.waiting -= 1
            if group.waiting == 0 and not group.baton.locked() and not group.ended:
                ending = asyncio.ensure_future(self._end(group))  # nobody left to end it: give the turn back
                self._ending.add(ending)  # held until done (the loop keeps only a weak reference to a task)
                ending.add_done_callback(self._ending.discard)
            raise
        group.waiting -= 1
        token = _MEMBER_OF.set(group)
        try:
            if group.conn is None:
                await self._begin(group)
            if group.broken is not None:
                raise group.broken
            assert group.conn is not None
            session = self._session_on(scope, group.conn)
            try:
                async with session, session.begin():  # SAVEPOINT; RELEASE on success, ROLLBACK TO it on error
                    yield session
            except BaseException as exc:
                if group.trans is not None and not group.trans.is_active and group.broken is None:
                    group.broken = exc  # the group's transaction is gone with it: the others cannot commit
                raise
            self.members += 1
        finally:
            _MEMBER_OF.reset(token)
            if group.waiting == 0:  # the last member queued: commit for all
                await self._end(group)
            group.baton.release()
        assert group.committed is not None
        await asyncio.shield(group.committed)

    async def _begin(self, group: _Group) -> None:
        group.turn = await self._write_turn()
        try:
            group.conn = await self._engine.connect()
            group.trans = await group.conn.begin()
        except BaseException:
            await self._close(group)
            raise

    async def _end(self, group: _Group) -> None:
        """Commit the group (no member waits for it any more), give the connection and the turn back."""
        if group.ended:
            return
        group.ended, group.accepting = True, False
        if self._open is group:
            self._open = None
        assert group.committed is not None
        try:
            if group.trans is not None:
                if group.broken is None:
                    await group.trans.commit()
                    self.groups += 1
                    self.largest = max(self.largest, group.joined)
                else:
                    await group.trans.rollback()
        except BaseException as exc:
            log.warning("a group commit failed; every write in it fails", exc_info=True)
            group.broken = group.broken or exc
        finally:
            await self._close(group)
            if group.broken is not None:
                group.committed.set_exception(group.broken)
                group.committed.add_done_callback(_retrieved)
            else:
                group.committed.set_result(None)

    async def _close(self, group: _Group) -> None:
        conn, turn, group.conn, group.trans, group.turn = group.conn, group.turn, None, None, None
        try:
            if conn is not None:
                await conn.close()
        finally:
            if turn is not None:
                turn.release()


def _retrieved(fut: asyncio.Future[None]) -> None:
    if not fut.cancelled():
        fut.exception()
