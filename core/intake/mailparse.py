"""Pure e-mail rules (stdlib `email` only): what a message is, whether it is noise, which ticket it names,
and the new text of a reply (quoted history and signature stripped).

Noise (RFC 3834 and common practice): `Auto-Submitted` other than `no` (its keyword; comments and parameters
after it do not count), `Precedence: bulk|junk|list`, `List-Id`/`List-Unsubscribe`, `X-Autoreply`/`X-Autorespond`,
`X-Auto-Response-Suppress`-style Exchange auto-replies, an empty `Return-Path <>`, delivery/read reports
(`multipart/report`), MAILER-DAEMON/postmaster senders, and our own addresses.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import getaddresses, parseaddr
from html.parser import HTMLParser
from typing import Any

from core.numbers import whole

TOKEN = re.compile(r"\[DB-(\d{1,12})\]", re.IGNORECASE)
_PREFIX = re.compile(r"^\s*((re|fw|fwd|aw|wg|sv|vs|antw|rif|tr)\s*(\[\d+\])?\s*:\s*)+", re.IGNORECASE)
_QUOTE_HEADERS = (
    re.compile(r"^\s*On .{0,200}wrote:\s*$", re.IGNORECASE),
    re.compile(r"^\s*Am .{0,200}schrieb.{0,100}:\s*$", re.IGNORECASE),
    re.compile(r"^\s*Le .{0,200}a écrit\s*:\s*$", re.IGNORECASE),
    re.compile(r"^\s*-{2,}\s*Original Message\s*-{2,}\s*$", re.IGNORECASE),
    re.compile(r"^\s*_{10,}\s*$"),
    re.compile(r"^\s*From:\s.+$", re.IGNORECASE),  # Outlook's quoted header block
)
_SIGNATURE = (re.compile(r"^-- ?$"), re.compile(r"^\s*Sent from my \w+", re.IGNORECASE),
              re.compile(r"^\s*Get Outlook for ", re.IGNORECASE))
_DAEMONS = ("mailer-daemon", "postmaster", "noreply-dmarc", "bounce")


@dataclass(frozen=True, slots=True)
class Attachment:
    filename: str
    content_type: str
    content: bytes


@dataclass(frozen=True, slots=True)
class Mail:
    message_id: str
    sender: str  # lower-case address
    sender_name: str
    subject: str
    text: str  # the new text only
    references: tuple[str, ...]  # In-Reply-To first, then References (newest last)
    noise: str | None  # why it is ignored, or None
    attachments: tuple[Attachment, ...] = field(default=())
    plus_token: int | None = None  # the ticket number of a `support+db-123@…` recipient address


def _ids(value: str | None) -> list[str]:
    return re.findall(r"<[^<>\s]+>", value or "")


def clean_subject(subject: str) -> str:
    """The subject without reply/forward prefixes (RE:, AW:, SV: ...)."""
    return _PREFIX.sub("", subject or "").strip()


PLUS = re.compile(r"\+db-?(\d{1,12})@", re.IGNORECASE)


def plus_token(msg: EmailMessage) -> int | None:
    """The ticket number of a plus-addressed recipient (`support+db-123@msp.example`, as our replies' Reply-To
    may name it), from To, Cc or Delivered-To."""
    for header in ("To", "Cc", "Delivered-To"):
        for _, addr in getaddresses([str(v) for v in msg.get_all(header) or []]):
            m = PLUS.search(addr or "")
            if m:
                return whole(m.group(1))  # None above any ticket's number (the column's range)
    return None


def ticket_token(subject: str) -> int | None:
    """The ticket number of a `[DB-123]` token in the subject."""
    m = TOKEN.search(subject or "")
    return whole(m.group(1)) if m else None  # None above any ticket's number (the column's range)


def strip_reply(text: str) -> str:
    """The new part of a reply: up to the first quote header or quoted block, without the signature."""
    out: list[str] = []
    for line in (text or "").replace("\r\n", "\n").split("\n"):
        if line.startswith(">") or any(p.match(line) for p in _QUOTE_HEADERS):
            break
        if any(p.match(line) for p in _SIGNATURE):
            break
        out.append(line)
    return "\n".join(out).strip()


def noise_reason(msg: EmailMessage, sender: str, own: frozenset[str]) -> str | None:
    """Why this message must not become a ticket or get a reply (None: a person wrote it)."""
    auto = (msg.get("Auto-Submitted") or "").strip().lower()
    # RFC 3834 §5: the keyword may be followed by comments and parameters ("no (typed by hand)",
    # "auto-replied; owner-email=…"); only the keyword decides, and only "no" is a person.
    if auto and re.split(r"[\s;(]", auto, maxsplit=1)[0] != "no":
        return f"Auto-Submitted: {auto}"
    precedence = (msg.get("Precedence") or "").strip().lower()
    if precedence in ("bulk", "junk", "list", "auto_reply"):
        return f"Precedence: {precedence}"
    for header in ("List-Id", "List-Unsubscribe", "X-Autoreply", "X-Autorespond", "X-Auto-Reply"):
        if msg.get(header) is not None:
            return header
    if (msg.get("X-Auto-Response-Suppress") or "").strip() and (msg.get("Auto-Submitted") or msg.get("X-Autoreply")):
        return "X-Auto-Response-Suppress"
    if (msg.get("Return-Path") or "").strip() == "<>":
        return "empty Return-Path (bounce)"
    if msg.get_content_type() == "multipart/report":  # a delivery or read report (RFC 6522), whoever sends it
        return "delivery report"
    local = sender.split("@", 1)[0]
    if any(local.startswith(d) for d in _DAEMONS):
        return f"sender {sender}"
    if sender in own:
        return "our own address"
    return None


def _payload(part: Any) -> bytes:
    """An attachment's bytes (decoded from its transfer encoding); empty when it has none."""
    data = part.get_payload(decode=True)
    return data if isinstance(data, bytes) else b""


