"""Engine and session factory built from a URL passed in (no import-time globals).

Workspace isolation is enforced here, by construction: every session carries a `Scope`. A workspace
scope adds `workspace_id = :ws` to every ORM SELECT/UPDATE/DELETE touching a `WorkspaceOwned` table and
refuses to flush a row of another workspace; a session without a scope refuses to query at all. Only
system jobs (outbox worker, scheduler) open `Scope.system()` sessions, and they say so at the call.

SQLite (the embedded default): WAL, busy_timeout, foreign keys, and `BEGIN IMMEDIATE` for every write
transaction (reliability-sla.md §4); reads use a second engine with deferred transactions, so readers
never take the write lock. Every statement on either engine is one trip to its connection's thread, not
aiosqlite's four (store/sqlite_driver.py: under load the hand-offs, not SQLite, were the alert storm's time).

`Database.rows(scope, statement)` is the one-hop read for hot read-only pages (the REST list, chat queues): the
same scoping (the statement gets the same workspace criteria a read session adds), but on SQLite the whole read
(connection, BEGIN, execute, fetch, rollback, row conversion) runs as one call in a reader thread on the plain
sqlite3 driver, instead of about nine hand-offs to aiosqlite's thread (issue 20 item 5: ~0.6 ms of CPU per
read). On PostgreSQL it is an ordinary read session (the async driver has no thread hops).
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import weakref
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects.sqlite.aiosqlite import SQLiteDialect_aiosqlite
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.orm import ORMExecuteState, with_loader_criteria
from sqlalchemy.sql.util import find_tables
from sqlmodel import Session, col
from sqlmodel.ext.asyncio.session import AsyncSession

import store.tables  # noqa: F401  (every table registered before the first query)
from store.group_commit import GroupCommits, grouping
from store.sql import SQLITE_LOWER, unicode_lower_text
from store.sqlite_driver import async_creator
from store.tables.base import WorkspaceOwned

log = logging.getLogger(__name__)
T = TypeVar("T")

SQLITE_BUSY_TIMEOUT_MS = 10_000
COMMIT_TOPICS = "commit_topics"  # session.info key: topics whose listeners run after this write commits
TABLE_TOPIC = "table:"  # every write marks "table:<name>" for each table it wrote (Database.on_table_change)


def mark_commit(session: Any, topic: str) -> None:
    """Have `Database.listen(topic, …)` listeners called once this write transaction has committed."""
    session.info.setdefault(COMMIT_TOPICS, set()).add(topic)


class ScopeError(RuntimeError):
    """A query or write outside the session's workspace scope (a programming error, never user input)."""


@dataclass(frozen=True, slots=True)
class Scope:
    """Whose rows a session may see: one workspace, or (system jobs only) all of them."""

    workspace_id: int | None
    system: bool = False

    @classmethod
    def workspace(cls, workspace_id: int) -> Scope:
        if not isinstance(workspace_id, int):
            raise TypeError("workspace_id must be an int")
        return cls(workspace_id=workspace_id)

    @classmethod
    def system_wide(cls) -> Scope:
        return cls(workspace_id=None, system=True)


class _ScopedSession(Session):
    """Sync session class behind every AsyncSession; carries the scope in `info`."""


@event.listens_for(_ScopedSession, "do_orm_execute")
def _apply_scope(state: ORMExecuteState) -> None:
    scope: Scope | None = state.session.info.get("scope")
    if scope is None:
        raise ScopeError("session has no scope; open it with Database.read(scope) or Database.write(scope)")
    if state.is_insert or state.is_update or state.is_delete:
        table = getattr(state.statement, "table", None)
        if table is not None:  # listeners of `table:<name>` (Database.on_table_change) run after the commit
            mark_commit(state.session, TABLE_TOPIC + str(getattr(table, "name", table)))
    if scope.system or state.is_column_load or state.is_relationship_load:
        return
    if state.is_select or state.is_update or state.is_delete:
        state.statement = _scoped(state.statement, scope.workspace_id)  # type: ignore[arg-type]


