"""Query parameters of `GET /tickets` -> a QueueFilter (the same filters as the chat grammar).

    stage=new,waiting | open | all     status=<PSA status name>       customer=<id | identifier | name>
    assignee=<member id> | unassigned | mine                           priority=critical,high
    age=>2d (older than) | age=<4h (newer than), units m h d w         q=<free text or #number>
    sort=oldest | newest | priority | updated
"""

from __future__ import annotations

import difflib
import re
from datetime import timedelta

from core.context import Actor
from core.errors import InvalidFilter, NotFound
from core.queue import UNASSIGNED, QueueFilter, QueueSort
from core.views import Priority, Stage
from core.workspaces import DirectoryService

_STAGE_ALIASES = {
    "new": Stage.NEW, "in_progress": Stage.IN_PROGRESS, "inprogress": Stage.IN_PROGRESS, "progress": Stage.IN_PROGRESS,
    "waiting": Stage.WAITING, "waiting_on_customer": Stage.WAITING, "resolved": Stage.RESOLVED,
    "closed": Stage.CLOSED,
}
_AGE = re.compile(r"^\s*([<>])?\s*(\d{1,6})\s*([mhdw])\s*$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
MAX_VALUES = 20


def _split(values: list[str] | None) -> list[str]:
    out = [v.replace("\x00", "").strip() for raw in values or [] for v in raw.split(",")]
    out = [v for v in out if v]
    if len(out) > MAX_VALUES:
        raise InvalidFilter(f"Too many filter values ({len(out)}).", hint=f"Give at most {MAX_VALUES}.")
    return out


def _unknown(what: str, value: str, known: list[str]) -> InvalidFilter:
    close = difflib.get_close_matches(value.lower(), known, n=3, cutoff=0.5)
    return InvalidFilter(f"'{value}' is not a {what}.", hint="Use one of: " + ", ".join(known),
                         suggestions=close)


def stages(values: list[str] | None) -> tuple[tuple[Stage, ...], bool]:
    """The stages asked for, and whether closed tickets are included ('all')."""
    out: list[Stage] = []
    include_closed = False
    for v in _split(values):
        key = re.sub(r"[\s-]+", "_", v.lower())
        if key == "open":
            out.extend(s for s in Stage if s.is_open)
        elif key == "all":
            include_closed = True
        elif key in _STAGE_ALIASES:
            out.append(_STAGE_ALIASES[key])
        else:
            raise _unknown("stage", v, ["open", "all", *[s.value for s in Stage]])
    return tuple(dict.fromkeys(out)), include_closed


def priorities(values: list[str] | None) -> tuple[Priority, ...]:
    out = []
    for v in _split(values):
        try:
            out.append(Priority(v.lower()))
        except ValueError:
            raise _unknown("priority", v, [p.value for p in Priority]) from None
    return tuple(dict.fromkeys(out))


def ages(values: list[str] | None) -> tuple[timedelta | None, timedelta | None]:
    """(older than, newer than) from `age=>2d` / `age=<4h` (a bare `2d` means older than)."""
    older = newer = None
    for v in _split(values):
        m = _AGE.match(v)
        if not m:
            raise InvalidFilter(f"'{v}' is not an age.", hint="Write e.g. age=>2d (older than 2 days) or age=<4h.")
        delta = timedelta(**{_UNITS[m.group(3)]: int(m.group(2))})
        if m.group(1) == "<":
            newer = delta
        else:
            older = delta
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
