"""Whole numbers from text a person typed or a request carried (ids, cursors, counts, ports, lengths).

`str.isdigit()` is True for '²' and '①', which `int()` refuses (a 500 where a refusal was meant), and a long
run of digits overflows SQLite (2^63) or a PostgreSQL integer column (2^31): both are checked here, once."""

from __future__ import annotations

MAX_ID = 2**31 - 1  # ids, numbers and cursors are 32-bit integer columns


def whole(text: object, *, max_value: int = MAX_ID) -> int | None:
    """The number `text` spells in ASCII digits, if it is at most `max_value`; else None."""
    s = str(text if text is not None else "").strip()
    if not (s.isascii() and s.isdigit()) or len(s) > len(str(max_value)):
        return None
    value = int(s)
    return value if value <= max_value else None