def _scoped(statement: Any, ws: int) -> Any:
    """The statement with `workspace_id = ws` on every workspace-owned table it touches (joins and
    subqueries included). Remembered per (statement, workspace) for statements that are reused, such
    as the queue's cached page queries, so they are not re-analysed on every call."""
    key = (id(statement), ws)
    hit = _SCOPED.get(key)
    if hit is not None and hit[0] is statement:
        _SCOPED.move_to_end(key)
        return hit[1]
    classes = _owned_classes(statement)
    scoped = statement
    if classes:
        scoped = statement.options(*(_criteria(cls, ws) for cls in classes))
    _SCOPED[key] = (statement, scoped)
    if len(_SCOPED) > _SCOPED_MAX:
        _SCOPED.popitem(last=False)
    return scoped


def scoped_execute(session: Session, statement: sa.Select[Any], params: Mapping[str, Any] | None = None
                   ) -> sa.CursorResult[Any]:
    """A column SELECT run as `session.execute(statement, params)` runs it, minus the ORM's execution layer: the
    same workspace criteria (`_apply_scope`), on the session's own connection (same transaction, same snapshot),
    executed as Core. For hot read paths that read plain rows in a session (a queue page, its count and its SLA
    clocks): the ORM layer (execute event, compile state, ORM result) cost ~0.1 ms per statement there (issue 20
    item 4). Only SELECTs: nothing here writes, and ORM entities are not loaded (a select of mapped classes
    returns rows of columns here)."""
    if not isinstance(statement, sa.Select):
        raise TypeError("scoped_execute runs a SELECT only")
    scope: Scope | None = session.info.get("scope")
    if scope is None:
        raise ScopeError("session has no scope; open it with Database.read(scope) or Database.write(scope)")
    scoped = statement if scope.system else _scoped(statement, scope.workspace_id)  # type: ignore[arg-type]
    return session.connection().execute(scoped, dict(params or {}))


def _owned_classes(statement: Any) -> tuple[type[WorkspaceOwned], ...]:
    """The workspace-owned classes whose tables `statement` touches. Walking a statement for its tables
    (find_tables) took ~28% of the main thread's CPU in bench/e2e_latency.py (notes/session7-e2e.md), and
    most statements are built afresh per call with the same shape. So the answer is remembered per
    SQLAlchemy cache key: statements with equal cache keys compile to the same SQL (only bound values
    differ), hence touch the same tables. A statement without a usable cache key is walked every time."""
    try:
        ck = statement._generate_cache_key()
        shape = None if ck is None else ck.key
        hit = _CLASSES.get(shape) if shape is not None else None
    except TypeError:  # an unhashable element in the key: no memo for this statement
        shape, hit = None, None
    if hit is not None:
        _CLASSES.move_to_end(shape)
        return hit
    owned = _owned_tables()
    found = {owned[t] for t in find_tables(statement, include_selects=True, include_crud=True) if t in owned}
    classes = tuple(sorted(found, key=lambda c: c.__name__))
    if shape is not None:
        _CLASSES[shape] = classes
        if len(_CLASSES) > _CLASSES_MAX:
            _CLASSES.popitem(last=False)
    return classes


def _criteria(cls: type[WorkspaceOwned], ws: int) -> Any:
    """`workspace_id = ws` on `cls` (aliases included) as a loader option, built once per class and workspace."""
    key = (cls, ws)
    opt = _CRITERIA.get(key)
    if opt is None:
        opt = with_loader_criteria(cls, col(cls.workspace_id) == ws, include_aliases=True)
        _CRITERIA[key] = opt
        if len(_CRITERIA) > _CRITERIA_MAX:
            _CRITERIA.popitem(last=False)
    else:
        _CRITERIA.move_to_end(key)
    return opt


_SCOPED: OrderedDict[tuple[int, int], tuple[Any, Any]] = OrderedDict()
_SCOPED_MAX = 1024
_CLASSES: OrderedDict[Any, tuple[type[WorkspaceOwned], ...]] = OrderedDict()
_CLASSES_MAX = 4096
_CRITERIA: OrderedDict[tuple[type[WorkspaceOwned], int], Any] = OrderedDict()
_CRITERIA_MAX = 4096


