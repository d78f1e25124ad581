"""The outbox worker: claims due ops, delivers them through the connection's connector, records outcomes.

(Over 400 lines: claiming, leases with heartbeat and fencing, and outcome recording are one state machine
whose pieces share the lease; split along claim / attempt / record if it grows further.)

- Claims one op per free slot in a short transaction with a lease and an attempt counter
  (core/outbox/queries.py); holds no database lock during HTTP; finishes fenced by `attempts`.
- Leases are short and renewed by a heartbeat while an attempt works, so a dead worker's ops are taken
  over within `lease_seconds`. Before each PSA write the attempt records, fenced by its attempt number,
  that a write is starting (`sent_at`); a stale attempt cannot, and so does not send. A takeover less than
  client timeout + settle after such a write waits until that write can no longer land, then looks for
  it before writing again, so the lookup is conclusive (reliability-sla.md §2.3, §3.5).
- Per connection: a circuit breaker (open: its ops are not claimed, no attempts spent) and a request
  budget (token bucket + concurrency gate).
- Connectors come only from ConnectionService (the factory handed in by the composition root).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import random
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from connectors.base import PsaConnector
from connectors.errors import PsaAuthError, PsaError, PsaForbidden, PsaNotFound, PsaRateLimited
from core import ticket_gone
from core.alert_webhooks import AlertWebhookService
from core.connections import ConnectionService
from core.notify import Notifier
from core.outbox import queries
from core.outbox.audit import Outcome
from core.outbox.backoff import BackoffPolicy
from core.outbox.breaker import CircuitBreaker
from core.outbox.delivery import (
    AlertSend,
    AttemptLog,
    DeliveryInput,
    Gate,
    NotReady,
    TenantSend,
    deliver,
    reconcilable,
    request_summary,
)
from core.outbox.journal import LeaseLost, OpJournal
from core.outbox.ops import OUTBOX_TOPIC, SIDE_KINDS, OpKind
from core.outbox.queries import Claim
from core.outbox.ratelimit import BudgetExhausted, ConnectionBudget, limits_for
from core.outbox.recorder import AttemptResult, record
from store.db import Database, Scope
from store.tables import AttachmentBlob, OutboxOp, PsaConnection
from store.types import utcnow

log = logging.getLogger("deskbridge.outbox")

IDLE_MIN = 0.05  # seconds: first idle wait; doubles up to poll_seconds


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    concurrency: int = 4  # delivery slots in this process
    lease_seconds: float = 30.0  # renewed every third of it while an attempt works; a silent worker loses it
    settle_seconds: float = 45.0  # wait before reconciling an ambiguous write: > client timeout + margin
    client_timeout: float = 30.0  # the connectors' total request timeout
    poll_seconds: float = 1.0  # the longest idle wait between polls
    backoff: BackoffPolicy = field(default_factory=BackoffPolicy)
    breaker_fail_max: int = 5
    breaker_reset_seconds: float = 30.0
    reauth_park_seconds: float = 300.0  # credentials rejected: hold the connection's ops this long
    grace_seconds: float = 10.0  # on stop, let in-flight deliveries finish this long
    connection_refresh_seconds: float = 30.0  # re-read connection rows (credentials replaced, disabled)

    def __post_init__(self) -> None:
        if self.lease_seconds < 1.0:
            raise ValueError("lease_seconds must be at least 1 s (it is renewed every third of it)")
        if self.settle_seconds <= self.client_timeout:
            raise ValueError("settle_seconds must exceed client_timeout (an ambiguous write may still land)")


@dataclass(slots=True)
class _Conn:
    row: PsaConnection
    key: str
    fetched: float
    connector: PsaConnector | None = None


class OutboxWorker:
    """Delivers outbox ops of every workspace; run one per process (`serve` or `outbox work`)."""

    def __init__(self, db: Database, connections: ConnectionService, notifier: Notifier, *,
                 config: WorkerConfig | None = None, clock: Callable[[], datetime] = utcnow,
                 monotonic: Callable[[], float] = time.monotonic, rng: random.Random | None = None,
                 name: str = "outbox", alerts: AlertWebhookService | None = None,
                 tenant: Callable[[int], TenantSend] | None = None) -> None:
        self.db = db
        self.alerts = alerts  # alert actions go to the workspace's alert webhook, not the PSA
        self.tenant = tenant  # Microsoft 365 quick actions go to Graph: workspace id -> sender
        self.connections = connections
        self.notifier = notifier
        self.config = config or WorkerConfig()
        self._clock = clock
        self._mono = monotonic
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not security
        self.name = name
        self._conns: dict[int, _Conn] = {}
        self._retired: list[PsaConnector] = []
        self._breakers: dict[int, CircuitBreaker] = {}
        self._budgets: dict[int, ConnectionBudget] = {}
        self._stopping = asyncio.Event()
        self._wake = asyncio.Event()
        self.processed = 0

    # ------------------------------------------------------------ running

    async def run(self) -> None:
        """Claim and deliver until stop(); in-flight deliveries get `grace_seconds` to finish.

        One dispatcher claims as many ops as there are free slots, in one transaction; each claimed op is
        delivered in its own task."""
        self._stopping.clear()
        inflight: set[asyncio.Task[None]] = set()
        log.info("outbox worker started", extra={"worker": self.name, "slots": self.config.concurrency})
        idle = IDLE_MIN
        self.db.listen(OUTBOX_TOPIC, self.wake)  # an op enqueued in this process: claim it now, not at the next poll
        try:
            while not self._stopping.is_set():
                free = self.config.concurrency - len(inflight)
                if free <= 0:
                    await asyncio.wait(inflight, return_when=asyncio.FIRST_COMPLETED)
                    continue
                self._wake.clear()  # before claiming: a wake-up during the claim is not lost
                try:
                    claims = await self._claim(free)
                except Exception:  # noqa: BLE001 - e.g. the database is briefly unavailable; try again
                    log.exception("outbox claim failed", extra={"worker": self.name})
                    claims = []
                for c in claims:
                    task = asyncio.create_task(self._process_logged(c), name=f"{self.name}-op-{c.op.id}")
                    inflight.add(task)
                    task.add_done_callback(inflight.discard)
                if claims:
                    idle = IDLE_MIN
                    continue
                waiters: set[asyncio.Future[Any]] = {asyncio.ensure_future(self._wake.wait()), *inflight}
                done, _ = await asyncio.wait(waiters, timeout=idle * (0.5 + self._rng.random()),
                                             return_when=asyncio.FIRST_COMPLETED)
                for w in waiters - set(inflight):
                    w.cancel()
                idle = min(idle * 2, self.config.poll_seconds)
        finally:
            self.db.unlisten(OUTBOX_TOPIC, self.wake)
            if inflight:
                _, pending = await asyncio.wait(inflight, timeout=self.config.grace_seconds)
                for t in pending:
                    t.cancel()  # its op stays inflight; the lease expires and another attempt reconciles
                await asyncio.gather(*pending, return_exceptions=True)
            await self.aclose()
            log.info("outbox worker stopped", extra={"worker": self.name})

    async def _process_logged(self, claim: Claim) -> None:
        try:
            await self.process(claim)
        except Exception:  # noqa: BLE001 - recording failed (database); the lease expires and it is retried
            log.exception("outbox op processing failed", extra={"op_id": claim.op.id})

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()

    def wake(self) -> None:
        """Poll now (e.g. an op was just enqueued in this process)."""
        self._wake.set()

    async def step(self) -> bool:
        """Claim and deliver one due op; False when nothing was due."""
        claims = await self._claim(1)
        if not claims:
            return False
        await self.process(claims[0])
        return True

    async def _claim(self, limit: int) -> list[Claim]:
        held = await self._held_connections()
        c = self.config
        return await queries.claim(self.db, now=self._clock(), lease=timedelta(seconds=c.lease_seconds),
                                   limit=limit, exclude_connections=held,
                                   unsafe=timedelta(seconds=c.client_timeout + c.settle_seconds))

    async def drain(self, max_ops: int = 10_000) -> int:
        """Deliver due ops one at a time until none is due (tests, `outbox work --once`)."""
        n = 0
        while n < max_ops and await self.step():
            n += 1
        return n

    async def aclose(self) -> None:
        for c in list(self._conns.values()):
            if c.connector is not None:
                self._retired.append(c.connector)
        self._conns.clear()
        for connector in self._retired:
            try:
                await connector.aclose()
            except Exception:  # noqa: BLE001
                log.warning("closing a connector failed", exc_info=True)
        self._retired.clear()

    # ------------------------------------------------------------ one op

    async def process(self, claim: Claim) -> None:
        """Deliver one claimed op and record the outcome (never raises for PSA failures)."""
        op = claim.op
        now_wall, t0 = self._clock(), self._mono()
        alert = op.kind in SIDE_KINDS  # to the MSP's alert webhook or to Graph: the PSA's breaker does not apply
        # A side op of a standalone ticket has no connection (there may be none in the workspace): it needs none.
        conn = None if alert and op.connection_id is None else await self._connection(op)
        if conn is None and not alert:
            await self._record(op, AttemptResult(Outcome.PARKED, "connection", error="connection disabled or missing",
                                                 next_attempt_at=now_wall + timedelta(seconds=60)))
            return
        breaker = self._breaker(conn.row) if conn is not None else None
        if breaker is not None and not alert and not breaker.allow(now_wall.timestamp()):
            until = datetime.fromtimestamp(breaker.open_until, now_wall.tzinfo)
            await self._record(op, AttemptResult(Outcome.PARKED, "breaker", error=f"breaker open: {breaker.reason}",
                                                 next_attempt_at=max(until, now_wall)))
            return
        inp: DeliveryInput | None = None
        attempt = AttemptLog()
        try:
            reconcile = op.outcome_unknown and reconcilable(op.kind)
            linked, known = await queries.probe_context(self.db, op) if reconcile else (None, frozenset())
            inp = DeliveryInput(claim.ticket_external_id, await self._blob(op), made_at=op.created_at,
                                entry_external_id=linked, known_external_ids=known)
            # An alert action goes to the workspace's alert webhook: the PSA connector is not needed.
            connector = None if alert or conn is None else self._connector(conn)
            gate = self._gate(conn, t0 + self.config.lease_seconds)  # waiting longer for the budget: park instead
            async with self._heartbeat(op):
                delivered = await deliver(connector, op.kind, op.payload, op.marker, inp, reconcile=reconcile,
                                          gate=gate, log=attempt,
                                          alerts=self._alert_send(op), journal=OpJournal(self.db, op),
                                          mark=lambda: self._mark_sent(op),
                                          tenant=self.tenant(op.workspace_id) if self.tenant else None)
        except Exception as exc:  # noqa: BLE001 - classified below; PsaError is the connector contract
            if isinstance(exc, PsaNotFound) and conn is not None and not alert and claim.ticket_external_id:
                exc = await self._ticket_gone(conn, op, claim.ticket_external_id, exc)
            res = self._failed(op, conn, exc, attempt)
        else:
            if breaker is not None and not alert:
                breaker.record_success(self._clock().timestamp())
            res = AttemptResult(Outcome.RECONCILED if delivered.reconciled else Outcome.OK, delivered.action,
                                delivered=delivered)
        res.request = request_summary(op.kind, op.payload, op.marker, inp)
        if attempt.calls:
            res.request["calls"] = list(attempt.calls)
        res.duration_ms = int((self._mono() - t0) * 1000)
        await self._record(op, res, claim.ticket_number)

    async def _ticket_gone(self, conn: _Conn, op: OutboxOp, external_id: str, exc: PsaNotFound) -> PsaError:
        """A write answered 404: is the ticket itself gone from the PSA? Then it leaves the queue now (not at
        the next reconcile), and the dead letter says so in words."""
        try:
            await self._connector(conn).get_ticket(external_id)
        except PsaNotFound:
            assert op.connection_id is not None  # only PSA writes (which have a connection) come here
            events = await ticket_gone.mark_deleted(self.db, op.workspace_id, op.connection_id, [external_id],
                                                    self._clock())
            for event in events:
                await self.notifier.notify(event)
            return PsaNotFound(f"The ticket was deleted in the PSA (or merged into another), so this write "
                               f"cannot be made: {exc.message}", status=404, code="TicketDeleted")
        except PsaError:
            return exc  # could not tell: the 404 stands as the PSA said it
        return exc  # the ticket is there: something else of the write was not found

    @asynccontextmanager
    async def _heartbeat(self, op: OutboxOp) -> AsyncIterator[None]:
        """Renew the op's lease every third of it while the attempt works."""
        lease = timedelta(seconds=self.config.lease_seconds)

        async def beat() -> None:
            while True:
                await asyncio.sleep(self.config.lease_seconds / 3)
                try:
                    if not await queries.renew_lease(self.db, op, now=self._clock(), lease=lease):
                        return  # taken over: the next write is refused by mark_sent
                except Exception:  # noqa: BLE001 - the database blinked: the next beat tries again
                    log.warning("outbox lease renewal failed", extra={"op_id": op.id}, exc_info=True)

        task = asyncio.create_task(beat(), name=f"{self.name}-lease-{op.id}")
        try:
            yield
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _mark_sent(self, op: OutboxOp) -> None:
        if not await queries.mark_sent(self.db, op, now=self._clock()):
            raise LeaseLost(f"outbox op {op.id}: another attempt owns it now; this one sends nothing more")

    def _failed(self, op: OutboxOp, conn: _Conn | None, exc: Exception, attempt: AttemptLog) -> AttemptResult:
        now = self._clock()
        action = attempt.calls[-1] if attempt.calls else op.kind
        # Unknown if a write may have landed: this attempt's write was ambiguous, or an earlier
        # ambiguous write was not yet checked for (the marker lookup itself failed).
        unknown_before = op.outcome_unknown and not attempt.reconcile_checked
        if op.kind in SIDE_KINDS or conn is None:  # the MSP's webhook or Graph, not the PSA: no PSA breaker
            return self._alert_failed(op, exc, action)
        breaker = self._breaker(conn.row)
        if isinstance(exc, BudgetExhausted):
            breaker.release()
            return AttemptResult(Outcome.PARKED, "budget", error=str(exc),
                                 next_attempt_at=now + timedelta(seconds=exc.wait))
        if isinstance(exc, NotReady):
            breaker.release()
            return AttemptResult(Outcome.DEAD, action, error=f"Not sent: {exc}.", outcome_unknown=unknown_before)
        if not isinstance(exc, PsaError):
            log.exception("outbox delivery raised a non-PSA error", extra={"op_id": op.id, "kind": op.kind})
            breaker.release()
            exc = PsaError(f"internal error: {type(exc).__name__}: {exc}", outcome_unknown=attempt.wrote)
            unknown = unknown_before or attempt.wrote
            return self._retry_or_dead(op, exc, action, unknown, retry_after=None)
        unknown = unknown_before or (attempt.wrote and exc.outcome_unknown)
        if isinstance(exc, PsaForbidden):  # the role may not do this one thing: other writes go on, keys are fine
            breaker.record_success(now.timestamp())
            return AttemptResult(Outcome.DEAD, action, status=exc.status, error=str(exc), outcome_unknown=unknown,
                                 cause="permission")
        if isinstance(exc, PsaAuthError):
            breaker.trip(now.timestamp(), self.config.reauth_park_seconds, "credentials rejected")
            return AttemptResult(Outcome.DEAD, action, status=exc.status, error=str(exc), outcome_unknown=unknown,
                                 connection_error=f"Credentials rejected: {exc.message}", cause="credentials",
                                 breaker_opened=self._breaker_opened(conn, "credentials rejected: " + exc.message))
        if not exc.retryable:
            breaker.record_success(now.timestamp())  # the PSA answered: it is up
            # by what the PSA said, not its status: Autotask refuses content (and permission) as HTTP 500
            return AttemptResult(Outcome.DEAD, action, status=exc.status, error=str(exc), outcome_unknown=unknown,
                                 cause="deleted" if isinstance(exc, PsaNotFound) else "refused")
        retry_after = exc.retry_after if isinstance(exc, PsaRateLimited) else None
        opened = None
        if isinstance(exc, PsaRateLimited):
            breaker.release()
            wait = retry_after if retry_after is not None else self.config.backoff.window(op.attempts)
            self._budget(conn.row).pause(wait)
            if wait > self.config.backoff.max_retry_after:
                breaker.trip(now.timestamp(), wait, f"rate limited for {wait:.0f}s")
                opened = self._breaker_opened(conn, f"rate limited for {wait:.0f}s")
        elif breaker.record_failure(now.timestamp(), str(exc)):
            opened = self._breaker_opened(conn, str(exc))
        res = self._retry_or_dead(op, exc, action, unknown, retry_after=retry_after)
        res.breaker_opened = opened
        return res

    def _alert_send(self, op: OutboxOp) -> AlertSend | None:
        alerts = self.alerts
        if alerts is None or op.kind != OpKind.ALERT_ACTION:
            return None
        return lambda payload, key: alerts.send(op.workspace_id, payload, key)

    def _alert_failed(self, op: OutboxOp, exc: Exception, action: str) -> AttemptResult:
        """4xx (and no webhook) is final; 429 (Retry-After as the floor), 5xx, timeouts are retried. The receiver
        dedupes on the idempotency key (Graph's quick actions are idempotent in effect), so an ambiguous attempt
        needs no settle delay."""
        if not isinstance(exc, PsaError):
            log.exception("alert webhook delivery raised a non-PSA error", extra={"op_id": op.id})
            exc = PsaError(f"internal error: {type(exc).__name__}: {exc}")
            return self._retry_or_dead(op, exc, action, False, retry_after=None)
        if not exc.retryable:
            return AttemptResult(Outcome.DEAD, action, status=exc.status, error=str(exc))
        retry_after = exc.retry_after if isinstance(exc, PsaRateLimited) else None
        res = self._retry_or_dead(op, exc, action, False, retry_after=retry_after)
        if retry_after is not None and res.next_attempt_at is not None:  # no breaker to park on: wait it out
            res.next_attempt_at = max(res.next_attempt_at, self._clock() + timedelta(seconds=retry_after))
        return res

    def _retry_or_dead(self, op: OutboxOp, exc: PsaError, action: str, unknown: bool,
                       retry_after: float | None) -> AttemptResult:
        if op.attempts >= op.max_attempts:
            return AttemptResult(Outcome.DEAD, action, status=exc.status, outcome_unknown=unknown,
                                 error=f"gave up after {op.attempts} attempts: {exc}")
        delay = self.config.backoff.delay(op.attempts, self._rng, retry_after=retry_after,
                                          settle=self.config.settle_seconds if unknown else None)
        return AttemptResult(Outcome.RETRY, action, status=exc.status, error=str(exc), outcome_unknown=unknown,
                             next_attempt_at=self._clock() + timedelta(seconds=delay))

    async def _record(self, op: OutboxOp, res: AttemptResult, ticket_number: int | None = None) -> None:
        applied, event = await record(self.db, op, res, self._clock(), ticket_number=ticket_number)
        self.processed += 1
        if not applied:
            log.warning("outbox attempt superseded", extra={"op_id": op.id, "attempt": op.attempts})
        elif res.outcome == Outcome.DEAD:
            log.warning("outbox op dead", extra={"op_id": op.id, "kind": op.kind, "error": res.error})
        if event is not None:
            try:
                await self.notifier.notify(event)
            except Exception:  # noqa: BLE001 - a chat surface failing never fails the delivery
                log.exception("notifier failed", extra={"op_id": op.id})

    @staticmethod
    def _breaker_opened(conn: _Conn, reason: str) -> str:
        """One log line (and one audit row, written with the attempt) per opening, not one per op."""
        log.warning("PSA connection paused: circuit breaker open",
                    extra={"connection_id": conn.row.id, "reason": reason})
        return reason

    # ------------------------------------------------------------ per-connection state

    async def _held_connections(self) -> list[int]:
        """Connections whose ops must not be claimed now (breaker open, or paused by a long 429).

        A held connection's row is still re-read now and then: new credentials release it at once."""
        now = self._clock().timestamp()
        held = [cid for cid, b in self._breakers.items() if b.is_open(now)]
        held += [cid for cid, bud in self._budgets.items() if bud.expected_wait() > self.config.poll_seconds * 5]
        still = []
        for cid in dict.fromkeys(held):
            cached = self._conns.get(cid)
            if cached is not None and self._mono() - cached.fetched >= self.config.connection_refresh_seconds:
                fresh = await self._load(cached.row.workspace_id, cid)
                if fresh is None or fresh.key != cached.key:
                    continue  # replaced (breaker and budget reset) or gone (the claim skips disabled ones)
            still.append(cid)
        return still

    def _breaker(self, conn: PsaConnection) -> CircuitBreaker:
        assert conn.id is not None
        if conn.id not in self._breakers:
            self._breakers[conn.id] = CircuitBreaker(fail_max=self.config.breaker_fail_max,
                                                     reset_timeout=self.config.breaker_reset_seconds)
        return self._breakers[conn.id]

    def _budget(self, conn: PsaConnection) -> ConnectionBudget:
        assert conn.id is not None
        if conn.id not in self._budgets:
            self._budgets[conn.id] = ConnectionBudget(limits_for(conn.kind, conn.settings or {}),
                                                      clock=self._mono)
        return self._budgets[conn.id]

    def _gate(self, conn: _Conn | None, deadline: float) -> Gate:
        """The PSA's rate budget for a delivery's requests (none for an op without a connection: it never
        calls a PSA)."""
        if conn is None:
            return contextlib.nullcontext  # an async context manager too
        budget = self._budget(conn.row)
        return lambda: budget.request(deadline)

    async def _connection(self, op: OutboxOp) -> _Conn | None:
        if op.connection_id is None:
            return None
        cached = self._conns.get(op.connection_id)
        if cached is not None and self._mono() - cached.fetched < self.config.connection_refresh_seconds:
            return cached
        return await self._load(op.workspace_id, op.connection_id)

    async def _load(self, workspace_id: int, connection_id: int) -> _Conn | None:
        """(Re)read a connection row; new credentials or settings get a new connector, breaker and budget."""
        async with self.db.read(Scope.workspace(workspace_id)) as session:
            row = await session.get(PsaConnection, connection_id)
        if row is None or not row.enabled:
            return None
        cached = self._conns.get(connection_id)  # after the read: a concurrent delivery may have loaded it
        key = hashlib.sha256((row.credentials_ciphertext or b"") + repr(sorted((row.settings or {}).items()))
                             .encode()).hexdigest()
        if cached is not None and cached.key == key:
            cached.row, cached.fetched = row, self._mono()
            return cached
        if cached is not None:  # credentials or settings replaced: new connector, fresh breaker and budget
            if cached.connector is not None:
                self._retired.append(cached.connector)
            self._breakers.pop(connection_id, None)
            self._budgets.pop(connection_id, None)
        fresh = _Conn(row=row, key=key, fetched=self._mono())
        self._conns[connection_id] = fresh
        return fresh

    def _connector(self, conn: _Conn) -> PsaConnector:
        if conn.connector is None:
            conn.connector = self.connections.build(conn.row)
        return conn.connector

    async def _blob(self, op: OutboxOp) -> bytes | None:
        """An attachment's bytes (read just before the upload; never held in the claim)."""
        blob_id = (op.payload or {}).get("blob_id")
        if blob_id is None:
            return None
        async with self.db.read(Scope.workspace(op.workspace_id)) as session:
            row = await session.get(AttachmentBlob, int(blob_id))
        return bytes(row.data) if row is not None else None
