"""Ticket text as the models see it: lower-cased words, punctuation and stop words dropped.

The evaluation set (IT Service Ticket Classification) is pre-processed this way, so live tickets are
normalised the same before training or scoring; otherwise scores on raw chat text would drift.
"""

from __future__ import annotations

import re

_WORD = re.compile(r"[a-z0-9][a-z0-9_]*")

# A short English stop list (the common function words); domain words like "not" and "no" are kept.
STOP_WORDS = frozenset(
    """a about above after again all am an and any are as at be because been before being below between
    both but by can could did do does doing down during each few for from further had has have having he
    her here hers herself him himself his how i if in into is it its itself just me more most my myself
    of off on once only or other our ours ourselves out over own same she should so some such than that
    the their theirs them themselves then there these they this those through to too under until up very
    was we were what when where which while who whom why will with would you your yours yourself
    yourselves hi hello thanks thank regards please dear""".split()
)


def normalise(text: str) -> str:
    """Lower-case words of `text` without stop words, joined by single spaces."""
    return " ".join(w for w in _WORD.findall(text.lower()) if w not in STOP_WORDS)


def ticket_text(subject: str, description: str = "") -> str:
    """The text a ticket is categorised and matched on: subject and description, normalised."""
    return normalise(f"{subject}\n{description}")
