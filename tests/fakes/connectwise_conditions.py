"""The ConnectWise `conditions` / `orderBy` / `fields` query language, as the fake server understands it.

Grammar (reference/psa-apis.md §2.2), keywords case-insensitive:

    expr    := term ("or" term)*
    term    := factor ("and" factor)*
    factor  := "not" factor | "(" expr ")" | path op value | path ["not"] "in" "(" value ("," value)* ")"
    op      := = != < <= > >= contains like
    value   := "string" (backslash escapes \\" and \\\\) | [datetime] | number | true | false | null

Paths use `/` for sub-objects (`board/id`, `_info/lastUpdated`); `lastUpdated` and `dateEntered` are
accepted as short forms of `_info/...`. Datetimes in brackets may carry `Z`/an offset or be naive (the
fake reads naive ones as UTC). A malformed query raises `ConditionError` (the fake answers 400).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

Record = Mapping[str, Any]
Predicate = Callable[[Record], bool]

ALIASES = {"lastupdated": "_info/lastUpdated", "dateentered": "_info/dateEntered"}


class ConditionError(ValueError):
    """A conditions/orderBy string the fake (like ConnectWise) cannot parse."""


_TOKEN = re.compile(
    r"""\s*(?:
        (?P<str>"(?:[^"\\]|\\.)*")
      | (?P<dt>\[[^\]]*\])
      | (?P<op><=|>=|!=|=|<|>)
      | (?P<lp>\()
      | (?P<rp>\))
      | (?P<comma>,)
      | (?P<num>-?\d+(?:\.\d+)?(?![\w/]))
      | (?P<word>[A-Za-z_][\w/]*)
    )""",
    re.VERBOSE,
)


@lru_cache(maxsize=1 << 18)
def parse_datetime(text: str) -> datetime:
    """ISO-8601 with `Z`, an offset, or naive (read as UTC)."""
    text = text.strip()
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ConditionError(f"bad datetime [{text}]") from exc
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise ConditionError(f"cannot parse conditions near: {text[pos:pos + 20]!r}")
        kind = m.lastgroup or ""
        out.append((kind, m.group(kind)))
        pos = m.end()
    return out


def _unquote(token: str) -> str:
    return re.sub(r"\\(.)", r"\1", token[1:-1])


def resolve(record: Record, path: str) -> Any:
    """The value at a `/` path of a record (None when any step is missing)."""
    path = ALIASES.get(path.lower(), path)
    value: Any = record
    for part in path.split("/"):
        if type(value) is not dict and not isinstance(value, Mapping):
            return None
        # ConnectWise field names in conditions are not case-sensitive.
        if part in value:
            value = value[part]
        else:
            lower = part.lower()
            value = next((v for k, v in value.items() if k.lower() == lower), None)
    return value


def _coerce(field_value: Any, literal: Any) -> tuple[Any, Any]:
    if isinstance(literal, datetime) and isinstance(field_value, str):
        return parse_datetime(field_value), literal
    if isinstance(literal, str) and isinstance(field_value, int | float) and not isinstance(field_value, bool):
        try:
            return field_value, float(literal)
        except ValueError:
            return str(field_value), literal
    if isinstance(literal, str) and field_value is not None:
        return str(field_value).lower(), literal.lower()  # string comparison is case-insensitive (SQL Server)
    return field_value, literal


def _compare(op: str, left: Any, right: Any) -> bool:
    if op in ("=", "!="):
        left, right = _coerce(left, right)
        return (left == right) if op == "=" else (left != right)
    if op == "contains":
        return left is not None and str(right).lower() in str(left).lower()
    if op == "like":
        pattern = "^" + ".*".join(re.escape(p) for p in str(right).lower().split("%")) + "$"
        return left is not None and re.match(pattern, str(left).lower(), re.DOTALL) is not None
    if left is None or right is None:
        return False
    left, right = _coerce(left, right)
    try:
        return {"<": left < right, "<=": left <= right, ">": left > right, ">=": left >= right}[op]
    except TypeError as exc:
        raise ConditionError(f"cannot compare {left!r} {op} {right!r}") from exc


@dataclass(frozen=True)
class Cmp:
    """`path op value` (`negate`: `path not op value` is not in the grammar; set by `not in` only)."""

    path: str
    op: str
    value: Any
    negate: bool = False


@dataclass(frozen=True)
class In:
    path: str
    values: tuple[Any, ...]
    negate: bool = False


@dataclass(frozen=True)
class Not:
    inner: Node


@dataclass(frozen=True)
class BoolOp:
    kind: str  # "and" | "or"
    parts: tuple[Node, ...]


Node = Cmp | In | Not | BoolOp


class _Parser:
    def __init__(self, text: str) -> None:
        self.toks = _tokens(text)
        self.i = 0

    def peek(self) -> tuple[str, str] | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self) -> tuple[str, str]:
        tok = self.peek()
        if tok is None:
            raise ConditionError("conditions ended too early")
        self.i += 1
        return tok

    def is_word(self, word: str) -> bool:
        tok = self.peek()
        return tok is not None and tok[0] == "word" and tok[1].lower() == word

    def parse(self) -> Node:
        node = self.expr()
        if self.peek() is not None:
            raise ConditionError(f"unexpected {self.peek()[1]!r} in conditions")  # type: ignore[index]
        return node

    def expr(self) -> Node:
        parts = [self.term()]
        while self.is_word("or"):
            self.take()
            parts.append(self.term())
        return parts[0] if len(parts) == 1 else BoolOp("or", tuple(parts))

    def term(self) -> Node:
        parts = [self.factor()]
        while self.is_word("and"):
            self.take()
            parts.append(self.factor())
        return parts[0] if len(parts) == 1 else BoolOp("and", tuple(parts))

    def factor(self) -> Node:
        if self.is_word("not"):
            self.take()
            return Not(self.factor())
        tok = self.peek()
        if tok is not None and tok[0] == "lp":
            self.take()
            inner = self.expr()
            if self.take()[0] != "rp":
                raise ConditionError("missing ')'")
            return inner
        kind, path = self.take()
        if kind != "word":
            raise ConditionError(f"expected a field name, got {path!r}")
        negate = False
        if self.is_word("not"):
            self.take()
            negate = True
        if self.is_word("in"):
            self.take()
            if self.take()[0] != "lp":
                raise ConditionError("in needs '('")
            values = [self.value()]
            while (t := self.take())[0] == "comma":
                values.append(self.value())
            if t[0] != "rp":
                raise ConditionError("missing ')' after in list")
            return In(path, tuple(values), negate)
        op_kind, op = self.take()
        if op_kind == "word" and op.lower() in ("contains", "like"):
            op = op.lower()
        elif op_kind != "op":
            raise ConditionError(f"expected an operator after {path}, got {op!r}")
        return Cmp(path, op, self.value(), negate)

    def value(self) -> Any:
        kind, text = self.take()
        if kind == "str":
            return _unquote(text)
        if kind == "dt":
            return parse_datetime(text[1:-1])
        if kind == "num":
            return float(text) if "." in text else int(text)
        if kind == "word" and text.lower() in ("true", "false"):
            return text.lower() == "true"
        if kind == "word" and text.lower() == "null":
            return None
        raise ConditionError(f"bad value {text!r} (strings need double quotes, dates [brackets])")


def predicate(node: Node) -> Predicate:
    """The record test a parsed condition stands for."""
    if isinstance(node, BoolOp):
        parts = tuple(predicate(p) for p in node.parts)
        if node.kind == "or":
            return lambda r: any(p(r) for p in parts)
        return lambda r: all(p(r) for p in parts)
    if isinstance(node, Not):
        inner = predicate(node.inner)
        return lambda r: not inner(r)
    if isinstance(node, In):
        path, values, negate = node.path, node.values, node.negate
        return lambda r: (any(_compare("=", resolve(r, path), v) for v in values)) != negate
    path, op, literal, negate = node.path, node.op, node.value, node.negate
    return lambda r: _compare(op, resolve(r, path), literal) != negate


def parse_conditions(text: str | None) -> Node | None:
    """The parsed conditions (None when empty); raises ConditionError like ConnectWise's 400."""
    if not text or not text.strip():
        return None
    return _Parser(text).parse()


