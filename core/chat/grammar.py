"""One grammar for chat commands, shared by every surface (Slack, Teams, the console).

    /tickets [filters]      queue; filters are `key:value` words, bare keywords and free text:
                            stage:new|in_progress|waiting|resolved|closed|open|all   status:"Waiting Customer"
                            customer:ACME   assignee:mine|unassigned|<name>   priority:high,critical
                            age:>2d | age:<4h | older:2d | newer:1h   sort:oldest|newest|priority|updated
                            bare: mine, unassigned, breaching, open, closed, all, critical/high/medium/low
                            anything else is free text (subject or ticket number)
    /ticket N               one ticket
    /ticket new [subject]   new-ticket form
    /tickets at-risk        open tickets by escalation risk (also /deskbridge tickets at-risk)
    /deskbridge help|link|bind|unbind|bindings|outbox|settings|ai|m365 …

(Over 400 lines: every command's words live in this one module, so that every surface parses them alike.)

Parsing is pure: it turns text into a frozen command and never looks anything up. Names (customers,
technicians) are resolved later, inside the actor's scope (core/chat/runner.py).
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from datetime import timedelta

from core import vocabulary
from core.errors import InvalidFilter, InvalidInput
from core.numbers import whole
from core.queue import QueueSort
from store.enums import Priority, Stage

MAX_COMMAND_CHARS = 2000
AT_RISK_WORDS = ("at-risk", "at_risk", "atrisk", "risk")  # /tickets at-risk, /deskbridge tickets at-risk

FILTER_KEYS = ("stage", "status", "customer", "assignee", "priority", "age", "older", "newer", "sort", "text")
KEY_ALIASES = {
    "state": "stage", "cust": "customer", "company": "customer", "client": "customer", "assigned": "assignee",
    "owner": "assignee", "tech": "assignee", "prio": "priority", "p": "priority", "q": "text", "search": "text",
    "order": "sort",
}
# Words that filter without a key (any other word is free text): the stage and priority words come from
# core/vocabulary.py, like every `stage:` and `priority:` value.
BARE_STAGES = ("open", "closed", "all", "resolved", "waiting", "new")
BARE_PRIORITIES = ("critical", "high", "medium", "low", "p1", "p2", "p3", "p4")
BARE_WORDS = ("mine", "unassigned", "breaching", "open", "closed", "all", "critical", "high", "medium", "low")
_TIME = re.compile(r"^(?:(\d+)h)?\s*(?:(\d+)m(?:in)?)?$")

ADMIN_TOPICS = ("help", "home", "link", "bind", "unbind", "bindings", "outbox", "settings", "ai", "m365")
BIND_KINDS = ("customer", "dispatch", "sla")


# ---------------------------------------------------------------- commands


@dataclass(frozen=True, slots=True, kw_only=True)
class ListTickets:
    """`/tickets …`: a queue request, names not yet resolved."""

    stages: tuple[Stage, ...] = ()
    statuses: tuple[str, ...] = ()
    customer: str | None = None
    assignee: str | None = None  # "mine", "unassigned" or a technician's name
    priorities: tuple[Priority, ...] = ()
    min_age: timedelta | None = None
    max_age: timedelta | None = None
    breaching: bool = False
    text: str | None = None
    sort: QueueSort = QueueSort.OLDEST
    cursor: str | None = None

    @property
    def include_closed(self) -> bool:
        return any(not s.is_open for s in self.stages)


@dataclass(frozen=True, slots=True)
class ShowTicket:
    ref: str


@dataclass(frozen=True, slots=True)
class NewTicket:
    subject: str = ""


@dataclass(frozen=True, slots=True)
class Help:
    topic: str | None = None


@dataclass(frozen=True, slots=True)
class MyQueue:
    """`my queue` (or `home`): the technician's own open tickets, highest priority first (Slack's App Home)."""

    cursor: str | None = None


@dataclass(frozen=True, slots=True)
class Link:
    """Link my chat account to a technician (by my e-mail, or `link <email>` for admins linking others)."""

    email: str | None = None
    user: str | None = None  # a chat user id (admins linking someone else)


@dataclass(frozen=True, slots=True)
class Bind:
    kind: str  # customer | dispatch | sla
    customer: str | None = None
    shared: bool = False  # `… shared`: the customer's own people read this channel (e.g. as guests)


@dataclass(frozen=True, slots=True)
class Unbind:
    kind: str | None = None  # None: every binding of the channel


@dataclass(frozen=True, slots=True)
class Bindings:
    pass


@dataclass(frozen=True, slots=True)
class Outbox:
    action: str = "list"  # list | show | redrive | discard
    op_id: int | None = None


@dataclass(frozen=True, slots=True)
class SettingsCmd:
    key: str | None = None
    value: str | None = None


@dataclass(frozen=True, slots=True)
class AiCmd:
    action: str = "status"  # status | settings | set | train | similar | at_risk
    name: str | None = None
    value: str | None = None


@dataclass(frozen=True, slots=True)
class M365Cmd:
    """Who may run Microsoft 365 quick actions: list them, or (admins) grant / revoke one technician."""

    action: str = "grants"  # grants | grant | revoke
    who: str | None = None  # a chat mention (<@U123>) or an e-mail, as typed


Command = (ListTickets | ShowTicket | NewTicket | Help | MyQueue | Link | Bind | Unbind | Bindings | Outbox
           | SettingsCmd | AiCmd | M365Cmd)


# ---------------------------------------------------------------- helpers


def parse_minutes(text: str) -> int:
    """Time worked as people write it: '30', '30m', '1h', '1h30m', '1.5h', '90 min'."""
    raw = text.strip().lower().replace(" ", "")
    if re.fullmatch(r"\d+", raw):
        return int(raw)
    if re.fullmatch(r"\d+(\.\d+)?h", raw):
        return round(float(raw[:-1]) * 60)
    m = _TIME.match(raw)
    if raw and m and any(m.groups()):
        return int(m.group(1) or 0) * 60 + int(m.group(2) or 0)
    raise InvalidInput(f"'{text}' is not a duration.", hint="Write the time worked like 30m, 1h or 1h30m.",
                       field="minutes")


def _split(text: str) -> list[str]:
    text = text.replace("\u201c", '"').replace("\u201d", '"').replace("\u2018", "'").replace("\u2019", "'")
    try:
        return shlex.split(text)
    except ValueError as exc:
        raise InvalidFilter("A quote is not closed.", hint='Close the quote, e.g. status:"Waiting Customer".') \
            from exc


# ---------------------------------------------------------------- /tickets


def _once(f: dict[str, object], key: str, value: str) -> None:
    """A filter that takes one value: a second, different one is a mistake to point out, not to guess at."""
    old = f.get(key)
    if old is not None and str(old).lower() != value.lower():
        raise InvalidFilter(f"Two {key} filters: '{old}' and '{value}'.",
                            hint=f"Keep one of them, e.g. `{key}:{value}`.",
                            suggestions=[f"{key}:{old}", f"{key}:{value}"])
    f[key] = value


def parse_filters(text: str) -> ListTickets:
    """The filters of `/tickets`; unknown keys and values raise InvalidFilter with suggestions."""
    if len(text) > MAX_COMMAND_CHARS:
        raise InvalidFilter("That command is too long.", hint="Use fewer filters.")
    f: dict[str, object] = {}
    free: list[str] = []
    stages: list[Stage] = []
    prios: list[Priority] = []
    statuses: list[str] = []
    for word in _split(text):
        key, sep, value = word.partition(":")
        if sep and key and not key.isdigit():
            k = key.lower()
            k = KEY_ALIASES.get(k, k)
            if k not in FILTER_KEYS:
                sugg = vocabulary.suggest(k, list(FILTER_KEYS), cutoff=0.7)
                raise InvalidFilter(
                    f"'{key}' is not a filter.",
                    hint=vocabulary.did_you_mean([f"{s}:{value}" for s in sugg]) + "Filters: " +
                    ", ".join(f"{x}:" for x in FILTER_KEYS) + " and the words " + ", ".join(BARE_WORDS) + ".",
                    suggestions=[f"{s}:{value}" for s in sugg],
                )
            if not value.strip():
                raise InvalidFilter(f"The filter '{key}:' has no value.", hint=f"Write it as {k}:<value>.")
            if k == "stage":
                stages.extend(s for s in vocabulary.stages(value) if s not in stages)
            elif k == "status":
                statuses.append(value.strip())
            elif k == "customer":
                _once(f, "customer", value.strip())
            elif k == "assignee":
                _once(f, "assignee", value.strip().lstrip("@"))
            elif k == "priority":
                prios.extend(p for p in vocabulary.priorities(value) if p not in prios)
            elif k == "age":
                lo, hi = vocabulary.age(value)
                if lo is not None:
                    f["min_age"] = lo
                if hi is not None:
                    f["max_age"] = hi
            elif k == "older":
                f["min_age"] = vocabulary.duration(value)
            elif k == "newer":
                f["max_age"] = vocabulary.duration(value)
            elif k == "sort":
                try:
                    f["sort"] = QueueSort(value.strip().lower())
                except ValueError:
                    sugg = vocabulary.suggest(value, [s.value for s in QueueSort])
                    raise InvalidFilter(f"'{value}' is not a sort order.", hint=vocabulary.did_you_mean(sugg, "sort:") +
                                        "Sorts: " + ", ".join(s.value for s in QueueSort) + ".",
                                        suggestions=sugg) from None
            else:
                free.append(value)
            continue
        low = word.lower()
        if low in ("mine", "unassigned"):
            _once(f, "assignee", low)
        elif low == "breaching":
            f["breaching"] = True
        elif low in BARE_STAGES:
            stages.extend(s for s in vocabulary.STAGE_WORDS[low] if s not in stages)
        elif low in BARE_PRIORITIES:
            if vocabulary.PRIORITY_WORDS[low] not in prios:
                prios.append(vocabulary.PRIORITY_WORDS[low])
        else:
            free.append(word)
    if stages:
        f["stages"] = tuple(stages)
    if prios:
        f["priorities"] = tuple(prios)
    if statuses:
        f["statuses"] = tuple(statuses)
    if free:
        f["text"] = " ".join(free)[:200]
    return ListTickets(**f)  # type: ignore[arg-type]


# ---------------------------------------------------------------- entry point


def parse(command: str, text: str = "") -> Command:
    """Parse one command (`/tickets`, `/ticket`, `/deskbridge`, with or without the slash) and its text."""
    name = command.strip().lstrip("/").lower()
    text = (text or "").strip()
    if name in ("tickets", "queue", "q"):
        if text.lower() in AT_RISK_WORDS:
            return AiCmd("at_risk")
        return parse_filters(text)
    if name == "ticket":
        first, _, rest = text.partition(" ")
        if not first:
            raise InvalidInput("Which ticket?", hint="Use /ticket 1042 to open one, or /ticket new to create one.")
        if first.lower() in ("new", "create"):
            return NewTicket(subject=rest.strip()[:255])
        if re.fullmatch(r"[a-zA-Z][a-zA-Z0-9]{0,9}-[0-9a-zA-Z][0-9a-zA-Z_.]{0,63}", first) and \
                not first.lower().startswith("id-"):
            return ShowTicket(first.lower())  # a PSA name where a workspace has several PSAs: cw-1002
        if not re.fullmatch(r"#?\d{1,18}", first):
            raise InvalidInput(f"'{first}' is not a ticket number.",
                               hint="Use /ticket 1042 (or cw-1042 where you have several PSAs) to open one, or "
                                    "/ticket new to create one.")
        return ShowTicket(first.lstrip("#"))
    if name == "deskbridge":
        return _parse_admin(text)
    raise InvalidInput(f"Unknown command '/{name}'.", hint="Try /tickets, /ticket or /deskbridge help.")


def _parse_admin(text: str) -> Command:
    words = _split(text) if text else []
    if not words:
        return Help()
    sub, args = words[0].lower(), words[1:]
    if sub == "help":
        return Help(args[0].lower() if args else None)
    if sub in ("home", "myqueue") or (sub == "my" and [a.lower() for a in args] == ["queue"]):
        return MyQueue()
    if sub == "link":
        if not args:
            return Link()
        target = args[0]
        if "@" in target and not target.startswith("<@"):
            return Link(email=target.lower())
        user = target.strip("<>@").split("|")[0]
        email = args[1].lower() if len(args) > 1 else None
        return Link(email=email, user=user)
    if sub == "bind":
        if not args:
            raise InvalidInput("Bind this channel to what?", hint="Use /deskbridge bind customer ACME, "
                               "/deskbridge bind dispatch or /deskbridge bind sla.")
        kind = args[0].lower()
        if kind not in BIND_KINDS:
            sugg = vocabulary.suggest(kind, list(BIND_KINDS))
            raise InvalidFilter(f"'{args[0]}' is not a channel kind.",
                                hint=vocabulary.did_you_mean(sugg) + "Kinds: customer, dispatch, sla.", suggestions=sugg)
        rest = list(args[1:])
        shared = bool(rest) and rest[-1].lower() in ("shared", "--shared")
        if shared:
            rest.pop()
        if kind == "customer":
            if not rest:
                raise InvalidInput("Which customer?", hint="Use /deskbridge bind customer <identifier>, e.g. ACME "
                                   "(add `shared` if the customer's people are in the channel).")
            return Bind("customer", " ".join(rest), shared=shared)
        if shared:  # only a customer binding says who reads the channel (and scopes it to them)
            raise InvalidInput("`shared` goes with a customer binding.",
                               hint="Use /deskbridge bind customer <identifier> shared; dispatch and sla channels "
                                    "are for technicians.")
        return Bind(kind, " ".join(rest) or None)
    if sub == "unbind":
        return Unbind(args[0].lower() if args else None)
    if sub in ("bindings", "channel"):
        return Bindings()
    if sub == "outbox":
        action = args[0].lower() if args else "list"
        if action not in ("list", "show", "redrive", "discard", "dead"):
            raise InvalidInput(f"'{action}' is not an outbox action.", hint="Use list, show N, redrive N or discard N.")
        op_id = None
        if action in ("show", "redrive", "discard"):
            op_id = whole(args[1]) if len(args) > 1 else None
            if op_id is None:
                raise InvalidInput(f"Which op should I {action}?", hint=f"Use /deskbridge outbox {action} <op id>, "
                                   "e.g. /deskbridge outbox show 12 (the ids are in /deskbridge outbox).")
        return Outbox("list" if action == "dead" else action, op_id)
    if sub in ("settings", "setting", "set"):
        return SettingsCmd(args[0] if args else None, " ".join(args[1:]) or None)
    if sub == "tickets" and args and args[0].lower() in AT_RISK_WORDS:
        return AiCmd("at_risk")
    if sub == "ai":
        action = args[0].lower() if args else "status"
        if action in AT_RISK_WORDS:
            return AiCmd("at_risk")
        if action == "set":
            return AiCmd("set", args[1] if len(args) > 1 else None, " ".join(args[2:]) or None)
        if action == "similar":
            return AiCmd("similar", value=" ".join(args[1:]) or None)
        return AiCmd(action)
    if sub == "m365":
        return _parse_m365(args)
    sugg = vocabulary.suggest(sub, list(ADMIN_TOPICS), cutoff=0.7)
    raise InvalidFilter(f"'{sub}' is not a /deskbridge command.",
                        hint=vocabulary.did_you_mean(sugg, "/deskbridge ") + "Commands: " + ", ".join(ADMIN_TOPICS) + ".",
                        suggestions=sugg)


def _parse_m365(args: list[str]) -> M365Cmd:
    action = args[0].lower() if args else "grants"
    if action in ("grants", "list", "who"):
        return M365Cmd("grants")
    if action not in ("grant", "revoke"):
        raise InvalidInput(f"'{args[0]}' is not an m365 command.",
                           hint="Use /deskbridge m365 (who may run quick actions), m365 grant @someone or "
                                "m365 revoke @someone (admins; an e-mail works too).")
    if len(args) < 2:
        raise InvalidInput(f"Whom should I {action}?", hint=f"Use /deskbridge m365 {action} @someone or "
                                                            f"/deskbridge m365 {action} ana@msp.example.")
    return M365Cmd(action, args[1])


@dataclass(frozen=True, slots=True)
class ThreadReply:
    """A technician's message in a ticket's thread, as it goes to the PSA."""

    visibility: str  # internal | public
    text: str
    minutes: int | None = None  # "!time 30m …" logs time instead of a note


PUBLIC_MARKERS = ("!public", "/reply", "!reply")
INTERNAL_MARKERS = ("!internal", "!note")


def parse_thread_message(text: str, *, default: str = "internal") -> ThreadReply | None:
    """Internal note by default; public with a leading `!public` (or `/reply`); `!time 30m notes` logs time.

    `default` is "public" in a thread the customer reads: they have seen the words already, so the ticket
    records them as what they are, a reply (`!internal` still makes it a note).

    Returns None for messages that must not be written back (empty, or `!skip`/`!ignore` chatter).
    """
    body = (text or "").strip()
    if not body:
        return None
    head, _, rest = body.partition(" ")
    low = head.lower()
    if low in ("!skip", "!ignore", "!chat"):
        return None
    if low in PUBLIC_MARKERS:
        return ThreadReply("public", rest.strip()) if rest.strip() else None
    if low in INTERNAL_MARKERS:
        return ThreadReply("internal", rest.strip()) if rest.strip() else None
    if low == "!time":
        amount, _, notes = rest.strip().partition(" ")
        return ThreadReply("internal", notes.strip(), minutes=parse_minutes(amount))
    return ThreadReply(default, body)
