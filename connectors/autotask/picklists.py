"""The tenant's picklists (pure): statuses, priorities, queues, types, note types and publish options.

Autotask picklists are tenant data, except ticket status 5 = Complete (reference §3.3). They come from
`GET {Entity}/entityInformation/fields` (`picklistValues` with `value` as a string, `label`, `isActive`,
`isDefaultValue`, `sortOrder`, `isSystem`, `parentValue`), and every write picks values by label. Note
visibility comes from the `publish` label, never from hard-coded ids (gotcha 17): a label naming "internal"
is internal, one naming "all" is public, anything else is treated as internal so that an unknown label
never publishes to a customer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from connectors.base import (
    NoteVisibility,
    Picklists,
    PsaBoard,
    PsaCategory,
    PsaPriority,
    PsaStatus,
    PsaTicketType,
)
from connectors.errors import PsaValidationError

J = Mapping[str, Any]
STATUS_COMPLETE = "5"


def ref_id(value: Any) -> str | None:
    """An Autotask id or picklist value as the seam's string id (None when absent)."""
    return None if value is None or isinstance(value, bool) else str(value)


@dataclass(frozen=True, slots=True)
class PickValue:
    value: str
    label: str
    sort_order: int = 0
    default: bool = False
    active: bool = True
    system: bool = False
    parent: str | None = None


@dataclass(frozen=True, slots=True)
class FieldPicklists:
    """The picklists of one entity: field name -> values, as the tenant defines them."""

    values: Mapping[str, tuple[PickValue, ...]] = field(default_factory=dict)

    def of(self, name: str) -> tuple[PickValue, ...]:
        return self.values.get(name, ())

    def get(self, name: str, value: Any) -> PickValue | None:
        key = ref_id(value)
        return next((p for p in self.of(name) if p.value == key), None) if key is not None else None

    def label(self, name: str, value: Any) -> str | None:
        pick = self.get(name, value)
        return pick.label if pick else None

    def find(self, name: str, label: str) -> PickValue | None:
        """The value with this label (case-insensitive), active ones first."""
        hits = [p for p in self.of(name) if p.label.strip().lower() == label.strip().lower()]
        return sorted(hits, key=lambda p: not p.active)[0] if hits else None

    def default(self, name: str) -> PickValue | None:
        return next((p for p in self.of(name) if p.default and p.active), None)

    def children(self, name: str, parent: Any) -> tuple[PickValue, ...]:
        """Values whose parentValue is `parent` (subIssueType under an issueType)."""
        return tuple(p for p in self.of(name) if p.parent == ref_id(parent))


def picklists_from_fields(fields: Sequence[J]) -> FieldPicklists:
    """FieldPicklists from an `entityInformation/fields` answer (`{"fields": [...]}` items)."""
    out: dict[str, tuple[PickValue, ...]] = {}
    for f in fields:
        if not f.get("isPickList") or not isinstance(f.get("picklistValues"), list):
            continue
        values = [PickValue(value=str(p.get("value")), label=str(p.get("label") or ""),
                            sort_order=int(p.get("sortOrder") or 0), default=bool(p.get("isDefaultValue")),
                            active=p.get("isActive") is not False, system=bool(p.get("isSystem")),
                            parent=str(p["parentValue"]) if p.get("parentValue") not in (None, "") else None)
                  for p in f["picklistValues"] if isinstance(p, Mapping) and p.get("value") is not None]
        out[str(f.get("name"))] = tuple(sorted(values, key=lambda p: (p.sort_order, p.label)))
    return FieldPicklists(out)


@dataclass(frozen=True, slots=True)
class AtPicklists:
    """Everything mapping needs from the tenant: Tickets, TicketNotes and TicketAttachments picklists."""

    ticket: FieldPicklists = field(default_factory=FieldPicklists)
    note: FieldPicklists = field(default_factory=FieldPicklists)
    attachment: FieldPicklists = field(default_factory=FieldPicklists)


def publish_visibility(label: str | None) -> NoteVisibility:
    """What a `publish` label means for the customer (unknown labels are internal, never public)."""
    text = (label or "").lower()
    if "internal" in text:
        return NoteVisibility.INTERNAL
    if "all" in text.split() or text.startswith("all "):
        return NoteVisibility.PUBLIC
    return NoteVisibility.INTERNAL


def publish_value(picks: FieldPicklists, visibility: NoteVisibility) -> int:
    """The tenant's `publish` value for a visibility (PsaValidationError when it has none)."""
    want = NoteVisibility.INTERNAL if visibility is NoteVisibility.INTERNAL else NoteVisibility.PUBLIC
    fits = [p for p in picks.of("publish") if p.active and publish_visibility(p.label) is want]
    fits.sort(key=lambda p: ("co-managed" in p.label.lower(), p.sort_order))
    if not fits:
        raise PsaValidationError(f"The Autotask tenant has no '{want}' publish option.",
                                 fields={"publish": "no matching picklist value"})
    return int(fits[0].value)


def canonical_picklists(picks: AtPicklists) -> Picklists:
    """Boards (queues), statuses, priorities, ticket types and categories (issue / sub-issue types) in the seam's
    shape."""
    t = picks.ticket
    return Picklists(
        boards=[PsaBoard(external_id=p.value, name=p.label, active=p.active) for p in t.of("queueID")],
        statuses=[PsaStatus(external_id=p.value, name=p.label, closed=p.value == STATUS_COMPLETE, default=p.default,
                            active=p.active, sort_order=p.sort_order) for p in t.of("status")],
        priorities=[PsaPriority(external_id=p.value, name=p.label, sort_order=p.sort_order, default=p.default)
                    for p in t.of("priority") if p.active],
        types=[PsaTicketType(external_id=p.value, name=p.label) for p in t.of("ticketType") if p.active],
        categories=[*(PsaCategory(external_id=p.value, name=p.label, active=p.active, sort_order=p.sort_order)
                      for p in t.of("issueType")),
                    *(PsaCategory(external_id=p.value, name=p.label, parent_external_id=p.parent, active=p.active,
                                  sort_order=p.sort_order) for p in t.of("subIssueType") if p.parent)])


