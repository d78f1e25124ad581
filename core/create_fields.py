"""What a new ticket needs to be accepted by its PSA, resolved from the local copy before it is queued.

A create that the PSA will refuse must be refused here, with a field error the user can act on, never
accepted and then left dead in the outbox. The board comes from the user, else the connection's default
(`default_board_id`, set with `deskbridge connection add … --set default_board_id=<id>`), else the board most of the connection's
tickets are on (an MSP's main desk, never simply the first in the alphabet). A type must belong to that
board. Every choice the user made is resolved to the PSA's own id so it reaches the PSA.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from connectors.base import Capabilities
from core.errors import InvalidInput
from store.tables import PicklistItem, PsaConnection, Ticket


@dataclass(frozen=True, slots=True)
class CreateTarget:
    board_external_id: str | None
    board_name: str | None
    type_external_id: str | None
    type_name: str | None
    requires: frozenset[str] = frozenset()  # what the board makes mandatory (NewTicket names, custom:<name>)


async def _items(session: AsyncSession, connection_id: int, kind: str) -> list[PicklistItem]:
    return list((await session.exec(select(PicklistItem).where(
        PicklistItem.connection_id == connection_id, PicklistItem.kind == kind,
        PicklistItem.active == sa.true()).order_by(col(PicklistItem.sort_order), col(PicklistItem.name)))).all())


async def default_board(session: AsyncSession, conn: PsaConnection) -> PicklistItem | None:
    """The connection's default board: its setting, else the board most of its tickets are on."""
    boards = await _items(session, conn.id, "board")  # type: ignore[arg-type]
    by_id = {b.external_id: b for b in boards}
    chosen = str((conn.settings or {}).get("default_board_id") or "")
    if chosen in by_id:
        return by_id[chosen]
    if len(boards) <= 1:
        return boards[0] if boards else None
    t = Ticket.__table__  # type: ignore[attr-defined]
    rows = (await session.execute(sa.select(t.c.board_external_id, sa.func.count()).where(
        t.c.workspace_id == conn.workspace_id, t.c.connection_id == conn.id,
        t.c.board_external_id.in_(list(by_id))).group_by(t.c.board_external_id))).all()
    if rows:
        busiest = max(rows, key=lambda r: (r[1], r[0]))[0]
        return by_id[busiest]
    return None


def _names(items: list[PicklistItem], limit: int = 8) -> str:
    names = [i.name for i in items[:limit]]
    return ", ".join(names) + (" …" if len(items) > limit else "")


# NewTicket fields a board may require -> the form field a person fills in (and its label).
FORM_FIELDS = {"company_external_id": ("customer", "a customer"), "contact_external_id": ("contact", "a contact"),
               "owner_external_id": ("assignee", "an assignee"), "priority_external_id": ("priority", "a priority"),
               "status_external_id": ("status", "a status"), "description": ("description", "a description"),
               "category_external_id": ("category", "a category")}


def sync_first(conn: str, what: str) -> str:
    """The hint for a choice Deskbridge has not read from the PSA yet (before the first sync, or a refresh that could
    not read it): `sync run` reads picklists only when none are cached; `sync picklists` reads them again."""
    return (f"Deskbridge has not read {conn}'s {what} yet: run `deskbridge sync picklists {conn}` (the first "
            f"`deskbridge sync run {conn}` reads them too); its report says if they could not be read, and why. "
            "Then open the form again.")


async def field_choices(session: AsyncSession, connection_id: int, names: Iterable[str]) -> dict[str, list[str]]:
    """The values the PSA lists for fields a ticket has no place for (Halo's category_2..4), by field name;
    a field the PSA lists no values for is left out (free text)."""
    wanted = sorted(set(names))
    if not wanted:
        return {}
    rows = (await session.exec(select(PicklistItem).where(
        PicklistItem.connection_id == connection_id, PicklistItem.kind == "field_value",
        col(PicklistItem.parent_external_id).in_(wanted), PicklistItem.active == sa.true())
        .order_by(col(PicklistItem.sort_order), col(PicklistItem.name)))).all()
    out: dict[str, list[str]] = {}
    for row in rows:
        out.setdefault(row.parent_external_id, []).append(row.external_id)
    return out


async def listed_extras(session: AsyncSession, conn: PsaConnection, extras: Mapping[str, str]) -> dict[str, str]:
    """`extras` with each value of a field the PSA lists values for written as the PSA lists it (any case), or
    InvalidInput naming the valid ones, before anything is queued."""
    out = dict(extras)
    for name, values in (await field_choices(session, conn.id, extras)).items():  # type: ignore[arg-type]
        given = extras[name]
        hit = next((v for v in values if v.strip().lower() == given.strip().lower()), None)
        if hit is None:
            label = name.replace("_", " ")
            raise InvalidInput(f"{conn.name} has no {label} '{given[:80]}'.",
                               hint=f"Pick one of: {_names_of(values)}.", field=f"custom:{name}")
        out[name] = hit
    return out


