"""How the sandbox's desk looks at its anchor time: a believable Monday morning on any date.

The tickets still open are planned, not rolled: each gets a kind (a new unassigned e-mail, work in
progress, waiting on the customer, a scheduled visit, an alert, a project on hold) and an SLA band
(most within, a few at risk, a couple breached), and its age is worked out backwards in *business*
time from the anchor so that the band holds with Deskbridge's default SLA (Mon-Fri 08:00-17:00 UTC,
targets per priority below), whatever the weekday or hour. The thread follows the kind: a ticket
waiting on the customer ends with the technician's question, a new one has no reply from us yet,
a closed one ends with the customer's thanks and a resolution note.

These numbers mirror core/sla/policies.py's defaults; the sandbox cannot import core (layers), so a
test (tests/connectors/test_sandbox_desk.py) checks the mix through Deskbridge's real SLA service.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, time, timedelta

OPEN_AT, CLOSE_AT = time(8), time(17)  # the default SLA calendar (UTC)
H, M = 3600.0, 60.0
# priority name -> (first response, resolution) in business seconds
TARGETS = {"Priority 1 - Critical": (15 * M, 4 * H), "Priority 2 - High": (1 * H, 8 * H),
           "Priority 3 - Medium": (4 * H, 24 * H), "Priority 4 - Low": (24 * H, 72 * H)}
BANDS = {"within": (0.05, 0.6), "at_risk": (0.78, 0.94), "breached": (1.15, 1.8)}
SHARE_AT_RISK, SHARE_BREACHED = 0.12, 0.06
# (kind, board, status, share of the open desk)
KINDS = [("new", "Service Desk", "New", 0.14), ("working", "Service Desk", "In Progress", 0.34),
         ("waiting", "Service Desk", "Waiting Customer Response", 0.22),
         ("scheduled", "Service Desk", "Scheduled", 0.08), ("alert_new", "Alerts", "New", 0.04),
         ("alert_working", "Alerts", "Investigating", 0.06), ("alert_ack", "Alerts", "Acknowledged", 0.04),
         ("project", "Projects", "On Hold", 0.04), ("project_planning", "Projects", "Planning", 0.04)]
AT_RISK_KINDS = ("new", "working", "waiting")  # where a desk really slips
RUNNING = {"new", "working", "alert_new", "alert_working", "alert_ack", "project_planning"}  # clock not paused


def _day(when: datetime, clock: time) -> datetime:
    return when.replace(hour=clock.hour, minute=0, second=0, microsecond=0)


def business_back(t: datetime, seconds: float) -> datetime:
    """The instant `seconds` of business time before `t` (t itself when 0)."""
    left, cur = seconds, t
    while True:
        if cur.weekday() < 5:
            start, end = _day(cur, OPEN_AT), min(cur, _day(cur, CLOSE_AT))
            if end > start:
                span = (end - start).total_seconds()
                if span >= left:
                    return end - timedelta(seconds=left)
                left -= span
        cur = _day(cur, time(0)) - timedelta(microseconds=1)


def business_forward(t: datetime, seconds: float) -> datetime:
    """The instant `seconds` of business time after `t`."""
    left, cur = seconds, t
    while True:
        if cur.weekday() < 5:
            start, end = max(cur, _day(cur, OPEN_AT)), _day(cur, CLOSE_AT)
            if end > start:
                span = (end - start).total_seconds()
                if span >= left:
                    return start + timedelta(seconds=left)
                left -= span
        cur = _day(cur, time(0)) + timedelta(days=1)


@dataclass(frozen=True, slots=True)
class Plan:
    """One open ticket to be: what it is, where it stands, and the SLA share it has used at the anchor."""

    kind: str
    board: str
    status: str
    band: str
    used: float  # share of the governing target used (first response when unanswered, else resolution)


def plan_open_desk(rng: random.Random, count: int) -> list[Plan]:
    """`count` open tickets: kinds in their shares, then a few at risk and a couple breached."""
    kinds: list[tuple[str, str, str]] = []
    for kind, board, status, share in KINDS:
        kinds += [(kind, board, status)] * max(1 if count >= 20 else 0, round(share * count))
    while len(kinds) < count:
        kinds.append(KINDS[1][:3])  # work in progress fills up
    kinds = kinds[:count]
    rng.shuffle(kinds)
    slipping = [i for i, k in enumerate(kinds) if k[0] in AT_RISK_KINDS]
    n_breached = max(1, round(SHARE_BREACHED * count))
    n_risk = max(1, round(SHARE_AT_RISK * count))
    chosen = rng.sample(slipping, min(len(slipping), n_breached + n_risk))
    bands = {i: "breached" for i in chosen[:n_breached]} | {i: "at_risk" for i in chosen[n_breached:]}
    plans = []
    for i, (kind, board, status) in enumerate(kinds):
        band = bands.get(i, "within")
        lo, hi = BANDS[band]
        plans.append(Plan(kind, board, status, band, rng.uniform(lo, hi)))
    # The newest ticket is a fresh e-mail nobody has answered yet (so `/ticket <highest number>` is open).
    fresh = next((i for i, p in enumerate(plans) if p.kind == "new" and p.band == "within"), None)
    if fresh is not None:
        p = plans[fresh]
        plans[fresh] = Plan(p.kind, p.board, p.status, p.band, rng.uniform(0.02, 0.08))
    return plans


def priority_for(rng: random.Random, kind: str, names: list[str]) -> str:
    """Alerts run hot, projects are low, the service desk is mostly medium."""
    if kind.startswith("alert"):
        return rng.choices(names, weights=[2, 5, 2, 0])[0]
    if kind.startswith("project"):
        return names[3]
    return rng.choices(names, weights=[1, 3, 8, 4])[0]
