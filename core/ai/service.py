"""AiService: the workspace-facing side of core/ai (settings, training, model status, suggestions).

(Over 400 lines: the category gate, its automatic pass and the card's category view share the applied-row
lookups here; similar-ticket indexing is the part to split out next.)

Rules live here, not in surfaces: who may see which customers' tickets (a customer-scoped actor only its
own customer; a technician other customers only where the workspace allows `cross_customer`), what the
category gate allows, and that training runs in a worker thread (`asyncio.to_thread`) one at a time per
workspace, so requests are never blocked by it.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import pickle  # noqa: S403 - our own model bytes from our own database, checked against a stored sha256
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import col, select

from connectors.base import Capabilities
from core.admin_audit import record_change
from core.ai import categorize, drafts, resolution
from core.ai import settings as ai_settings
from core.ai.category_writes import TYPE, CategoryWrites, ai_owned, label_from, levels
from core.ai.knowledge import ArticleReader, KnowledgeBase, source_name
from core.ai.risk import RiskService
from core.ai.similar import Doc, Hit, SimilarIndex
from core.ai.text import ticket_text
from core.context import Actor
from core.errors import InvalidInput, NotFound, PermissionDenied
from core.hints import TECH_ONLY_HINT, WORKSPACE_HINT
from core.local_time import workspace_zone
from core.notify import Notifier
from core.ticket_lookup import ticket_id_not_found
from core.views import (
    AiCategoryView,
    AiKbView,
    AiResolutionView,
    AiRiskView,
    AiSimilarView,
    AiSuggestionsView,
    ViewAction,
)
from store.db import Database, Scope
from store.enums import EntryKind, Stage
from store.tables import AiCategoryApply, AiModel, PsaConnection, Ticket, TimelineEntry, Workspace
from store.types import utcnow

CATEGORY = "category"
AUTO_BATCH = 500  # open tickets looked at per workspace per auto-categorise pass (newest first)
MAX_TRAINING = 50_000  # newest labelled tickets used per training run (a time and memory budget)
CLOSED = (Stage.RESOLVED.value, Stage.CLOSED.value)


@dataclass(frozen=True, slots=True)
class ModelStatus:
    kind: str
    version: int
    trained_on: int
    created_at: datetime
    metrics: dict[str, Any]


@dataclass(frozen=True, slots=True)
class SimilarAnswer:
    hits: tuple[Hit, ...]
    resolutions: resolution.Resolutions
    cross_customer: bool


def _dump(model: Any) -> bytes:
    buf = io.BytesIO()
    pickle.dump(model, buf, protocol=pickle.HIGHEST_PROTOCOL)
    return buf.getvalue()


def _versions() -> dict[str, str]:
    import numpy
    import sklearn

    return {"sklearn": sklearn.__version__, "numpy": numpy.__version__}


class AiService:
    def __init__(self, db: Database, *, llm: drafts.LlmConfig | None = None,
                 llm_transport: Any = None, capabilities: Callable[[str], Capabilities] | None = None,
                 clock: Callable[[], datetime] = utcnow, kb_reader: ArticleReader | None = None,
                 notifier: Notifier | None = None) -> None:
        self.db = db
        self.kb = KnowledgeBase(db, read_platforms=kb_reader)
        self._capabilities = capabilities
        self.category_writes = CategoryWrites(db, capabilities=capabilities, clock=clock)
        self.risk = RiskService(db, clock=clock, notifier=notifier)  # at-risk posts go through `notifier`
        self.llm, self._llm_transport = llm, llm_transport
        self._train_locks: dict[int, asyncio.Lock] = {}
        self._models: dict[int, tuple[int, categorize.CategoryModel]] = {}
        self._indexes: dict[int, _WorkspaceIndex] = {}

    # --- settings ---------------------------------------------------------------------------------
    async def settings(self, workspace_id: int) -> dict[str, Any]:
        async with self.db.read(Scope.workspace(workspace_id)) as session:
            ws = await session.get(Workspace, workspace_id)
        if ws is None:
            raise NotFound(f"Workspace {workspace_id} was not found.", hint=WORKSPACE_HINT)
        return ai_settings.effective(ws.settings)

    async def set_setting(self, actor: Actor, name: str, raw: str) -> dict[str, Any]:
        """Change one AI setting (admins only); returns every AI setting."""
        if not actor.is_admin:
            raise PermissionDenied("Only a workspace admin can change AI settings.",
                                   hint="Ask a Deskbridge admin to change it (`deskbridge ai set NAME VALUE`, or "
                                        "/deskbridge ai set in chat).")
        key, value = ai_settings.parse(name, raw)
        async with self.db.write(actor.scope) as session:
            ws = await session.get(Workspace, actor.workspace_id)
            if ws is None:
                raise NotFound(f"Workspace {actor.workspace_id} was not found.", hint=WORKSPACE_HINT)
            own = dict(ws.settings.get(ai_settings.SETTINGS_KEY) or {})
            own[key] = value
            ws.settings = {**ws.settings, ai_settings.SETTINGS_KEY: own}
            record_change(session, actor, actor.workspace_id, "ai.setting", {"name": key, "value": value})
            return ai_settings.effective(ws.settings)

    # --- training and status ------------------------------------------------------------------------
    def _levels(self, kind: str | None) -> str:
        """What the model's labels are for tickets of this PSA kind (category_writes.levels)."""
        return levels(self._capabilities(kind) if kind is not None and self._capabilities is not None else None)

    async def _labelled(self, workspace_id: int, where: Any, limit: int) -> list[tuple[int, str, str, str | None, bool]]:
        """(id, subject, description, current label, two-level) of tickets, newest first."""
        async with self.db.read(Scope.workspace(workspace_id)) as session:
            rows = (await session.execute(
                sa.select(col(Ticket.id), col(Ticket.subject), col(Ticket.description), col(Ticket.type_name),
                          col(Ticket.category_name), col(Ticket.subcategory_name), col(PsaConnection.kind))
                .join(PsaConnection, col(PsaConnection.id) == Ticket.connection_id, isouter=True)
                .where(where, col(Ticket.deleted_at).is_(None))
                .order_by(col(Ticket.id).desc()).limit(limit))).all()
        out = []
        for tid, subject, description, type_name, cat, sub, kind in rows:
            how = self._levels(kind)
            out.append((tid, subject, description, label_from(type_name, cat, sub, how), how != TYPE))
        return out

    async def training_data(self, workspace_id: int) -> tuple[list[str], list[str]]:
        """(texts, labels) of the workspace's closed tickets that carry a category (their type, or their
        category pair where the PSA nests them), newest first."""
        rows = await self._labelled(workspace_id, col(Ticket.stage).in_(CLOSED), MAX_TRAINING * 2)
        labelled = [(ticket_text(s, d), label) for _, s, d, label, _ in rows if label][:MAX_TRAINING]
        return [t for t, _ in labelled], [str(label) for _, label in labelled]

    async def train(self, workspace_id: int, *, seed: int = 0) -> ModelStatus:
        """Train a new category model version from closed tickets (in a worker thread) and store it."""
        lock = self._train_locks.setdefault(workspace_id, asyncio.Lock())
        if lock.locked():
            raise InvalidInput("A training run for this workspace is already under way.",
                               hint="Wait for it to finish, then check `deskbridge ai status`.")
        async with lock:
            texts, labels = await self.training_data(workspace_id)
            started = time.monotonic()
            try:
                model = await asyncio.to_thread(categorize.train, texts, labels, seed=seed)
            except categorize.NotEnoughData as exc:
                raise InvalidInput(str(exc), hint="Give more closed tickets a type (category) in the PSA, run a sync "
                                   "(`deskbridge sync run`), then train again.") from None
            data = await asyncio.to_thread(_dump, model)
            metrics = {**model.summary(), "seconds": round(time.monotonic() - started, 2), **_versions()}
            async with self.db.write(Scope.workspace(workspace_id)) as session:
                latest = (await session.execute(
                    select(sa.func.max(AiModel.version)).where(AiModel.kind == CATEGORY))).scalar()
                row = AiModel(workspace_id=workspace_id, kind=CATEGORY, version=(latest or 0) + 1,
                              trained_on=model.trained_on, metrics=metrics,
                              sha256=hashlib.sha256(data).hexdigest(), data=data)
                session.add(row)
                await session.flush()
            self._models[workspace_id] = (row.version, model)
            return ModelStatus(CATEGORY, row.version, row.trained_on, row.created_at, metrics)

    async def labelled_count(self, workspace_id: int) -> int:
        return len((await self.training_data(workspace_id))[1])

    async def retrain_due(self) -> list[int]:
        """The scheduled retrain: every workspace with categorisation on whose labelled history grew by 5%
        (at least 20 tickets) since its model, or that has enough for a first one. Returns who was trained."""
        async with self.db.read(Scope.system_wide()) as session:
            workspaces = (await session.execute(select(Workspace.id, Workspace.settings))).all()
        trained = []
        for ws, stored in workspaces:
            if not ai_settings.effective(stored)["categorize"]:
                continue
            count, status = await self.labelled_count(ws), await self.status(ws)
            base = status.trained_on if status else 0
            if count < categorize.MIN_TRAINING or count - base < max(20, base // 20):
                continue
            try:
                await self.train(ws)
                trained.append(ws)
            except InvalidInput:  # one category only, or a run already under way: next time
                continue
        return trained

    async def status(self, workspace_id: int) -> ModelStatus | None:
        """The newest category model of the workspace (None before the first training)."""
        async with self.db.read(Scope.workspace(workspace_id)) as session:
            row = (await session.execute(
                select(AiModel.version, AiModel.trained_on, AiModel.created_at, AiModel.metrics)
                .where(AiModel.kind == CATEGORY).order_by(col(AiModel.version).desc()).limit(1))).first()
        if row is None:
            return None
        return ModelStatus(CATEGORY, row[0], row[1], row[2], dict(row[3]))

    async def _category_model(self, workspace_id: int) -> categorize.CategoryModel | None:
        status = await self.status(workspace_id)
        if status is None:
            return None
        cached = self._models.get(workspace_id)
        if cached and cached[0] == status.version:
            return cached[1]
        async with self.db.read(Scope.workspace(workspace_id)) as session:
            row = (await session.execute(select(AiModel).where(
                AiModel.kind == CATEGORY, AiModel.version == status.version))).scalar_one()
        if hashlib.sha256(row.data).hexdigest() != row.sha256:
            raise InvalidInput(f"Stored category model v{row.version} is damaged (checksum mismatch).",
                               hint="Run `deskbridge ai train` to store a new version.")
        if row.metrics.get("sklearn") != _versions()["sklearn"]:
            raise InvalidInput(f"Category model v{row.version} was trained with scikit-learn "
                               f"{row.metrics.get('sklearn')}; this install has {_versions()['sklearn']}.",
                               hint="Run `deskbridge ai train` to retrain it with this version.")
        model = await asyncio.to_thread(pickle.loads, row.data)  # noqa: S301 - checked bytes we stored
        self._models[workspace_id] = (row.version, model)
        return model

    # --- suggestions ------------------------------------------------------------------------------------
    async def _ticket(self, actor: Actor, ticket_id: int) -> Ticket:
        async with self.db.read(actor.scope) as session:
            ticket = await session.get(Ticket, ticket_id)
        if ticket is None or ticket.deleted_at is not None or (
                actor.customer_scope_id is not None and ticket.customer_id != actor.customer_scope_id):
            raise ticket_id_not_found(ticket_id)
        return ticket

    async def categorise(self, actor: Actor, ticket_id: int) -> categorize.CategoryDecision | None:
        """The category gate's answer for one ticket (technicians only; None when categorisation is off
        or no model exists yet)."""
        if not actor.is_member or actor.customer_scope_id is not None:
            raise PermissionDenied("Category suggestions are for technicians.", hint=TECH_ONLY_HINT)
        decided = await self._decide(actor, await self._ticket(actor, ticket_id), await self.settings(actor.workspace_id))
        return None if decided is None else decided[0]

    async def _decide(self, actor: Actor, ticket: Ticket, opts: dict[str, Any]
                      ) -> tuple[categorize.CategoryDecision, str | None, AiCategoryApply | None] | None:
        """The gate's decision for a loaded ticket, with its current category and the AI's applied row."""
        if not opts["categorize"]:
            return None
        model = await self._category_model(actor.workspace_id)
        if model is None:
            return None
        assert ticket.id is not None
        rows = await self._applied_rows(actor.workspace_id, [ticket.id])
        [(_, _, _, current, two)] = await self._labelled(actor.workspace_id, col(Ticket.id) == ticket.id, 1)
        top = await asyncio.to_thread(model.top, ticket_text(ticket.subject, ticket.description),
                                      len(model.labels) if two else 3)
        row = rows.get(ticket.id)
        return self._gate(top, current, row, model, opts, two), current, row

    @staticmethod
    def _gate(top: list[categorize.Prediction], current: str | None, row: AiCategoryApply | None,
              model: categorize.CategoryModel, opts: dict[str, Any], two: bool = False) -> categorize.CategoryDecision:
        """The admin's gate for one ticket: a category only the AI set may be changed (above the change
        threshold); any other is a person's; after a technician undid the AI here it only ever suggests. Where
        the PSA nests categories, two steps: the category, then a subcategory inside it."""
        undone = row is not None and row.undone_at is not None
        gate = categorize.decide_two_step if two else categorize.decide
        decision = gate(
            top if two else top[:3], current=current or None,
            set_by_technician=bool(current) and not ai_owned(current, row),
            cold=model.cold, thresholds=categorize.Thresholds(opts["fill_threshold"], opts["change_threshold"]),
            auto_apply=opts["auto_apply"] and not undone, excluded=frozenset(opts["excluded"]))
        if undone and decision.action == "suggest":
            return replace(decision, reason="a technician undid the AI's category here; offered only")
        return decision

    async def _applied_rows(self, workspace_id: int, ticket_ids: list[int]) -> dict[int, AiCategoryApply]:
        async with self.db.read(Scope.workspace(workspace_id)) as session:
            rows = (await session.execute(select(AiCategoryApply).where(
                col(AiCategoryApply.ticket_id).in_(ticket_ids)))).scalars().all()
        return {r.ticket_id: r for r in rows}

    async def auto_categorise(self, workspace_id: int, *, limit: int = AUTO_BATCH) -> int:
        """Apply categories to open tickets where the admin allows it and the gate says "apply" (each through
        the outbox, re-checked under the ticket's lock). Returns how many were applied."""
        opts = await self.settings(workspace_id)
        if not (opts["categorize"] and opts["auto_apply"]):
            return 0
        model = await self._category_model(workspace_id)
        status = await self.status(workspace_id)
        if model is None or status is None or model.cold:
            return 0
        tickets = await self._labelled(workspace_id, col(Ticket.is_open).is_(True), limit)
        if not tickets:
            return 0
        rows = await self._applied_rows(workspace_id, [t[0] for t in tickets])
        tops = await asyncio.to_thread(model.top_many, [ticket_text(t[1], t[2]) for t in tickets], len(model.labels))
        applied = 0
        for (tid, _, _, current, two), top in zip(tickets, tops, strict=True):
            decision = self._gate(top, current, rows.get(tid), model, opts, two)
            if decision.action == "apply" and decision.label is not None and await self.category_writes.apply_ai(
                    workspace_id, tid, label=decision.label, confidence=decision.confidence,
                    model_version=status.version, decided_over=current or None):
                applied += 1
        return applied

    async def auto_categorise_all(self) -> int:
        """The scheduled pass over every workspace (nothing happens where auto-apply is off)."""
        async with self.db.read(Scope.system_wide()) as session:
            workspaces = (await session.execute(select(Workspace.id, Workspace.settings))).all()
        total = 0
        for ws, stored in workspaces:
            opts = ai_settings.effective(stored)
            if opts["categorize"] and opts["auto_apply"]:
                total += await self.auto_categorise(ws)
        return total

    def _allowed_customers(self, actor: Actor, ticket: Ticket | None, cross: bool) -> frozenset[int | None] | None:
        if actor.customer_scope_id is not None:
            return frozenset({actor.customer_scope_id})
        if not actor.is_member:
            raise PermissionDenied("Similar tickets are shown to technicians or within a customer's own scope.",
                                   hint=TECH_ONLY_HINT)
        if cross:
            return None
        if ticket is None:
            raise InvalidInput("Searching by text across customers is off in this workspace.",
                               hint="Ask from a ticket, or have an admin set `ai cross_customer on`.")
        return frozenset({ticket.customer_id})

    async def similar(self, actor: Actor, *, ticket_id: int | None = None, text: str | None = None,
                      k: int = 3, loaded: tuple[Ticket, dict[str, Any]] | None = None) -> SimilarAnswer:
        """The top-k similar closed tickets the actor may see, with their resolutions verbatim. `loaded`: the
        ticket (`ticket_id`'s, read in the actor's scope) and the AI settings, when the caller has just read them."""
        ticket: Ticket | None
        if loaded is not None:
            ticket, opts = loaded
        else:
            opts = await self.settings(actor.workspace_id)
            ticket = await self._ticket(actor, ticket_id) if ticket_id is not None else None
        allowed = self._allowed_customers(actor, ticket, bool(opts["cross_customer"]))
        if not opts["similar"]:
            return SimilarAnswer((), resolution.Resolutions((), False), False)
        query = ticket_text(ticket.subject, ticket.description) if ticket else (text or "")
        if not query.strip():
            if ticket is not None:  # a ticket with no searchable words: nothing is similar
                return SimilarAnswer((), resolution.Resolutions((), False), allowed is None)
            raise InvalidInput("Nothing to search for.", hint="Give a ticket or a few words.")
        index = await self._index(actor.workspace_id)
        hits = index.search(query, customers=allowed, k=k, floor=opts["similar_floor"],
                            exclude=() if ticket_id is None else (ticket_id,))
        if hits:  # "closed 07 Dec 2026" is the workspace's day, not UTC's (the index keeps UTC instants)
            async with self.db.read(Scope.workspace(actor.workspace_id)) as session:
                zone = await workspace_zone(session, actor.workspace_id)
            hits = [replace(h, doc=replace(h.doc, closed_at=h.doc.closed_at.astimezone(zone)))
                    if h.doc.closed_at is not None else h for h in hits]
        return SimilarAnswer(tuple(hits), resolution.suggest(hits), allowed is None)

    async def _index(self, workspace_id: int) -> SimilarIndex:
        entry = self._indexes.setdefault(workspace_id, _WorkspaceIndex())
        async with entry.lock:
            docs = await self._closed_since(workspace_id, entry.watermark)
            if docs:
                grow = len(entry.index) == 0 or len(docs) > len(entry.index) // 2
                if grow:  # a new vocabulary once the index has grown by half
                    all_docs = [*entry.index.docs, *docs]
                    entry.index = await asyncio.to_thread(SimilarIndex().build, all_docs)
                else:
                    await asyncio.to_thread(entry.index.add, docs)
                entry.watermark = max(d.closed_at for d in docs if d.closed_at) if any(
                    d.closed_at for d in docs) else entry.watermark
            return entry.index

    async def _closed_since(self, workspace_id: int, since: datetime | None) -> list[Doc]:
        query = sa.select(col(Ticket.id), col(Ticket.customer_id), col(Ticket.number), col(Ticket.subject),
                          col(Ticket.description), col(Ticket.closed_at), col(Ticket.connection_id),
                          col(Ticket.external_id)).where(col(Ticket.stage).in_(CLOSED), col(Ticket.deleted_at).is_(None))
        if since is not None:  # `>=`: tickets closed in the same instant are re-read; the index skips known ids
            query = query.where(col(Ticket.closed_at) >= since)
        async with self.db.read(Scope.workspace(workspace_id)) as session:
            rows = (await session.execute(query)).all()
            notes: dict[int, tuple[str, str | None]] = {}
            if rows:
                ids = [r[0] for r in rows]
                for start in range(0, len(ids), 500):
                    for tid, body, author in (await session.execute(
                            select(TimelineEntry.ticket_id, TimelineEntry.body, TimelineEntry.author_name)
                            .where(col(TimelineEntry.ticket_id).in_(ids[start:start + 500]),
                                   TimelineEntry.kind == EntryKind.NOTE_RESOLUTION.value)
                            .order_by(col(TimelineEntry.occurred_at), col(TimelineEntry.id)))).all():
                        notes[tid] = (body, author)  # the latest resolution note wins
        return [Doc(ticket_id=r[0], customer_id=r[1], number=r[2], text=f"{r[3]}\n{r[4]}",
                            closed_at=r[5], resolution=notes.get(r[0], ("", None))[0],
                            resolved_by=notes.get(r[0], ("", None))[1], connection_id=r[6], external_id=r[7])
                for r in rows]


    async def suggestions(self, actor: Actor, ticket_id: int) -> AiSuggestionsView | None:
        """Everything AI assist offers on a technician's card of this ticket (None for anyone else, or when
        there is nothing to offer)."""
        if not actor.is_member or actor.customer_scope_id is not None:
            return None
        # The ticket and the settings read once for every part (each part alone reads them itself).
        ticket = await self._ticket(actor, ticket_id)
        opts = await self.settings(actor.workspace_id)
        category, actions = await self._category_view(actor, ticket, opts)
        if opts["drafts"]:
            actions += (ViewAction(action="ai_draft", label="Draft a reply", value=f"id:{ticket_id}"),)
        found = await self.similar(actor, ticket_id=ticket_id, loaded=(ticket, opts))
        view = AiSuggestionsView(
            category=category,
            similar=tuple(AiSimilarView(
                ticket_id=h.doc.ticket_id, number=h.doc.number, score=h.score, closed_at=h.doc.closed_at,
                ref=f"#{h.doc.number}" if h.doc.number is not None else f"id:{h.doc.ticket_id}",
                subject=h.doc.text.split("\n", 1)[0][:120], connection_id=h.doc.connection_id,
                external_id=h.doc.external_id) for h in found.hits),
            resolutions=tuple(AiResolutionView(text=r.text, attribution=r.attribution)
                              for r in found.resolutions.items),
            disagree=found.resolutions.disagree, cross_customer=found.cross_customer, actions=actions,
            risk=await self._risk_view(actor, ticket_id, opts),
            kb=tuple(AiKbView(title=a.article.title, source=source_name(a.article.source), score=a.score,
                              paragraph=a.paragraph[:400], heading=a.heading, url=a.article.url)
                     for a in await self.kb.links(actor, ticket_id, loaded=(ticket, opts))))
        return None if view.empty else view

    async def _risk_view(self, actor: Actor, ticket_id: int, opts: dict[str, Any]) -> AiRiskView | None:
        """The card's risk chip: only at or above the admin's threshold (`opts`: the AI settings just read)."""
        found = await self.risk.at_risk(actor, ticket_ids=[ticket_id], limit=1, opts=opts)
        if not found:
            return None
        return AiRiskView(score=found[0].score, threshold=opts["risk_threshold"], reasons=found[0].reasons)

    async def _category_view(self, actor: Actor, ticket: Ticket,
                             opts: dict[str, Any]) -> tuple[AiCategoryView | None, tuple[ViewAction, ...]]:
        """The category part of a card: the AI's own category with its confidence and an Undo, or the gate's
        suggestion with a one-click "Use"."""
        decided = await self._decide(actor, ticket, opts)
        if decided is None or decided[0].label is None:
            return None, ()
        decision, current, row = decided
        assert decision.label is not None
        ticket_id = ticket.id
        alternatives = tuple((p.label, p.probability) for p in decision.top if p.label != decision.label)[:2]
        if ai_owned(current, row) and row is not None:
            word = "high" if row.confidence >= 0.8 else "medium" if row.confidence >= 0.5 else "low"
            view = AiCategoryView(label=row.label, confidence=row.confidence, action="applied",
                                  reason=f"set by the AI (model v{row.model_version}); undo puts back "
                                         f"{row.previous or 'no category'}", confidence_word=word,
                                  alternatives=alternatives)
            return view, (ViewAction(action="ai_undo_category", label="Undo AI category", value=f"id:{ticket_id}"),)
        reason = ("above the admin's threshold: the AI applies it on its next pass (within minutes)"
                  if decision.action == "apply" else decision.reason)
        view = AiCategoryView(label=decision.label, confidence=decision.confidence, action=decision.action,
                              reason=reason, confidence_word=decision.confidence_word, alternatives=alternatives)
        if decision.action in ("apply", "suggest", "low_confidence") and decision.label != current:
            value = json.dumps({"t": f"id:{ticket_id}", "l": decision.label})
            return view, (ViewAction(action="ai_accept_category", label=f"Use {decision.label}"[:75], value=value),)
        return view, ()

    async def draft(self, actor: Actor, ticket_id: int, *, requester: str | None = None) -> drafts.Draft:
        """A reply draft for a technician to review (never sent by itself). The LLM endpoint is used only
        when one is configured and the workspace allows remote drafts; otherwise the template draft."""
        if not actor.is_member or actor.customer_scope_id is not None:
            raise PermissionDenied("Reply drafts are for technicians.", hint=TECH_ONLY_HINT)
        opts = await self.settings(actor.workspace_id)
        if not opts["drafts"]:
            raise InvalidInput("Reply drafts are off in this workspace.",
                               hint="An admin can turn them on with `ai drafts on`.")
        ticket = await self._ticket(actor, ticket_id)
        found = await self.similar(actor, ticket_id=ticket_id)
        guides = tuple((a.article.title, a.paragraph) for a in await self.kb.links(actor, ticket_id, k=1))
        args = dict(subject=ticket.subject, requester=requester, category=ticket.type_name,
                    resolutions=found.resolutions, kb=guides)
        if self.llm is not None and opts["remote_llm"]:
            return await drafts.llm_draft(self.llm, body=ticket.description, transport=self._llm_transport,
                                          **args)  # type: ignore[arg-type]
        return drafts.template_draft(**args)  # type: ignore[arg-type]


class _WorkspaceIndex:
    def __init__(self) -> None:
        self.index = SimilarIndex()
        self.watermark: datetime | None = None
        self.lock = asyncio.Lock()
