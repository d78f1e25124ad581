"""Workspaces (one MSP each), their settings, customers and members."""

from __future__ import annotations

import re
import string
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlalchemy as sa
from sqlmodel import col, select

from core.alert_webhooks import is_local_host, public_settings
from core.errors import Conflict, InvalidInput, NotFound
from core.hints import WORKSPACE_HINT
from store.db import Database, Scope
from store.tables import Customer, Member, MemberChatIdentity, Workspace

_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")

# Workspace options an admin can set, with their types and defaults.
WORKSPACE_OPTIONS: dict[str, tuple[type, Any]] = {
    "first_reply_moves_to_in_progress": (bool, False),
    "rmm_device_url": (str, None),
    "rmm_alert_url": (str, None),
    "runbook_url": (str, None),
    # An end user's message in a customer channel: offer a ticket, create one at once, or off (core/intake/requests)
    "end_user_requests": (str, "offer"),
    # Tickets one end user may open from chat per hour; past it their words join their open ticket (0: no limit)
    "end_user_requests_per_hour": (int, 5),
    # New tickets one e-mail sender may open per hour; past it their mail waits in triage (0: no limit)
    "mail_tickets_per_sender_per_hour": (int, 50),
}
CHOICES: dict[str, tuple[str, ...]] = {"end_user_requests": ("offer", "create", "off")}

# URL templates shown as links on ticket cards: (placeholders allowed, at least one of these required).
# Values are URL-encoded when filled in (core/chat/cards.py `_template`).
URL_TEMPLATES: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "rmm_device_url": (frozenset({"ref"}), frozenset({"ref"})),  # ref: the ticket's device reference
    "rmm_alert_url": (frozenset({"ref"}), frozenset({"ref"})),  # ref: the ticket's alert reference
    "runbook_url": (frozenset({"ref", "customer"}), frozenset({"ref", "customer"})),  # ref: ticket type
}
TEMPLATE_EXAMPLES = {
    "rmm_device_url": "https://rmm.example.com/devices/{ref}",
    "rmm_alert_url": "https://rmm.example.com/alerts/{ref}",
    "runbook_url": "https://wiki.example.com/runbooks/{customer}/{ref}",
}
CLEAR_WORDS = ("", "off", "none", "clear", "-")
_NOT_IN_URLS = set('<>"\\^`|')


def check_url_template(key: str, value: str) -> str:
    """A card link template if it is usable: https (http only for localhost), only known placeholders, the
    placeholder it needs, placeholders only after the host, and a valid URL once filled in."""
    allowed, needed = URL_TEMPLATES[key]
    example = TEMPLATE_EXAMPLES[key]
    names = " and ".join("{" + n + "}" for n in sorted(allowed))
    value = value.strip()
    if len(value) > 500 or any(ch.isspace() or ch in _NOT_IN_URLS or not ch.isprintable() for ch in value):
        raise InvalidInput(f"{key} must be one URL of at most 500 characters, without spaces or <>\"\\^`|.",
                           hint=f"e.g. {example}")
    try:
        fields = [(name, spec, conv) for _, name, spec, conv in string.Formatter().parse(value) if name is not None]
    except ValueError:
        raise InvalidInput(f"{key} has an unmatched {{ or }}.",
                           hint=f"Placeholders are written {names}, e.g. {example}") from None
    for name, spec, conv in fields:
        if name not in allowed:
            shown = "{" + name + "}" if name else "{}"
            raise InvalidInput(f"{key} has an unknown placeholder {shown}.",
                               hint=f"Use {names} only, e.g. {example}")
        if spec or conv:
            raise InvalidInput(f"{key}: write placeholders plainly, as {{{name}}}.", hint=f"e.g. {example}")
    if not needed & {name for name, _, _ in fields}:
        need = " or ".join("{" + n + "}" for n in sorted(needed))
        raise InvalidInput(f"{key} must contain {need}, where each ticket's value goes.", hint=f"e.g. {example}")
    filled = value.format(**{n: "x1" for n in allowed})
    try:
        parts = urlsplit(filled)
        host = parts.hostname or ""
        _ = parts.port
    except ValueError:
        raise InvalidInput(f"{key} is not a valid URL once filled in.", hint=f"e.g. {example}") from None
    if parts.scheme not in ("https", "http") or not host:
        raise InvalidInput(f"{key} must be a full https:// URL.", hint=f"e.g. {example}")
    if parts.scheme == "http" and not is_local_host(host):
        raise InvalidInput(f"{key} must use https:// (http:// is allowed only for localhost).",
                           hint=f"e.g. {example}")
    if "{" in urlsplit(value).netloc:
        raise InvalidInput(f"{key}: placeholders can only go after the host name.", hint=f"e.g. {example}")
    if parts.username or parts.password:
        raise InvalidInput(f"{key} must not contain a user name or password.",
                           hint=f"Links are shown to every technician; sign in to the RMM in the browser. e.g. {example}")
    return value


