"""A faithful HTML rendering of the Block Kit our Slack cards emit, for the README's Slack picture.

    html = message_html(blocks)        # raises Unsupported on any block or element type it does not draw

Draws what a Slack client draws for a bot message: header, section (text, two-column fields, accessory
button), context, divider, actions (buttons, primary/danger), images, and mrkdwn: *bold*, _italic_,
~strike~, `code`, ```preformatted```, <url|links>, <@user>/<#channel>/<!here> mentions, :emoji: and Slack's
&amp;/&lt;/&gt; escapes. Strict on purpose: a new block type in bot/slack/blocks.py fails the picture (and
tests/test_readme_pictures.py) instead of silently vanishing from it. Styles: scripts/pictures/slack.css.
"""

from __future__ import annotations

import html
import re
from typing import Any

BLOCKS = frozenset({"header", "section", "context", "divider", "actions", "image"})
ELEMENTS = frozenset({"button", "mrkdwn", "plain_text", "image"})

# Every :emoji: the Slack surface writes (the test checks bot/slack for names missing here); others stay text.
EMOJI = {
    "alarm_clock": "⏰", "broom": "🧹", "bulb": "💡", "bust_in_silhouette": "👤", "computer": "💻", "eyes": "👀", "hourglass": "⌛",
    "hourglass_flowing_sand": "⏳", "inbox_tray": "📥", "large_orange_circle": "🟠", "large_yellow_circle": "🟡",
    "lock": "🔒", "memo": "📝", "new": "🆕", "no_entry": "⛔", "pushpin": "📌", "red_circle": "🔴", "rotating_light": "🚨", "speech_balloon": "💬",
    "tada": "🎉", "warning": "⚠️", "white_check_mark": "✅", "white_circle": "⚪", "x": "❌",
}


class Unsupported(ValueError):
    """A block or element this renderer does not draw (so the picture would not be faithful)."""


_TOKEN = re.compile(r"<([^<>\n]+)>")
_CODE = re.compile(r"```(.+?)```|`([^`\n]+)`", re.S)
_BOLD = re.compile(r"(?<![\w*])\*(?=\S)([^*\n]*?\S)\*(?![\w*])")
_ITALIC = re.compile(r"(?<![\w_])_(?=\S)([^_\n]*?\S)_(?![\w_])")
_STRIKE = re.compile(r"(?<![\w~])~(?=\S)([^~\n]*?\S)~(?![\w~])")
_EMOJI = re.compile(r":([a-z0-9_+\-]+):")


def _unslack(text: str) -> str:
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def emoji(text: str) -> str:
    return _EMOJI.sub(lambda m: EMOJI.get(m.group(1), m.group(0)), text)


def _token(inner: str) -> str:
    """`<...>`: a link, a mention or a special mention, as Slack shows it."""
    target, _, label = inner.partition("|")
    if target.startswith("@"):
        return f'<span class="mention">@{html.escape(label or target[1:])}</span>'
    if target.startswith("#"):
        return f'<span class="mention">#{html.escape(label or target[1:])}</span>'
    if target.startswith("!"):
        return f'<span class="mention">@{html.escape(label or target[1:].split("^")[0])}</span>'
    return f'<a href="{html.escape(_unslack(target))}">{html.escape(emoji(_unslack(label or target)))}</a>'


def mrkdwn(text: str) -> str:
    """Slack mrkdwn (as sent, with Slack's escapes) to HTML."""
    kept: list[str] = []

    def keep(fragment: str) -> str:
        kept.append(fragment)
        return f"\x00{len(kept) - 1}\x00"

    def code(m: re.Match[str]) -> str:
        if m.group(1) is not None:
            return keep(f"<pre>{html.escape(_unslack(m.group(1).strip(chr(10))))}</pre>")
        return keep(f"<code>{html.escape(_unslack(m.group(2)))}</code>")

    text = _CODE.sub(code, text)
    text = _TOKEN.sub(lambda m: keep(_token(m.group(1))), text)
    out = html.escape(_unslack(text), quote=False)
    out = _BOLD.sub(r"<b>\1</b>", out)
    out = _ITALIC.sub(r"<i>\1</i>", out)
    out = _STRIKE.sub(r"<s>\1</s>", out)
    out = emoji(out).replace("\n", "<br>")
    return re.sub(r"\x00(\d+)\x00", lambda m: kept[int(m.group(1))], out)


def text_html(obj: dict[str, Any]) -> str:
    kind = obj.get("type")
    if kind == "mrkdwn":
        return mrkdwn(str(obj.get("text", "")))
    if kind == "plain_text":
        plain = html.escape(str(obj.get("text", "")), quote=False)
        return (emoji(plain) if obj.get("emoji", True) else plain).replace("\n", "<br>")
    raise Unsupported(f"text object {kind!r}")


def element_html(el: dict[str, Any]) -> str:
    kind = el.get("type")
    if kind == "button":
        style = el.get("style") if el.get("style") in ("primary", "danger") else "plain"
        return f'<span class="btn {style}">{text_html(el["text"])}</span>'
    if kind in ("mrkdwn", "plain_text"):
        return f'<span class="ctx-text">{text_html(el)}</span>'
    if kind == "image":
        return f'<img class="ctx-img" src="{html.escape(el["image_url"])}" alt="{html.escape(el.get("alt_text", ""))}">'
    raise Unsupported(f"element {kind!r}")


def block_html(block: dict[str, Any]) -> str:
    kind = block.get("type")
    if kind == "header":
        return f'<div class="b-header">{text_html(block["text"])}</div>'
    if kind == "divider":
        return '<div class="b-divider"></div>'
    if kind == "context":
        return '<div class="b-context">' + "".join(element_html(e) for e in block["elements"]) + "</div>"
    if kind == "actions":
        return '<div class="b-actions">' + "".join(element_html(e) for e in block["elements"]) + "</div>"
    if kind == "image":
        return f'<div class="b-image"><img src="{html.escape(block["image_url"])}" alt=""></div>'
    if kind == "section":
        inner = f'<div class="mrkdwn">{text_html(block["text"])}</div>' if block.get("text") else ""
        if block.get("fields"):
            inner += '<div class="fields">' + "".join(
                f'<div class="field">{text_html(f)}</div>' for f in block["fields"]) + "</div>"
        accessory = element_html(block["accessory"]) if block.get("accessory") else ""
        return f'<div class="b-section"><div class="s-main">{inner}</div>{accessory}</div>'
    raise Unsupported(f"block {kind!r}")


def message_html(blocks: list[dict[str, Any]]) -> str:
    """The blocks of one message, in order."""
    return "\n".join(block_html(b) for b in blocks)


def types_in(blocks: list[dict[str, Any]]) -> set[tuple[str, str]]:
    """("block", type) and ("element", type) pairs present in `blocks` (text objects count as elements)."""
    seen: set[tuple[str, str]] = set()
    for b in blocks:
        seen.add(("block", b["type"]))
        for el in [*(b.get("elements") or []), *(b.get("fields") or []), b.get("accessory"), b.get("text")]:
            if el:
                seen.add(("element", el["type"]))
                if isinstance(el.get("text"), dict):
                    seen.add(("element", el["text"]["type"]))
    return seen
