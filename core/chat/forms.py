"""The forms chat surfaces open: new ticket, reply or note, status change, time; and the customer picker.

Dropdowns come from the connection's cached picklists (PicklistItem) and required fields follow the
PSA's rules (`Capabilities.create_requires`). Submitted forms are applied by core/chat/writes.py.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlmodel import col, select

from connectors.base import Capabilities, Feature
from core import create_fields
from core.cache import ConfigCache
from core.chat.cards import TicketCards
from core.context import Actor
from core.status import board_statuses
from core.tickets import DEFAULT_CAPABILITIES, TicketService
from core.views import FormField, FormOption, FormView, TicketHeader
from store.db import Database
from store.enums import Priority, Stage
from store.tables import Customer, PicklistItem, PsaConnection

NO_CHANGE = "__same__"
OPTION_VALUE_MAX = 150  # Slack's limit on a select option's value: a longer one makes the form a text field
STATUS_TABLES = ("picklist_item", "status_mapping")  # what a board's status options are read from
VISIBILITY_LABEL = {"public": "Public reply (customer sees it)", "internal": "Internal note",
                    "resolution": "Resolution note"}


class TicketForms:
    """Builds FormViews for tickets from the PSA's picklists and rules."""

    # The customer picker: up to CHOICES_MAX active customers are one dropdown (simplest to use: Slack's
    # static_select filters as you type, the console numbers them). Past that the field is searched instead
    # (kind "search_select": Slack external_select, console prompt), so thousands of customers stay reachable.
    CHOICES_MAX = 100  # Slack's static_select limit, and as many as a console list should show
    SEARCH_TEXT_MAX = 200  # longer than any customer name (200) or identifier (100): it cannot match

    def __init__(self, db: Database, *, tickets: TicketService, cards: TicketCards,
                 capabilities: Callable[[str], Capabilities]) -> None:
        self.db = db
        self.tickets = tickets
        self.cards = cards
        self._capabilities = capabilities
        # A board's statuses for every status/reply form; the picklist refresh (sync) or an admin's mapping edit in
        # this process drops them at once, another process's within the TTL.
        self.statuses: ConfigCache[tuple[FormOption, ...]] = ConfigCache(db, STATUS_TABLES)

    async def _picklist(self, actor: Actor, connection_id: int | None, kind: str,
                        parent: str | None = None) -> list[PicklistItem]:
        if connection_id is None:
            return []
        async with self.db.read(actor.scope) as session:
            stmt = select(PicklistItem).where(PicklistItem.connection_id == connection_id,
                                              PicklistItem.kind == kind, PicklistItem.active == sa.true())
            if parent is not None:
                stmt = stmt.where(sa.or_(col(PicklistItem.parent_external_id) == parent,
                                         col(PicklistItem.parent_external_id) == ""))
            return list((await session.exec(stmt.order_by(col(PicklistItem.sort_order),
                                                          col(PicklistItem.name)))).all())

    async def default_connection(self, actor: Actor) -> PsaConnection | None:
        async with self.db.read(actor.scope) as session:
            return (await session.exec(select(PsaConnection).where(
                PsaConnection.is_default == sa.true(), PsaConnection.enabled == sa.true()))).first()

    async def new_ticket_form(self, actor: Actor, *, subject: str = "", description: str = "",
                              context: dict[str, Any] | None = None) -> FormView:
        """New ticket: customer, board and type from the PSA's picklists; required as the PSA requires."""
        conn = await self.default_connection(actor)
        caps = self._capabilities(conn.kind) if conn else DEFAULT_CAPABILITIES
        req = caps.create_requires
        # A pre-filled subject (message shortcut, `/ticket new <text>`) never exceeds what the PSA accepts.
        initial = _fit(subject, caps.max_summary_chars)
        fields = [FormField(name="subject", label="Subject", kind="text", required=True, initial=initial or None,
                            max_length=caps.max_summary_chars)]
        if actor.customer_scope_id is None:
            choices = await self.customer_options(actor, "", limit=self.CHOICES_MAX + 1)
            searched = len(choices) > self.CHOICES_MAX
            fields.append(FormField(name="customer", label="Customer", kind="search_select" if searched else "select",
                                    required="company_external_id" in req,
                                    options=() if searched else tuple(choices),
                                    source="customers" if searched else None,
                                    hint="Type part of the customer's name or identifier." if searched else None))
        boards = await self._picklist(actor, conn.id if conn else None, "board")
        board_names = {b.external_id: b.name for b in boards}
        if boards and conn is not None:
            async with self.db.read(actor.scope) as session:
                default = await create_fields.default_board(session, conn)
            fields.append(FormField(name="board", label="Board", kind="select",
                                    required="board_external_id" in req,
                                    options=tuple(FormOption(value=b.external_id, label=b.name) for b in boards),
                                    initial=default.external_id if default else None,
                                    hint=None if default else "Pick the board the PSA should file it on."))
        # Boards (Halo ticket types) that make the end user mandatory: ask for the contact on the form.
        needs_contact = [b.name for b in boards if "contact_external_id" in (b.data or {}).get("requires", ())]
        if needs_contact:
            fields.append(FormField(name="contact", label="Contact e-mail", kind="text", required=False,
                                    max_length=254, hint="Required on " + ", ".join(needs_contact) + " tickets."))
        # Fields a board makes mandatory that a ticket has no place for (a Halo type's category, an Autotask
        # UDF): asked for by the PSA's name, sent only with a board that requires it.
        extra: dict[str, list[str]] = {}
        for b in boards:
            for need in sorted((b.data or {}).get("requires") or ()):
                if need.startswith("custom:"):
                    extra.setdefault(need, []).append(b.name)
        fields += await self._extra_fields(actor, conn, extra)
        fields.append(FormField(name="priority", label="Priority", kind="select", required=True,
                                options=tuple(FormOption(value=p.value, label=p.label) for p in Priority),
                                initial=Priority.MEDIUM.value))
        types = await self._picklist(actor, conn.id if conn else None, "type")
        if types:
            # The PSA's own type id (a type belongs to a board); named with its board when there are several.
            several = len({t.parent_external_id for t in types}) > 1

            def label(t: PicklistItem) -> str:
                board = board_names.get(t.parent_external_id)
                return f"{board} › {t.name}" if several and board else t.name

            fields.append(FormField(name="type", label="Type", kind="select",
                                    required="type_external_id" in req,
                                    options=tuple(FormOption(value=t.external_id, label=label(t))
                                                  for t in types[:100]),
                                    hint="The type must be one of the chosen board's." if several else None))
        # Boards that make the category mandatory (Halo's category_1): the category field says so.
        needs_category = [b.name for b in boards if "category_external_id" in (b.data or {}).get("requires", ())]
        fields += await self._category_fields(actor, conn, caps, needs_category)
        fields.append(FormField(name="description", label="Description", kind="textarea",
                                initial=description or None, max_length=3000))
        return FormView(form="new_ticket", title="New ticket", submit_label="Create", fields=tuple(fields),
                        context=dict(context or {}))

    async def _extra_fields(self, actor: Actor, conn: PsaConnection | None,
                            extra: dict[str, list[str]]) -> list[FormField]:
        """Board-required fields a ticket has no place for: a select of the values the PSA lists for one (Halo's
        category_2..4, read at sync), else free text; `extra`: field -> the boards that require it."""
        if not extra or conn is None:
            return []
        async with self.db.read(actor.scope) as session:
            listed = await create_fields.field_choices(session, conn.id,  # type: ignore[arg-type]
                                                       [n.removeprefix("custom:") for n in extra])
        out = []
        for need, names in extra.items():
            values = listed.get(need.removeprefix("custom:"), [])
            label, hint = need.removeprefix("custom:").replace("_", " ").capitalize(), f"Required on {', '.join(names)} tickets."
            if values and len(values) <= self.CHOICES_MAX and max(map(len, values)) <= OPTION_VALUE_MAX:
                out.append(FormField(name=need, label=label, kind="select", required=False, hint=hint,
                                     options=tuple(FormOption(value=v, label=v) for v in values)))
                continue
            example = f" One of the values {conn.name} lists, e.g. {values[0]}." if values else ""
            out.append(FormField(name=need, label=label, kind="text", required=False, max_length=255,
                                 hint=hint + example))
        return out

    async def _category_fields(self, actor: Actor, conn: PsaConnection | None, caps: Capabilities,
                               needed_on: Sequence[str] = ()) -> list[FormField]:
        """The PSA's category pair (Autotask issue / sub-issue type) as one choice: "Hardware" or "Hardware ›
        Printer" (a subcategory is only offered under its own category; a category alone only when the PSA
        takes it alone). Typed as text past a select's 100. The value "top id/sub id" is split by core.
        `needed_on`: the boards that require a category (said in the hint; core refuses a create without)."""
        if conn is None or not caps.has(Feature.TICKET_CATEGORIES):
            return []
        tops = await self._picklist(actor, conn.id, "category")
        subs: dict[str, list[PicklistItem]] = {}
        for sub in await self._picklist(actor, conn.id, "subcategory"):
            subs.setdefault(sub.parent_external_id, []).append(sub)
        options = [o for t in tops for o in (  # a category the PSA takes only as a parent is not offered alone
            *((FormOption(value=t.external_id, label=t.name),) if (t.data or {}).get("selectable", True) else ()),
            *(FormOption(value=f"{t.external_id}/{s.external_id}", label=f"{t.name} › {s.name}")
              for s in subs.get(t.external_id, ())))]
        required_on = ("Required on " + ", ".join(needed_on) + " tickets.") if needed_on else None
        if not options:  # nothing read yet: a board that needs a category says how to get them
            return [] if not needed_on else [FormField(
                name="category", label="Category", kind="text", required=False, max_length=200,
                hint=f"{required_on} " + create_fields.sync_first(conn.name, "categories"))]
        if len(options) > self.CHOICES_MAX or max(len(o.value) for o in options) > OPTION_VALUE_MAX:
            return [FormField(name="category", label="Category", kind="text", required=False, max_length=200,
                              hint=" ".join(h for h in (required_on, f"Category › subcategory as {conn.name} names "
                                                        f"them, e.g. {options[min(1, len(options) - 1)].label}.") if h))]
        return [FormField(name="category", label="Category", kind="select", required=False, options=tuple(options),
                          hint=required_on)]

    async def customer_options(self, actor: Actor, query: str, limit: int = CHOICES_MAX) -> list[FormOption]:
        """Active customers whose name or identifier contains `query` (any case), best match first.

        Order: identifier equal to the text, identifier starting with it, name starting with it, then the
        rest; by name within each. An empty query gives the first `limit` by name. Only what the actor may
        pick: nothing for a non-technician, and in a customer channel only that customer. One query on the
        workspace's customers (its workspace_id index); `%`, `_` and `\\` in the text match themselves.
        """
        if not actor.is_member:
            return []
        text = (query or "").strip()
        if len(text) > self.SEARCH_TEXT_MAX:
            return []
        cols = sa.inspect(Customer).c
        stmt = select(Customer).where(cols.active == sa.true())
        if actor.customer_scope_id is not None:
            stmt = stmt.where(cols.id == actor.customer_scope_id)
        by_name = (sa.func.lower(cols.name), cols.id)
        if text:
            lit = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            stmt = stmt.where(sa.or_(cols.identifier.ilike(f"%{lit}%", escape="\\"),
                                     cols.name.ilike(f"%{lit}%", escape="\\")))
            rank = sa.case((sa.func.lower(cols.identifier) == sa.func.lower(sa.literal(text)), 0),
                           (cols.identifier.ilike(f"{lit}%", escape="\\"), 1),
                           (cols.name.ilike(f"{lit}%", escape="\\"), 2), else_=3)
            stmt = stmt.order_by(rank, *by_name)
        else:
            stmt = stmt.order_by(*by_name)
        async with self.db.read(actor.scope) as session:
            rows = (await session.exec(stmt.limit(max(1, min(int(limit), 1000))))).all()
        return [FormOption(value=str(c.id), label=f"{c.name} ({c.identifier})") for c in rows]

    async def customer_choice(self, actor: Actor, value: str) -> FormOption | None:
        """The picker's option for a customer id already chosen (a refused form given back keeps its choice), under
        the same rules as `customer_options`: None if the actor may not pick it."""
        if not actor.is_member or not str(value or "").isdigit():
            return None
        cols = sa.inspect(Customer).c
        stmt = select(Customer).where(cols.id == int(value), cols.active == sa.true())
        if actor.customer_scope_id is not None:
            stmt = stmt.where(cols.id == actor.customer_scope_id)
        async with self.db.read(actor.scope) as session:
            c = (await session.exec(stmt)).first()
        return FormOption(value=str(c.id), label=f"{c.name} ({c.identifier})") if c is not None else None

    async def _status_options(self, actor: Actor, head: TicketHeader) -> tuple[FormOption, ...]:
        s = head.summary
        if s.connection_id is None:
            return tuple(FormOption(value=st.value, label=st.label) for st in Stage)
        connection_id, board = s.connection_id, head.board_external_id

        async def load() -> tuple[FormOption, ...]:
            async with self.db.read(actor.scope) as session:
                pairs = await board_statuses(session, connection_id, board)
            return tuple(FormOption(value=item.name, label=item.name) for item, _ in pairs[:100])

        return await self.statuses.get((actor.workspace_id, connection_id, board), load)

    async def reply_form(self, actor: Actor, ref: int | str, *, visibility: str = "public",
                         context: dict[str, Any] | None = None, text: str | None = None) -> FormView:
        """Reply or note, with an optional status change in the same submission (`text` prefills it)."""
        detail = await self.tickets.header(actor, ref)  # no timeline: a form needs none
        caps = await self.cards.caps_for(actor, detail.summary.connection_id)
        vis = ["public", "internal"] + (["resolution"] if caps.has(Feature.RESOLUTION_NOTES) else [])
        statuses = await self._status_options(actor, detail)
        fields = (
            FormField(name="text", label="Message", kind="textarea", required=True, max_length=3000, initial=text),
            FormField(name="visibility", label="Visibility", kind="select", required=True,
                      options=tuple(FormOption(value=v, label=VISIBILITY_LABEL[v]) for v in vis), initial=visibility),
            FormField(name="status", label="Change status (optional)", kind="select",
                      options=(FormOption(value=NO_CHANGE, label=f"(keep: {detail.summary.status_name})"),) +
                      tuple(o for o in statuses if o.value != detail.summary.status_name)[:99],
                      initial=NO_CHANGE),
        )
        title = "Reply" if visibility == "public" else "Internal note"
        return FormView(form="reply", title=f"{title} {detail.summary.display_number}"[:24], submit_label="Send",
                        fields=fields, ticket_number=detail.summary.number, ticket_ref=detail.summary.ref,
                        context=dict(context or {}))

    async def status_form(self, actor: Actor, ref: int | str, *, context: dict[str, Any] | None = None) -> FormView:
        """The PSA's own statuses for the ticket's board, plus an optional public reply."""
        detail = await self.tickets.header(actor, ref)  # no timeline: a form needs none
        statuses = await self._status_options(actor, detail)
        fields = (
            FormField(name="status", label="New status", kind="select", required=True, options=statuses,
                      initial=detail.summary.status_name if any(o.value == detail.summary.status_name
                                                                for o in statuses) else None),
            FormField(name="text", label="Reply to the customer (optional)", kind="textarea", max_length=3000),
            FormField(name="visibility", label="Send the reply as", kind="select",
                      options=(FormOption(value="public", label=VISIBILITY_LABEL["public"]),
                               FormOption(value="internal", label=VISIBILITY_LABEL["internal"])),
                      initial="public"),
        )
        return FormView(form="status", title=f"Status {detail.summary.display_number}"[:24], submit_label="Save",
                        fields=fields, ticket_number=detail.summary.number, ticket_ref=detail.summary.ref,
                        context=dict(context or {}))

    async def time_form(self, actor: Actor, ref: int | str, *, context: dict[str, Any] | None = None) -> FormView:
        detail = await self.tickets.get(actor, ref)
        fields = (
            FormField(name="minutes", label="Time worked", kind="text", required=True, hint="e.g. 30m, 1h, 1h30m",
                      max_length=16),
            FormField(name="notes", label="Work done", kind="textarea", max_length=3000),
            FormField(name="billable", label="Billable", kind="checkbox", initial="true"),
        )
        return FormView(form="time", title=f"Time {detail.summary.display_number}"[:24], submit_label="Log",
                        fields=fields, ticket_number=detail.summary.number, ticket_ref=detail.summary.ref,
                        context=dict(context or {}))


def _fit(text: str, limit: int | None) -> str:
    """`text` cut to `limit` characters on a word boundary where one is near, with an ellipsis."""
    text = " ".join(text.split())
    if limit is None or len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    return (cut[:space] if space >= limit // 2 else cut).rstrip() + "…"