def compile_conditions(text: str | None) -> Predicate:
    """A predicate for a conditions string (everything matches when empty)."""
    node = parse_conditions(text)
    return (lambda r: True) if node is None else predicate(node)


def order_keys(order_by: str | None) -> list[tuple[str, bool]]:
    """`path [asc|desc], ...` as (path, descending) pairs (default `id asc`)."""
    keys: list[tuple[str, bool]] = []
    for part in (order_by or "id asc").split(","):
        bits = part.split()
        if not bits:
            continue
        if len(bits) > 2 or (len(bits) == 2 and bits[1].lower() not in ("asc", "desc")):
            raise ConditionError(f"bad orderBy {part!r}")
        keys.append((bits[0], len(bits) == 2 and bits[1].lower() == "desc"))
    return keys


def sort_records(records: Sequence[Record], order_by: str | None) -> list[Record]:
    """Sort by `path [asc|desc], ...` (stable; default `id asc`)."""
    out: list[Record] = list(records)
    for path, desc in reversed(order_keys(order_by)):
        out.sort(key=lambda r, p=path: _sort_key(resolve(r, p)), reverse=desc)
    return out


def _sort_key(value: Any) -> tuple[int, Any]:
    if value is None:
        return (0, 0)
    if isinstance(value, bool):
        return (1, int(value))
    if isinstance(value, int | float):
        return (1, value)
    return (2, str(value))  # ISO datetimes sort as text


def project(record: Record, fields: str | None) -> dict[str, Any]:
    """Keep only `fields=a,b/c` (the whole record when empty)."""
    if not fields:
        return dict(record)
    out: dict[str, Any] = {}
    for path in (f.strip() for f in fields.split(",")):
        if not path:
            continue
        value = resolve(record, path)
        if value is None:
            continue
        parts = ALIASES.get(path.lower(), path).split("/")
        node = out
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return out
