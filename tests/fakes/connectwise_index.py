"""An index for the fake ConnectWise's sorted lists, so keyset paging costs what it costs on a real server.

ConnectWise runs on SQL Server with indexes; a page asked for as `lastUpdated>[t] or (lastUpdated=[t] and
id>k)` ordered `_info/lastUpdated asc, id asc` is a range seek there. The fake used to filter and sort
every record for every page (~1.3 s per page at 50,000 tickets). Here a collection is sorted once per data
version (`SortedIndex`), and `plan` turns the parsed conditions into a start position in that order plus
whatever conditions the position does not already decide (those are still evaluated record by record with
the same predicate as before). The answer is the same list, in the same order, as filter-then-sort:

- only ascending orders are indexed, and a key column only when every record's value there is comparable
  in its sorted form exactly as the condition compares it: datetimes stored as canonical `...THH:MM:SSZ`
  strings (string order = time order, equality = equality) against whole-second datetime literals, and
  integers against integer literals; anything else (desc, strings, floats, `not`, `in`, `!=`, `<`,
  microsecond literals, odd stamps) falls back to evaluating the predicate over every record;
- `path > v` / `path >= v` on the first key, the keyset form `(k1 > v or (k1 = v and k2 > w))` on the first
  two keys (either order of the parts), and `and` of such bounds (the largest start wins) are positions;
  other parts of an `and` are evaluated over the records from that position on (over every record when
  one of them is an ordering comparison, which can fail on a record and answer 400, as before).
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from tests.fakes.connectwise_conditions import (
    ALIASES,
    BoolOp,
    Cmp,
    Node,
    Not,
    Record,
    _sort_key,
    order_keys,
    predicate,
    resolve,
)

_STAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")


def _norm(path: str) -> str:
    return ALIASES.get(path.lower(), path).lower()


def _getter(path: str) -> Callable[[Record], Any]:
    """`resolve(record, path)`, faster when every step is an exact key of a dict (the usual case)."""
    parts = ALIASES.get(path.lower(), path).split("/")

    def get(record: Record) -> Any:
        value: Any = record
        for part in parts:
            if type(value) is dict and part in value:
                value = value[part]
            else:
                return resolve(record, path)
        return value

    return get


def _column_kind(values: Sequence[Any]) -> str | None:
    """"dt" when every value is a canonical UTC stamp, "int" when every value is a plain int, else None."""
    if values and all(type(v) is int for v in values):
        return "int"
    if not values or not all(isinstance(v, str) and _STAMP.match(v) for v in values):
        return None
    try:
        for v in values:
            datetime.fromisoformat(v[:-1])  # a stamp the predicate cannot read must keep failing the same way
    except ValueError:
        return None
    return "dt"


class SortedIndex:
    """One collection in one `orderBy`, with its indexable key columns."""

    def __init__(self, records: Sequence[Record], order_by: str | None) -> None:
        keys = order_keys(order_by)
        # sort_records' successive stable sorts, with each record's keys resolved once
        resolved = [list(map(_getter(path), records)) for path, _ in keys]
        order = list(range(len(records)))
        for (_, desc), values in reversed(list(zip(keys, resolved, strict=True))):
            sort_keys = [_sort_key(v) for v in values]
            order.sort(key=sort_keys.__getitem__, reverse=desc)
        self.rows = [records[i] for i in order]
        self.paths: list[str] = []
        self.kinds: list[str] = []
        self.columns: list[list[Any]] = []
        for (path, desc), values in list(zip(keys, resolved, strict=True))[:2]:
            if desc:
                break
            column = [values[i] for i in order]
            kind = _column_kind(column)
            if kind is None:
                break
            self.paths.append(_norm(path))
            self.kinds.append(kind)
            self.columns.append(column)
        self.pairs = list(zip(*self.columns, strict=True)) if len(self.columns) == 2 else []

    def select(self, node: Node | None) -> list[Record]:
        """The records matching `node`, in index order (what filter-then-sort gives)."""
        if node is None:
            return list(self.rows)
        start, rest = self.plan(node)
        if not rest:
            return self.rows[start:]
        if any(_may_raise(n) for n in rest):
            # an ordering comparison can fail on a record (400); check the records before `start` too
            start, rest = 0, [node]
        tests = [predicate(n) for n in rest]
        return [r for r in self.rows[start:] if all(t(r) for t in tests)]

    def plan(self, node: Node) -> tuple[int, list[Node]]:
        """(start, residual): the matches are the records from `start` on that pass every residual node."""
        pos = self._suffix(node)
        if pos is not None:
            return pos, []
        if isinstance(node, BoolOp) and node.kind == "and":
            start, rest = 0, []
            for part in node.parts:
                p = self._suffix(part)
                if p is None:
                    rest.append(part)
                else:
                    start = max(start, p)
            return start, rest
        return 0, [node]

    # ---------------------------------------------------------------- positions

    def _literal(self, column: int, value: Any) -> Any:
        """`value` in the column's sorted form, or None when the comparison is not the sorted order's."""
        kind = self.kinds[column]
        if kind == "int":
            return value if type(value) is int else None
        if isinstance(value, datetime) and value.microsecond == 0:
            return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return None

    def _cmp(self, node: Node, column: int, ops: tuple[str, ...]) -> Any:
        if (not isinstance(node, Cmp) or node.negate or node.op not in ops or column >= len(self.paths)
                or _norm(node.path) != self.paths[column]):
            return None
        return self._literal(column, node.value)

    def _suffix(self, node: Node) -> int | None:
        """The start of the matches when they are exactly a suffix of the order, else None."""
        for op, find in ((">", bisect_right), (">=", bisect_left)):
            if isinstance(node, Cmp) and node.op == op and (v := self._cmp(node, 0, (op,))) is not None:
                return find(self.columns[0], v)
        if isinstance(node, BoolOp) and node.kind == "and":
            found = [self._suffix(p) for p in node.parts]
            return None if any(p is None for p in found) else max(p for p in found if p is not None)
        if isinstance(node, BoolOp) and node.kind == "or" and len(node.parts) == 2 and self.pairs:
            for first, second in (node.parts, node.parts[::-1]):
                pos = self._keyset(first, second)
                if pos is not None:
                    return pos
        return None

    def _keyset(self, above: Node, tie: Node) -> int | None:
        """`k1 > v or (k1 = v and k2 > w)` (or `>= w`): the records after (v, w)."""
        v = self._cmp(above, 0, (">",))
        if v is None or not isinstance(tie, BoolOp) or tie.kind != "and" or len(tie.parts) != 2:
            return None
        for eq, after in (tie.parts, tie.parts[::-1]):
            if self._cmp(eq, 0, ("=",)) != v:
                continue
            w = self._cmp(after, 1, (">", ">="))
            if w is None:
                continue
            find: Callable[..., int] = bisect_right if after.op == ">" else bisect_left  # type: ignore[union-attr]
            return find(self.pairs, (v, w))
        return None


def _may_raise(node: Node) -> bool:
    """True when evaluating `node` can raise ConditionError (`<`, `>`, ... on values that do not compare)."""
    if isinstance(node, BoolOp):
        return any(_may_raise(p) for p in node.parts)
    if isinstance(node, Not):
        return _may_raise(node.inner)
    return isinstance(node, Cmp) and node.op in ("<", "<=", ">", ">=")


__all__ = ["SortedIndex"]
