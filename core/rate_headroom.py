"""Rate-limit headroom of a PSA connection, for `deskbridge doctor`: how close Deskbridge runs to the PSA's
request limits, from what is already recorded and what the connector reports.

- Rate-limited answers (HTTP 429) of the last 24 h: writes from the audit log (every outbox request and its
  status), reads from the sync runs' `rate_limited` counts. Any PSA.
- Autotask's own reading (ThresholdInformation, taken by `check_credentials` and handed over in its details as
  `requests_used` / `requests_limit`): the share of the database's hourly budget spent by every integration,
  against the thresholds at which Deskbridge paces (50%) and holds its reads (`read_stop_share`, 80%).

Facts and words only; the doctor puts the marks. Nothing here calls the PSA.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import col, select

from store.db import Database, Scope
from store.tables import AuditLog, SyncRun

WINDOW = timedelta(hours=24)
PACE_FROM = 0.50  # Autotask slows every call above half the budget (reference/psa-apis.md §3.8)
DEFAULT_READ_STOP = 0.80

# What to do when a PSA keeps answering 429, in the words of that PSA's limits.
ADVICE = {
    "connectwise": "ConnectWise publishes no quota per API member: lower this connection's `max_concurrency` or "
                   "`rate_limit_per_minute`, and look for another integration using the same API member.",
    "halopsa": "Hosted Halo allows 300 requests per 5 minutes for the whole tenant, token calls included: set "
               "`rate_limit_requests` to this instance's share and look for other integrations spending it.",
    "autotask": "Autotask's hourly budget is shared by every integration of the database: lower "
                "`hourly_request_budget`, or find the integration spending it (Autotask shows API usage per user).",
}


@dataclass(frozen=True, slots=True)
class RateLimitHits:
    writes: int  # 429 answers to outbox requests (audit log)
    reads: int  # 429 answers met by syncs (each retried)
    last_at: datetime | None

    @property
    def total(self) -> int:
        return self.writes + self.reads


@dataclass(frozen=True, slots=True)
class Headroom:
    level: str  # ok | warn | fail
    text: str
    fix: str | None = None


async def rate_limit_hits(db: Database, workspace_id: int, connection_id: int, now: datetime) -> RateLimitHits:
    """429 answers of this connection in the 24 h before `now`."""
    since = now - WINDOW
    async with db.read(Scope.workspace(workspace_id)) as s:
        writes, last_write = (await s.exec(
            select(sa.func.count(col(AuditLog.id)), sa.func.max(col(AuditLog.created_at)))
            .where(AuditLog.connection_id == connection_id, AuditLog.response_status == 429,
                   col(AuditLog.created_at) >= since))).one()
        runs = (await s.exec(select(SyncRun).where(SyncRun.connection_id == connection_id,
                                                   col(SyncRun.started_at) >= since))).all()
    hit_runs = [r for r in runs if int((r.counts or {}).get("rate_limited") or 0) > 0]
    reads = sum(int((r.counts or {})["rate_limited"]) for r in hit_runs)
    stamps = [t for t in [last_write, *(r.finished_at or r.started_at for r in hit_runs)] if t is not None]
    return RateLimitHits(writes=int(writes or 0), reads=reads, last_at=max(stamps) if stamps else None)


def hits_headroom(kind: str, hits: RateLimitHits) -> Headroom:
    if hits.total == 0:
        return Headroom("ok", "rate limits: no 429 (too many requests) answer in the last 24 h")
    parts = [f"{n} {what}" for n, what in ((hits.reads, "during syncs"), (hits.writes, "on writes")) if n]
    last = f"; last at {hits.last_at:%Y-%m-%d %H:%M} UTC" if hits.last_at else ""
    return Headroom("warn", f"rate limited {hits.total} time(s) in the last 24 h ({', '.join(parts)}{last}); "
                            "each was retried after the PSA's Retry-After, nothing was lost",
                    ADVICE.get(kind, "Lower this connection's request rate settings (see README)."))


def autotask_headroom(details: Mapping[str, str], settings: Mapping[str, Any]) -> Headroom | None:
    """The database's usage this hour against Deskbridge's pacing and stop thresholds (None without a reading)."""
    try:
        used, limit = int(details["requests_used"]), int(details["requests_limit"])
    except (KeyError, ValueError):
        return None
    if limit <= 0:
        return None
    try:
        stop = float(settings.get("read_stop_share") or DEFAULT_READ_STOP)
    except (TypeError, ValueError):
        stop = DEFAULT_READ_STOP
    share = used / limit
    text = f"API usage this hour: {used:,} of {limit:,} requests ({share:.0%}) by every integration of the database"
    if share >= stop:
        return Headroom("fail", f"{text}: Deskbridge holds its syncs above {stop:.0%} until usage drops",
                        ADVICE["autotask"])
    if share >= PACE_FROM:
        return Headroom("warn", f"{text}: above {PACE_FROM:.0%} Autotask slows every call, and Deskbridge holds its "
                                f"syncs at {stop:.0%}", ADVICE["autotask"])
    return Headroom("ok", f"{text}; Deskbridge paces from {PACE_FROM:.0%} and holds syncs at {stop:.0%}")
