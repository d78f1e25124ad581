"""Sync cursors and runs, processed webhook/chat event ids, and scheduler tick claims."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from store.tables.base import WorkspaceOwned, created_field
from store.types import JSONType, UTCDateTime


class SyncCursor(WorkspaceOwned, table=True):
    __tablename__ = "sync_cursor"
    __table_args__ = (sa.UniqueConstraint("connection_id", "entity", name="uq_sync_cursor"),)

    id: int | None = Field(default=None, primary_key=True)
    connection_id: int = Field(foreign_key="psa_connection.id")
    entity: str = Field(max_length=32)  # "tickets", "picklists", "reconcile"
    value: str | None = Field(default=None, max_length=200)  # e.g. the max PSA lastUpdated seen
    updated_at: datetime = created_field()


class SyncRun(WorkspaceOwned, table=True):
    __tablename__ = "sync_run"
    __table_args__ = (sa.Index("ix_sync_run_connection", "connection_id", "started_at"),)

    id: int | None = Field(default=None, primary_key=True)
    connection_id: int = Field(foreign_key="psa_connection.id")
    kind: str = Field(max_length=16)  # incremental, full, webhook, picklists, reconcile
    status: str = Field(default="running", max_length=16)  # running, ok, partial, failed
    started_at: datetime = created_field()
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    counts: dict[str, Any] = Field(default_factory=dict, sa_type=JSONType)
    cursor_before: str | None = Field(default=None, max_length=200)
    cursor_after: str | None = Field(default=None, max_length=200)
    error: str | None = Field(default=None, sa_type=sa.Text)


class ProcessedEvent(SQLModel, table=True):
    """Ids of webhook and chat events already handled: a unique row makes a retry a no-op."""

    __tablename__ = "processed_event"
    __table_args__ = (sa.UniqueConstraint("source", "event_id", name="uq_processed_event"),)

    id: int | None = Field(default=None, primary_key=True)
    source: str = Field(max_length=64)  # "slack:T123", "connectwise:7", …
    event_id: str = Field(max_length=200)
    workspace_id: int | None = Field(default=None, foreign_key="workspace.id")
    received_at: datetime = created_field()


class PendingRefresh(SQLModel, table=True):
    """A ticket a PSA callback named, written before the callback is answered and deleted once the ticket is
    re-read (core/sync/callbacks.py): rows left by a process that stopped in between are re-read on start."""

    __tablename__ = "pending_refresh"
    __table_args__ = (sa.UniqueConstraint("connection_id", "external_id", name="uq_pending_refresh"),)

    id: int | None = Field(default=None, primary_key=True)
    connection_id: int  # no foreign key: a row of a connection deleted since is dropped when it is replayed
    external_id: str = Field(max_length=64)
    received_at: datetime = created_field()  # the newest callback naming it (a re-read started later covers it)


class JournaledEvent(SQLModel, table=True):
    """A domain event the refresh worker committed with the write it announces (core/sync/journal.py): the app
    hands it to its notifier, then deletes it, so a worker killed between its commit and telling the app loses
    nothing. `owner` is the app instance that delivers it (another takes it over once it is stale)."""

    __tablename__ = "event_journal"
    __table_args__ = (sa.Index("ix_event_journal_owner", "owner", "id"),)

    id: int | None = Field(default=None, primary_key=True)  # delivery order (a ticket's events in commit order)
    owner: str = Field(max_length=200)
    ticket_id: int | None = None  # no foreign key: the event outlives nothing, it is deleted once delivered
    kind: str = Field(max_length=64)  # the core/notify.py class name
    body: str = Field(sa_type=sa.Text)  # its fields as JSON (core/sync/journal.py codec)
    created_at: datetime = created_field()


class JobTick(SQLModel, table=True):
    """One row per (job, period): the instance that inserts it runs that tick; the rest skip."""

    __tablename__ = "job_tick"
    __table_args__ = (sa.UniqueConstraint("job", "period_start", name="uq_job_tick"),)

    id: int | None = Field(default=None, primary_key=True)
    job: str = Field(max_length=200)
    period_start: datetime = Field(sa_type=UTCDateTime)
    claimed_by: str = Field(max_length=200)
    claimed_at: datetime = created_field()
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class Lease(SQLModel, table=True):
    """A named lease (e.g. a long sync of one connection); timing uses the database clock."""

    name: str = Field(primary_key=True, max_length=200)
    holder: str = Field(max_length=200)
    until: datetime = Field(sa_type=UTCDateTime)


class WebAddress(SQLModel, table=True):
    """The base URL a running web app serves (`deskbridge serve` records it at start, beats `seen_at` while it runs,
    removes it at stop), so a command run in another shell (`deskbridge admin link`) prints the address the app
    really answers on; a crashed app's row stops beating and is ignored, then dropped."""

    __tablename__ = "web_address"

    instance_id: str = Field(primary_key=True, max_length=200)
    base_url: str = Field(max_length=2000)
    started_at: datetime = Field(sa_type=UTCDateTime)
    seen_at: datetime | None = Field(default=None, sa_type=UTCDateTime)  # last heartbeat (None: started_at)
