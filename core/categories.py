"""A ticket's two-level PSA category (Autotask issue type / sub-issue type; Feature.TICKET_CATEGORIES), and the
subtype and item a ConnectWise board allows under a type (Feature.TYPE_SUBTYPES).

The choices come from the connection's cached picklists (kind "category", and "subcategory" whose parent is
its category), so a create or update naming a category is checked before it is accepted: an unknown
category, or a subcategory that does not belong to the category, is refused naming the valid ones, and
nothing is queued for the PSA. Values are matched by id or by name (letter case ignored). A category the PSA
lists only as a parent (`data.selectable` False: a Halo "Software" when Halo lists only "Software>E-mail") is
refused on its own, naming the subcategories to pick; the forms never offer it alone.

ConnectWise: kind "subtype" (parent: the type's id) and "item" (parent "type:subtype"), from the board's
type/subtype/item associations (core/sync/picklists.py); `resolve_subtype` and `item_fits` check a change
against them the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from connectors.base import Capabilities, Feature
from core import create_fields
from core.errors import InvalidInput
from store.tables import PicklistItem, PsaConnection

MAX_LISTED = 25  # valid choices named in an error


@dataclass(frozen=True, slots=True)
class ResolvedCategory:
    category_external_id: str | None
    category_name: str | None
    subcategory_external_id: str | None
    subcategory_name: str | None

    def columns(self) -> dict[str, Any]:
        """The ticket columns it sets."""
        return {"category_external_id": self.category_external_id, "category_name": self.category_name,
                "subcategory_external_id": self.subcategory_external_id, "subcategory_name": self.subcategory_name}

    def ids(self) -> dict[str, Any]:
        """The create op's fields (None: not set)."""
        return {"category_external_id": self.category_external_id,
                "subcategory_external_id": self.subcategory_external_id}


NONE = ResolvedCategory(None, None, None, None)


def _pick(items: list[PicklistItem], text: str) -> PicklistItem | None:
    wanted = text.strip().lower()
    return next((i for i in items if i.external_id == text.strip()), None) or \
        next((i for i in items if i.name.strip().lower() == wanted), None)


def _names(items: list[PicklistItem]) -> str:
    names = [i.name for i in items[:MAX_LISTED]]
    more = f" and {len(items) - MAX_LISTED} more" if len(items) > MAX_LISTED else ""
    return (", ".join(names) + more) if names else "none"


def _pairs(top: PicklistItem, subs: list[PicklistItem]) -> str:
    names = [f"{top.name} › {i.name}" for i in subs[:MAX_LISTED]]
    more = f" and {len(subs) - MAX_LISTED} more" if len(subs) > MAX_LISTED else ""
    return (", ".join(names) + more) if names else "none"


SEPARATORS = ("/", "›", ">")  # the form's select value is "top id/sub id"; typed pairs use › or >


async def _choice(session: AsyncSession, connection_id: int, tops: list[PicklistItem], text: str
                  ) -> tuple[PicklistItem | None, list[PicklistItem], PicklistItem | None, str | None]:
    """(category, its subcategories, subcategory, subcategory text) for one choice. The whole text naming a
    category wins (a Halo "Email/Exchange" is never split); else every place a separator stands is tried,
    a split naming both a category and one of its subcategories first ("Email/Exchange/Email/Exchange>Outlook"),
    then the longest naming a category (its subcategory is refused naming the valid ones)."""
    whole = _pick(tops, text)
    if whole is not None:
        return whole, [], None, None
    best: tuple[PicklistItem, str] | None = None
    for at in sorted(i for i, ch in enumerate(text) if ch in SEPARATORS):
        top, rest = _pick(tops, text[:at]), text[at + 1:].strip()
        if top is None or not text[:at].strip() or not rest:
            continue
        subs = await _items(session, connection_id, "subcategory", top.external_id)
        sub = _pick(subs, rest)
        if sub is not None:
            return top, subs, sub, rest
        best = (top, rest)
    return (best[0], [], None, best[1]) if best else (None, [], None, None)


async def _items(session: AsyncSession, connection_id: int, kind: str, parent: str = "") -> list[PicklistItem]:
    rows = await session.exec(select(PicklistItem).where(
        PicklistItem.connection_id == connection_id, PicklistItem.kind == kind,
        PicklistItem.parent_external_id == parent, col(PicklistItem.active).is_(True))
        .order_by(col(PicklistItem.sort_order), col(PicklistItem.name)))
    return list(rows.all())


