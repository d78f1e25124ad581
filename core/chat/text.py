"""User-facing wording shared by every chat surface: help, confirmations, filters as typed, errors as shown."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from core.chat import grammar as c
from core.errors import DeskbridgeError
from core.views import MessageView


@dataclass(frozen=True, slots=True)
class CommandStyle:
    """How a surface's users type commands: Slack's slash commands, or a mention of the bot (Teams).

    Help and the hints under errors are written once in the slash form (core's wording); a surface whose users
    type `@Deskbridge tickets mine` passes MENTION and gets them in its own form (`restyle`).
    """

    queue: str  # the queue command: `/tickets`, `@Deskbridge tickets`
    ticket: str  # one ticket: `/ticket`, `@Deskbridge ticket`
    admin: str  # everything else: `/deskbridge link`, `@Deskbridge link`

    def restyle(self, text: str) -> str:
        """Core's slash forms in `text` (a hint, a help line) as this surface's users type them."""
        if self == SLASH or not text:
            return text
        words = {"/tickets": self.queue, "/ticket": self.ticket, "/deskbridge": self.admin}
        return _SLASH_FORM.sub(lambda m: m.group(1) + words[m.group(2).lower()], text)


SLASH = CommandStyle(queue="/tickets", ticket="/ticket", admin="/deskbridge")
MENTION = CommandStyle(queue="@Deskbridge tickets", ticket="@Deskbridge ticket", admin="@Deskbridge")
# A slash command at the start, after a space, a backtick or an opening bracket/quote; never inside a URL or path.
_SLASH_FORM = re.compile(r"(^|[\s`(\"'])(/tickets|/ticket|/deskbridge)\b", re.IGNORECASE)


def help_lines(style: CommandStyle = SLASH) -> tuple[str, ...]:
    """The command list in the form the surface's users type."""
    q, t, a = style.queue, style.ticket, style.admin
    return (
        f"`{q}` open tickets · `{q} mine` · `{q} unassigned high` · `{q} breaching`",
        f"`{q} customer:ACME stage:waiting age:>2d sort:priority` · free text searches subjects",
        f"`{t} 1042` open a ticket · `{t} new Printer on fire` create one",
        f"`{a} my queue` your own open tickets, most urgent first",
        "In a ticket's thread: your message becomes an internal note; start with `!public` to reply to the "
        "customer, `!time 30m what you did` to log time",
        f"`{a} link` link your chat account to your technician account (by e-mail)",
        f"`{a} bind customer ACME` (add `shared` if the customer's people are in it) · `bind sla` · "
        "`bind dispatch` · `unbind` · `bindings` (admins)",
        f"`{a} outbox` writes waiting or dead · `outbox redrive 12` · `outbox discard 12` (admins)",
        f"`{a} settings` · `{a} settings first_reply_moves_to_in_progress on` (admins)",
        f"`{a} ai` model status · `ai settings` · `ai set fill_threshold 0.8` · `ai train` (admins) · "
        "`ai similar vpn drops`",
        f"`{a} m365` who may run Microsoft 365 quick actions · `m365 grant @ana` · `m365 revoke @ana` (admins)",
    )


HELP_LINES = help_lines(SLASH)


def error_view(exc: DeskbridgeError) -> MessageView:
    """The one translation of a service error into something a surface shows."""
    return MessageView(text=exc.message, kind="error", hint=exc.hint,
                       suggestions=tuple(getattr(exc, "suggestions", ()) or ()))


def filters_text(cmd: c.ListTickets) -> str:
    """The filters as a person could type them again."""
    parts: list[str] = []
    if cmd.stages:
        parts.append("stage:" + ",".join(s.value for s in cmd.stages))
    parts += [f'status:"{s}"' for s in cmd.statuses]
    if cmd.customer:
        parts.append(f"customer:{cmd.customer}")
    if cmd.assignee in ("mine", "unassigned"):
        parts.append(cmd.assignee)
    elif cmd.assignee:
        parts.append(f'assignee:"{cmd.assignee}"')
    if cmd.priorities:
        parts.append("priority:" + ",".join(p.value for p in cmd.priorities))
    if cmd.min_age:
        parts.append(f"older:{duration_word(cmd.min_age.total_seconds())}")
    if cmd.max_age:
        parts.append(f"newer:{duration_word(cmd.max_age.total_seconds())}")
    if cmd.breaching:
        parts.append("breaching")
    if cmd.sort.value != "oldest":
        parts.append(f"sort:{cmd.sort.value}")
    if cmd.text:
        parts.append(cmd.text)
    return " ".join(parts)


def duration_word(seconds: float) -> str:
    m = int(seconds // 60)
    if m % (24 * 60) == 0:
        return f"{m // (24 * 60)}d"
    if m % 60 == 0:
        return f"{m // 60}h"
    return f"{m}m"


def queued(what: str, connection_id: int | None) -> str:
    if connection_id is None:
        return f"{what}: saved."
    return f"{what}: queued for the PSA. This card updates when it is delivered."


def shown(value: Any) -> str:
    if value is None:
        return "(not set)"
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value)


def thread_what(what: str | None, files: int) -> str:
    """What was written, for the confirmation: e.g. `Internal note and 2 files`, `1 file`."""
    attached = f"{files} file{'s' if files != 1 else ''}" if files else ""
    if what and attached:
        return f"{what} and {attached}"
    return what or attached


def over_limit_text(outcome: str, number: int | None, limit: int) -> str:
    """Past an end user's hourly limit (or a ticket that cannot be opened for them: `kept`): where their words
    went instead, and what to do next (the same on every surface)."""
    if outcome == "kept":
        return ("Your message was kept for a technician, who will open the ticket and get back to you. "
                "Something urgent? Call your MSP's support line.")
    head = f"You have opened {limit} tickets in the last hour, so no new one was opened."
    if outcome == "added":
        ref = f"#{number}" if number else "your open ticket"
        return (f"{head} Your message was added to {ref} as your reply; a technician will see it there. "
                "Something new and urgent? Call your MSP's support line.")
    return (f"{head} Your message was kept for a technician, who will get back to you. "
            "Something urgent? Call your MSP's support line.")
