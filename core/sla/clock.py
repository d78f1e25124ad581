"""The business-time clock: pure, vectorised with numpy (reliability-sla.md §5.4).

A calendar is a table of open UTC intervals `s[i], e[i]` with `cum[i]` = business seconds before
interval i. Then, for any instants (arrays, epoch seconds):

    B(t)    = cum[k] + clip(t - s[k], 0, e[k] - s[k]),   k = searchsorted(s, t, 'right') - 1
    B⁻¹(x)  = s[k] + (x - cum[k]),                      k = searchsorted(cum, x, 'left') - 1

B counts business seconds since the table's origin; B⁻¹ gives the first instant at which x business
seconds have elapsed, so a budget ending exactly at a window end is due at that end (17:00), never at
the next morning's opening. Clocks created outside hours start at the next open instant because B is
flat there. Outside the table's horizon B is clamped (and B⁻¹ is NaN): tables are built ±400 days
around "now" and rebuilt as time moves on.

Per ticket and metric (all business quantities in seconds):

    used      = B(end) - B(start) - paused_acc - (B(end) - B(paused_since) if paused)
                where end = stopped_at if stopped else now
    remaining = target - used
    due       = B⁻¹(B(start) + target + paused_acc + current pause)   (the breach instant once breached)

Nothing here reads the wall clock: time is always an argument.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass

import numpy as np

FloatArray = np.ndarray
CONTINUOUS_END = 1e11  # year ~5138: the 24x7 table's single interval runs from the epoch to here


class IntervalTable:
    """Open intervals of one calendar over a horizon, with the cumulative business seconds."""

    __slots__ = ("s", "e", "cum", "total", "horizon_start", "horizon_end", "key", "_s0", "_off0", "_cend0", "_off",
                 "_lists")

    def __init__(self, s: FloatArray, e: FloatArray, *, horizon_start: float, horizon_end: float,
                 key: object = None) -> None:
        self.s = np.ascontiguousarray(s, dtype=np.float64)
        self.e = np.ascontiguousarray(e, dtype=np.float64)
        if self.s.shape != self.e.shape or np.any(self.e < self.s) or np.any(np.diff(self.s) < 0):
            raise ValueError("intervals must be sorted, non-overlapping [s, e) pairs")
        lengths = self.e - self.s
        self.cum = np.concatenate(([0.0], np.cumsum(lengths)[:-1])) if len(lengths) else np.zeros(0)
        self.total = float(lengths.sum())
        # Lookup arrays: with k the interval at or before t, B(t) = min(t - off[k], cum_end[k]) because
        # t >= s[k]; a zero-length sentinel at -inf makes k >= 0 for every t (B = 0 before the first).
        self._s0 = np.concatenate(([-1e18], self.s))
        self._off0 = np.concatenate(([-1e18], self.s - self.cum))
        self._cend0 = np.concatenate(([0.0], self.cum + lengths))
        self._off = self.s - self.cum
        self.horizon_start = horizon_start
        self.horizon_end = horizon_end
        self.key = key
        self._lists: tuple[list[float], list[float], list[float]] | None = None  # for B_one, made on first use

    @classmethod
    def continuous(cls) -> IntervalTable:
        """Calendar time (24x7, no holidays): B(t) = t."""
        return cls(np.array([0.0]), np.array([CONTINUOUS_END]), horizon_start=0.0, horizon_end=CONTINUOUS_END,
                   key="24x7")

    def __len__(self) -> int:
        return len(self.s)

    def covers(self, t: float) -> bool:
        return self.horizon_start <= t <= self.horizon_end

    def B(self, t: FloatArray | float) -> FloatArray:  # noqa: N802 - the name used in the reference
        """Business seconds from the table's origin up to each instant."""
        t = np.asarray(t, dtype=np.float64)
        k = np.searchsorted(self._s0, t, side="right") - 1
        return np.minimum(t - self._off0[k], self._cend0[k])

    def B_one(self, t: float) -> float:  # noqa: N802
        """`B(t)` of one instant without numpy: the same lookup and the same float operations as `B` (so the same
        value, bit for bit), without an array call's set-up (a queue page evaluates a few dozen clocks)."""
        if self._lists is None:
            self._lists = (self._s0.tolist(), self._off0.tolist(), self._cend0.tolist())
        s0, off0, cend0 = self._lists
        k = bisect_right(s0, t) - 1  # searchsorted(side="right") - 1
        return min(t - off0[k], cend0[k])  # np.minimum: the first unless the second is smaller

    def B_inv(self, x: FloatArray | float) -> FloatArray:  # noqa: N802
        """The first instant at which `x` business seconds have elapsed (NaN past the horizon)."""
        x = np.asarray(x, dtype=np.float64)
        n = len(self.s)
        if n == 0:
            return np.full_like(x, np.nan)
        xc = np.maximum(x, 0.0)
        k = np.maximum(np.searchsorted(self.cum, xc, side="left") - 1, 0)
        t = xc + self._off[k]
        return np.where((xc > self.total) | np.isnan(x), np.nan, t)

    def elapsed(self, a: FloatArray | float, b: FloatArray | float) -> FloatArray:
        """Business seconds between a and b (negative if b < a)."""
        return self.B(b) - self.B(a)

    def add(self, t: FloatArray | float, seconds: FloatArray | float) -> FloatArray:
        """The instant `seconds` business seconds after t (the clock starts at the next open instant)."""
        return self.B_inv(self.B(t) + np.asarray(seconds, dtype=np.float64))

    def next_open(self, t: float) -> float:
        """t itself when open, else the start of the next open interval (NaN past the horizon)."""
        k = int(np.searchsorted(self.s, t, side="right")) - 1
        if k >= 0 and t < self.e[k]:
            return float(t)
        return float(self.s[k + 1]) if k + 1 < len(self.s) else float("nan")


