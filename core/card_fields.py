"""Which of the PSA's own ticket fields (Autotask UDFs) technicians see on ticket cards: an admin's choice,
kept in the connection's settings as `card_fields` (a list of the PSA's field names, in display order).

Names are checked against the fields the last picklist refresh read from the PSA (picklist kind
"custom_field"), matched with letter case ignored and stored as the PSA spells them. Cards show them to
technicians only (core/chat/cards.py `card_facts`); customer views never carry them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlmodel import col, select

from core.errors import InvalidInput, NotFound
from store.db import Database, Scope
from store.tables import PicklistItem, PsaConnection

CARD_FIELDS_SETTING = "card_fields"
MAX_CARD_FIELDS = 10


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
                           hint="List connections with `deskbridge connection list`.")
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