def _body(msg: EmailMessage) -> str:
    part = msg.get_body(preferencelist=("plain", "html"))
    if part is None:
        return ""
    content = part.get_content()
    if part.get_content_type() == "text/html":
        return html_text(str(content))
    return str(content)


_HIDDEN = frozenset({"head", "style", "script", "title", "template"})
_BLOCKS = frozenset({"br", "p", "div", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre", "hr",
                     "table", "ul", "ol"})


class _Text(HTMLParser):
    """The text a reader of an HTML mail sees: no head, style or script; entities decoded; blocks on new lines."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _HIDDEN:
            self.hidden += 1
        elif tag in _BLOCKS:
            self.out.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _HIDDEN:
            self.hidden = max(0, self.hidden - 1)
        elif tag in _BLOCKS:
            self.out.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.hidden:
            self.out.append(re.sub(r"[ \t\r\n]+", " ", data))  # HTML collapses source white space


def html_text(markup: str) -> str:
    """What the customer wrote in an HTML-only mail, as plain text (non-breaking spaces as spaces)."""
    parser = _Text()
    parser.feed(markup)
    parser.close()
    text = "".join(parser.out).replace("\u00a0", " ")
    lines = [line.strip() for line in text.split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def parse(raw: bytes, *, own_addresses: frozenset[str] = frozenset()) -> Mail:
    """One raw RFC 5322 message as a Mail (a message without a Message-ID gets one from its bytes)."""
    msg = BytesParser(policy=policy.default).parsebytes(raw)
    assert isinstance(msg, EmailMessage)
    name, addr = parseaddr(str(msg.get("From") or ""))
    sender = addr.strip().lower()
    mid = (_ids(str(msg.get("Message-ID") or "")) or [""])[0]
    if not mid:
        mid = f"<sha256.{hashlib.sha256(raw).hexdigest()[:40]}@deskbridge.invalid>"
    refs = _ids(str(msg.get("In-Reply-To") or "")) + list(reversed(_ids(str(msg.get("References") or ""))))
    attachments = tuple(
        Attachment(part.get_filename() or "attachment", part.get_content_type(), _payload(part))
        for part in msg.iter_attachments())
    return Mail(message_id=mid[:255], sender=sender, sender_name=name.strip(), subject=str(msg.get("Subject") or ""),
                text=strip_reply(_body(msg)), references=tuple(refs),
                noise=noise_reason(msg, sender, own_addresses), attachments=attachments, plus_token=plus_token(msg))


@dataclass(frozen=True, slots=True)
class MailView:
    """A kept message as a technician reads it on the admin pages: headers and the whole body as plain text.

    HTML is never rendered: an HTML-only body is turned into its text (scripts, styles and images dropped, so no
    remote image is ever fetched) and the page escapes everything; control characters are dropped."""

    headers: tuple[tuple[str, str], ...]  # (name, value) of From, To, Cc, Date, Subject, as present
    body: str
    from_html: bool  # the body was HTML only (shown as its text)
    attachments: tuple[tuple[str, str, int], ...]  # (file name, content type, bytes)


VIEW_HEADERS = ("From", "To", "Cc", "Reply-To", "Date", "Subject")


def view(raw: bytes) -> MailView:
    """What a kept raw message says, for reading (see MailView); a message that cannot be parsed shows its bytes."""
    from core.control_chars import drop_controls

    try:
        msg = BytesParser(policy=policy.default).parsebytes(raw)
        headers = tuple((h, drop_controls(str(msg.get(h)), one_line=True)) for h in VIEW_HEADERS
                        if msg.get(h) is not None)
        part = msg.get_body(preferencelist=("plain", "html"))
        from_html = part is not None and part.get_content_type() == "text/html"
        body = _body(msg) if isinstance(msg, EmailMessage) else ""
        attachments = tuple((drop_controls(p.get_filename() or "attachment", one_line=True), p.get_content_type(),
                             len(_payload(p))) for p in msg.iter_attachments())
    except Exception:  # a broken message (bad charset, mangled MIME): its bytes as text, nothing lost
        return MailView((), drop_controls(raw.decode("utf-8", errors="replace")), False, ())
    return MailView(headers, drop_controls(body), from_html, attachments)