def _names_of(values: list[str], limit: int = 8) -> str:
    return ", ".join(values[:limit]) + (" …" if len(values) > limit else "")


def check_board_requires(conn: PsaConnection, board: PicklistItem | None, given: frozenset[str],
                         unread: frozenset[str] = frozenset()) -> None:
    """Refuse a create that the board (e.g. a Halo ticket type) would refuse: a required field left empty is a
    field error on the form; a required field Deskbridge has no place for says to create it in the PSA. `unread`:
    required fields whose choices were never read (before the first sync): the hint says to sync first."""
    if board is None:
        return
    for need in sorted((board.data or {}).get("requires") or ()):
        if need in given:
            continue
        if need in unread:
            form_field, what = FORM_FIELDS.get(need, (need, need))
            raise InvalidInput(f"{board.name} tickets in {conn.name} need {what}.",
                               hint=sync_first(conn.name, f"{form_field} choices"),
                               field=form_field)
        if need.startswith("custom:") or need not in FORM_FIELDS:
            label = need.removeprefix("custom:")
            raise InvalidInput(f"{board.name} tickets in {conn.name} need '{label}'.",
                               hint=f"Fill in {label} on the form and try again.", field=f"custom:{label}")
        form_field, what = FORM_FIELDS[need]
        raise InvalidInput(f"{board.name} tickets in {conn.name} need {what}.",
                           hint=f"Fill in the {form_field} and try again.", field=form_field)


async def resolve(session: AsyncSession, conn: PsaConnection, caps: Capabilities, *, board: str | None,
                  type_external_id: str | None = None, type_name: str | None = None,
                  given: frozenset[str] | None = None) -> CreateTarget:
    """The board and type a new ticket gets at the PSA, checked against what the PSA requires. `given` names
    the NewTicket fields the create fills in, checked against what its board requires (when given)."""
    boards = await _items(session, conn.id, "board")  # type: ignore[arg-type]
    board_item: PicklistItem | None = None
    if board:
        board_item = next((b for b in boards if b.external_id == board), None) or next(
            (b for b in boards if b.name.lower() == board.strip().lower()), None)
        if board_item is None and boards:
            raise InvalidInput(f"'{board}' is not an active board of {conn.name}.",
                               hint=f"Pick one of: {_names(boards)}.", field="board")
    else:
        board_item = await default_board(session, conn)
    board_id = board_item.external_id if board_item else (board or None)
    if board_id is None and "board_external_id" in caps.create_requires:
        raise InvalidInput(f"{conn.name} needs a board on every new ticket.",
                           hint=f"Pick a board, or give {conn.name} a default one: `deskbridge connection add "
                                f"{conn.kind} --name {conn.name} --set default_board_id=<board id>` (with its "
                                "credentials again; it replaces the connection in place).", field="board")
    types = [t for t in await _items(session, conn.id, "type")  # type: ignore[arg-type]
             if t.parent_external_id in ((board_id or ""), "")]
    type_item: PicklistItem | None = None
    wanted = type_external_id or type_name
    if wanted:
        type_item = next((t for t in types if t.external_id == type_external_id), None) if type_external_id else None
        if type_item is None and type_name:
            type_item = next((t for t in types if t.name.lower() == type_name.strip().lower()), None)
        if type_item is None:
            where = f"board {board_item.name}" if board_item else conn.name
            raise InvalidInput(f"'{wanted}' is not a ticket type of {where}.",
                               hint=f"Pick one of: {_names(types)}." if types else "Leave the type empty.",
                               field="type")
    else:
        default_type = str((conn.settings or {}).get("default_type_id") or "")
        type_item = next((t for t in types if t.external_id == default_type), None)
    if type_item is None and "type_external_id" in caps.create_requires:
        raise InvalidInput(f"{conn.name} needs a type on every new ticket.",
                           hint=f"Pick one of: {_names(types)}." if types else "Run a sync to load the types.",
                           field="type")
    if given is not None:
        unread: frozenset[str] = frozenset()
        if board_item is not None and "category_external_id" in ((board_item.data or {}).get("requires") or ()) \
                and "category_external_id" not in given and not await _items(session, conn.id, "category"):  # type: ignore[arg-type]
            unread = frozenset({"category_external_id"})
        check_board_requires(conn, board_item, given, unread)
    return CreateTarget(board_external_id=board_id, board_name=board_item.name if board_item else None,
                        type_external_id=type_item.external_id if type_item else None,
                        type_name=type_item.name if type_item else None,
                        requires=frozenset((board_item.data or {}).get("requires") or ()) if board_item else frozenset())
