"""AI assist in the REST ticket detail (`GET /tickets/{ticketId}?ai=true`): the same suggestions as the
ticket card, each with its source and confidence. Technicians' keys only; null for anyone else."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from bot.api.portal.models import TicketOut
from core.views import AiSuggestionsView


class AiCategoryOut(BaseModel):
    label: str
    confidence: float = Field(description="Probability of the label (0..1)")
    action: str = Field(description="applied (the AI set it; a technician may undo it), apply (above the "
                                    "threshold: applied on the AI's next pass), suggest, keep or low_confidence")
    reason: str
    alternatives: list[tuple[str, float]]


class AiSimilarOut(BaseModel):
    ticket_id: int
    number: int | None
    ref: str
    subject: str
    score: float = Field(description="Cosine similarity (0..1); nothing below the workspace's floor is listed")
    closed_at: datetime | None


class AiResolutionOut(BaseModel):
    text: str = Field(description="The resolution note, verbatim")
    attribution: str = Field(description='Where it comes from, e.g. "from #4821, 12 Mar 2026, by Ana, 0.71"')


class AiRiskOut(BaseModel):
    score: float = Field(description="Escalation risk (0..1), shown only at or above the admin's threshold")
    threshold: float
    reasons: list[str] = Field(description="What pushed the score up the most")


class AiKbOut(BaseModel):
    title: str
    source: str = Field(description='Where the article comes from, e.g. "Hudu" or "Markdown folder"')
    score: float = Field(description="How well it matches the ticket (0..1); nothing under the workspace's "
                                     "kb_threshold is listed")
    heading: str
    paragraph: str = Field(description="The article's paragraph that matches the ticket best, verbatim")
    url: str | None


class AiOut(BaseModel):
    source: str
    category: AiCategoryOut | None
    similar: list[AiSimilarOut]
    resolutions: list[AiResolutionOut]
    resolutions_disagree: bool
    cross_customer: bool = Field(description="Similar tickets may come from other customers (workspace setting)")
    risk: AiRiskOut | None = None
    kb: list[AiKbOut] = Field(default_factory=list, description="Knowledge-base articles that match the ticket")


class TicketAiOut(TicketOut):
    ai: AiOut | None = Field(None, description="Only with ?ai=true; null when there is nothing to suggest "
                                               "or the key is not a technician's")


def ai_out(view: AiSuggestionsView | None) -> dict[str, Any] | None:
    if view is None:
        return None
    c = view.category
    return AiOut(
        source=view.source,
        category=AiCategoryOut(label=c.label, confidence=round(c.confidence, 4), action=c.action, reason=c.reason,
                               alternatives=[(lbl, round(p, 4)) for lbl, p in c.alternatives]) if c else None,
        similar=[AiSimilarOut(ticket_id=s.ticket_id, number=s.number, ref=s.ref, subject=s.subject,
                              score=round(s.score, 4), closed_at=s.closed_at) for s in view.similar],
        resolutions=[AiResolutionOut(text=r.text, attribution=r.attribution) for r in view.resolutions],
        resolutions_disagree=view.disagree, cross_customer=view.cross_customer,
        risk=AiRiskOut(score=round(view.risk.score, 4), threshold=view.risk.threshold, reasons=list(view.risk.reasons))
        if view.risk else None,
        kb=[AiKbOut(title=a.title, source=a.source, score=round(a.score, 4), heading=a.heading, paragraph=a.paragraph,
                    url=a.url) for a in view.kb],
    ).model_dump(mode="json")
