"""Frozen view models handed to surfaces. Block Kit, Adaptive Cards, console text and the REST API are
renderings of these; nothing here knows about a platform.

(Over 400 lines: only declarations, one dataclass per view, read together by every surface; the AI, tenant and
alert views are the groups to move into modules of their own when this grows again.)"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from store.enums import EntryKind, Priority, Stage


@dataclass(frozen=True, slots=True, kw_only=True)
class TicketSummary:
    """One queue row."""

    id: int
    number: int | None  # None while a PSA create is still queued
    subject: str
    customer_id: int | None
    customer_name: str | None
    priority: Priority
    stage: Stage
    status_name: str  # the PSA's own status name, or the stage label when standalone
    assignee_id: int | None
    assignee_name: str | None
    created_at: datetime
    updated_at: datetime
    connection_id: int | None = None
    sla_remaining_s: float | None = None  # filled from the SLA figures where shown (negative = exceeded)
    psa_name: str | None = None  # `cw-1002` where a workspace has several PSAs (core/ticket_refs.py)

    @property
    def display_number(self) -> str:
        if self.psa_name is not None:
            return self.psa_name
        return f"#{self.number}" if self.number is not None else "(pending)"

    @property
    def ref(self) -> str:
        """How buttons and forms name this ticket: its number, its PSA name when its number is taken by
        another connection's ticket, or `id:N` while the PSA create is queued."""
        if self.number is not None:
            return str(self.number)
        return self.psa_name or f"id:{self.id}"


@dataclass(frozen=True, slots=True, kw_only=True)
class TimelineItem:
    id: int
    kind: EntryKind
    origin: str
    author_name: str | None
    body: str
    data: dict[str, Any]
    occurred_at: datetime
    external_id: str | None = None
    # Written here and sent to the PSA: "pending" until it is delivered, "failed" if the PSA refused it for good
    # (dead or discarded); None when it is in the PSA (or came from it).
    write: str | None = None

    @property
    def failed(self) -> bool:
        return self.write == "failed"

    @property
    def is_internal(self) -> bool:
        """Internal notes, time entries, category and PSA field changes never reach customer-facing views."""
        return self.kind in (EntryKind.NOTE_INTERNAL, EntryKind.TIME_ENTRY, EntryKind.CATEGORY_CHANGE,
                             EntryKind.FIELD_CHANGE)


@dataclass(frozen=True, slots=True, kw_only=True)
class TicketDetail:
    summary: TicketSummary
    description: str
    contact_name: str | None
    board_name: str | None
    type_name: str | None
    alert_ref: str | None
    device_ref: str | None
    contract_ref: str | None
    external_id: str | None
    timeline: tuple[TimelineItem, ...] = ()
    pending_writes: int = 0  # outbox ops not yet delivered
    dead_writes: int = 0  # outbox ops that gave up: shown loudly
    psa_url: str | None = None
    psa_respond_by: datetime | None = None
    psa_resolve_by: datetime | None = None
    first_response_at: datetime | None = None
    closed_at: datetime | None = None
    history_unread: bool = False  # a PSA ticket whose notes/time/documents could not be read yet
    # The PSA's category pair and its own fields (UDF values): the MSP's internal data (never a customer's).
    category_name: str | None = None
    subcategory_name: str | None = None
    custom_fields: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class TicketHeader:
    """A ticket's summary and board, without its timeline: what a form needs (TicketService.header)."""

    summary: TicketSummary
    board_external_id: str | None = None


@dataclass(frozen=True, slots=True)
class QueuePage:
    items: tuple[TicketSummary, ...]
    next_cursor: str | None = None
    total: int | None = None  # only when asked (a count is not free on a big queue)
    filters: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------- chat surfaces (Slack, Teams, console)
# Views below are built by core/chat/ (cards.py, forms.py, runner.py) and rendered by each surface
# (bot/slack/blocks.py, bot/console/render.py, ...). Every action a view offers is a `ViewAction`; its
# `action` id names the same operation on every surface.

QUEUE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("number", "#"), ("subject", "Subject"), ("customer", "Customer"), ("priority", "Priority"),
    ("status", "Status"), ("assignee", "Assignee"), ("created", "Created"), ("sla", "SLA"),
)


