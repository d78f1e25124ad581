"""Escalation risk of open tickets: train a workspace's model from its closed tickets, score its open tickets
(on a schedule, and again whenever a ticket changed), list the riskiest with the reasons, and give a card its
risk chip. The model itself is pure (core/ai/escalation.py).

Honest features (no leakage): a closed ticket is seen as it stood `SNAPSHOT` after it was opened, and only
tickets still open then, whose outcome was not yet known, are learned from. Its features are what was known
at that moment: priority, customer, category, channel, hour and weekday opened, reassignments and reopenings
so far, hours since the last change, the workspace's open tickets when it was opened, the requester's earlier
tickets. Hour and weekday are read on the workspace's clock (a desk's evening is its own, not UTC's), in the zone
the model was trained in (`RiskModel.zone`). The label is whether an SLA was breached afterwards: our SLA clock's `breached_at` where SLAs are
configured, else the PSA's resolve-by date. An open ticket is scored with the same features as they are now.
"""

from __future__ import annotations

import asyncio
import bisect
import hashlib
import io
import logging
import pickle  # noqa: S403 - our own model bytes from our own database, checked against a stored sha256
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlmodel import col, select

from core.ai import escalation
from core.ai import settings as ai_settings
from core.ai.risk_posts import RiskPosts
from core.context import Actor
from core.errors import InvalidInput, PermissionDenied
from core.hints import TECH_ONLY_HINT
from core.local_time import workspace_zone, zone_named
from core.notify import Notifier
from store.db import Database, Scope
from store.enums import EntryKind, Stage
from store.sql import table_of
from store.tables import AiModel, AiRisk, Customer, SlaClock, Ticket, TimelineEntry, Workspace
from store.types import utcnow

log = logging.getLogger("deskbridge.ai.risk")
KIND = "escalation"
SNAPSHOT = timedelta(hours=1)  # closed tickets are learned from as they stood this long after opening
MIN_TRAINING = 50
RESCORE_EVERY = timedelta(minutes=10)  # unchanged tickets are rescored this often (time since update moves)
CLOSED = (Stage.RESOLVED.value, Stage.CLOSED.value)
_OPEN = (Stage.NEW.value, Stage.IN_PROGRESS.value, Stage.WAITING.value)


@dataclass(frozen=True, slots=True)
class TicketFacts:
    """What is known of one ticket at one moment (the model's features are built from it)."""

    id: int
    priority: str
    customer: str | None
    category: str | None
    channel: str | None
    opened_at: datetime
    reassignments: int
    reopenings: int
    hours_since_update: float
    queue_load: int
    requester_history: int

    def features(self) -> dict[str, Any]:
        return escalation.ticket_features(
            priority=self.priority, customer=self.customer, category=self.category, channel=self.channel,
            opened_at=self.opened_at, reassignments=self.reassignments, reopenings=self.reopenings,
            hours_since_update=self.hours_since_update, queue_load=self.queue_load,
            requester_history=self.requester_history)


@dataclass(frozen=True, slots=True)
class AtRisk:
    ticket_id: int
    number: int | None
    subject: str
    customer: str | None
    priority: str
    score: float
    reasons: tuple[str, ...]
    scored_at: datetime


def _loads(data: bytes) -> escalation.RiskModel:
    return pickle.loads(data)  # noqa: S301 - checked bytes we stored