async def resolve_given(session: AsyncSession, conn: PsaConnection | None, caps: Capabilities, *,
                        category: str | None, subcategory: str | None) -> ResolvedCategory:
    """`resolve` when a category or subcategory was given, else NONE (a create that names neither)."""
    if not (category or "").strip() and not (subcategory or "").strip():
        return NONE
    return await resolve(session, conn, caps, category=category, subcategory=subcategory)


async def resolve(session: AsyncSession, conn: PsaConnection | None, caps: Capabilities, *,
                  category: str | None, subcategory: str | None) -> ResolvedCategory:
    """The category pair for a create or update, or InvalidInput saying what is valid. An empty category
    clears both; a subcategory alone is refused (it only means something under its category). A category
    given without a subcategory may be one choice naming both (`_choice`: the forms' value, or typed)."""
    if conn is None or not caps.has(Feature.TICKET_CATEGORIES):
        where = conn.name if conn is not None else "A ticket without a PSA"
        raise InvalidInput(f"{where} has no ticket categories to set.",
                           hint="Leave the category out for this connection.", field="category")
    assert conn.id is not None  # a stored row
    if not (category or "").strip():
        if (subcategory or "").strip():
            raise InvalidInput("A subcategory needs its category.", hint="Give the category too.",
                               field="category")
        return NONE
    tops = await _items(session, conn.id, "category")
    if not tops:
        raise InvalidInput(f"No categories are known for {conn.name} yet.",
                           hint=create_fields.sync_first(conn.name, "categories"),
                           field="category")
    subs: list[PicklistItem] = []
    sub: PicklistItem | None = None
    if (subcategory or "").strip():
        top = _pick(tops, category or "")
    else:  # one choice: a category, or a pair written "top/sub", "top › sub", "top>sub" (split where it fits)
        top, subs, sub, subcategory = await _choice(session, conn.id, tops, (category or "").strip())
    if top is None:
        raise InvalidInput(f"{conn.name} has no category '{(category or '').strip()[:60]}'.",
                           hint=f"Valid categories: {_names(tops)}.", field="category")
    if not (subcategory or "").strip():
        if (top.data or {}).get("selectable", True) is False:
            under = await _items(session, conn.id, "subcategory", top.external_id)
            raise InvalidInput(f"{conn.name} does not take the category {top.name} on its own, only one of its "
                               "subcategories.", hint=f"Pick one of: {_pairs(top, under)}.", field="category")
        return ResolvedCategory(top.external_id, top.name, None, None)
    subs = subs or await _items(session, conn.id, "subcategory", top.external_id)
    sub = sub or _pick(subs, subcategory or "")
    if sub is None:
        raise InvalidInput(f"'{(subcategory or '').strip()[:60]}' is not a subcategory of {top.name}.",
                           hint=f"Valid subcategories of {top.name}: {_names(subs)}.", field="subcategory")
    return ResolvedCategory(top.external_id, top.name, sub.external_id, sub.name)


async def resolve_subtype(session: AsyncSession, connection_id: int, type_external_id: str, type_name: str,
                          subtype: str) -> tuple[str, str]:
    """(id, name) of the subtype named `subtype` (or its id) that the board allows under the type, or
    InvalidInput naming the valid ones."""
    subs = await _items(session, connection_id, "subtype", type_external_id)
    hit = _pick(subs, subtype)
    if hit is None:
        raise InvalidInput(f"'{subtype.strip()[:60]}' is not a subtype the board allows under {type_name}.",
                           hint=f"Valid subtypes of {type_name}: {_names(subs)}. Run `deskbridge sync run` if it was "
                                "just added in the PSA.", field="subtype")
    return hit.external_id, hit.name


async def item_fits(session: AsyncSession, connection_id: int, type_external_id: str | None,
                    subtype_external_id: str | None, *, item: str | None, item_name: str | None = None) -> None:
    """A ticket's item (a technician's; never changed by a type or subtype change) must stay valid under the
    new type and subtype: InvalidInput otherwise, saying to change them together in the PSA."""
    if not item:
        return
    if type_external_id is not None and subtype_external_id is not None and any(
            i.external_id == item for i in await _items(session, connection_id, "item",
                                                         f"{type_external_id}:{subtype_external_id}")):
        return
    raise InvalidInput(f"The ticket's item {item_name or item} does not go with that type and subtype, and the "
                       "item is a technician's choice.",
                       hint="Change the type, subtype and item together in the PSA.", field="item")
