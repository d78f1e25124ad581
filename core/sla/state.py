"""Clock state transitions (pure): start, pause, resume, stop, reopen, change of target.

One `ClockState` per ticket and metric. Times are epoch seconds; `paused_acc_s` is in *business*
seconds of the clock's calendar, so a pause spanning a weekend costs nothing extra (§5.4).

`advance` brings a clock up to date with a ticket: it replays the ticket's status and priority
changes not yet seen (timeline entries, in time order), then lines the clock up with the ticket's
current stage and priority (a PSA sync may change them without a timeline entry; that transition is
dated at the ticket's `updated_at`, the best we know). Rules (reliability-sla.md §5.2):

- The clock starts at the ticket's creation; business time makes it start at the next open instant.
- A priority change keeps start and elapsed time and swaps the target. If the old target was already
  used up, the breach is recorded first (at the instant it happened) and stays recorded.
- First response stops at the first public reply by a member and never restarts.
- A reopened resolution clock resumes (time while resolved does not count) or, with
  `reopen=new_cycle`, starts a fresh cycle (new start, new warnings).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from core.sla.clock import IntervalTable
from core.sla.policies import Metric, Policy, Reopen, RunState
from store.enums import Priority, Stage

MAX_LOG = 40
FIRST_RESPONSE_REASON = "first_response"
STAGE_REASON = "stage"


@dataclass(slots=True)
class ClockState:
    metric: Metric
    priority: str
    start: float
    target_s: float
    last_at: float
    calendar_id: int | None = None
    cycle: int = 1
    paused_acc_s: float = 0.0
    paused_since: float | None = None
    stopped_at: float | None = None
    stop_reason: str | None = None
    breached_at: float | None = None
    seen_entry_id: int = 0
    seen_version: int = 0
    seen_updated_at: float | None = None
    log: list[dict[str, Any]] = field(default_factory=list)

    @property
    def state(self) -> RunState:
        if self.stopped_at is not None:
            return RunState.STOPPED
        return RunState.PAUSED if self.paused_since is not None else RunState.RUNNING


@dataclass(frozen=True, slots=True)
class TicketFacts:
    """What the clock needs to know about a ticket now."""

    ticket_id: int
    stage: Stage
    status_name: str | None
    priority: Priority
    created_at: float
    updated_at: float
    version: int = 0
    first_response_at: float | None = None


@dataclass(frozen=True, slots=True)
class Change:
    """A status or priority change from the ticket's timeline."""

    entry_id: int
    at: float
    kind: str  # "status" | "priority"
    stage: Stage | None = None
    status_name: str | None = None
    priority: Priority | None = None
    from_stage: Stage | None = None
    from_status_name: str | None = None
    from_priority: Priority | None = None


def _b(table: IntervalTable, t: float) -> float:
    return float(table.B(t))


def used_at(c: ClockState, t: float, table: IntervalTable) -> float:
    """Business seconds counted against the target up to t."""
    end = min(t, c.stopped_at) if c.stopped_at is not None else t
    used = _b(table, end) - _b(table, c.start) - c.paused_acc_s
    if c.paused_since is not None and end > c.paused_since:
        used -= _b(table, end) - _b(table, c.paused_since)
    return max(used, 0.0)


def _note(c: ClockState, t: float, event: str, **extra: Any) -> None:
    c.log.append({"at": round(t, 3), "event": event, **extra})
    del c.log[:-MAX_LOG]


def check_breach(c: ClockState, t: float, table: IntervalTable) -> None:
    """Record the breach instant if the target was used up by t (once; it is never cleared)."""
    if c.breached_at is None and c.target_s > 0 and used_at(c, t, table) >= c.target_s:
        due = float(table.B_inv(_b(table, c.start) + c.target_s + c.paused_acc_s))
        c.breached_at = due if due == due else t  # NaN past the horizon: the instant we noticed
        _note(c, c.breached_at, "breached")


def pause(c: ClockState, t: float, table: IntervalTable) -> None:
    if c.state is RunState.RUNNING:
        check_breach(c, t, table)
        c.paused_since, c.last_at = t, t
        _note(c, t, "paused")


def resume(c: ClockState, t: float, table: IntervalTable) -> None:
    if c.state is RunState.PAUSED and c.paused_since is not None:
        c.paused_acc_s += max(_b(table, t) - _b(table, c.paused_since), 0.0)
        c.paused_since, c.last_at = None, t
        _note(c, t, "resumed")


def stop(c: ClockState, t: float, table: IntervalTable, reason: str) -> None:
    if c.state is RunState.STOPPED:
        if reason == FIRST_RESPONSE_REASON:
            c.stop_reason = reason  # a first response after closing: the clock will never restart
        return
    resume(c, t, table)
    check_breach(c, t, table)
    c.stopped_at, c.stop_reason, c.last_at = t, reason, t
    _note(c, t, "stopped", reason=reason)


