"""HaloPSA ticket categories as the seam's two-level category (Feature.TICKET_CATEGORIES). Pure: no I/O.

What Halo has (specs/psa/halopsa-openapi.json): a ticket (`Faults`) carries four category fields,
`category_1..4` (text), with `categoryid_1..4` and `category_N_display`. `GET /Category` lists a tenant's
categories (`CategoryDetail`: `id`, `value`, `category_name`, `type_id`, …) and takes `type_id` (which of the
four fields: 1..4), `tickettype_id`, `team_id`, `client_id`, `service_id`. The spec gives the list no response
schema and says nothing of how a category nests; the shape below is the best-evidenced one, from public code
(read, not copied; session 8 notes):

- The list is a **bare JSON array** of `CategoryDetail` (no wrapper key): a Python Halo client builds its
  objects by iterating the response itself, and an n8n HaloPSA node reads `/Category` with an empty resource
  key (other lists use `tickets`, `clients`, …). The HaloAPI PowerShell module reads it unpaged.
- A category **nests by `>` inside `value`**: a real ticket returned by `POST /Tickets` (a university's Moodle
  plugin documents the object) carries `category_3 = "Hardware>Purchase - Quotation"`. The ticket field
  holds the whole path as text, the same string as the category's `value`.

So: the label space is the tenant's `category_1` ("Category 1", the ticket's main category field) values.
The seam's category is the path's first part and its subcategory the whole path ("Hardware>Laptop",
named "Laptop"; a deeper path "A>B>C" is subcategory "B>C" of "A"). A first part that Halo lists only as
the head of longer paths is cached as a category (so its subcategories have a parent) with
`selectable=False`: it is not a value Halo has, so it is never offered or accepted alone (core/categories.py),
and `value_for` refuses to write it alone. A "/" in a value is just a character ("Email/Exchange"). What Halo does with a value it does not list is
[unverified] on a live tenant; the connector never sends one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from connectors.base import PsaCategory, Ref
from connectors.errors import PsaValidationError

SEP = ">"
CATEGORY_FIELD = 1  # which of category_1..4 is the ticket's category (Category.type_id)


def other_field(name: str) -> int | None:
    """N of a ticket field `category_N` other than the ticket's category (2..4), else None."""
    head, _, n = name.partition("category_")
    return int(n) if not head and n in ("2", "3", "4") and int(n) != CATEGORY_FIELD else None


def split(value: Any) -> tuple[str, str | None]:
    """("Hardware", "Hardware>Laptop") for "Hardware>Laptop"; ("Hardware", None) for "Hardware"; ("", None)."""
    text = str(value or "").strip()
    if not text:
        return "", None
    head, _, rest = text.partition(SEP)
    head = head.strip()
    return (head, text) if rest.strip() else (head, None)


def refs(data: Mapping[str, Any], field: int = CATEGORY_FIELD) -> tuple[Ref | None, Ref | None]:
    """A ticket's category and subcategory from its `category_N` text."""
    head, path = split(data.get(f"category_{field}"))
    if not head:
        return None, None
    sub = Ref(path, path.partition(SEP)[2].strip()) if path else None
    return Ref(head, head), sub


def values(rows: Iterable[Mapping[str, Any]], field: int = CATEGORY_FIELD) -> list[str]:
    """The category values of field `field` in a `GET /Category` answer (rows of another type_id left out)."""
    out: list[str] = []
    for row in rows:
        type_id = row.get("type_id")
        value = str(row.get("value") or "").strip()
        if value and (type_id is None or int(type_id) == field) and value not in out:
            out.append(value)
    return out


def picklist(known: Iterable[str]) -> list[PsaCategory]:
    """Categories (first parts) and subcategories (whole paths under them), in Halo's order. A first part Halo
    does not list by itself is a category only as its subcategories' parent (`selectable=False`)."""
    values = list(known)
    listed = {v.strip().lower() for v in values}
    tops: dict[str, PsaCategory] = {}
    subs: list[PsaCategory] = []
    for i, value in enumerate(values):
        head, path = split(value)
        if head not in tops:  # selectable only when Halo lists the bare value itself
            tops[head] = PsaCategory(external_id=head, name=head, sort_order=i, selectable=head.lower() in listed)
        if path:
            subs.append(PsaCategory(external_id=path, name=path.partition(SEP)[2].strip(),
                                    parent_external_id=head, sort_order=i))
    return [*tops.values(), *subs]


def value_for(category: str | None, subcategory: str | None, known: Iterable[str]) -> str:
    """The `category_N` text for a seam pair ("" clears it), or PsaValidationError naming what is valid:
    only values Halo lists are written, and a subcategory must be under its category."""
    if not category:
        if subcategory:
            raise PsaValidationError("A subcategory needs its category.", fields={"category": "required"})
        return ""
    listed = list(known)
    value = subcategory or category
    if subcategory and split(subcategory)[0].lower() != category.strip().lower():
        raise PsaValidationError(f"'{subcategory}' is not under the category {category!r} in HaloPSA.",
                                 fields={"subcategory": "not under the category"})
    hit = next((v for v in listed if v.lower() == value.strip().lower()), None)
    if hit is None:
        shown = ", ".join(listed[:20]) or "none"
        raise PsaValidationError(f"HaloPSA has no category {value!r}; valid: {shown}.",
                                 fields={"subcategory" if subcategory else "category": "unknown"})
    return hit
