"""Chat markup to the plain text a person reads: what reaches the PSA (and the customer's e-mail).

A Slack message's `text` carries mentions as `<@U123>`, channels as `<#C123|general>`, links as
`<https://example.com|the page>`, special mentions as `<!here>` and escapes `&`, `<` and `>` as entities;
a Teams message is HTML (`<at>Ana</at>`, `<a href="…">…</a>`, `<p>`, `<br>`, `&nbsp;`). Written to the PSA
as is, a note would read `<@W222>` or `&amp;`. Both become what the sender saw: `@Ana Tech`, `#general`,
`the page (https://example.com)`, `@here`, `&`.

Names are looked up by the surface (it knows its platform's directory) and passed in; an id without a
name is shown as a neutral `@someone` / `#channel`, never as the raw id.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from html.parser import HTMLParser

_SLACK_TOKEN = re.compile(r"<([^<>]*)>")
_SLACK_USER = re.compile(r"[@]([UW][A-Z0-9]+)")
SPECIAL = {"here": "@here", "channel": "@channel", "everyone": "@everyone"}


def _slack_entities(text: str) -> str:
    """Slack escapes exactly these three (api.slack.com/reference/surfaces/formatting#escaping)."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def slack_user_ids(text: str) -> list[str]:
    """The user ids mentioned in a Slack message (to look their names up before `slack_plain`)."""
    out: list[str] = []
    for m in _SLACK_TOKEN.finditer(text or ""):
        body = m.group(1).split("|", 1)[0]
        u = _SLACK_USER.fullmatch(body)
        if u and u.group(1) not in out:
            out.append(u.group(1))
    return out


def _slack_token(body: str, names: Mapping[str, str]) -> str:
    target, _, label = body.partition("|")
    label = _slack_entities(label)
    if target.startswith("@"):
        name = names.get(target[1:]) or label.lstrip("@")
        return f"@{name}" if name else "@someone"
    if target.startswith("#"):
        name = label or names.get(target[1:], "")
        return f"#{name}" if name else "#channel"
    if target.startswith("!"):
        kind = target[1:].split("^", 1)[0]
        if kind in SPECIAL:
            return SPECIAL[kind]
        return label or ""  # subteams carry their handle as the label; dates their fallback text
    url = _slack_entities(target)
    if url.startswith("mailto:"):
        address = url.removeprefix("mailto:")
        return label if label and label != address else address
    if not label or label == url or label == url.split("://", 1)[-1]:
        return url
    return f"{label} ({url})"


def slack_plain(text: str, names: Mapping[str, str] | None = None) -> str:
    """A Slack message's text as a person reads it (mentions as names, links as text and URL)."""
    names = names or {}
    out: list[str] = []
    pos = 0
    for m in _SLACK_TOKEN.finditer(text or ""):
        out.append(_slack_entities(text[pos:m.start()]))
        out.append(_slack_token(m.group(1), names))
        pos = m.end()
    out.append(_slack_entities((text or "")[pos:]))
    return "".join(out)


class _TeamsText(HTMLParser):
    """Teams' message HTML to text: blocks become lines, links keep their address, mentions their name."""

    BLOCKS = frozenset({"p", "div", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._href: list[str | None] = []
        self._link_text: list[list[str]] = []
        self._at = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "br":
            self._emit("\n")
        elif tag in self.BLOCKS:
            self._block()
            if tag == "li":
                self._emit("- ")
        elif tag == "a":
            self._href.append(dict(attrs).get("href"))
            self._link_text.append([])
        elif tag == "at":
            self._at += 1
            self._emit("@")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.BLOCKS:
            self._block()
        elif tag == "a" and self._href:
            href, text = self._href.pop(), "".join(self._link_text.pop()).strip()
            if href and text and text != href and text != href.split("://", 1)[-1]:
                self._emit(f"{text} ({href})")
            else:
                self._emit(href or text)
        elif tag == "at":
            self._at = max(0, self._at - 1)

    def handle_data(self, data: str) -> None:
        self._emit(data.replace("\xa0", " "))

    def _emit(self, s: str) -> None:
        if self._link_text:
            self._link_text[-1].append(s)
        else:
            self.parts.append(s)

    def _block(self) -> None:
        if self.parts and not "".join(self.parts[-2:]).endswith("\n"):
            self.parts.append("\n")


def teams_plain(text: str, text_format: str = "html") -> str:
    """A Teams message as a person reads it; `plain` text only has its entities decoded."""
    if text_format != "html" and "<" not in (text or ""):
        return html.unescape(text or "")
    parser = _TeamsText()
    parser.feed(text or "")
    parser.close()
    lines = [line.rstrip() for line in "".join(parser.parts).split("\n")]
    return "\n".join(lines).strip("\n")
