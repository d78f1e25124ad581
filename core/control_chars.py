"""Control characters in what people write: dropped before anything is stored or sent to a PSA.

BEL, ESC, backspace, DEL and the C1 controls come from pasted terminal output, e-mail bodies and broken clients,
never from words someone meant. No PSA documents accepting them: ConnectWise, Autotask and HaloPSA keep ticket text
for web pages and e-mail (XML 1.0 forbids them; a reader sees nothing or a box) and may refuse a write that carries
one, which would hold every later write of the ticket. Tabs and line breaks are text in a body; a one-line field
(a subject, a file name) gets one space for a run of blanks holding a line break or tab.
"""

from __future__ import annotations

import re

_CONTROLS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_BREAKS = re.compile(r"[ \t\r\n]*[\t\r\n][ \t\r\n]*")


def drop_controls(text: str, *, one_line: bool = False) -> str:
    """The text without control characters (tab, CR and LF kept unless `one_line`, where they become a space)."""
    text = _CONTROLS.sub("", text)
    return _BREAKS.sub(" ", text) if one_line else text
