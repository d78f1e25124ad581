"""Shared fixtures: a migrated database per test (SQLite file, or PostgreSQL when
DESKBRIDGE_TEST_DATABASE_URL points at one), workspaces and actors.

PostgreSQL: each pytest session creates its own database (so parallel runs never collide), migrates it
once, and truncates every table after each test.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from core.context import Actor
from core.workspaces import DirectoryService, WorkspaceService
from store import migrate
from store.db import Database
from store.enums import Origin

PG_URL = os.environ.get("DESKBRIDGE_TEST_DATABASE_URL", "").strip()
# Callbacks' re-reads stay in the test's process unless a test asks for the worker process
# (tests/bot/test_refresh_worker.py): an app per test would otherwise start a child process each.
os.environ.setdefault("DESKBRIDGE_REFRESH_WORKER", "inline")


def _is_pg() -> bool:
    return PG_URL.startswith("postgres")


@pytest.fixture(scope="session")
def database_backend() -> str:
    return "postgresql" if _is_pg() else "sqlite"


@pytest.fixture(scope="session")
def _template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A migrated database: a SQLite template file, or a fresh PostgreSQL database for this session."""
    if not _is_pg():
        path = tmp_path_factory.mktemp("template") / "template.db"
        url = f"sqlite:///{path}"
        migrate.upgrade(url)
        yield url
        return
    base = make_url(PG_URL).set(drivername="postgresql+psycopg")
    name = f"deskbridge_t_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = base.set(database=name).render_as_string(hide_password=False)
    migrate.upgrade(url)
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _truncate_all(url: str) -> None:
    engine = sa.create_engine(make_url(url).set(drivername="postgresql+psycopg"))
    with engine.begin() as conn:
        names = [r[0] for r in conn.execute(sa.text(
            "SELECT tablename FROM pg_tables WHERE schemaname='public' AND tablename <> 'alembic_version'"))]
        if names:
            conn.execute(sa.text("TRUNCATE " + ", ".join(f'"{n}"' for n in names) + " RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.fixture
def db_url(_template: str, tmp_path: Path) -> Iterator[str]:
    """A migrated, empty database for one test."""
    if _is_pg():
        yield _template
        _truncate_all(_template)
        return
    src = Path(make_url(_template).database or "")
    dst = tmp_path / "deskbridge.db"
    shutil.copyfile(src, dst)
    yield f"sqlite:///{dst}"


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    database = Database(db_url)
    try:
        yield database
    finally:
        await database.dispose()


@pytest.fixture
async def workspace_id(db: Database) -> int:
    ws = await WorkspaceService(db).create(slug="acme-msp", name="Acme MSP")
    assert ws.id is not None
    return ws.id


@pytest.fixture
async def other_workspace_id(db: Database) -> int:
    ws = await WorkspaceService(db).create(slug="other-msp", name="Other MSP")
    assert ws.id is not None
    return ws.id


@pytest.fixture
async def tech(db: Database, workspace_id: int) -> Actor:
    """A technician acting from Slack."""
    member = await DirectoryService(db).add_member(workspace_id, name="Ana Tech", email="ana@acme-msp.example")
    return Actor(workspace_id=workspace_id, origin=Origin.SLACK, member_id=member.id, display="slack:U1 (Ana)")


@pytest.fixture(autouse=True)
def _logging_state() -> Iterator[None]:
    """Every test starts from the logging state it found: code under test that configures logging (the
    server's start, `deskbridge` commands) must not leave our loggers at ERROR or the root at WARNING for
    the tests that read the logs after it."""
    import logging

    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    names = [n for n in logging.root.manager.loggerDict if isinstance(logging.getLogger(n), logging.Logger)]
    levels = {n: logging.getLogger(n).level for n in names}
    yield
    for h in list(root.handlers):
        if h not in handlers:
            root.removeHandler(h)
    for h in handlers:
        if h not in root.handlers:
            root.addHandler(h)
    root.setLevel(level)
    for n, lv in levels.items():
        logging.getLogger(n).setLevel(lv)
    for n in logging.root.manager.loggerDict:  # loggers created during the test: back to inheriting
        if n not in levels and isinstance(logging.root.manager.loggerDict[n], logging.Logger):
            logging.getLogger(n).setLevel(logging.NOTSET)
