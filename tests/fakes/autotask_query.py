"""The query language of the fake Autotask server: `{"filter": [...], "IncludeFields": [...], "MaxRecords": n}`.

Leaf conditions `{"op", "field", "value", "udf"}` with ops eq, noteq, gt, gte, lt, lte, beginsWith, endsWith,
contains, exist, notExist, in, notIn; groups `{"op": "and"|"or", "items": [...]}`; top-level items are
ANDed. Field names and string comparisons are case-insensitive (Autotask runs on SQL Server with a
case-insensitive collation); a null field matches only `notExist` (SQL NULL semantics) [unverified].
Values are coerced to the field's type; booleans must be true/false (null is refused, as the reference
documents). Results are sorted by id; at most MaxRecords (1..500) per call, with `nextPageUrl` pointing at
`{Entity}/query/next?paging=...`, which must be POSTed with the same body.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from tests.fakes.autotask_http import AtError, rejected
from tests.fakes.autotask_schema import EntitySpec, parse

Record = dict[str, Any]
Predicate = Callable[[Record], bool]
MAX_RECORDS = 500
MAX_OR_CONDITIONS = 500
NOT_QUERYABLE = frozenset({"creatorType", "lastActivityPersonType", "data", "userDefinedFields"})
LEAF_OPS = {"eq", "noteq", "gt", "gte", "lt", "lte", "beginswith", "endswith", "contains", "exist", "notexist",
            "in", "notin"}


def _key(body: dict[str, Any], name: str) -> Any:
    """A top-level query key in any letter case."""
    return next((v for k, v in body.items() if k.lower() == name.lower()), None)


def _coerce(spec: EntitySpec, name: str, kind: str, value: Any) -> Any:
    if value is None:
        raise rejected(f"Invalid value null for field {name}.")
    try:
        if kind == "i":
            if isinstance(value, bool):
                raise ValueError
            return int(value)
        if kind == "f":
            return float(value)
        if kind == "b":
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in ("true", "false"):
                return value.lower() == "true"
            raise ValueError
        if kind == "d":
            parsed = parse(value)
            if parsed is None:
                raise ValueError
            return parsed
    except (TypeError, ValueError):
        raise rejected(f"Invalid value '{value}' for field {name} of the {spec.label} entity.") from None
    return str(value).lower()


def _read(record: Record, name: str, kind: str, udf: bool) -> Any:
    if udf:
        value = next((u.get("value") for u in record.get("userDefinedFields") or []
                      if str(u.get("name", "")).lower() == name.lower()), None)
        return None if value is None else str(value).lower()
    value = record.get(name)
    if value is None:
        return None
    if kind == "d":
        return parse(value)
    if kind == "s":
        return str(value).lower()
    return value


def compile_filter(spec: EntitySpec, items: Any, udf_names: Sequence[str]) -> tuple[Predicate, int]:
    """(predicate, number of OR conditions) for a filter list; AtError (500) for anything malformed."""
    if not isinstance(items, list) or not items:
        raise rejected("A query must contain at least one filter.")
    ors = 0

    def build(node: Any, in_or: bool) -> Predicate:
        nonlocal ors
        if not isinstance(node, dict):
            raise rejected("Invalid query syntax: a filter must be an object.")
        node = {k.lower(): v for k, v in node.items()}
        op = str(node.get("op") or "").lower()
        if op in ("and", "or"):
            kids = node.get("items")
            if not isinstance(kids, list) or not kids:
                raise rejected(f"Invalid query syntax: '{op}' needs items.")
            preds = [build(k, in_or or op == "or") for k in kids]
            return (lambda r: all(p(r) for p in preds)) if op == "and" else (lambda r: any(p(r) for p in preds))
        if op not in LEAF_OPS:
            raise rejected(f"Invalid query syntax: unknown operator '{node.get('op')}'.")
        if in_or:
            ors += 1
        raw_field = str(node.get("field") or "")
        udf = bool(node.get("udf"))
        if udf:
            name = next((u for u in udf_names if u.lower() == raw_field.lower()), None)
            kind = "s"
        else:
            name = spec.canonical(raw_field)
            kind = spec.fields.get(name or "", "s")
        if name is None:
            raise rejected(f"Unable to find {raw_field} in the {spec.label} entity.")
        if not udf and name in NOT_QUERYABLE:
            raise rejected(f"The field {name} of the {spec.label} entity cannot be queried.")
        return _leaf(spec, name, kind, udf, op, node.get("value"))

    preds = [build(item, False) for item in items]
    return (lambda r: all(p(r) for p in preds)), ors


def _leaf(spec: EntitySpec, name: str, kind: str, udf: bool, op: str, raw: Any) -> Predicate:
    if op in ("exist", "notexist"):
        want = op == "exist"
        return lambda r: (_read(r, name, kind, udf) is not None) == want
    if op in ("in", "notin"):
        if not isinstance(raw, list) or not raw:
            raise rejected(f"The '{op}' operator needs a list of values for {name}.")
        values = {_coerce(spec, name, kind, v) for v in raw}
        member = op == "in"
        return lambda r: (v := _read(r, name, kind, udf)) is not None and ((v in values) == member)
    value = _coerce(spec, name, kind, raw)
    if op in ("beginswith", "endswith", "contains"):
        if kind != "s":
            raise rejected(f"Invalid query syntax: the '{op}' operator applies to text fields only, not {name}.")
        test: Callable[[str], bool] = {"beginswith": lambda v: v.startswith(value),
                                       "endswith": lambda v: v.endswith(value),
                                       "contains": lambda v: value in v}[op]
        return lambda r: (v := _read(r, name, kind, udf)) is not None and test(v)
    compare: Callable[[Any], bool] = {
        "eq": lambda v: v == value, "noteq": lambda v: v != value, "gt": lambda v: v > value,
        "gte": lambda v: v >= value, "lt": lambda v: v < value, "lte": lambda v: v <= value}[op]
    return lambda r: (v := _read(r, name, kind, udf)) is not None and compare(v)


def body_hash(body: Any) -> str:
    return hashlib.sha1(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]  # noqa: S324 - not security


def _token(state: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(state, separators=(",", ":")).encode()).decode().rstrip("=")


def read_token(token: str) -> dict[str, Any]:
    """The paging state of a next/prev URL (AtError 500 when garbled)."""
    try:
        state = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except ValueError:
        raise rejected("The paging token is not valid.") from None
    if not isinstance(state, dict):
        raise rejected("The paging token is not valid.")
    return state


def project(spec: EntitySpec, record: Record, include: list[str] | None) -> Record:
    """The record as a query answers it: never attachment data; only IncludeFields (plus id) when given."""
    out = {k: v for k, v in record.items() if k != "data"}
    if include:
        out = {k: v for k, v in out.items() if k in include or k == "id"}
    return out


def run(spec: EntitySpec, body: Any, records: list[Record], udf_names: Sequence[str], *, next_base: str,
        after: int | None = None, history: list[int | None] | None = None) -> dict[str, Any]:
    """Answer one query page: `{items, pageDetails{count, requestCount, prevPageUrl, nextPageUrl}}`."""
    if not isinstance(body, dict):
        raise AtError(400, "The request body must be a JSON query object.")
    max_records = _key(body, "MaxRecords")
    if max_records is None:
        max_records = MAX_RECORDS
    if isinstance(max_records, bool) or not isinstance(max_records, int) or not 1 <= max_records <= MAX_RECORDS:
        raise rejected(f"MaxRecords must be between 1 and {MAX_RECORDS}.")
    include_raw = _key(body, "IncludeFields") or []
    include: list[str] = []
    for name in include_raw:
        canonical = spec.canonical(str(name))
        if canonical is None:
            raise rejected(f"Unable to find {name} in the {spec.label} entity.")
        include.append(canonical)
    predicate, ors = compile_filter(spec, _key(body, "filter"), udf_names)
    if ors > MAX_OR_CONDITIONS:
        raise rejected("Invalid query syntax. Queries are limited to 500 or fewer 'OR' conditions.")
    matches = sorted((r for r in records if predicate(r)), key=lambda r: r["id"])
    if after is not None:
        matches = [r for r in matches if r["id"] > after]
    page, more = matches[:max_records], len(matches) > max_records
    if more and include and "id" not in include:
        raise rejected("IncludeFields must contain id when a query returns more than 500 records.")
    history = list(history or [])
    digest = body_hash(body)
    next_url = prev_url = None
    if more:
        next_url = f"{next_base}?paging=" + _token({"after": page[-1]["id"], "hist": [*history, after],
                                                    "hash": digest})
    if history:
        prev_url = f"{next_base}?paging=" + _token({"after": history[-1], "hist": history[:-1], "hash": digest})
    items = [project(spec, r, include) for r in page]
    return {"items": items, "pageDetails": {"count": len(items), "requestCount": max_records,
                                            "prevPageUrl": prev_url, "nextPageUrl": next_url}}


def count(spec: EntitySpec, body: Any, records: list[Record], udf_names: Sequence[str]) -> int:
    """`{Entity}/query/count`: matches of the filter (no paging)."""
    if not isinstance(body, dict):
        raise AtError(400, "The request body must be a JSON query object.")
    predicate, ors = compile_filter(spec, _key(body, "filter"), udf_names)
    if ors > MAX_OR_CONDITIONS:
        raise rejected("Invalid query syntax. Queries are limited to 500 or fewer 'OR' conditions.")
    return sum(1 for r in records if predicate(r))


def newest(records: list[Record], name: str) -> datetime | None:
    """The latest value of a date field (a watermark helper for tests)."""
    stamps = [d for d in (parse(r.get(name)) for r in records) if d is not None]
    return max(stamps) if stamps else None