class WorkspaceService:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(self, *, slug: str, name: str, timezone: str = "UTC") -> Workspace:
        if not _SLUG.match(slug):
            raise InvalidInput(f"'{slug}' is not a valid workspace slug.",
                               hint="Use 2-63 lowercase letters, digits and dashes, e.g. 'acme-it'.")
        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise InvalidInput(f"'{timezone}' is not a time zone.", hint="Use an IANA name, e.g. Europe/Berlin.") from exc
        async with self.db.write(Scope.system_wide()) as session:
            if (await session.exec(select(Workspace).where(Workspace.slug == slug))).first():
                raise Conflict(f"Workspace '{slug}' already exists.",
                               hint="Pick another slug, or use that one (`deskbridge workspace list`).")
            ws = Workspace(slug=slug, name=name.strip()[:200] or slug, timezone=timezone)
            session.add(ws)
        return ws

    async def timezone_of(self, workspace_id: int) -> str:
        """The workspace's time zone (IANA name)."""
        async with self.db.read(Scope.workspace(workspace_id)) as session:
            ws = await session.get(Workspace, workspace_id)
        if ws is None:
            raise NotFound(f"Workspace {workspace_id} was not found.", hint=WORKSPACE_HINT)
        return ws.timezone

    async def set_timezone(self, workspace_id: int, timezone: str) -> str:
        """Change the workspace's time zone: the day technicians and admins mean (time entries' dates, the audit
        page's dates and times, AI's "opened at", "closed on"). SLA calendars keep their own zones."""
        name = timezone.strip()
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise InvalidInput(f"'{timezone}' is not a time zone.", hint="Use an IANA name, e.g. Europe/Berlin.",
                               field="timezone") from exc
        async with self.db.write(Scope.workspace(workspace_id)) as session:
            ws = await session.get(Workspace, workspace_id)
            if ws is None:
                raise NotFound(f"Workspace {workspace_id} was not found.", hint=WORKSPACE_HINT)
            ws.timezone = name
        return name

    async def list(self) -> list[Workspace]:
        async with self.db.read(Scope.system_wide()) as session:
            return list((await session.exec(select(Workspace).order_by(col(Workspace.id)))).all())

    async def by_slug(self, slug: str) -> Workspace:
        async with self.db.read(Scope.system_wide()) as session:
            ws = (await session.exec(select(Workspace).where(Workspace.slug == slug))).first()
        if ws is None:
            raise NotFound(f"Workspace '{slug}' was not found.", hint="List them with `deskbridge workspace list`.")
        return ws

    async def set_option(self, workspace_id: int, key: str, value: str | bool | int) -> dict[str, Any]:
        if key not in WORKSPACE_OPTIONS:
            raise InvalidInput(f"Unknown setting '{key}'.", hint="Known settings: " + ", ".join(WORKSPACE_OPTIONS))
        typ, _ = WORKSPACE_OPTIONS[key]
        new: str | bool | int | None = value
        if typ is int:
            text = str(value).strip()
            if not (text.isascii() and text.isdigit() and int(text) <= 10_000):
                raise InvalidInput(f"'{value}' is not a whole number for {key}.", hint="Use a number from 0 to 10000.")
            new = int(text)
        elif typ is bool and isinstance(value, str):
            low = value.strip().lower()
            if low not in ("true", "false", "on", "off", "yes", "no", "1", "0"):
                raise InvalidInput(f"'{value}' is not on/off.", hint="Use on or off.")
            new = low in ("true", "on", "yes", "1")
        elif key in CHOICES:
            new = str(value).strip().lower()
            if new not in CHOICES[key]:
                raise InvalidInput(f"'{value}' is not a choice for {key}.", hint="Use " + ", ".join(CHOICES[key]) + ".")
        elif typ is str:
            text = str(value).strip()
            if text.lower() in CLEAR_WORDS:
                new = None
            else:
                new = check_url_template(key, text) if key in URL_TEMPLATES else text
        async with self.db.write(Scope.workspace(workspace_id)) as session:
            ws = await session.get(Workspace, workspace_id)
            if ws is None:
                raise NotFound(f"Workspace {workspace_id} was not found.", hint=WORKSPACE_HINT)
            if new is None:  # cleared: the card shows the reference without a link
                ws.settings = {k: v for k, v in ws.settings.items() if k != key}
            else:
                ws.settings = {**ws.settings, key: new}
            return public_settings(ws.settings)

    async def settings(self, workspace_id: int) -> dict[str, Any]:
        """Every option with its current value (default when unset)."""
        async with self.db.read(Scope.workspace(workspace_id)) as session:
            ws = await session.get(Workspace, workspace_id)
        if ws is None:
            raise NotFound(f"Workspace {workspace_id} was not found.", hint=WORKSPACE_HINT)
        return {k: ws.settings.get(k, default) for k, (_, default) in WORKSPACE_OPTIONS.items()}