def _owned_tables() -> dict[sa.Table, type[WorkspaceOwned]]:
    """Table -> class for every mapped table that belongs to a workspace (computed once)."""
    global _OWNED
    if _OWNED is None:
        found: dict[sa.Table, type[WorkspaceOwned]] = {}
        stack: list[type[WorkspaceOwned]] = [WorkspaceOwned]
        while stack:
            for sub in stack.pop().__subclasses__():
                stack.append(sub)
                table = getattr(sub, "__table__", None)
                if table is not None:
                    found[table] = sub
        _OWNED = found
    return _OWNED


_OWNED: dict[sa.Table, type[WorkspaceOwned]] | None = None


@event.listens_for(_ScopedSession, "before_flush")
def _check_flush(session: Session, flush_context: Any, instances: Any) -> None:
    if session.info.get("read_only"):
        raise ScopeError("read-only session tried to write; use Database.write()")
    scope: Scope | None = session.info.get("scope")
    if scope is None:
        raise ScopeError("session has no scope")
    for obj in list(session.new) + list(session.dirty) + list(session.deleted):
        name = getattr(obj, "__tablename__", None)
        if name is not None:
            mark_commit(session, TABLE_TOPIC + str(name))
        if scope.system:
            continue
        if isinstance(obj, WorkspaceOwned):
            if obj.workspace_id is None:
                obj.workspace_id = scope.workspace_id
            elif obj.workspace_id != scope.workspace_id:
                raise ScopeError(
                    f"{type(obj).__name__} belongs to workspace {obj.workspace_id}, "
                    f"session is scoped to {scope.workspace_id}"
                )


def async_url(url: str) -> str:
    """Map a plain database URL to its async driver (sqlite → aiosqlite, postgresql → psycopg)."""
    u = make_url(url)
    if u.drivername in ("sqlite", "sqlite+pysqlite"):
        u = u.set(drivername="sqlite+aiosqlite")
    elif u.drivername in ("postgresql", "postgres", "postgresql+psycopg2", "postgresql+asyncpg"):
        u = u.set(drivername="postgresql+psycopg")
    return u.render_as_string(hide_password=False)


def sync_url(url: str) -> str:
    """Map a database URL to its synchronous driver (for Alembic and multi-process tools)."""
    u = make_url(url)
    if u.drivername.startswith("sqlite"):
        u = u.set(drivername="sqlite")
    elif u.drivername.startswith("postgres"):
        u = u.set(drivername="postgresql+psycopg")
    return u.render_as_string(hide_password=False)


# Connections each SQLite engine keeps open. Each aiosqlite connection is a thread; one the pool opened over its
# size was closed again when returned, so every moment with more than 5 sessions open (a sync while requests
# were served) started threads, and starting one held the event loop until the thread ran (57-70 ms at load
# 15: bench/teams_invoke.py --trace, notes/session8-teams.md). Kept open, they are started once.
SQLITE_POOL_SIZE = 16


def _sqlite_engine(url: str, *, immediate: bool, echo: bool) -> AsyncEngine:
    # One thread trip per statement (store/sqlite_driver.py); the same sqlite3 arguments SQLAlchemy would use.
    args, kwargs = SQLiteDialect_aiosqlite().create_connect_args(make_url(url))
    kwargs = {**kwargs, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}

    def connect() -> sqlite3.Connection:
        conn = sqlite3.connect(*args, **kwargs)  # type: ignore[call-overload]
        _sqlite_functions(conn)
        return conn

    engine = create_async_engine(url, echo=echo, async_creator=async_creator(connect),
                                 pool_size=SQLITE_POOL_SIZE, max_overflow=SQLITE_POOL_SIZE)
    _sqlite_setup(engine.sync_engine, immediate=immediate)
    return engine


def _sqlite_functions(conn: sqlite3.Connection) -> None:
    """Functions our SQL uses that SQLite lacks (store/sql.py `unicode_lower`)."""
    conn.create_function(SQLITE_LOWER, 1, unicode_lower_text, deterministic=True)


