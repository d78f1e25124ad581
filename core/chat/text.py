"""User-facing wording shared by every chat surface: help, confirmations, filters as typed, errors as shown."""

from __future__ import annotations

from typing import Any

from core.chat import grammar as c
from core.errors import DeskbridgeError
from core.views import MessageView

HELP_LINES = (
    "`/tickets` open tickets · `/tickets mine` · `/tickets unassigned high` · `/tickets breaching`",
    "`/tickets customer:ACME stage:waiting age:>2d sort:priority` · free text searches subjects",
    "`/ticket 1042` open a ticket · `/ticket new Printer on fire` create one",
    "In a ticket's thread: your message becomes an internal note; start with `!public` to reply to the "
    "customer, `!time 30m what you did` to log time",
    "`/deskbridge link` link your chat account to your technician account (by e-mail)",
    "`/deskbridge bind customer ACME` (add `shared` if the customer's people are in it) · `bind sla` · "
    "`bind dispatch` · `unbind` · `bindings` (admins)",
    "`/deskbridge outbox` writes waiting or dead · `outbox redrive 12` · `outbox discard 12` (admins)",
    "`/deskbridge settings` · `/deskbridge settings first_reply_moves_to_in_progress on` (admins)",
    "`/deskbridge ai` model status · `ai settings` · `ai set fill_threshold 0.8` · `ai train` (admins) · "
    "`ai similar vpn drops`",
)


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
