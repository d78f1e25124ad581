"""Suggested resolutions: the resolution notes of the closest resolved tickets, verbatim and attributed.

Nothing is generated. Each suggestion says where it comes from ("from #4821, 12 Mar 2026, 0.71"); among
near-ties (scores within `TIE`) the newest comes first; when the notes of the matches say different
things (little word overlap) the answer is flagged as a disagreement so the technician compares them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from core.ai.similar import Hit
from core.ai.text import normalise

TIE = 0.05
AGREE_OVERLAP = 0.3  # word-set Jaccard below this between two notes counts as disagreement


@dataclass(frozen=True, slots=True)
class SuggestedResolution:
    ticket_id: int
    number: int | None
    text: str  # verbatim
    score: float
    closed_at: datetime | None
    resolved_by: str | None

    @property
    def attribution(self) -> str:
        ref = f"#{self.number}" if self.number is not None else f"id:{self.ticket_id}"
        when = f", {self.closed_at.strftime('%d %b %Y')}" if self.closed_at else ""
        by = f", by {self.resolved_by}" if self.resolved_by else ""
        return f"from {ref}{when}{by}, {self.score:.2f}"


@dataclass(frozen=True, slots=True)
class Resolutions:
    items: tuple[SuggestedResolution, ...]
    disagree: bool


def _overlap(a: str, b: str) -> float:
    wa, wb = set(normalise(a).split()), set(normalise(b).split())
    if not wa or not wb:
        return 0.0
    return len(wa & wb) / len(wa | wb)


def _order_key(h: Hit, best: float) -> tuple[int, float, float]:
    tied = best - h.score <= TIE
    when = (h.doc.closed_at or datetime.min.replace(tzinfo=UTC)).timestamp()
    return (0 if tied else 1, -when if tied else 0.0, -h.score)


def suggest(hits: Sequence[Hit], k: int = 3) -> Resolutions:
    """Up to k verbatim resolutions from `hits` (already customer-scoped and above the floor)."""
    usable = [h for h in hits if h.doc.resolution.strip()]
    if not usable:
        return Resolutions((), False)
    best = max(h.score for h in usable)
    usable.sort(key=lambda h: _order_key(h, best))
    chosen = usable[:k]
    items = tuple(SuggestedResolution(h.doc.ticket_id, h.doc.number, h.doc.resolution, h.score,
                                      h.doc.closed_at, h.doc.resolved_by) for h in chosen)
    first = items[0].text
    disagree = any(_overlap(first, other.text) < AGREE_OVERLAP for other in items[1:])
    return Resolutions(items, disagree)
