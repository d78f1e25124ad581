"""SLA policies (pure): targets per priority and metric, business or calendar time, thresholds, the
stage -> running/paused/stopped map per metric, and what a reopen does.

Stored as partial overrides (store.tables.SlaPolicy.settings), merged defaults <- workspace <- customer:

    {"targets": {"critical": {"first_response": "15m", "resolution": "4h"}},   # seconds or "1h30m"
     "mode": "business" | "calendar",
     "calendar": "<calendar name>",            # business mode; default: the workspace's "default"
     "thresholds": [75, 90, 100],              # percent of the target used; 100 = breached
     "states": {"resolution": {"waiting": "paused"}},              # per metric, per Stage
     "status_names": {"waiting on vendor": {"resolution": "running"}},  # per PSA status name
     "reopen": "resume" | "new_cycle"}         # resolution only; first response never restarts
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from store.enums import Priority, Stage


class Metric(StrEnum):
    FIRST_RESPONSE = "first_response"
    RESOLUTION = "resolution"

    @property
    def label(self) -> str:
        return "first response" if self is Metric.FIRST_RESPONSE else "resolution"


class RunState(StrEnum):
    RUNNING = "running"
    PAUSED = "paused"
    STOPPED = "stopped"


class Reopen(StrEnum):
    RESUME = "resume"
    NEW_CYCLE = "new_cycle"


class PolicyError(ValueError):
    """A policy setting that cannot be used (the service turns it into InvalidInput)."""


MIN, HOUR = 60, 3600
DEFAULT_TARGETS: dict[Priority, dict[Metric, int]] = {
    Priority.CRITICAL: {Metric.FIRST_RESPONSE: 15 * MIN, Metric.RESOLUTION: 4 * HOUR},
    Priority.HIGH: {Metric.FIRST_RESPONSE: 1 * HOUR, Metric.RESOLUTION: 8 * HOUR},
    Priority.MEDIUM: {Metric.FIRST_RESPONSE: 4 * HOUR, Metric.RESOLUTION: 24 * HOUR},
    Priority.LOW: {Metric.FIRST_RESPONSE: 24 * HOUR, Metric.RESOLUTION: 72 * HOUR},
}
_DEFAULT_STAGE_STATES = {Stage.NEW: RunState.RUNNING, Stage.IN_PROGRESS: RunState.RUNNING,
                         Stage.WAITING: RunState.PAUSED, Stage.RESOLVED: RunState.STOPPED,
                         Stage.CLOSED: RunState.STOPPED}
DEFAULT_STATES: dict[Metric, dict[Stage, RunState]] = {m: dict(_DEFAULT_STAGE_STATES) for m in Metric}
DEFAULT_THRESHOLDS = (75, 90, 100)
DEFAULT_CALENDAR = "default"
_DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


def parse_duration(value: str | int | float) -> int:
    """Seconds from 900, "15m", "4h", "1h30m", "3d" (d = 24 h of the clock's own time)."""
    if isinstance(value, bool):
        raise PolicyError(f"{value!r} is not a duration.")
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise PolicyError(f"{value!r} is not a duration like 15m, 4h or 1h30m.")
        seconds = int(value)
    else:
        text = value.strip().lower().replace(" ", "")
        if not text.isascii() or len(text) > 40:  # '²' is a digit to isdigit() but not to int(); 5000 digits
            raise PolicyError(f"'{value[:40]}' is not a duration like 15m, 4h or 1h30m.")
        if text.isdigit():
            seconds = int(text)
        else:
            m = _DURATION.match(text)
            if not text or not m or not any(m.groups()):
                raise PolicyError(f"'{value}' is not a duration like 15m, 4h or 1h30m.")
            d, h, mi, s = (int(g or 0) for g in m.groups())
            seconds = d * 86_400 + h * 3600 + mi * 60 + s
    if seconds <= 0 or seconds > 365 * 86_400:
        raise PolicyError(f"'{value}' is out of range (1 second to 365 days).")
    return seconds


def format_duration(seconds: float) -> str:
    """72h, 1h30m, 15m, 45s (hours are the largest unit: a business "day" is ambiguous)."""
    sign = "-" if seconds < 0 else ""
    s = int(round(abs(seconds)))
    h, s = divmod(s, 3600)
    m, s = divmod(s, 60)
    parts = [f"{v}{u}" for v, u in ((h, "h"), (m, "m")) if v]
    if s and not h:
        parts.append(f"{s}s")
    return sign + ("".join(parts) or "0m")


@dataclass(frozen=True, slots=True)
class Policy:
    """The effective policy for one ticket (defaults merged with workspace and customer overrides)."""

    targets: Mapping[Priority, Mapping[Metric, int]] = field(default_factory=lambda: DEFAULT_TARGETS)
    business_hours: bool = True
    calendar: str = DEFAULT_CALENDAR
    thresholds: tuple[int, ...] = DEFAULT_THRESHOLDS
    states: Mapping[Metric, Mapping[Stage, RunState]] = field(default_factory=lambda: DEFAULT_STATES)
    status_names: Mapping[str, Mapping[Metric, RunState]] = field(default_factory=dict)
    reopen: Reopen = Reopen.RESUME

    def target(self, priority: Priority | str, metric: Metric) -> int:
        return int(self.targets[Priority(priority)][metric])

    def state_for(self, metric: Metric, stage: Stage | str, status_name: str | None = None) -> RunState:
        """How this metric's clock runs in a stage (a PSA status name override wins)."""
        if status_name:
            named = self.status_names.get(status_name.strip().lower())
            if named and metric in named:
                return named[metric]
        return self.states[metric][Stage(stage)]

    def to_dict(self) -> dict[str, Any]:
        """A readable, JSON-able form (durations as text)."""
        return {
            "targets": {p.value: {m.value: format_duration(self.targets[p][m]) for m in Metric} for p in Priority},
            "mode": "business" if self.business_hours else "calendar",
            "calendar": self.calendar if self.business_hours else None,
            "thresholds": list(self.thresholds),
            "states": {m.value: {s.value: self.states[m][s].value for s in Stage} for m in Metric},
            "status_names": {k: {m.value: v.value for m, v in d.items()} for k, d in self.status_names.items()},
            "reopen": self.reopen.value,
        }


def _enum(cls: type[StrEnum], value: Any, what: str) -> Any:
    try:
        return cls(str(value).strip().lower().replace(" ", "_"))
    except ValueError:
        choices = ", ".join(m.value for m in cls)
        raise PolicyError(f"'{value}' is not a {what} (use {choices}).") from None


def validate_overrides(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Normalise a partial settings dict (durations to seconds); PolicyError on anything unusable."""
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if key == "targets":
            out["targets"] = {
                _enum(Priority, p, "priority").value: {
                    _enum(Metric, m, "metric").value: parse_duration(v) for m, v in dict(metrics).items()}
                for p, metrics in dict(value).items()}
        elif key == "mode":
            if value not in ("business", "calendar"):
                raise PolicyError(f"'{value}' is not a mode (use business or calendar).")
            out["mode"] = value
        elif key == "calendar":
            if not str(value).strip() or len(str(value)) > 64:
                raise PolicyError("A calendar name is 1-64 characters.")
            out["calendar"] = str(value).strip()
        elif key == "thresholds":
            levels = sorted({int(v) for v in value})
            if not levels or levels[0] < 1 or levels[-1] > 100:
                raise PolicyError("Thresholds are percentages from 1 to 100, e.g. 75,90,100.")
            out["thresholds"] = levels
        elif key == "states":
            out["states"] = {_enum(Metric, m, "metric").value: {
                _enum(Stage, s, "stage").value: _enum(RunState, st, "clock state").value
                for s, st in dict(stages).items()} for m, stages in dict(value).items()}
        elif key == "status_names":
            out["status_names"] = {str(name).strip().lower(): {
                _enum(Metric, m, "metric").value: _enum(RunState, st, "clock state").value
                for m, st in dict(metrics).items()} for name, metrics in dict(value).items()}
        elif key == "reopen":
            out["reopen"] = _enum(Reopen, value, "reopen behaviour").value
        else:
            raise PolicyError(f"'{key}' is not a policy setting.")
    return out


def merge_overrides(base: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """Overrides layered: nested maps (targets, states, status_names) merge key by key."""
    out = dict(base)
    for key, value in extra.items():
        if key in ("targets", "states", "status_names") and isinstance(out.get(key), Mapping):
            merged = {k: dict(v) for k, v in out[key].items()}
            for k, v in value.items():
                merged[k] = {**merged.get(k, {}), **v}
            out[key] = merged
        else:
            out[key] = value
    return out


def effective_policy(*layers: Mapping[str, Any]) -> Policy:
    """The policy from the defaults and validated override layers (workspace first, then customer)."""
    merged: dict[str, Any] = {}
    for layer in layers:
        merged = merge_overrides(merged, layer)
    targets = {p: dict(DEFAULT_TARGETS[p]) for p in Priority}
    for p, metrics in merged.get("targets", {}).items():
        for m, secs in metrics.items():
            targets[Priority(p)][Metric(m)] = int(secs)
    states = {m: dict(DEFAULT_STATES[m]) for m in Metric}
    for m, stages in merged.get("states", {}).items():
        for s, st in stages.items():
            states[Metric(m)][Stage(s)] = RunState(st)
    names = {n: {Metric(m): RunState(st) for m, st in d.items()} for n, d in merged.get("status_names", {}).items()}
    return Policy(
        targets=targets,
        business_hours=merged.get("mode", "business") == "business",
        calendar=merged.get("calendar", DEFAULT_CALENDAR),
        thresholds=tuple(merged.get("thresholds", DEFAULT_THRESHOLDS)),
        states=states,
        status_names=names,
        reopen=Reopen(merged.get("reopen", Reopen.RESUME.value)),
    )
