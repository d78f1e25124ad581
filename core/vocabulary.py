"""The words people use for stages, priorities and ages: one table for every place that reads them.

The chat grammar (`/tickets stage:pending priority:p1 age:>1w2d`), the REST filters (`GET /tickets?stage=
waiting_on_customer&priority=urgent`), status changes and mappings (core/status.py) all read these tables,
so a word means the same everywhere and is refused with the same "did you mean" help everywhere.

- Stage words name one stage or a group: `open` is every open stage as a filter, and `in_progress` as the
  stage a ticket is set to (`STAGE_TARGETS`); `all` is a filter only.
- Durations are `30m`, `4h`, `2d`, `1w` or combinations (`1w2d`, `1d12h`); an age is a duration with `>`
  (older than, also the bare form) or `<` (newer than).
- `PSA_STAGE_HINTS` / `PSA_PRIORITY_HINTS` guess a stage or priority from a PSA's own status or priority
  name (core/status.py `default_stage`, `default_priority`); admins override those per connection.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from datetime import timedelta

from core.errors import InvalidFilter
from store.enums import OPEN_STAGES, Priority, Stage

# ---------------------------------------------------------------- stages

STAGE_WORDS: dict[str, tuple[Stage, ...]] = {
    "new": (Stage.NEW,),
    "in_progress": (Stage.IN_PROGRESS,), "inprogress": (Stage.IN_PROGRESS,), "progress": (Stage.IN_PROGRESS,),
    "waiting": (Stage.WAITING,), "pending": (Stage.WAITING,), "waiting_on_customer": (Stage.WAITING,),
    "on_hold": (Stage.WAITING,),
    "resolved": (Stage.RESOLVED,), "resolve": (Stage.RESOLVED,),
    "closed": (Stage.CLOSED,), "close": (Stage.CLOSED,),
    "open": OPEN_STAGES,
    "all": tuple(Stage),
}
# The one stage a group word sets a ticket to (a status change to "open" reopens it: in progress).
STAGE_TARGETS: dict[str, Stage] = {"open": Stage.IN_PROGRESS}
STAGE_HELP = "new, in_progress, waiting, resolved, closed, open, all"

# ---------------------------------------------------------------- priorities

PRIORITY_WORDS: dict[str, Priority] = {
    "critical": Priority.CRITICAL, "crit": Priority.CRITICAL, "p1": Priority.CRITICAL, "urgent": Priority.CRITICAL,
    "high": Priority.HIGH, "p2": Priority.HIGH,
    "medium": Priority.MEDIUM, "med": Priority.MEDIUM, "normal": Priority.MEDIUM, "p3": Priority.MEDIUM,
    "low": Priority.LOW, "p4": Priority.LOW,
}
PRIORITY_HELP = "critical, high, medium, low"

# ---------------------------------------------------------------- PSA names (substring hints, first match wins)

PSA_STAGE_HINTS: tuple[tuple[Stage, tuple[str, ...]], ...] = (
    (Stage.CLOSED, ("closed", "cancel", "complete", "completed", "done", "merged")),
    (Stage.RESOLVED, ("resolved", "fixed", "solved")),
    (Stage.WAITING, ("waiting", "wait", "pending", "on hold", "hold", "customer", "scheduled", "awaiting")),
    (Stage.NEW, ("new", "open", "unassigned", "received", "triage")),
    (Stage.IN_PROGRESS, ("progress", "assigned", "working", "in work", "escalated", "re-opened", "reopened")),
)
PSA_PRIORITY_HINTS: tuple[tuple[Priority, tuple[str, ...]], ...] = (
    (Priority.CRITICAL, ("critical", "emergency", "urgent", "p1", "priority 1", "sev 1", "severity 1")),
    (Priority.HIGH, ("high", "p2", "priority 2", "sev 2", "important")),
    (Priority.LOW, ("low", "p4", "priority 4", "p5", "priority 5", "minor", "planned", "scheduled")),
    (Priority.MEDIUM, ("medium", "normal", "moderate", "p3", "priority 3", "standard")),
)

# ---------------------------------------------------------------- durations

_DURATION = re.compile(r"^(?:(\d{1,6})w)?(?:(\d{1,6})d)?(?:(\d{1,6})h)?(?:(\d{1,6})m)?$")
MAX_DURATION = timedelta(days=36500)  # a hundred years: anything longer is a typo (and would overflow a date)
DURATION_HELP = "Use e.g. 30m, 4h, 2d, 1w or 1w2d."


def key(text: str) -> str:
    """A word as the tables spell it: lower case, spaces and hyphens as underscores."""
    return re.sub(r"[\s\-_]+", "_", text.strip().lower())


def suggest(word: str, options: Iterable[str], n: int = 3, cutoff: float = 0.6) -> list[str]:
    """Up to `n` known words close to `word`, best first."""
    return difflib.get_close_matches(word.lower(), list(options), n=n, cutoff=cutoff)


def did_you_mean(suggestions: list[str], prefix: str = "") -> str:
    """'Did you mean `stage:new` or `stage:waiting`? ' (empty without suggestions)."""
    if not suggestions:
        return ""
    return "Did you mean " + " or ".join(f"`{prefix}{s}`" for s in suggestions) + "? "


def stages(value: str, *, prefix: str = "stage:") -> tuple[Stage, ...]:
    """The stages a comma-separated list of stage words names, in order; an unknown word is InvalidFilter
    with suggestions (`prefix` is how the caller's syntax writes the key: `stage:` in chat, `stage=` in REST)."""
    out: list[Stage] = []
    for part in value.split(","):
        word = key(part)
        if word not in STAGE_WORDS:
            sugg = suggest(word, STAGE_WORDS)
            raise InvalidFilter(f"'{part.strip()}' is not a stage.",
                                hint=did_you_mean(sugg, prefix) + f"Stages: {STAGE_HELP}.", suggestions=sugg)
        out.extend(s for s in STAGE_WORDS[word] if s not in out)
    return tuple(out)


def stage(text: str) -> Stage | None:
    """The one stage a word sets a ticket to (None when no word matches, or it names no single stage)."""
    word = key(text)
    if word in STAGE_TARGETS:
        return STAGE_TARGETS[word]
    found = STAGE_WORDS.get(word, ())
    return found[0] if len(found) == 1 else None


def priorities(value: str, *, prefix: str = "priority:") -> tuple[Priority, ...]:
    """The priorities a comma-separated list of priority words names; an unknown word is InvalidFilter."""
    out: list[Priority] = []
    for part in value.split(","):
        found = priority(part)
        if found is None:
            sugg = suggest(key(part), [p.value for p in Priority])
            raise InvalidFilter(f"'{part.strip()}' is not a priority.",
                                hint=did_you_mean(sugg, prefix) + f"Priorities: {PRIORITY_HELP}.", suggestions=sugg)
        if found not in out:
            out.append(found)
    return tuple(out)


def priority(text: str) -> Priority | None:
    """The priority a word names, or None."""
    return PRIORITY_WORDS.get(key(text))


def duration(text: str) -> timedelta:
    """'30m', '4h', '2d', '1w', '1w2d', '1d12h' -> timedelta (spaces ignored); InvalidFilter otherwise."""
    raw = re.sub(r"\s+", "", text.lower())
    m = _DURATION.match(raw)
    if not raw or not m or not any(m.groups()):
        raise InvalidFilter(f"'{text.strip()}' is not a duration.", hint=DURATION_HELP)
    w, d, h, mins = (int(g) if g else 0 for g in m.groups())
    out = timedelta(weeks=w, days=d, hours=h, minutes=mins)
    if out > MAX_DURATION:
        raise InvalidFilter(f"'{text.strip()}' is longer than any ticket's age.", hint=DURATION_HELP)
    return out


def age(text: str) -> tuple[timedelta | None, timedelta | None]:
    """(older than, newer than) from '>2d' / '<4h'; a bare duration means older than."""
    v = text.strip()
    if v.startswith("<"):
        return None, duration(v[1:])
    return duration(v.removeprefix(">")), None
