"""Query parameters of `GET /tickets` -> a QueueFilter (the same filters as the chat grammar).

    stage=new,waiting | open | all     status=<PSA status name>       customer=<id | identifier | name>
    assignee=<member id> | unassigned | mine                           priority=critical,high | p1 | urgent
    age=>2d (older than) | age=<4h (newer than), units m h d w, e.g. 1w2d   q=<free text or #number>
    sort=oldest | newest | priority | updated

Stage and priority words and durations are core/vocabulary.py's, the ones chat accepts.
"""

from __future__ import annotations

import difflib
from datetime import timedelta

from core import vocabulary
from core.context import Actor
from core.errors import InvalidFilter, NotFound
from core.queue import UNASSIGNED, QueueFilter, QueueSort
from core.views import Priority, Stage
from core.workspaces import DirectoryService

MAX_VALUES = 20


def _split(values: list[str] | None) -> list[str]:
    out = [v.replace("\x00", "").strip() for raw in values or [] for v in raw.split(",")]
    out = [v for v in out if v]
    if len(out) > MAX_VALUES:
        raise InvalidFilter(f"Too many filter values ({len(out)}).", hint=f"Give at most {MAX_VALUES}.")
    return out


def _unknown(what: str, value: str, known: list[str]) -> InvalidFilter:
    close = difflib.get_close_matches(value.lower(), known, n=3, cutoff=0.5)
    article = "an" if what[:1] in "aeiou" else "a"
    return InvalidFilter(f"'{value}' is not {article} {what}.", hint="Use one of: " + ", ".join(known),
                         suggestions=close)


def stages(values: list[str] | None) -> tuple[tuple[Stage, ...], bool]:
    """The stages asked for, and whether closed tickets are included (`all`, or a closed stage named)."""
    out: list[Stage] = []
    for v in _split(values):
        out.extend(s for s in vocabulary.stages(v, prefix="stage=") if s not in out)
    include_closed = any(not s.is_open for s in out)
    if set(out) == set(Stage):
        return (), True  # every stage: no stage filter at all
    return tuple(out), include_closed


def priorities(values: list[str] | None) -> tuple[Priority, ...]:
    out: list[Priority] = []
    for v in _split(values):
        out.extend(p for p in vocabulary.priorities(v, prefix="priority=") if p not in out)
    return tuple(out)


def ages(values: list[str] | None) -> tuple[timedelta | None, timedelta | None]:
    """(older than, newer than) from `age=>2d` / `age=<4h` (a bare `2d` means older than)."""
    older = newer = None
    for v in _split(values):
        lo, hi = vocabulary.age(v)
        older = lo if lo is not None else older
        newer = hi if hi is not None else newer
    return older, newer


def sort(value: str | None) -> QueueSort:
    if not value:
        return QueueSort.OLDEST
    try:
        return QueueSort(value.strip().lower())
    except ValueError:
        raise _unknown("sort order", value, [s.value for s in QueueSort]) from None


def assignee(actor: Actor, value: str | None) -> int | str | None:
    v = (value or "").replace("\x00", "").strip().lower()
    if not v:
        return None
    if v == UNASSIGNED:
        return UNASSIGNED
    if v in ("mine", "me"):
        if actor.member_id is None:
            raise InvalidFilter("An API key is not a technician, so 'mine' has no meaning here.",
                                hint="Use assignee=<member id> (see GET /members) or assignee=unassigned.")
        return actor.member_id
    if v.isascii() and v.isdigit() and len(v) <= 9:
        return int(v)
    raise _unknown("assignee", v, ["unassigned", "mine", "<member id>"])


async def customer(directory: DirectoryService, actor: Actor, value: str | None) -> int | None:
    """A customer id from an id, identifier or name; an unknown one is a filter error, not a 404."""
    v = (value or "").replace("\x00", "").strip()
    if not v:
        return None
    if v.isascii() and v.isdigit() and len(v) <= 9:
        return int(v)  # another workspace's id simply matches nothing: the session is scoped
    try:
        found = await directory.find_customer(actor.workspace_id, v[:200])
    except NotFound as exc:
        raise InvalidFilter(exc.message, hint="List customers with GET /customers.") from None
    return found.id


async def build(directory: DirectoryService, actor: Actor, *, stage: list[str] | None, status: list[str] | None,
                customer_ref: str | None, assignee_ref: str | None, priority: list[str] | None,
                age: list[str] | None, q: str | None, sort_ref: str | None) -> QueueFilter:
    """The QueueFilter for these query parameters (InvalidFilter, with close matches, when one is wrong)."""
    st, include_closed = stages(stage)
    older, newer = ages(age)
    return QueueFilter(
        stages=st, statuses=tuple(_split(status)), customer_id=await customer(directory, actor, customer_ref),
        assignee=assignee(actor, assignee_ref), priorities=priorities(priority), min_age=older, max_age=newer,
        text=(q or "").replace("\x00", "").strip() or None, sort=sort(sort_ref), include_closed=include_closed,
    )
