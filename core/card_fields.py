"""The PSA's own ticket fields (Autotask UDFs): which ones technicians see on ticket cards, and values
written to them.

Which ones cards show is an admin's choice, kept in the connection's settings as `card_fields` (a list of
the PSA's field names, in display order). A value written (`TicketService.update(custom_fields=…)`) must
name a field the PSA has and does not compute (`read_only`), or it is refused before anything is queued.

Names are checked against the fields the last picklist refresh read from the PSA (picklist kind
"custom_field"), matched with letter case ignored and stored as the PSA spells them. Cards show them to
technicians only (core/chat/cards.py `card_facts`); customer views never carry them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from core.errors import InvalidInput, NotFound
from store.db import Database, Scope
from store.tables import PicklistItem, PsaConnection

CARD_FIELDS_SETTING = "card_fields"
MAX_CARD_FIELDS = 10
MAX_VALUE_CHARS = 1000


def card_field_names(settings: Mapping[str, Any]) -> list[str]:
    """The PSA fields an admin chose to show on cards, in order."""
    names = settings.get(CARD_FIELDS_SETTING) or []
    return [str(n) for n in names if str(n).strip()] if isinstance(names, list) else []


async def set_card_fields(db: Database, workspace_id: int, connection_id: int, names: Sequence[str]) -> list[str]:
    """Show exactly these PSA fields on technicians' cards (an empty list shows none); the stored names.
    An unknown name is refused naming the fields the PSA has, and nothing is changed."""
    wanted = [n.strip() for n in names if n.strip()]
    if len(wanted) > MAX_CARD_FIELDS:
        raise InvalidInput(f"At most {MAX_CARD_FIELDS} fields fit on a card; {len(wanted)} were given.",
                           hint="Pick the ones technicians need most.", field="card_fields")
    async with db.write(Scope.workspace(workspace_id)) as s:
        conn = await s.get(PsaConnection, connection_id)
        if conn is None or conn.workspace_id != workspace_id:
            raise NotFound(f"Connection {connection_id} was not found.",
                           hint="See them on the admin overview (/admin) or with `deskbridge connection list`.")
        rows = (await s.exec(select(PicklistItem).where(
            PicklistItem.connection_id == connection_id, PicklistItem.kind == "custom_field",
            col(PicklistItem.active).is_(True)).order_by(col(PicklistItem.external_id)))).all()
        known = {r.external_id.lower(): r.external_id for r in rows}
        unknown = [n for n in wanted if n.lower() not in known]
        if unknown:
            valid = ", ".join(known.values()) or "none known yet (run `deskbridge sync run` to read them)"
            raise InvalidInput(f"{conn.name} has no ticket field {', '.join(repr(n) for n in unknown)}.",
                               hint=f"Fields it has: {valid}.", field="card_fields")
        stored = list(dict.fromkeys(known[n.lower()] for n in wanted))
        settings = dict(conn.settings or {})
        if stored:
            settings[CARD_FIELDS_SETTING] = stored
        else:
            settings.pop(CARD_FIELDS_SETTING, None)
        conn.settings = settings
        s.add(conn)
    return stored


async def _defined(session: AsyncSession, connection_id: int) -> dict[str, PicklistItem]:
    rows = (await session.exec(select(PicklistItem).where(
        PicklistItem.connection_id == connection_id, PicklistItem.kind == "custom_field",
        col(PicklistItem.active).is_(True)))).all()
    return {r.external_id.lower(): r for r in rows}


async def check_values(session: AsyncSession, conn: PsaConnection | None, values: Mapping[str, str]
                       ) -> dict[str, str]:
    """Values for the PSA's own fields, keyed as the PSA spells the names ("" clears one); InvalidInput naming
    the writable fields for an unknown or computed one, or for a ticket without a PSA."""
    if conn is None or conn.id is None:
        raise InvalidInput("A ticket without a PSA has no PSA fields to set.", hint="Leave custom_fields out.",
                           field="custom_fields")
    defined = await _defined(session, conn.id)
    writable = sorted(r.external_id for r in defined.values() if not (r.data or {}).get("read_only"))
    out: dict[str, str] = {}
    for name, value in values.items():
        item = defined.get(str(name).strip().lower())
        if item is None or (item.data or {}).get("read_only"):
            why = "is computed by the PSA" if item is not None else "is not one of its ticket fields"
            raise InvalidInput(f"'{str(name)[:60]}' {why} in {conn.name}.",
                               hint=f"Fields you can set: {', '.join(writable) or 'none'}.", field="custom_fields")
        text = str(value).strip()
        if len(text) > MAX_VALUE_CHARS:
            raise InvalidInput(f"The value for '{item.external_id}' is too long ({len(text)} characters).",
                               hint=f"Keep it under {MAX_VALUE_CHARS} characters.", field="custom_fields")
        out[item.external_id] = text
    return out
