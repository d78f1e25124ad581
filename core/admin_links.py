"""One-time sign-in links to the admin pages, made by `deskbridge admin link` for a workspace's first admin.

A link carries 256 bits of randomness; only its SHA-256 is stored (a fast hash is right: nothing to
brute-force). Redeeming is one conditional UPDATE (unused and unexpired), so a link works once even when two
requests race, and an expired, used or unknown link is refused with no hint of which it was.

The link's address is the one the running app serves: `deskbridge serve` records its base URL (the public URL when
set, else the address it bound) in the database it shares with the CLI, so a command run in another shell with
other environment variables still prints a link that opens. It beats the row every ADDRESS_BEAT; a row that
stopped beating (a crashed or killed app never removes its own) is ignored and dropped.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import col, select

from core.context import Actor
from core.errors import DeskbridgeError, InvalidInput
from store.db import Database, Scope
from store.enums import Origin
from store.tables import AdminLoginLink, WebAddress
from store.types import utcnow

LINK_TTL = timedelta(minutes=15)
MAX_TTL = timedelta(hours=24)
KEEP_DEAD = timedelta(days=7)  # used or expired links stay on record this long, then `create` deletes them
PREFIX = "dbl_"
ADDRESS_BEAT = timedelta(seconds=30)  # a running web app re-records its address this often
ADDRESS_STALE = 4 * ADDRESS_BEAT  # a row not beaten for this long is a crashed app's: ignored, then dropped


def served_base_url(public_url: str | None, host: str, port: int) -> str:
    """The base URL people open: the public URL when set, else the address bound (a wildcard as loopback)."""
    if public_url:
        return public_url.rstrip("/")
    shown = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
    return f"http://[{shown}]:{port}" if ":" in shown else f"http://{shown}:{port}"


class LinkRefused(DeskbridgeError):
    """The link is unknown, already used or expired (the caller is told no more than that)."""


def hash_token(token: str) -> str:
    """The stored form of a link's token."""
    return hashlib.sha256(token.encode()).hexdigest()


class AdminLinkService:
    """Create and redeem one-time admin sign-in links."""

    def __init__(self, db: Database, *, clock: Callable[[], datetime] = utcnow) -> None:
        self.db = db
        self._clock = clock

    async def create(self, workspace_id: int, *, created_by: str = "cli",
                     ttl: timedelta = LINK_TTL) -> tuple[str, datetime]:
        """A new link token (shown once) and when it expires."""
        if not timedelta(0) < ttl <= MAX_TTL:
            raise InvalidInput("A sign-in link lives between 1 second and 24 hours.",
                               hint="Use e.g. --minutes 15.", field="ttl")
        token = PREFIX + secrets.token_urlsafe(32)
        expires = self._clock() + ttl
        async with self.db.write(Scope.workspace(workspace_id)) as session:
            await session.execute(sa.delete(AdminLoginLink).where(  # housekeeping: links long dead
                AdminLoginLink.expires_at < expires - ttl - KEEP_DEAD))  # type: ignore[arg-type]
            session.add(AdminLoginLink(workspace_id=workspace_id, token_hash=hash_token(token),
                                       created_by=created_by[:200], expires_at=expires))
        return token, expires

    async def redeem(self, token: str) -> int:
        """Use up a link; returns its workspace. LinkRefused when unknown, used or expired."""
        refused = LinkRefused("This sign-in link is not valid: it was already used, has expired or never existed.",
                              hint="Ask for a new one on the server: `deskbridge admin link`.")
        if not token.startswith(PREFIX) or len(token) > 100:
            raise refused
        digest, now = hash_token(token), self._clock()
        async with self.db.write(Scope.system_wide()) as session:
            row = (await session.exec(select(AdminLoginLink).where(AdminLoginLink.token_hash == digest))).first()
            if row is None:
                raise refused
            done = await session.execute(
                sa.update(AdminLoginLink)
                .where(AdminLoginLink.id == row.id, AdminLoginLink.used_at.is_(None),  # type: ignore[union-attr,arg-type]
                       AdminLoginLink.expires_at > now)  # type: ignore[arg-type]
                .values(used_at=now))
            if done.rowcount != 1:  # type: ignore[attr-defined]
                raise refused
            return row.workspace_id

    async def record_address(self, instance_id: str, base_url: str) -> None:
        """This instance's web app serves `base_url` (replaces what the instance recorded before); call it again
        every ADDRESS_BEAT while the app runs. It also drops the rows of instances that stopped beating."""
        now = self._clock()
        async with self.db.write(Scope.system_wide()) as session:
            await session.execute(sa.delete(WebAddress).where(col(WebAddress.instance_id) == instance_id))
            await session.execute(sa.delete(WebAddress).where(_stale(now)))
            session.add(WebAddress(instance_id=instance_id[:200], base_url=base_url.rstrip("/")[:2000],
                                   started_at=now, seen_at=now))

    async def beat_address(self, instance_id: str, base_url: str) -> None:
        """This instance's web app still runs (its row is re-recorded if someone removed it)."""
        now = self._clock()
        async with self.db.write(Scope.system_wide()) as session:
            done = await session.execute(sa.update(WebAddress).where(col(WebAddress.instance_id) == instance_id)
                                         .values(seen_at=now))
            await session.execute(sa.delete(WebAddress).where(_stale(now)))
            if done.rowcount == 0:  # type: ignore[attr-defined]
                session.add(WebAddress(instance_id=instance_id[:200], base_url=base_url.rstrip("/")[:2000],
                                       started_at=now, seen_at=now))

    async def forget_address(self, instance_id: str) -> None:
        """The instance's web app stopped."""
        async with self.db.write(Scope.system_wide()) as session:
            await session.execute(sa.delete(WebAddress).where(col(WebAddress.instance_id) == instance_id))

    async def served_address(self) -> tuple[str, datetime] | None:
        """The base URL of the most recently started web app that still beats, and when it started."""
        async with self.db.read(Scope.system_wide()) as session:
            row = (await session.exec(select(WebAddress).where(sa.not_(_stale(self._clock())))
                                      .order_by(col(WebAddress.started_at).desc()))).first()
        return (row.base_url, row.started_at) if row is not None else None


def _stale(now: datetime) -> sa.ColumnElement[bool]:
    """Rows of web apps that missed ADDRESS_STALE of beats (crashed or killed: they never said they stopped)."""
    return sa.func.coalesce(col(WebAddress.seen_at), col(WebAddress.started_at)) < now - ADDRESS_STALE


def admin_actor(workspace_id: int) -> Actor:
    """Who an admin-page session acts as (audit rows say `admin-page`)."""
    return Actor(workspace_id=workspace_id, origin=Origin.API, display="admin-page", is_admin=True)