def _sqlite_setup(engine: sa.Engine, *, immediate: bool) -> None:
    """PRAGMAs on every new connection, and our own BEGIN (IMMEDIATE for writers, deferred for readers)."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        if isinstance(dbapi_connection, sqlite3.Connection):  # the one-hop readers' (the async ones: connect())
            _sqlite_functions(dbapi_connection)
        cur = dbapi_connection.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


READ_THREADS = 4  # SQLite one-hop readers (Database.rows); sqlite3 releases the GIL while a query runs


class Database:
    """Owns the engines for one database URL and opens scoped sessions."""

    def __init__(self, url: str, *, echo: bool = False, pool_size: int = 10, read_threads: int = READ_THREADS) -> None:
        self.url = url
        self.dialect = make_url(url).get_backend_name()
        aurl = async_url(url)
        # SQLite has one writer: writers of this process queue here, in order, instead of polling SQLite's
        # busy handler (which sleeps up to 100 ms per try, so under load some waited past busy_timeout).
        self._write_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] | None = None
        self._listeners: dict[str, list[Callable[[], None]]] = {}
        self._readers: ThreadPoolExecutor | None = None
        self._sync_read_engine: sa.Engine | None = None
        if self.is_sqlite:
            self._write_locks = weakref.WeakKeyDictionary()
            self._write_engine = _sqlite_engine(aurl, immediate=True, echo=echo)
            self._read_engine = _sqlite_engine(aurl, immediate=False, echo=echo)
            if read_threads > 0 and (make_url(url).database or ":memory:") != ":memory:":
                self._sync_read_engine = sa.create_engine(
                    sync_url(url), echo=echo, pool_size=read_threads, max_overflow=0,
                    connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False})
                _sqlite_setup(self._sync_read_engine, immediate=False)
                self._readers = ThreadPoolExecutor(read_threads, thread_name_prefix="deskbridge-read")
        else:
            engine = create_async_engine(
                aurl, echo=echo, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True
            )
            self._write_engine = self._read_engine = engine
        self.groups = GroupCommits(self._write_engine, self._write_turn, self._member_session)

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    @property
    def engine(self) -> AsyncEngine:
        """The engine for writes (and, on PostgreSQL, reads)."""
        return self._write_engine

    def _session(self, scope: Scope, *, read_only: bool) -> AsyncSession:
        if not isinstance(scope, Scope):
            raise TypeError("a Scope is required to open a session")
        engine = self._read_engine if read_only else self._write_engine
        session = AsyncSession(engine, expire_on_commit=False, sync_session_class=_ScopedSession)
        session.info["scope"] = scope
        session.info["read_only"] = read_only
        return session

    def _member_session(self, scope: Scope, conn: AsyncConnection) -> AsyncSession:
        """A group member's session (store/group_commit.py): on the group's connection, in a SAVEPOINT of its own."""
        if not isinstance(scope, Scope):
            raise TypeError("a Scope is required to open a session")
        session = AsyncSession(bind=conn, join_transaction_mode="create_savepoint", expire_on_commit=False,
                               sync_session_class=_ScopedSession)
        session.info["scope"] = scope
        session.info["read_only"] = False
        return session

    @asynccontextmanager
    async def read(self, scope: Scope) -> AsyncIterator[AsyncSession]:
        """A read-only session; it refuses to flush."""
        async with self._session(scope, read_only=True) as session:
            yield session

    @asynccontextmanager
    async def write(self, scope: Scope) -> AsyncIterator[AsyncSession]:
        """One write transaction: committed when the block ends, rolled back on any exception."""
        if grouping():  # a held chat click's write: it may share one commit with others (store/group_commit.py)
            async with self.groups.member(scope) as session:
                yield session
        else:
            lock = await self._write_turn()
            try:
                async with self._session(scope, read_only=False) as session, session.begin():
                    yield session
            finally:
                if lock is not None:
                    lock.release()
        for topic in session.info.get(COMMIT_TOPICS, ()):  # reached only after a commit
            for fn in list(self._listeners.get(topic, ())):
                fn()

    async def rows(self, scope: Scope, statement: Any, params: Mapping[str, Any] | None = None) -> Sequence[sa.Row[Any]]:
        """All rows of one read statement, scoped to `scope` exactly as a read session scopes it (the one-hop
        read, see the module docstring). For hot read-only pages; anything that needs ORM objects, several
        statements in one snapshot, or a write uses `read()` / `write()`."""
        if not isinstance(scope, Scope):
            raise TypeError("a Scope is required to read")
        if self._readers is None or self._sync_read_engine is None:
            async with self.read(scope) as session:
                return (await session.execute(statement, dict(params or {}))).all()
        scoped = statement if scope.system else _scoped(statement, scope.workspace_id)  # type: ignore[arg-type]
        engine = self._sync_read_engine

        def run() -> Sequence[sa.Row[Any]]:
            with engine.connect() as conn:  # BEGIN (deferred) ... ROLLBACK on return to the pool
                return conn.execute(scoped, dict(params or {})).all()

        return await asyncio.get_running_loop().run_in_executor(self._readers, run)

    async def read_sync(self, scope: Scope, fn: Callable[[Session], T]) -> T:
        """`fn(session)` with a read-only scoped *sync* session, every statement in one snapshot: on SQLite the
        whole of it in one reader-thread call (one hop however many statements), elsewhere inside an ordinary
        read session (`run_sync`). `fn` must not touch the event loop; what it returns is detached."""
        if not isinstance(scope, Scope):
            raise TypeError("a Scope is required to read")
        if self._readers is None or self._sync_read_engine is None:
            async with self.read(scope) as session:
                return await session.run_sync(fn)  # type: ignore[arg-type]  # its sync session is a _ScopedSession
        engine = self._sync_read_engine

        def run() -> T:
            with _ScopedSession(engine, expire_on_commit=False) as session:  # closed: rolled back, returned
                session.info["scope"] = scope
                session.info["read_only"] = True
                return fn(session)

        return await asyncio.get_running_loop().run_in_executor(self._readers, run)

    def listen(self, topic: str, fn: Callable[[], None]) -> None:
        """Call `fn` (in this process, synchronously) after each commit of a write that marked `topic` with
        `mark_commit(session, topic)`, e.g. the outbox worker polls at once when an op was enqueued."""
        self._listeners.setdefault(topic, []).append(fn)

    def on_table_change(self, table: str, fn: Callable[[], None]) -> None:
        """Call `fn` after each commit (in this process) of a write that inserted, updated or deleted rows of
        `table`, through the ORM or a DML statement (caches drop what they hold; other processes' writes are
        not seen here: such caches also expire)."""
        self.listen(TABLE_TOPIC + table, fn)

    def watched_tables(self) -> list[str]:
        """Tables someone in this process listens to (`on_table_change`): what another process writing for it
        reports back (core/sync/worker.py)."""
        return sorted(t[len(TABLE_TOPIC):] for t, fns in self._listeners.items() if t.startswith(TABLE_TOPIC) and fns)

    def tables_changed(self, tables: Sequence[str]) -> None:
        """Run this process's `on_table_change` listeners of `tables`, committed by another process that reports
        its writes here (a refresh worker process): caches drop at once instead of expiring."""
        for table in tables:
            for fn in list(self._listeners.get(TABLE_TOPIC + table, ())):
                fn()

    def unlisten(self, topic: str, fn: Callable[[], None]) -> None:
        fns = self._listeners.get(topic, [])
        if fn in fns:
            fns.remove(fn)

    async def _write_turn(self) -> asyncio.Lock | None:
        """SQLite: wait for this process's writers ahead of us (FIFO). Past busy_timeout we go on without the
        turn (SQLite's own lock still serializes), so a write opened inside another one fails as before
        instead of waiting forever."""
        if self._write_locks is None:
            return None
        loop = asyncio.get_running_loop()
        lock = self._write_locks.get(loop)
        if lock is None:
            lock = self._write_locks[loop] = asyncio.Lock()
        if not lock.locked():  # the common case: no task, no timer, no extra loop iteration
            await lock.acquire()
            return lock
        try:
            async with asyncio.timeout(SQLITE_BUSY_TIMEOUT_MS / 1000):
                await lock.acquire()
        except TimeoutError:
            log.warning("waited past busy_timeout for this process's SQLite write turn; writing anyway")
            return None
        return lock

    async def ping(self) -> bool:
        """True when the database answers."""
        try:
            async with self._read_engine.connect() as conn:
                await conn.execute(sa.text("SELECT 1"))
            return True
        except Exception:
            log.warning("database ping failed", exc_info=True)
            return False

    async def dispose(self) -> None:
        if self._readers is not None and self._sync_read_engine is not None:
            self._readers.shutdown(wait=True)
            self._sync_read_engine.dispose()
            self._readers = self._sync_read_engine = None
        await self._write_engine.dispose()
        if self._read_engine is not self._write_engine:
            await self._read_engine.dispose()