class DirectoryService:
    """Customers and members of one workspace, and chat identity lookup."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def add_customer(self, workspace_id: int, *, identifier: str, name: str) -> Customer:
        ident = identifier.strip()
        if not ident or len(ident) > 100:
            raise InvalidInput("A customer needs a short identifier (1-100 characters).",
                               hint="Use the PSA's short name for the customer, e.g. ACME.", field="identifier")
        async with self.db.write(Scope.workspace(workspace_id)) as session:
            c = Customer(workspace_id=workspace_id, identifier=ident, name=name.strip()[:200] or ident)
            session.add(c)
        return c

    async def find_customer(self, workspace_id: int, text: str) -> Customer:
        """A customer by identifier or name (case-insensitive, exact first, then unique prefix)."""
        q = text.strip().lower()
        async with self.db.read(Scope.workspace(workspace_id)) as session:
            rows = list((await session.exec(select(Customer).where(Customer.active == sa.true()))).all())
        exact = [c for c in rows if c.identifier.lower() == q or c.name.lower() == q]
        if len(exact) == 1:
            return exact[0]
        prefix = [c for c in rows if c.identifier.lower().startswith(q) or c.name.lower().startswith(q)]
        if len(prefix) == 1:
            return prefix[0]
        if not prefix:
            raise NotFound(f"No customer matches '{text}'.", hint="Check the spelling or use the PSA identifier.")
        names = ", ".join(sorted(c.identifier for c in prefix)[:5])
        raise InvalidInput(f"'{text}' matches several customers: {names}.", hint="Be more specific.")

    async def add_member(self, workspace_id: int, *, name: str, email: str | None = None,
                         is_admin: bool = False) -> Member:
        async with self.db.write(Scope.workspace(workspace_id)) as session:
            m = Member(workspace_id=workspace_id, name=name.strip()[:200], email=(email or "").strip().lower() or None,
                       is_admin=is_admin)
            session.add(m)
        return m

    async def set_admin(self, workspace_id: int, email: str, is_admin: bool = True) -> Member:
        """Make a technician a Deskbridge admin (or not). Once a workspace has one, chat platform admins
        no longer count as Deskbridge admins (core/chat/identity.py)."""
        member = await self.member_by_email(workspace_id, email)
        if member is None:
            raise NotFound(f"No technician has the e-mail {email}.",
                           hint="Run a PSA sync first, or check the address.")
        async with self.db.write(Scope.workspace(workspace_id)) as session:
            row = await session.get(Member, member.id)
            assert row is not None
            row.is_admin = is_admin
            return row

    async def link_chat_user(self, workspace_id: int, member_id: int, *, platform: str, team_id: str,
                             user_id: str) -> None:
        async with self.db.write(Scope.workspace(workspace_id)) as session:
            if await session.get(Member, member_id) is None:
                raise NotFound(f"Member {member_id} was not found.",
                               hint="Run a PSA sync (`deskbridge sync run`) to refresh the technicians, then try again.")
            existing = (await session.exec(select(MemberChatIdentity).where(
                MemberChatIdentity.platform == platform, MemberChatIdentity.team_id == team_id,
                MemberChatIdentity.user_id == user_id))).first()
            if existing:
                existing.member_id = member_id
            else:
                session.add(MemberChatIdentity(workspace_id=workspace_id, member_id=member_id, platform=platform,
                                               team_id=team_id, user_id=user_id))

    async def member_for_chat_user(self, workspace_id: int, *, platform: str, team_id: str,
                                   user_id: str) -> Member | None:
        async with self.db.read(Scope.workspace(workspace_id)) as session:
            row = (await session.exec(select(Member).join(
                MemberChatIdentity, MemberChatIdentity.member_id == Member.id).where(  # type: ignore[arg-type]
                MemberChatIdentity.platform == platform, MemberChatIdentity.team_id == team_id,
                MemberChatIdentity.user_id == user_id, Member.active == sa.true()))).first()
        return row

    async def member_by_email(self, workspace_id: int, email: str) -> Member | None:
        async with self.db.read(Scope.workspace(workspace_id)) as session:
            return (await session.exec(select(Member).where(
                sa.func.lower(Member.email) == email.strip().lower(), Member.active == sa.true()))).first()

    async def customers(self, workspace_id: int) -> list[Customer]:
        async with self.db.read(Scope.workspace(workspace_id)) as session:
            return list((await session.exec(select(Customer).order_by(Customer.identifier))).all())

    async def members(self, workspace_id: int) -> list[Member]:
        async with self.db.read(Scope.workspace(workspace_id)) as session:
            return list((await session.exec(select(Member).order_by(Member.name))).all())