@dataclass(frozen=True, slots=True, kw_only=True)
class ViewAction:
    """A button: `action` is a surface-independent id (reply, note, status, assign_me, time, alert_ack,
    alert_resolve, open_psa, open_rmm, open_runbook, open, page); `url` for links out."""

    action: str
    label: str
    value: str = ""
    url: str | None = None
    style: str | None = None  # primary | danger


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueView:
    title: str
    rows: tuple[TicketSummary, ...]
    now: datetime
    filters_text: str = ""  # the filters as the user could retype them
    scope_note: str | None = None  # "Customer channel: Acme Corp"
    next_cursor: str | None = None
    total: int | None = None
    empty_text: str = "No tickets match."
    columns: tuple[tuple[str, str], ...] = QUEUE_COLUMNS
    kind: str = "queue"  # queue (filters as typed) | my_queue (the technician's own: App Home, Teams personal chat)


@dataclass(frozen=True, slots=True, kw_only=True)
class ConversationItem:
    """One line of a ticket's thread: a note, marked public or internal."""

    author: str
    body: str
    at: datetime
    visibility: str  # public | internal | resolution
    origin: str
    queued: bool = False  # written here, not yet delivered to the PSA
    failed: bool = False  # written here, refused by the PSA for good: it is not in the PSA


@dataclass(frozen=True, slots=True, kw_only=True)
class ExternalLink:
    kind: str  # psa | device | alert | contract | runbook
    label: str
    ref: str | None = None
    url: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class AlertChip:
    """An RMM alert linked to a ticket (technicians only): where from, how bad, its state, a link to it."""

    source: str  # the alert source's name
    severity: str  # critical | error | warning | info
    state: str  # triggered | acknowledged | resolved | triage…
    summary: str
    triggers: int = 0
    url: str | None = None  # the event's own link (the RMM's), else the workspace's rmm_alert_url template


