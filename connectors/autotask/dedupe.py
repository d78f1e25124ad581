"""Finding a write again after an ambiguous failure, without a marker in text a customer can read (pure).

Autotask has no idempotency header (reference §3.9). Where our marker can live:
- Tickets: `externalID` (string, 50) or a ticket UDF the admin created for us (not visible in the client
  portal unless the UDF is made visible); both are queryable (`eq`, UDFs with `"udf": true`).
- TicketNotes, TimeEntries, TicketAttachments: no external-id field and no UDFs. They are found again by
  what we sent plus what Autotask stamps: the ticket, the creating resource (the API user, or the
  impersonated resource), a creation time at or after the attempt began, and the same content (note
  title/description/publish/noteType; time entry start, duration, resource, summary; attachment file name,
  title, size, publish). Records already matched to other outbox ops are passed in `claimed`, so two
  identical writes never resolve to one record.
Every `*_filters` result goes to `AtClient.query_all`; every `same_*` checks one candidate item.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from connectors.autotask import query as aq
from connectors.autotask.mapping import parse_dt

J = Mapping[str, Any]
SKEW = timedelta(minutes=5)  # our clock vs Autotask's: widen the "created after" window by this much


def _text(value: Any) -> str:
    """Text as Autotask may hand it back: CRLF to LF, surrounding whitespace trimmed [unverified]."""
    return str(value or "").replace("\r\n", "\n").strip()


def ticket_filters(marker: str, *, marker_udf: str | None = None) -> list[aq.Condition]:
    """Tickets carrying our marker in externalID or in the marker UDF."""
    return [aq.eq(marker_udf, marker, udf=True)] if marker_udf else [aq.eq("externalID", marker)]


def note_filters(ticket_id: str, since: datetime) -> list[aq.Condition]:
    """TicketNotes of the ticket created since the first attempt (minus clock skew)."""
    return [aq.eq("ticketID", int(ticket_id)), aq.gte("createDateTime", since - SKEW)]


def same_note(item: J, sent: J, *, creator_resource_id: str | None = None) -> bool:
    """Whether a TicketNotes item is the note body `sent` (and was created by that resource, when given)."""
    if creator_resource_id is not None and str(item.get("creatorResourceID")) != str(creator_resource_id):
        return False
    return (_text(item.get("description")) == _text(sent.get("description"))
            and _text(item.get("title")) == _text(sent.get("title"))
            and item.get("publish") == sent.get("publish") and item.get("noteType") == sent.get("noteType"))


def time_entry_filters(ticket_id: str, resource_id: str, started_at: datetime) -> list[aq.Condition]:
    """TimeEntries of the ticket by the resource starting within a minute of `started_at`."""
    return [aq.eq("ticketID", int(ticket_id)), aq.eq("resourceID", int(resource_id)),
            aq.gte("startDateTime", started_at - timedelta(minutes=1)),
            aq.cond("startDateTime", "lte", started_at + timedelta(minutes=1))]


def same_time_entry(item: J, sent: J) -> bool:
    """Whether a TimeEntries item is the body `sent` (start to the second, hours, billing, summary)."""
    a, b = parse_dt(item.get("startDateTime")), parse_dt(sent.get("startDateTime"))
    if a is None or b is None or abs((a - b).total_seconds()) >= 1:
        return False
    hours_a, hours_b = item.get("hoursWorked"), sent.get("hoursWorked")
    if not isinstance(hours_a, int | float) or not isinstance(hours_b, int | float) or abs(hours_a - hours_b) > 0.01:
        return False
    return (bool(item.get("isNonBillable")) == bool(sent.get("isNonBillable"))
            and _text(item.get("summaryNotes")) == _text(sent.get("summaryNotes")))


def attachment_filters(ticket_id: str, since: datetime) -> list[aq.Condition]:
    """TicketAttachments of the ticket attached since the first attempt (minus clock skew)."""
    return [aq.eq("parentID", int(ticket_id)), aq.gte("attachDate", since - SKEW)]


def same_attachment(item: J, sent: J, size: int, *, creator_resource_id: str | None = None) -> bool:
    """Whether a TicketAttachments item is the upload `sent` of `size` bytes."""
    if creator_resource_id is not None and str(item.get("attachedByResourceID")) != str(creator_resource_id):
        return False
    file_size = item.get("fileSize")
    return (_text(item.get("fullPath")) == _text(sent.get("fullPath"))
            and _text(item.get("title")) == _text(sent.get("title")) and item.get("publish") == sent.get("publish")
            and isinstance(file_size, int | float) and int(file_size) == size)


def first_unclaimed(items: Sequence[J], claimed: Collection[str] = ()) -> J | None:
    """The oldest candidate (lowest id) not yet matched to another outbox op."""
    free = [i for i in items if str(i.get("id")) not in claimed]
    return min(free, key=lambda i: int(i["id"])) if free else None
