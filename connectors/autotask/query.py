"""Autotask's JSON search language, built as plain dicts (pure; reference/psa-apis.md §3.2).

    {"MaxRecords": 500, "IncludeFields": ["id", "title"], "filter": [<condition>, ...]}   top-level items AND
    condition: {"op": "gt", "field": "lastActivityDate", "value": "2025-01-01T00:00:00.000Z"}
               {"op": "eq", "field": "Deskbridge Ref", "value": "m-1", "udf": true}
               {"op": "or", "items": [<condition>, ...]}      (also "and")

Values: datetimes are sent as UTC with milliseconds and `Z`; booleans as true/false (null is refused by
Autotask, so None is rejected here: use `not_exist`). At most 500 OR conditions per query.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

Condition = dict[str, Any]
OPS = frozenset({"eq", "noteq", "gt", "gte", "lt", "lte", "beginsWith", "endsWith", "contains", "exist",
                 "notExist", "in", "notIn"})
MAX_RECORDS = 500
MAX_OR_CONDITIONS = 500


def value_of(value: Any) -> Any:
    """A Python value as Autotask reads it in a filter."""
    if isinstance(value, datetime):
        return format_dt(value)
    if isinstance(value, list | tuple | set | frozenset):
        return [value_of(v) for v in value]
    return value


def format_dt(value: datetime) -> str:
    """UTC with milliseconds and `Z` (naive datetimes are taken as UTC)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def cond(field: str, op: str, value: Any = None, *, udf: bool = False) -> Condition:
    """One leaf condition (ValueError for an unknown op or a null value where one is needed)."""
    if op not in OPS:
        raise ValueError(f"unknown Autotask filter op {op!r}")
    out: Condition = {"op": op, "field": field}
    if op not in ("exist", "notExist"):
        if value is None:
            raise ValueError(f"Autotask refuses null filter values ({field} {op}); use notExist")
        if op in ("in", "notIn"):
            value = list(value)
            if not value:
                raise ValueError(f"'{op}' on {field} needs at least one value")
        out["value"] = value_of(value)
    if udf:
        out["udf"] = True
    return out


def eq(field: str, value: Any, *, udf: bool = False) -> Condition:
    return cond(field, "eq", value, udf=udf)


def gt(field: str, value: Any) -> Condition:
    return cond(field, "gt", value)


def gte(field: str, value: Any) -> Condition:
    return cond(field, "gte", value)


def in_(field: str, values: Iterable[Any]) -> Condition:
    return cond(field, "in", list(values))


def exist(field: str) -> Condition:
    return cond(field, "exist")


def not_exist(field: str) -> Condition:
    return cond(field, "notExist")


def and_(*items: Condition) -> Condition:
    return {"op": "and", "items": list(items)}


def or_(*items: Condition) -> Condition:
    return {"op": "or", "items": list(items)}


def or_conditions(filters: Sequence[Condition]) -> int:
    """How many leaf conditions sit under an OR group (Autotask allows 500 per query)."""

    def walk(node: Condition, in_or: bool) -> int:
        if node.get("op") in ("and", "or"):
            return sum(walk(k, in_or or node["op"] == "or") for k in node.get("items", []))
        return 1 if in_or else 0

    return sum(walk(f, False) for f in filters)


def body(filters: Sequence[Condition], *, after_id: int | None = None, max_records: int = MAX_RECORDS,
         include_fields: Sequence[str] | None = None) -> dict[str, Any]:
    """A query body; `after_id` adds `id > after_id` (keyset paging), else `id >= 0` keeps it non-empty."""
    if or_conditions(filters) > MAX_OR_CONDITIONS:
        raise ValueError(f"more than {MAX_OR_CONDITIONS} OR conditions in one Autotask query")
    conditions = list(filters) + [gt("id", after_id) if after_id is not None else gte("id", 0)]
    out: dict[str, Any] = {"MaxRecords": max(1, min(int(max_records), MAX_RECORDS)), "filter": conditions}
    if include_fields:
        fields = list(dict.fromkeys(["id", *include_fields]))  # id is required to page past 500
        out["IncludeFields"] = fields
    return out