@dataclass(frozen=True, slots=True, kw_only=True)
class AlertOfferView:
    """An alert that made no ticket, offered to technicians with a "Create ticket" button (core/intake/offers.py)."""

    alert_id: int
    title: str
    lines: tuple[str, ...] = ()
    hint: str = ""
    customers: tuple[FormOption, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class AiCategoryView:
    """A category suggestion: the best label, how sure, what the gate did (applied: the AI set it and a
    technician may undo it; apply: above the threshold, applied on the AI's next pass; suggest; keep;
    low_confidence)."""

    label: str
    confidence: float
    action: str
    reason: str
    confidence_word: str
    alternatives: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class AiSimilarView:
    ticket_id: int
    ref: str  # "#4821" (or "id:N" before the PSA numbered it)
    number: int | None
    subject: str
    score: float
    closed_at: datetime | None
    connection_id: int | None = None
    external_id: str | None = None
    url: str | None = None  # the ticket in the PSA's own UI (chat cards fill it in; core/chat/cards.py)


@dataclass(frozen=True, slots=True, kw_only=True)
class AiResolutionView:
    text: str  # verbatim resolution note
    attribution: str  # "from #4821, 12 Mar 2026, by Ana, 0.71"


@dataclass(frozen=True, slots=True, kw_only=True)
class AiRiskView:
    """An open ticket's escalation risk, shown only at or above the admin's threshold, with its top reasons."""

    score: float
    threshold: float
    reasons: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class AiKbView:
    """A knowledge-base article that matches the ticket: where it comes from, how well it matches, and the
    matching paragraph verbatim (technicians only, like the whole AI view)."""

    title: str
    source: str  # "Hudu", "Markdown folder"
    score: float
    paragraph: str
    heading: str = ""
    url: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class AiDraftView:
    """A reply draft as one technician sees it: the exact text (what Approve sends), its label ("template
    draft: review before sending"), and Approve / Edit / Discard."""

    draft_id: int
    ticket_ref: str
    text: str
    label: str
    actions: tuple[ViewAction, ...]


AI_SOURCE = "Deskbridge AI: offline models trained on this workspace's own tickets"


@dataclass(frozen=True, slots=True, kw_only=True)
class AiSuggestionsView:
    """What AI assist offers on a technician's ticket card; each part names its source and confidence."""

    category: AiCategoryView | None = None
    similar: tuple[AiSimilarView, ...] = ()
    resolutions: tuple[AiResolutionView, ...] = ()
    disagree: bool = False
    cross_customer: bool = False
    risk: AiRiskView | None = None
    kb: tuple[AiKbView, ...] = ()
    source: str = AI_SOURCE
    # One-click: "ai_undo_category" (the AI set the category), "ai_accept_category" (use the suggestion),
    # draft approve/edit/discard. Technicians only, like the whole view.
    actions: tuple[ViewAction, ...] = ()

    @property
    def empty(self) -> bool:
        return (self.category is None and not self.similar and not self.resolutions and self.risk is None
                and not self.actions and not self.kb)


def ai_lines(view: AiSuggestionsView) -> list[str]:
    """The suggestions as plain lines (surfaces escape and style them)."""
    out: list[str] = []
    if view.risk is not None:
        why = ", ".join(view.risk.reasons)
        out.append(f"Escalation risk {view.risk.score:.0%} (at or above {view.risk.threshold:.0%})"
                   + (f": {why}" if why else ""))
    c = view.category
    if c is not None:
        head = {"applied": "Category set by AI", "keep": "Category confirmed by AI"}.get(c.action, "Suggested category")
        alts = ", ".join(f"{label} {p:.0%}" for label, p in c.alternatives)
        out.append(f"{head}: {c.label} ({c.confidence:.0%}, {c.confidence_word})" + (f"; also {alts}" if alts else "")
                   + f" - {c.reason}")
    for h in view.similar:
        when = f", closed {h.closed_at:%d %b %Y}" if h.closed_at else ""
        out.append(f"Similar: {h.ref} {h.subject} ({h.score:.2f}{when})" + (f" {h.url}" if h.url else ""))
    for r in view.resolutions:
        out.append(f"Suggested resolution ({r.attribution}): {r.text}")
    if view.disagree:
        out.append("These resolutions disagree: compare them before using one.")
    for a in view.kb:
        where = f" > {a.heading}" if a.heading and a.heading != a.title else ""
        out.append(f"KB article ({a.source}, match {a.score:.2f}): {a.title}{where}" + (f" {a.url}" if a.url else "")
                   + (f" - \"{a.paragraph}\"" if a.paragraph else ""))
    return out


@dataclass(frozen=True, slots=True, kw_only=True)
class TicketView:
    detail: TicketDetail
    now: datetime
    conversation: tuple[ConversationItem, ...] = ()
    status_history: tuple[TimelineItem, ...] = ()
    time_entries: tuple[TimelineItem, ...] = ()
    attachments: tuple[TimelineItem, ...] = ()
    links: tuple[ExternalLink, ...] = ()
    actions: tuple[ViewAction, ...] = ()
    total_minutes: int = 0
    sla_remaining_s: float | None = None
    audience: str = "tech"  # tech | customer (customer views never show internal notes or time)
    notice: str | None = None  # e.g. "Queued: reply (internal). It goes to the PSA in a moment."
    ai: AiSuggestionsView | None = None  # technicians only (core/ai); never on a customer's view
    # (label, value) lines for technicians: the category and the PSA fields an admin chose to show
    # (`deskbridge connection card-fields`); never on a customer's view.
    facts: tuple[tuple[str, str], ...] = ()
    alerts: tuple[AlertChip, ...] = ()  # linked RMM alerts (core/chat/alert_chips.py); never on a customer's view

    @property
    def summary(self) -> TicketSummary:
        return self.detail.summary


@dataclass(frozen=True, slots=True, kw_only=True)
class FormOption:
    value: str
    label: str


@dataclass(frozen=True, slots=True, kw_only=True)
class FormField:
    name: str
    label: str
    kind: str  # text | textarea | select | search_select | checkbox | number
    required: bool = False
    # select: every choice. search_select: none (or the initial choice); surfaces ask `source` as the user types.
    options: tuple[FormOption, ...] = ()
    initial: str | None = None
    hint: str | None = None
    max_length: int | None = None
    source: str | None = None  # search_select only: what is searched, e.g. "customers" (ChatViews.customer_options)


@dataclass(frozen=True, slots=True, kw_only=True)
class FormView:
    """A modal (Slack), a task module (Teams) or a prompt sequence (console)."""

    form: str  # new_ticket | reply | note | status | time | assign
    title: str
    submit_label: str
    fields: tuple[FormField, ...]
    ticket_number: int | None = None
    ticket_ref: str | None = None  # TicketSummary.ref: also names a ticket that has no number yet
    context: dict[str, Any] = field(default_factory=dict)  # carried through the surface (ids, thread)


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageView:
    """A plain answer: help text, a confirmation, an error with what to do about it."""

    text: str
    kind: str = "info"  # info | success | error
    hint: str | None = None
    suggestions: tuple[str, ...] = ()
    lines: tuple[str, ...] = ()
    about_user: str | None = None  # a chat user the message is about: surfaces show them as a mention


@dataclass(frozen=True, slots=True, kw_only=True)
class SlaWarningView:
    ticket_number: int | None
    subject: str
    customer_name: str | None
    priority: str
    metric: str
    threshold: int
    remaining_s: float
    due_at: datetime | None
    psa_url: str | None = None
    used_pct: float | None = None  # the share actually used when posted (a late post says so)

    @property
    def breached(self) -> bool:
        return self.threshold >= 100 or self.remaining_s <= 0

    @property
    def used_text(self) -> str:
        """'87% used': the share actually used, never less than the threshold announced."""
        pct = self.threshold if self.used_pct is None else max(self.threshold, int(self.used_pct))
        return f"{pct}% used"


@dataclass(frozen=True, slots=True, kw_only=True)
class RiskAlertView:
    """A ticket whose escalation risk rose over the threshold, for the SLA/dispatch channels (technicians only)."""

    ticket_number: int | None
    subject: str
    customer_name: str | None
    priority: str
    score: float
    threshold: float
    reasons: tuple[str, ...] = ()
    psa_url: str | None = None

    @property
    def headline(self) -> str:
        return f"At risk of escalation: {self.score:.0%} (threshold {self.threshold:.0%})"

    @property
    def why(self) -> str:
        return ("Why: " + ", ".join(self.reasons)) if self.reasons else "Why: no single factor stands out"


def human_duration(seconds: float) -> str:
    """'45s', '45m', '3h 10m', '2d 4h' (for ages and SLA figures on every surface)."""
    s = int(abs(seconds))
    if s < 60:
        return f"{s}s"
    d, rem = divmod(s, 86400)
    h, rem = divmod(rem, 3600)
    m = rem // 60
    if d:
        return f"{d}d {h}h" if h else f"{d}d"
    if h:
        return f"{h}h {m}m" if m else f"{h}h"
    return f"{m}m"


def sla_text(remaining_s: float | None) -> str:
    """'2h 10m left', 'exceeded by 15m', or '' when no SLA applies."""
    if remaining_s is None:
        return ""
    if remaining_s <= 0:
        return f"exceeded by {human_duration(remaining_s)}"
    return f"{human_duration(remaining_s)} left"


@dataclass(frozen=True, slots=True, kw_only=True)
class SlaMetricView:
    """One SLA metric of one ticket as computed by Deskbridge's engine, beside the PSA's own due date."""

    metric: str  # first_response | resolution
    state: str  # running | paused | stopped
    priority: str
    cycle: int
    target_s: float
    used_s: float
    remaining_s: float  # negative = exceeded
    due_at: datetime | None  # the breach instant once breached; None past the calendar horizon
    breached_at: datetime | None
    business_hours: bool
    calendar_name: str | None
    psa_due_at: datetime | None = None
    psa_disagreement_s: float | None = None  # ours minus the PSA's, when they differ beyond a tolerance

    @property
    def breached(self) -> bool:
        return self.breached_at is not None or self.remaining_s <= 0

    @property
    def used_pct(self) -> float:
        return 100.0 * self.used_s / self.target_s if self.target_s > 0 else 0.0


@dataclass(frozen=True, slots=True, kw_only=True)
class SlaView:
    ticket_id: int
    ticket_number: int | None
    metrics: tuple[SlaMetricView, ...] = ()

    @property
    def remaining_s(self) -> float | None:
        """The most urgent remaining time among clocks still counting (None when all are stopped)."""
        live = [m.remaining_s for m in self.metrics if m.state != "stopped"]
        return min(live) if live else None

    def metric(self, name: str) -> SlaMetricView | None:
        return next((m for m in self.metrics if m.metric == name), None)


@dataclass(frozen=True, slots=True, kw_only=True)
class SlaExplanation:
    """How a ticket's SLA figures were computed: policy, calendar, windows counted, holidays, pauses."""

    ticket_number: int | None
    view: SlaView
    lines: tuple[str, ...]
