"""Derived clock states kept between reads (issue 20 item 4: deriving them was the largest part of `/tickets mine`).

A read path (a queue page, a card, `breaching`) derives the clocks of every ticket whose stored clocks are stale or
absent (`advance`, core/sla/state.py) from the ticket, its stored clock rows, its status and priority timeline
entries, the policy, the calendar's interval table and "now". The derivation is pure, so its result is kept per
ticket and reused while *every* input is the same:

- the ticket as read now: every field of `TicketRow` (stage, status name, priority, customer, created and updated
  instants, version, first response, the PSA's due dates), compared whole;
- the stored clock rows of both metrics: every column a clock state is made of, compared whole (the monitor's
  refresh writes them);
- the policy and the interval tables, by identity. A policy or calendar edit (targets, stage map, status names,
  reopen, business hours, holidays, time zone) gives new objects: the SLA config cache drops its entry at once on a
  write in this process and after `CONFIG_TTL_S` for another process's (core/cache.py), and a calendar edit bumps its
  version and so its interval table (core/sla/config.py `TableCache`). A kept entry holds what it compares, so an
  identity is never reused while it is kept;
- the timeline changes: kept, not compared (not reading them again is part of what this saves). They are the same
  whenever the ticket's version is: their only writer (core/tickets.py `_set_status`, `_set_priority`) bumps the
  ticket's version and updated_at in the transaction that adds the entry, and entries of those kinds are never
  edited or deleted (sync writes notes, time entries and files only). tests/core/sla/test_memo.py checks it;
- time: the derivation reads "now" only to clamp instants that lie after it. A result is kept only when every
  instant it used (creation, update, first response, the changes, the stored clocks' last transitions) is at or
  before the "now" it was derived at, and reused only at a "now" at or after them: it is the same at every such
  "now".

The figures (used, remaining, due, breach) depend on "now" and are evaluated on every read. Kept states are handed
out as copies (the evaluation records breach instants into them), except to a read that only reads them (a queue
page's remaining times, `SlaService.remaining_loaded`). The write path (`SlaService.refresh`) does not use this.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from core.sla.clock import IntervalTable
from core.sla.policies import Policy
from core.sla.state import Change, ClockState

if TYPE_CHECKING:
    from core.sla.service import TicketRow

MAX_ENTRIES = 20_000  # ~2 KB each; past it the oldest tenth is dropped

# The sla_clock columns a clock state is made of (core/sla/service.py `state_from_row`), read as plain rows on the
# read paths: a row's values are its signature here.
STATE_COLUMNS = ("ticket_id", "metric", "priority", "start_at", "target_s", "last_at", "calendar_id", "cycle",
                 "paused_acc_s", "paused_since", "stopped_at", "stop_reason", "breached_at", "seen_entry_id",
                 "seen_version", "seen_updated_at", "log")


def copy_state(c: ClockState) -> ClockState:
    return ClockState(c.metric, c.priority, c.start, c.target_s, c.last_at, c.calendar_id, c.cycle, c.paused_acc_s,
                      c.paused_since, c.stopped_at, c.stop_reason, c.breached_at, c.seen_entry_id, c.seen_version,
                      c.seen_updated_at, list(c.log))


def latest_instant(t: TicketRow, rows: Sequence[Any], changes: Sequence[Change]) -> float:
    """The latest instant a derivation of this ticket reads (the clamps to "now" are no-ops from it on)."""
    latest = max(t.created_at.timestamp(), (t.updated_at or t.created_at).timestamp())
    if t.first_response_at is not None:
        latest = max(latest, t.first_response_at.timestamp())
    for ch in changes:
        latest = max(latest, ch.at)
    for row in rows:
        if row is not None:
            latest = max(latest, row.last_at.timestamp())
    return latest


@dataclass(slots=True)
class _Kept:
    ticket: TicketRow
    rows: tuple[Any, ...]
    changes: tuple[Change, ...]
    policy: Policy
    tables: tuple[IntervalTable, ...]
    latest: float
    states: tuple[ClockState, ...]


class DerivedMemo:
    """Derived clock states per ticket id (see the module docstring for when one is reused)."""

    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self.max_entries = max_entries
        self._kept: dict[int, _Kept] = {}
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._kept)

    def clear(self) -> None:
        self._kept.clear()

    def changes_of(self, t: TicketRow) -> tuple[Change, ...] | None:
        """The ticket's status and priority changes as kept, if it is the ticket it was then (else None: read them)."""
        kept = self._kept.get(t.id)
        return kept.changes if kept is not None and kept.ticket == t else None

    def states(self, t: TicketRow, rows: tuple[Any, ...], policy: Policy, tables: tuple[IntervalTable, ...],
               now: float, *, copy: bool = True) -> list[ClockState] | None:
        """Copies of the kept states if every input is the same and `now` is past every instant they read
        (`copy=False`: the kept states themselves, for a caller that only reads them and drops them)."""
        kept = self._kept.get(t.id)
        if (kept is None or now < kept.latest or kept.policy is not policy or kept.tables != tables  # by identity
                or kept.ticket != t or kept.rows != rows):
            self.misses += 1
            return None
        self.hits += 1
        return [copy_state(s) for s in kept.states] if copy else list(kept.states)

    def keep(self, t: TicketRow, rows: tuple[Any, ...], changes: Sequence[Change], policy: Policy,
             tables: tuple[IntervalTable, ...], states: Sequence[ClockState], now: float) -> None:
        """Keep fresh derivations (before anything evaluates them); not when an input lies after `now`."""
        latest = latest_instant(t, rows, changes)
        if latest > now:
            return
        if len(self._kept) >= self.max_entries and t.id not in self._kept:
            for tid in list(self._kept)[:max(self.max_entries // 10, 1)]:
                self._kept.pop(tid, None)
        self._kept[t.id] = _Kept(t, rows, tuple(changes), policy, tables, latest,
                                 tuple(copy_state(s) for s in states))