class RiskService:
    def __init__(self, db: Database, *, clock: Callable[[], datetime] = utcnow,
                 notifier: Notifier | None = None) -> None:
        self.db = db
        self._clock = clock
        self.posts = RiskPosts(db, self, notifier, clock=clock) if notifier is not None else None
        self._models: dict[int, tuple[int, escalation.RiskModel]] = {}

    # --- facts ----------------------------------------------------------------------------------------
    async def _rows(self, workspace_id: int, where: Any) -> list[Any]:
        async with self.db.read(Scope.workspace(workspace_id)) as session:
            return list((await session.execute(
                sa.select(col(Ticket.id), col(Ticket.priority), col(Ticket.customer_id), col(Ticket.type_name),
                          col(Ticket.source), col(Ticket.created_at), col(Ticket.updated_at), col(Ticket.contact_id),
                          col(Ticket.closed_at), col(Ticket.psa_resolve_by), col(Ticket.version))
                .where(where, col(Ticket.deleted_at).is_(None)).order_by(col(Ticket.id)))).all())

    async def _history(self, workspace_id: int) -> tuple[list[datetime], list[datetime], dict[int, list[datetime]]]:
        """Every ticket's opening and closing times (sorted) and each contact's opening times: queue load and
        requester history at any moment, by bisection."""
        async with self.db.read(Scope.workspace(workspace_id)) as session:
            rows = (await session.execute(select(Ticket.created_at, Ticket.closed_at, Ticket.contact_id)
                                          .where(col(Ticket.deleted_at).is_(None)))).all()
        opened = sorted(r[0] for r in rows)
        closed = sorted(r[1] for r in rows if r[1] is not None)
        by_contact: dict[int, list[datetime]] = defaultdict(list)
        for created, _, contact in rows:
            if contact is not None:
                by_contact[contact].append(created)
        for times in by_contact.values():
            times.sort()
        return opened, closed, by_contact

    async def _events(self, workspace_id: int, ids: Sequence[int]) -> dict[int, list[tuple[datetime, str, dict]]]:
        out: dict[int, list[tuple[datetime, str, dict]]] = defaultdict(list)
        kinds = [EntryKind.ASSIGNMENT.value, EntryKind.STATUS_CHANGE.value]
        async with self.db.read(Scope.workspace(workspace_id)) as session:
            for start in range(0, len(ids), 1000):
                for tid, at, kind, data in (await session.execute(
                        select(TimelineEntry.ticket_id, TimelineEntry.occurred_at, TimelineEntry.kind,
                               TimelineEntry.data)
                        .where(col(TimelineEntry.ticket_id).in_(ids[start:start + 1000]),
                               col(TimelineEntry.kind).in_(kinds)))).all():
                    out[tid].append((at, kind, dict(data or {})))
        return out

    async def _zone(self, workspace_id: int) -> ZoneInfo:
        async with self.db.read(Scope.workspace(workspace_id)) as session:
            return await workspace_zone(session, workspace_id)

    @staticmethod
    def _facts(row: Any, at: datetime, events: list[tuple[datetime, str, dict]],
               history: tuple[list[datetime], list[datetime], dict[int, list[datetime]]], zone: ZoneInfo) -> TicketFacts:
        opened, closed, by_contact = history
        tid, prio, customer, category, channel, created, updated, contact = row[:8]
        before = [e for e in events if e[0] < at]
        assignments = sum(1 for e in before if e[1] == EntryKind.ASSIGNMENT.value)
        reopenings = sum(1 for e in before if e[1] == EntryKind.STATUS_CHANGE.value
                         and (e[2].get("from") or {}).get("stage") in CLOSED
                         and (e[2].get("to") or {}).get("stage") in _OPEN)
        last = max([created, *(e[0] for e in before), *([updated] if updated and updated < at else [])])
        load = bisect.bisect_left(opened, created) - bisect.bisect_left(closed, created)
        earlier = bisect.bisect_left(by_contact.get(contact, []), created) if contact is not None else 0
        return TicketFacts(id=tid, priority=prio, customer=str(customer) if customer else None, category=category,
                           channel=channel, opened_at=created.astimezone(zone), reassignments=max(0, assignments - 1),
                           reopenings=reopenings, hours_since_update=max(0.0, (at - last).total_seconds() / 3600),
                           queue_load=max(0, load), requester_history=earlier)

    # --- training -------------------------------------------------------------------------------------
    async def training_data(self, workspace_id: int, zone: ZoneInfo | None = None
                            ) -> tuple[list[dict[str, Any]], list[bool]]:
        """Closed tickets as they stood SNAPSHOT after opening (only those still open then, with a known SLA
        outcome that was not yet known at that moment), and whether an SLA was breached. Hours and weekdays
        in `zone` (default: the workspace's)."""
        zone = zone or await self._zone(workspace_id)
        rows = await self._rows(workspace_id, col(Ticket.stage).in_(CLOSED))
        async with self.db.read(Scope.workspace(workspace_id)) as session:
            clocks = (await session.execute(select(SlaClock.ticket_id, SlaClock.breached_at))).all()
        breached: dict[int, datetime | None] = {}
        for tid, at in clocks:
            prior = breached.get(tid)
            if at is not None and (prior is None or at < prior):
                breached[tid] = at
            else:
                breached.setdefault(tid, None)
        history = await self._history(workspace_id)
        events = await self._events(workspace_id, [r[0] for r in rows])
        features, labels = [], []
        for r in rows:
            tid, created, closed_at, resolve_by = r[0], r[5], r[8], r[9]
            at = created + SNAPSHOT
            if closed_at is None or closed_at <= at:
                continue  # not open at the snapshot
            if tid in breached:
                when = breached[tid]
            elif resolve_by is not None:
                when = resolve_by if closed_at > resolve_by else None
            else:
                continue  # no SLA outcome known
            if when is not None and when <= at:
                continue  # already breached at the snapshot: nothing left to predict
            features.append(self._facts(r, at, events.get(tid, []), history, zone).features())
            labels.append(when is not None)
        return features, labels

    async def train(self, workspace_id: int) -> tuple[int, dict[str, Any]]:
        """Train and store a new escalation model version; (version, metrics)."""
        zone = await self._zone(workspace_id)
        rows, labels = await self.training_data(workspace_id, zone)
        counts = Counter(labels)
        if len(rows) < MIN_TRAINING or len(counts) < 2:
            raise InvalidInput(
                f"{len(rows)} closed tickets with a known SLA outcome ({counts[True]} breached); at least "
                f"{MIN_TRAINING}, breached and not, are needed to learn escalation risk.",
                hint="Configure SLAs (`deskbridge sla …`) or sync the PSA's due dates, then train again later.")
        model = await asyncio.to_thread(escalation.train, rows, labels)
        model.zone = zone.key
        buf = io.BytesIO()
        pickle.dump(model, buf, protocol=pickle.HIGHEST_PROTOCOL)
        data = buf.getvalue()
        import sklearn

        metrics = {"trained_on": len(rows), "base_rate": round(model.base_rate, 4), "sklearn": sklearn.__version__,
                   "snapshot_hours": SNAPSHOT.total_seconds() / 3600, "zone": zone.key}
        async with self.db.write(Scope.workspace(workspace_id)) as session:
            latest = (await session.execute(select(sa.func.max(AiModel.version)).where(AiModel.kind == KIND))).scalar()
            row = AiModel(workspace_id=workspace_id, kind=KIND, version=(latest or 0) + 1, trained_on=len(rows),
                          metrics=metrics, sha256=hashlib.sha256(data).hexdigest(), data=data)
            session.add(row)
            await session.flush()
        self._models[workspace_id] = (row.version, model)
        return row.version, metrics

    async def status(self, workspace_id: int) -> tuple[int, int, dict[str, Any]] | None:
        """(version, trained on, metrics) of the newest escalation model, or None before the first."""
        async with self.db.read(Scope.workspace(workspace_id)) as session:
            row = (await session.execute(
                sa.select(col(AiModel.version), col(AiModel.trained_on), col(AiModel.metrics))
                .where(col(AiModel.kind) == KIND).order_by(col(AiModel.version).desc()).limit(1))).first()
        return None if row is None else (int(row[0]), int(row[1]), dict(row[2]))

    async def _model(self, workspace_id: int) -> tuple[int, escalation.RiskModel] | None:
        async with self.db.read(Scope.workspace(workspace_id)) as session:
            version = (await session.execute(select(sa.func.max(AiModel.version)).where(AiModel.kind == KIND))).scalar()
            if version is None:
                return None
            cached = self._models.get(workspace_id)
            if cached and cached[0] == version:
                return cached
            row = (await session.execute(select(AiModel).where(AiModel.kind == KIND,
                                                               AiModel.version == version))).scalar_one()
        if hashlib.sha256(row.data).hexdigest() != row.sha256:
            raise InvalidInput(f"Stored escalation model v{version} is damaged (checksum mismatch).",
                               hint="Run `deskbridge ai train` to store a new version.")
        model = await asyncio.to_thread(_loads, row.data)
        self._models[workspace_id] = (version, model)
        return version, model

    # --- scoring --------------------------------------------------------------------------------------
    async def score(self, workspace_id: int, *, changed_only: bool = True) -> int:
        """Score the workspace's open tickets that changed since they were last scored (or were scored over
        RESCORE_EVERY ago, or never); `changed_only=False` scores all. Drops scores of tickets now closed.
        Returns how many were scored."""
        if not ai_settings.effective(await self._settings(workspace_id))["risk"]:
            return 0
        loaded = await self._model(workspace_id)
        if loaded is None:
            return 0
        version, model = loaded
        now = self._clock()
        rows = await self._rows(workspace_id, col(Ticket.is_open).is_(True))
        async with self.db.read(Scope.workspace(workspace_id)) as session:
            seen = {r[0]: (r[1], r[2], r[3]) for r in (await session.execute(
                select(AiRisk.ticket_id, AiRisk.ticket_version, AiRisk.scored_at, AiRisk.model_version))).all()}
        scores: Any = []
        reasons: list[list[tuple[str, float]]] = []
        due = [r for r in rows if not changed_only or r[0] not in seen or seen[r[0]][0] != r[10]
               or seen[r[0]][2] != version or now - seen[r[0]][1] >= RESCORE_EVERY]
        if due:
            history = await self._history(workspace_id)
            events = await self._events(workspace_id, [r[0] for r in due])
            zone = zone_named(model.zone)  # the clock the model learned on
            facts = [self._facts(r, now, events.get(r[0], []), history, zone) for r in due]
            feats = [f.features() for f in facts]
            scores = await asyncio.to_thread(model.score, feats)
            reasons = await asyncio.to_thread(model.reasons_many, feats, 3)
        open_ids = {r[0] for r in rows}
        async with self.db.write(Scope.workspace(workspace_id)) as session:
            gone = [tid for tid in seen if tid not in open_ids]
            for start in range(0, len(gone), 1000):
                await session.execute(sa.delete(AiRisk).where(col(AiRisk.ticket_id).in_(gone[start:start + 1000])))
            if due:
                ids = [r[0] for r in due]
                for start in range(0, len(ids), 1000):
                    await session.execute(sa.delete(AiRisk).where(col(AiRisk.ticket_id).in_(ids[start:start + 1000])))
                await session.execute(sa.insert(table_of(AiRisk)), [
                    {"workspace_id": workspace_id, "ticket_id": r[0], "score": float(s), "model_version": version,
                     "reasons": [list(x) for x in why], "ticket_version": r[10], "scored_at": now}
                    for r, s, why in zip(due, scores, reasons, strict=True)])
        return len(due)

    async def score_all(self) -> int:
        """The scheduled pass: every workspace with risk on and a model; then tickets that newly rose over the
        threshold are posted (`announce`)."""
        async with self.db.read(Scope.system_wide()) as session:
            workspaces = (await session.execute(select(Workspace.id))).scalars().all()
        scored = 0
        for ws in workspaces:
            scored += await self.score(ws)
            await self.announce(ws)
        return scored

    async def announce(self, workspace_id: int) -> list[int]:
        """Post the tickets that newly rose over the threshold (core/ai/risk_posts.py); [] without a notifier."""
        return await self.posts.announce(workspace_id) if self.posts is not None else []

    async def train_due(self) -> list[int]:
        """Train a risk model where risk is on and there is enough history (the 6-hourly retrain)."""
        async with self.db.read(Scope.system_wide()) as session:
            workspaces = (await session.execute(select(Workspace.id, Workspace.settings))).all()
        done = []
        for ws, stored in workspaces:
            if ai_settings.effective(stored)["risk"]:
                try:
                    await self.train(ws)
                    done.append(ws)
                except InvalidInput as exc:  # not enough history yet: said in the log, tried again next time
                    log.info("escalation risk not trained: %s", exc.message, extra={"workspace_id": ws})
        return done

    async def _settings(self, workspace_id: int) -> dict[str, Any]:
        async with self.db.read(Scope.workspace(workspace_id)) as session:
            ws = await session.get(Workspace, workspace_id)
        return dict(ws.settings) if ws else {}

    # --- reading --------------------------------------------------------------------------------------
    async def at_risk(self, actor: Actor, *, limit: int = 10, ticket_ids: Sequence[int] | None = None,
                      all_scores: bool = False, opts: dict[str, Any] | None = None) -> list[AtRisk]:
        """Open tickets at or above the admin's risk threshold, riskiest first, with their top reasons in words
        (technicians only). `ticket_ids` restricts to those tickets (a card's chip)."""
        if not actor.is_member or actor.customer_scope_id is not None:
            raise PermissionDenied("Escalation risk is for technicians.",
                                   hint=TECH_ONLY_HINT)
        if opts is None:  # `opts`: the effective AI settings, when the caller has just read them (a card's AI part)
            opts = ai_settings.effective(await self._settings(actor.workspace_id))
        if not opts["risk"]:
            return []
        query = (sa.select(AiRisk, col(Ticket.number), col(Ticket.subject), col(Ticket.priority), col(Customer.name),
                           col(Customer.identifier))
                 .join(Ticket, col(Ticket.id) == AiRisk.ticket_id)
                 .join(Customer, col(Customer.id) == Ticket.customer_id, isouter=True)
                 .where(col(Ticket.is_open).is_(True), col(Ticket.deleted_at).is_(None))
                 .order_by(col(AiRisk.score).desc(), col(AiRisk.ticket_id)).limit(limit))
        if not all_scores:
            query = query.where(AiRisk.score >= opts["risk_threshold"])
        if ticket_ids is not None:
            query = query.where(col(AiRisk.ticket_id).in_(list(ticket_ids)))
        async with self.db.read(actor.scope) as session:
            rows = (await session.execute(query)).all()
            # customer names for the reasons' words, only when there are reasons to word (most cards: none)
            names = {str(c.id): c.identifier or c.name
                     for c in (await session.execute(select(Customer))).scalars()} if rows else {}
        return [AtRisk(ticket_id=r.ticket_id, number=number, subject=subject, customer=cname, priority=prio,
                       score=r.score, reasons=tuple(reason_text(name, names) for name, _ in r.reasons),
                       scored_at=r.scored_at)
                for r, number, subject, prio, cname, _ in rows]


def reason_text(feature: str, customers: dict[str, str]) -> str:
    """A model feature ("priority=critical", "hours_since_update") in a technician's words."""
    name, _, value = feature.partition("=")
    if name == "customer":
        return f"customer {customers.get(value, value)}"
    if name == "hour":
        return f"opened at {value.removeprefix('h')}:00"
    if name == "weekday":
        days = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
        return f"opened on a {days[int(value.removeprefix('d'))]}" if value[1:].isdigit() else feature
    words = {"hours_since_update": "time since the last update", "reassignments": "reassigned so far",
             "reopenings": "reopened so far", "queue_load": "busy queue when it was opened",
             "requester_history": "the requester's earlier tickets"}
    if name in words:
        return words[name]
    if value in ("", "?"):
        return f"no {name}"
    return f"{name} {value}"