@dataclass(frozen=True, slots=True)
class Evaluation:
    """Per-clock results of one vectorised pass (business seconds; instants as epoch seconds)."""

    used: FloatArray
    remaining: FloatArray
    due: FloatArray  # NaN when beyond the horizon
    breached_at: FloatArray  # NaN while not breached


def evaluate(table: IntervalTable, *, start: FloatArray, target: FloatArray, paused_acc: FloatArray,
             paused_since: FloatArray, stopped_at: FloatArray, now: float) -> Evaluation:
    """Remaining time and due instant for many clocks on one calendar; NaN means "not set"."""
    start = np.asarray(start, dtype=np.float64)
    paused_since = np.asarray(paused_since, dtype=np.float64)
    stopped_at = np.asarray(stopped_at, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    paused_acc = np.asarray(paused_acc, dtype=np.float64)
    stopped = ~np.isnan(stopped_at)
    paused = ~np.isnan(paused_since) & ~stopped
    # B(now) is one number; only stopped and paused clocks need their own lookups.
    b_end = np.full(start.shape, float(table.B(now)))
    if stopped.any():
        b_end[stopped] = table.B(stopped_at[stopped])
    b_start = table.B(start)
    current_pause = np.zeros(start.shape)
    if paused.any():
        current_pause[paused] = np.maximum(b_end[paused] - table.B(paused_since[paused]), 0.0)
    used = np.maximum(b_end - b_start - paused_acc - current_pause, 0.0)
    remaining = target - used
    breached = remaining <= 0
    budget_end = b_start + target + paused_acc
    due = table.B_inv(np.where(breached, budget_end, budget_end + current_pause))
    return Evaluation(used=used, remaining=remaining, due=due, breached_at=np.where(breached, due, np.nan))


def remaining_one(table: IntervalTable, b_now: float, *, start: float, target: float, paused_acc: float,
                  paused_since: float | None) -> float:
    """`evaluate(...).remaining` of one clock that is not stopped, given `b_now` = `table.B_one(now)`: the same
    float operations in the same order as `evaluate` (max() keeps its first argument on a tie, as np.maximum does),
    so the same value, bit for bit (tests/core/sla/test_clock.py compares them)."""
    b_start = table.B_one(start)
    paused = paused_since is not None and paused_since == paused_since  # set and not NaN (evaluate's `paused`)
    current_pause = max(b_now - table.B_one(paused_since), 0.0) if paused else 0.0  # type: ignore[arg-type]
    return target - max(b_now - b_start - paused_acc - current_pause, 0.0)


def evaluate_one(table: IntervalTable, *, start: float, target: float, paused_acc: float,
                 paused_since: float | None, stopped_at: float | None, now: float) -> tuple[float, float, float]:
    """(used, remaining, due) for a single clock (due is NaN past the horizon)."""
    nan = float("nan")
    ev = evaluate(table, start=np.array([start]), target=np.array([target]), paused_acc=np.array([paused_acc]),
                  paused_since=np.array([nan if paused_since is None else paused_since]),
                  stopped_at=np.array([nan if stopped_at is None else stopped_at]), now=now)
    return float(ev.used[0]), float(ev.remaining[0]), float(ev.due[0])
