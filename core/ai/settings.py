"""AI settings of a workspace (stored under `settings["ai"]`): names, defaults, parsing with clear errors."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from core.errors import InvalidInput

SETTINGS_KEY = "ai"


def _flag(raw: str) -> bool:
    v = raw.strip().lower()
    if v in ("on", "true", "yes", "1"):
        return True
    if v in ("off", "false", "no", "0"):
        return False
    raise ValueError("use on or off")


def _ratio(raw: str) -> float:
    try:
        v = float(raw.strip().rstrip("%")) / (100 if raw.strip().endswith("%") else 1)
    except ValueError:
        raise ValueError("use a number between 0 and 1, e.g. 0.8 (or a percentage, 80%)") from None
    if not 0.0 < v <= 1.0:
        raise ValueError("use a number above 0 and at most 1, e.g. 0.8 (or a percentage, 80%)")
    return v


def _names(raw: str) -> list[str]:
    v = raw.strip()
    if v.lower() in ("", "none", "off", "-"):
        return []
    return sorted({p.strip() for p in v.split(",") if p.strip()})


# name -> (parser, default, help)
OPTIONS: dict[str, tuple[Callable[[str], Any], Any, str]] = {
    "categorize": (_flag, True, "suggest categories on tickets"),
    "auto_apply": (_flag, False, "apply a category on its own above the thresholds (off: suggest only)"),
    "fill_threshold": (_ratio, 0.80, "confidence needed to fill an empty category"),
    "change_threshold": (_ratio, 0.85, "confidence needed to change a category no technician chose"),
    "excluded": (_names, [], "categories never suggested (comma-separated; none clears)"),
    "similar": (_flag, True, "show similar past tickets and their resolutions"),
    "cross_customer": (_flag, False, "technicians see similar tickets of other customers"),
    "similar_floor": (_ratio, 0.25, "lowest similarity shown"),
    "risk": (_flag, True, "score open tickets' escalation risk (at-risk list, chips on cards)"),
    "risk_threshold": (_ratio, 0.60, "risk from which a ticket is listed at risk and its card shows a chip"),
    "risk_post": (_flag, True, "post tickets that newly rise over risk_threshold to the SLA/dispatch channels"),
    "kb": (_flag, True, "link knowledge-base articles (PSA, Hudu, IT Glue, a Markdown folder) on technicians' cards"),
    "kb_threshold": (_ratio, 0.30, "lowest match for a knowledge-base link (below it: no link)"),
    "drafts": (_flag, False, "offer reply drafts"),
    "remote_llm": (_flag, False, "send (redacted) ticket text to the configured LLM endpoint for drafts"),
}


def effective(stored: Mapping[str, Any] | None) -> dict[str, Any]:
    """Every AI setting with its value (stored or default)."""
    own = dict((stored or {}).get(SETTINGS_KEY) or {})
    return {k: own.get(k, default) for k, (_, default, _) in OPTIONS.items()}


def parse(name: str, raw: str) -> tuple[str, Any]:
    """(name, value) of a setting from what an admin typed; InvalidInput says what is accepted."""
    key = name.strip().lower().replace("-", "_")
    if key not in OPTIONS:
        raise InvalidInput(f"There is no AI setting '{name}'.", hint="Settings: " + ", ".join(OPTIONS), field=name)
    parser = OPTIONS[key][0]
    try:
        return key, parser(raw)
    except ValueError as exc:
        raise InvalidInput(f"'{raw}' is not a valid value for {key}: {exc}.",
                           hint=f"{key}: {OPTIONS[key][2]}. See every value with /deskbridge ai settings.",
                           field=key) from None
