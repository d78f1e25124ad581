"""Logging: secrets redacted from every record, whoever logged it; short coloured lines on a terminal,
JSON lines otherwise.

    configure(level, fmt)   fmt "auto" (default): text when stderr is a terminal, JSON when it is not
                            (a file, a pipe, a container's log collector); "json" or "text" to force one.
                            Our loggers (bot, core, connectors, store) log at `level`; everyone else's
                            (uvicorn, apscheduler, alembic, httpx, slack_bolt ...) at WARNING, unless
                            `levels` asks otherwise ("apscheduler=INFO,httpx=DEBUG").
Text lines read `09:14:03 INFO  sync  synced 300 tickets  connection=sandbox`; colour only on a
terminal, never when NO_COLOR is set (https://no-color.org).
"""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

from core.redact import redact_text

_RESERVED = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime", "color_message"}
OURS = ("bot", "core", "connectors", "store", "deskbridge")
FORMATS = ("auto", "json", "text")
_COLORS = {logging.DEBUG: "\033[2m", logging.INFO: "\033[36m", logging.WARNING: "\033[33m",
           logging.ERROR: "\033[31m", logging.CRITICAL: "\033[1;31m"}
_DIM, _RESET = "\033[2m", "\033[0m"


def redact(text: str) -> str:
    """Mask anything that looks like a credential."""
    return redact_text(text)


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in record.__dict__.items() if k not in _RESERVED and not k.startswith("_")}


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage())
        record.args = None
        for key, value in list(record.__dict__.items()):
            if key not in _RESERVED and isinstance(value, str):
                setattr(record, key, redact(value))
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in _extras(record).items():
            plain = isinstance(value, (int, float, bool, type(None), dict, list))
            data[key] = value if plain else str(value)
        if record.exc_info:
            data["exc"] = redact(self.formatException(record.exc_info))
        return json.dumps(data, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """One short line per record: local time, level, the logger's last name, the message, key=value extras."""

    def __init__(self, *, color: bool = False) -> None:
        super().__init__()
        self.color = color

    def format(self, record: logging.LogRecord) -> str:
        when = datetime.fromtimestamp(record.created).astimezone().strftime("%H:%M:%S")  # local time
        level = f"{record.levelname:<5}"
        name = record.name.rsplit(".", 1)[-1] if record.name.split(".", 1)[0] in OURS else record.name
        extras = "  ".join(f"{k}={_short(v)}" for k, v in _extras(record).items()
                           if not isinstance(v, (dict, list)))  # structured extras: JSON lines only
        if self.color:
            level = f"{_COLORS.get(record.levelno, '')}{level}{_RESET}"
            when, name = f"{_DIM}{when}{_RESET}", f"{_DIM}{name}{_RESET}"
            extras = f"{_DIM}{extras}{_RESET}" if extras else ""
        line = f"{when} {level} {name}  {record.getMessage()}" + (f"  {extras}" if extras else "")
        if record.exc_info:
            line += "\n" + redact(self.formatException(record.exc_info))
        return line


class LevelGate(logging.Filter):
    """Third-party records below WARNING are dropped (whatever level their library set) unless `levels`
    names the logger or a parent of it; ours pass at our level. A filter on the handler, so that a
    test's or another handler's logger levels are never changed behind its back."""

    def __init__(self, ours: int, levels: dict[str, int]) -> None:
        super().__init__()
        self.ours, self.levels = ours, levels

    def threshold(self, name: str) -> int:
        parts = name.split(".")
        for i in range(len(parts), 0, -1):
            asked = self.levels.get(".".join(parts[:i]))
            if asked is not None:
                return asked
        return self.ours if parts[0] in OURS else max(logging.WARNING, self.ours)

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= self.threshold(record.name)


def _short(value: Any) -> str:
    text = str(value)
    return json.dumps(text) if (" " in text or not text) else text


def wants_color(stream: TextIO) -> bool:
    """Colour only on a terminal, and never with NO_COLOR set."""
    return _isatty(stream) and not os.environ.get("NO_COLOR")


def _isatty(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # closed or not a real stream
        return False


def choose_format(fmt: str, stream: TextIO) -> str:
    """"json" or "text": "auto" is text on a terminal and JSON elsewhere."""
    if fmt not in FORMATS:
        raise ValueError(f"log format {fmt!r}: use one of {', '.join(FORMATS)}")
    if fmt == "auto":
        return "text" if _isatty(stream) else "json"
    return fmt


def parse_levels(spec: str) -> dict[str, int]:
    """"apscheduler=INFO,httpx=DEBUG" as {logger: level}; a clear error naming the bad part."""
    levels: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        name, sep, level = part.partition("=")
        number = logging.getLevelName(level.strip().upper()) if sep else None
        if not name.strip() or not isinstance(number, int):
            raise ValueError(f"log level {part!r}: write logger=LEVEL (DEBUG, INFO, WARNING, ERROR), comma-separated")
        levels[name.strip()] = number
    return levels


def configure(level: str = "INFO", fmt: str = "auto", *, levels: str = "", stream: TextIO | None = None) -> str:
    """Install one redacting handler on the root logger; returns the format chosen ("json" or "text")."""
    out = stream if stream is not None else sys.stderr
    chosen = choose_format(fmt, out)
    ours = logging.getLevelName(level.upper())
    if not isinstance(ours, int):
        raise ValueError(f"log level {level!r}: use DEBUG, INFO, WARNING or ERROR")
    asked = parse_levels(levels)
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    handler = logging.StreamHandler(out)
    handler.addFilter(LevelGate(ours, asked))
    handler.addFilter(RedactingFilter())
    handler.setFormatter(JsonFormatter() if chosen == "json" else TextFormatter(color=wants_color(out)))
    root.addHandler(handler)
    # The root level lets our records through; the gate on the handler holds other libraries at WARNING.
    # (Package loggers keep their own levels: nothing here outlives a reconfiguration.)
    root.setLevel(min([ours, *asked.values()]))
    for name, number in asked.items():
        logging.getLogger(name).setLevel(number)
    return chosen
