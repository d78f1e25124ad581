"""Masking credentials in free text: one set of patterns for logs, the audit log and stored error text."""

from __future__ import annotations

import re

REDACTED = "[redacted]"

_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"xox[abposr]-[A-Za-z0-9-]+"), "xox*-" + REDACTED),  # Slack tokens
    (re.compile(r"xapp-[A-Za-z0-9-]+"), "xapp-" + REDACTED),
    (re.compile(r"dbk_[A-Za-z0-9]+_[A-Za-z0-9_-]+"), "dbk_" + REDACTED),  # our own API keys
    (re.compile(r"dbwhsec_[A-Za-z0-9_-]+"), "dbwhsec_" + REDACTED),  # generated alert webhook secrets
    (re.compile(r"dbl_[A-Za-z0-9_-]+"), "dbl_" + REDACTED),  # admin sign-in links (core/admin_links.py)
    (re.compile(r"(?i)\b(basic|bearer)\s+[A-Za-z0-9+/=._-]{8,}"), r"\1 " + REDACTED),
    (re.compile(r"(?i)(authorization|x-slack-signature|secret|apiintegrationcode|password|passwd|private_?key|"
                r"public_?key|client_secret|api[_-]?key|token)([\"']?\s*[:=]\s*[\"']?)([^\s\"',}&]+)"),
     r"\1\2" + REDACTED),
]


def redact_text(text: str, *, limit: int | None = None) -> str:
    """Mask anything that looks like a credential; optionally shorten to `limit` characters."""
    out = text
    for pattern, repl in _PATTERNS:
        out = pattern.sub(repl, out)
    if limit is not None and len(out) > limit:
        out = out[:limit] + f"… [{len(out) - limit} more characters]"
    return out
