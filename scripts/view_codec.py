"""JSON for the core views (frozen dataclasses), so a README picture's input can be kept beside the picture.

    data = encode(view)                 # plain JSON: datetimes as ISO text, enums as their value, tuples as lists
    view = decode(TicketView, data)     # the same view again (checked by tests/test_readme_pictures.py)

Decoding follows the dataclasses' type hints, so a field added with a default still reads an older file,
and a field removed or renamed fails loudly instead of drawing a picture from stale data.
"""

from __future__ import annotations

import dataclasses
import enum
import types
import typing
from datetime import datetime
from typing import Any


def encode(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: encode(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, list | tuple):
        return [encode(v) for v in value]
    if isinstance(value, dict):
        return {str(k): encode(v) for k, v in value.items()}
    return value


def decode(tp: Any, data: Any) -> Any:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any:
        return data
    if origin in (typing.Union, types.UnionType):
        if data is None:
            return None
        return decode(next(a for a in args if a is not type(None)), data)
    if dataclasses.is_dataclass(tp):
        hints = typing.get_type_hints(tp)
        unknown = set(data) - set(hints)
        if unknown:
            raise ValueError(f"{tp.__name__} has no field(s) {sorted(unknown)}: regenerate the pictures' data")
        return tp(**{name: decode(hints[name], value) for name, value in data.items()})
    if tp is datetime:
        return datetime.fromisoformat(data)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return tp(data)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(decode(args[0], v) for v in data)
        return tuple(decode(a, v) for a, v in zip(args, data, strict=True))
    if origin is dict:
        return {k: decode(args[1], v) for k, v in data.items()}
    if origin is list:
        return [decode(args[0], v) for v in data]
    return data
