"""Building ConnectWise `conditions` strings (pure). Every value goes through `literal`, never raw.

Syntax (reference/psa-apis.md §2.2): strings in double quotes, datetimes in [brackets], booleans and
numbers bare; `and`/`or` with parentheses. Embedded `"` and `\\` are escaped with a backslash
([unverified] on a live tenant: ConnectWise documents the quotes, the escape character is what open-source
clients send).

Datetimes: we send UTC with a `Z` suffix by default (`[2025-01-06T09:00:00Z]`), the format ConnectWise
documents for dates. django-connectwise switched to naive UTC timestamps in 2023 ("send naive timezones in
last updated"); the connection setting `naive_datetimes=true` sends that form instead. Both are whole
seconds: ConnectWise keeps `_info.lastUpdated` to the second, so flooring a watermark keeps `>=` inclusive.
"""

from __future__ import annotations

from datetime import UTC, datetime

Literal = str | int | float | bool | datetime | None


def format_datetime(value: datetime, *, naive: bool = False) -> str:
    """A bracketed UTC datetime, floored to whole seconds."""
    if value.tzinfo is None:
        raise ValueError("datetimes must be tz-aware")
    text = value.astimezone(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%S")
    return f"[{text}]" if naive else f"[{text}Z]"


def quote(text: str) -> str:
    """A double-quoted string literal with `\\` and `"` escaped."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def literal(value: Literal, *, naive: bool = False) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, datetime):
        return format_datetime(value, naive=naive)
    return quote(str(value))


def cond(path: str, op: str, value: Literal, *, naive: bool = False) -> str:
    """One comparison, e.g. cond("externalXRef", "=", 'a"b') -> externalXRef="a\\"b"."""
    if op not in ("=", "!=", "<", "<=", ">", ">=", "contains", "like"):
        raise ValueError(f"unknown operator {op!r}")
    sep = f" {op} " if op in ("contains", "like") else op
    return f"{path}{sep}{literal(value, naive=naive)}"


def in_(path: str, values: list[int] | list[str]) -> str:
    return f"{path} in ({','.join(literal(v) for v in values)})"


def and_(*parts: str | None) -> str:
    kept = [p for p in parts if p]
    return " and ".join(f"({p})" if " or " in p else p for p in kept)


def or_(*parts: str | None) -> str:
    kept = [p for p in parts if p]
    return "(" + " or ".join(kept) + ")" if len(kept) > 1 else (kept[0] if kept else "")