def reopen(c: ClockState, t: float, table: IntervalTable, mode: Reopen) -> None:
    """Restart a stopped clock: resume (time stopped does not count) or begin a new cycle."""
    if c.state is not RunState.STOPPED or c.stop_reason == FIRST_RESPONSE_REASON or c.stopped_at is None:
        return
    if mode is Reopen.NEW_CYCLE and c.metric is Metric.RESOLUTION:
        c.cycle += 1
        c.start, c.paused_acc_s, c.breached_at = t, 0.0, None
    else:
        c.paused_acc_s += max(_b(table, t) - _b(table, c.stopped_at), 0.0)
    c.stopped_at, c.stop_reason, c.last_at = None, None, t
    _note(c, t, "reopened", mode=mode.value, cycle=c.cycle)


def retarget(c: ClockState, priority: str, target_s: float, t: float, table: IntervalTable) -> None:
    """Swap the target (priority or policy change), keeping start and elapsed time."""
    if priority == c.priority and target_s == c.target_s:
        return
    check_breach(c, t, table)
    _note(c, t, "target", priority=priority, old_s=c.target_s, new_s=target_s)
    c.priority, c.target_s, c.last_at = priority, float(target_s), max(c.last_at, t)


def drive(c: ClockState, want: RunState, t: float, table: IntervalTable, mode: Reopen) -> None:
    """Move the clock to the run state a stage asks for."""
    if want is c.state:
        return
    if want is RunState.STOPPED:
        stop(c, t, table, STAGE_REASON)
        return
    if c.state is RunState.STOPPED:
        reopen(c, t, table, mode)
        if c.state is RunState.STOPPED:
            return
    if want is RunState.PAUSED:
        pause(c, t, table)
    else:
        resume(c, t, table)


def start_clock(metric: Metric, facts: TicketFacts, changes: list[Change], policy: Policy,
                table: IntervalTable, calendar_id: int | None) -> ClockState:
    """A new clock as of the ticket's creation (its first stage and priority from the timeline)."""
    first_status = next((ch for ch in changes if ch.kind == "status"), None)
    first_prio = next((ch for ch in changes if ch.kind == "priority"), None)
    stage = (first_status.from_stage if first_status else None) or Stage.NEW
    status_name = first_status.from_status_name if first_status else None
    prio = (first_prio.from_priority if first_prio else None) or facts.priority
    c = ClockState(metric=metric, priority=prio.value, start=facts.created_at,
                   target_s=float(policy.target(prio, metric)), last_at=facts.created_at, calendar_id=calendar_id)
    _note(c, facts.created_at, "started", priority=prio.value, target_s=c.target_s)
    drive(c, policy.state_for(metric, stage, status_name), facts.created_at, table, policy.reopen)
    return c


def _clamp(t: float, lo: float, hi: float) -> float:
    return min(max(t, lo), max(hi, lo))


def advance(clock: ClockState | None, metric: Metric, facts: TicketFacts, changes: Iterable[Change],
            policy: Policy, table: IntervalTable, calendar_id: int | None, now: float) -> ClockState:
    """Bring one metric's clock up to date with the ticket (see the module docstring)."""
    ordered = sorted(changes, key=lambda ch: (ch.at, ch.entry_id))
    c = clock if clock is not None else start_clock(metric, facts, ordered, policy, table, calendar_id)
    fresh: list[tuple[float, int, Change | None]] = [(ch.at, ch.entry_id, ch) for ch in ordered
                                                     if ch.entry_id > c.seen_entry_id]
    if (metric is Metric.FIRST_RESPONSE and facts.first_response_at is not None
            and c.stop_reason != FIRST_RESPONSE_REASON):
        fresh.append((facts.first_response_at, -1, None))
    fresh.sort(key=lambda item: (item[0], item[1]))
    for at, _, ch in fresh:
        if c.stop_reason == FIRST_RESPONSE_REASON:
            break
        t = _clamp(at, c.last_at, now)
        if ch is None:
            stop(c, t, table, FIRST_RESPONSE_REASON)
        elif ch.kind == "status" and ch.stage is not None:
            drive(c, policy.state_for(metric, ch.stage, ch.status_name), t, table, policy.reopen)
        elif ch.kind == "priority" and ch.priority is not None:
            retarget(c, ch.priority.value, policy.target(ch.priority, metric), t, table)
    if c.stop_reason != FIRST_RESPONSE_REASON:
        t = _clamp(facts.updated_at, c.last_at, now)
        drive(c, policy.state_for(metric, facts.stage, facts.status_name), t, table, policy.reopen)
        retarget(c, facts.priority.value, policy.target(facts.priority, metric), t, table)
    c.seen_entry_id = max([c.seen_entry_id, *(ch.entry_id for ch in ordered)])
    c.seen_version, c.seen_updated_at = facts.version, facts.updated_at
    return c
