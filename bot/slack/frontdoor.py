"""The front door of `/slack/events`: size, signature and shape are checked before bolt sees a request.

Order, cheapest first, so an attacker's request costs us as little as possible and a technician's ack
never waits behind it:
1. signature and timestamp headers present and well formed, timestamp within 5 minutes (no body read);
2. a declared `Content-Length` over the cap is refused at once (413, no body read);
3. the body is streamed with the cap enforced while reading (chunked uploads cannot get past it);
4. HMAC-SHA256 over `v0:{ts}:{raw body}`, compared in constant time (Slack's scheme);
5. only then is the body parsed, and its shape checked: anything Slack would never send is a 400.

Nothing here logs a request body or a header value: refusals are logged as one line with the reason.

The cap (MAX_BODY_BYTES) comes from the largest payload Slack can send us. Slack truncates message text
at 40,000 characters; an Events API `message` carries the text once more as `rich_text` blocks, and JSON
escapes a non-BMP character as 12 bytes (`\\ud83d\\ude00`): 2 x 40,000 x 12 ≈ 960 KB in the worst case.
Interactivity payloads (form-encoded JSON) carry at most one message (50 blocks x 3,000 characters) plus one
modal's state (100 inputs x 3,000 characters); percent-encoding makes that ≈ 1.1 MB for pathological
text and far less for real text. tests/bot/slack/test_frontdoor.py builds these worst cases and checks
they fit. Two MiB leaves room for Slack's envelope and still takes ~2 ms to read.
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib import parse

from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.request.async_internals import build_async_context
from slack_bolt.request.async_request import AsyncBoltRequest

log = logging.getLogger("deskbridge.slack")

MAX_BODY_BYTES = 2 * 1024 * 1024
MAX_SKEW_S = 300  # Slack's own rule: a timestamp more than 5 minutes away is a replay
INTERACTIVE_TYPES = frozenset({
    "block_actions", "view_submission", "view_closed", "shortcut", "message_action", "block_suggestion",
    "interactive_message", "dialog_submission", "dialog_suggestion", "dialog_cancellation",
})
EVENT_ENVELOPES = frozenset({"event_callback", "url_verification", "app_rate_limited"})


@dataclass(frozen=True, slots=True)
class Refusal:
    """A request refused at the door: the status to answer and a short reason for the log (never the body)."""

    status: int
    reason: str


@dataclass(frozen=True, slots=True)
class Admitted:
    """A verified request: its raw body (for bolt) and what it says (parsed once, shape-checked)."""

    body: bytes
    payload: dict[str, Any]
    kind: str  # "command", "interactive" or "event"
    text: str = ""  # the body decoded (UTF-8), as bolt keeps it (`raw_body`)

    @property
    def team_id(self) -> str | None:
        p = self.payload
        team: dict[str, Any] = p["team"] if isinstance(p.get("team"), dict) else {}
        user: dict[str, Any] = p["user"] if isinstance(p.get("user"), dict) else {}
        found = p.get("team_id") or team.get("id") or user.get("team_id")
        return str(found) if found else None

    @property
    def enterprise_id(self) -> str | None:
        p = self.payload
        ent = p.get("enterprise")
        found = p.get("enterprise_id") or (ent.get("id") if isinstance(ent, dict) else None)
        return str(found) if found else None


class FrontDoor:
    """Checks a Slack HTTP request before anything else reads it."""

    def __init__(self, signing_secret: str, *, max_bytes: int = MAX_BODY_BYTES,
                 clock: Callable[[], float] = time.time) -> None:
        self._secret = signing_secret.encode()
        self.max_bytes = max_bytes
        self._clock = clock

    def check_headers(self, headers: Any) -> Refusal | None:
        """Refuse before reading the body: missing or malformed signature, stale timestamp, declared size."""
        stamp = headers.get("x-slack-request-timestamp") or ""
        sig = headers.get("x-slack-signature") or ""
        if not stamp.isascii() or not stamp.isdigit() or len(stamp) > 12:
            return Refusal(401, "missing or malformed timestamp")
        if abs(self._clock() - int(stamp)) > MAX_SKEW_S:
            return Refusal(401, "stale timestamp")
        if not sig.startswith("v0=") or len(sig) != 67:
            return Refusal(401, "missing or malformed signature")
        declared = headers.get("content-length")
        if declared is not None:
            if not declared.isascii() or not declared.isdigit():
                return Refusal(400, "malformed content-length")
            if int(declared) > self.max_bytes:
                return Refusal(413, "body over the size cap")
        return None

    async def read(self, stream: AsyncIterator[bytes]) -> bytes | Refusal:
        """The body, read with the cap enforced chunk by chunk (stops reading as soon as it is exceeded)."""
        chunks: list[bytes] = []
        size = 0
        async for chunk in stream:
            size += len(chunk)
            if size > self.max_bytes:
                return Refusal(413, "body over the size cap")
            chunks.append(chunk)
        return b"".join(chunks)

    def verify(self, headers: Any, body: bytes) -> Refusal | None:
        """Slack's v0 signature over the raw bytes, compared in constant time."""
        stamp = headers.get("x-slack-request-timestamp") or ""
        expected = "v0=" + hmac.new(self._secret, b"v0:" + stamp.encode() + b":" + body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, headers.get("x-slack-signature") or ""):
            return Refusal(401, "bad signature")
        return None

    @staticmethod
    def parse(content_type: str, body: bytes) -> Admitted | Refusal:
        """What a verified body says; a shape Slack never sends is a 400."""
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            return Refusal(400, "body is not UTF-8")
        if content_type.split(";")[0].strip().lower() == "application/json":
            return _parse_event(text, body)
        try:
            form = parse_form(text)
        except ValueError:
            return Refusal(400, "malformed form body")
        if "payload" in form:
            return _parse_interactive(form["payload"][0], body, text)
        if "command" in form:
            fields = {k: v[0] for k, v in form.items()}
            if not fields["command"].startswith("/") or not fields.get("team_id") or not fields.get("user_id"):
                return Refusal(400, "slash command without command, team or user")
            return Admitted(body, fields, "command", text)
        return Refusal(400, "neither a command nor an interactive payload")


MAX_FORM_FIELDS = 200


def parse_form(text: str) -> dict[str, list[str]]:
    """`parse_qs(text, keep_blank_values=True, strict_parsing=True, max_num_fields=200)`, the same answer and
    the same ValueError, with each field decoded in C where it can be (see `unquote_plus`)."""
    if not text:
        return {}
    fields = text.split("&")
    if len(fields) > MAX_FORM_FIELDS:
        raise ValueError("Max number of fields exceeded")
    form: dict[str, list[str]] = {}
    for field in fields:
        name, eq, value = field.partition("=")
        if not eq:
            raise ValueError("bad query field")
        form.setdefault(unquote_plus(name), []).append(unquote_plus(value))
    return form


def unquote_plus(value: str) -> str:
    """urllib's `unquote_plus(value)` (UTF-8, undecodable bytes replaced), exactly.

    urllib decodes escapes in a Python loop, ~0.2 µs each: ~30 µs for a click's payload, twice that for a
    card's. When every `%` starts a two-digit escape and there is no `=`, CR or LF in the field (always, for
    what Slack sends), binascii's quoted-printable decoder reads `=XX` escapes exactly as urllib reads
    `%XX`, in C (~5 µs for a click's payload); any other field takes urllib's path. tests/bot/slack/test_frontdoor.py compares both on
    random fields.
    """
    if "%" not in value:
        return value.replace("+", " ")
    if not value.isascii() or "=" in value or "\r" in value or "\n" in value:
        return parse.unquote_plus(value)
    raw = value.replace("+", " ").replace("%", "=").encode("ascii")
    decoded = binascii.a2b_qp(raw)
    # A valid escape is 3 characters in, 1 out; binascii keeps or drops anything else beginning with "=" with a
    # smaller saving, so the length says whether every "%" began a valid escape.
    if len(decoded) != len(raw) - 2 * value.count("%"):
        return parse.unquote_plus(value)
    return decoded.decode("utf-8", "replace")


def _parse_event(text: str, body: bytes) -> Admitted | Refusal:
    try:
        data = json.loads(text)
    except ValueError:
        return Refusal(400, "malformed JSON")
    if not isinstance(data, dict) or data.get("type") not in EVENT_ENVELOPES:
        return Refusal(400, "not an Events API envelope")
    if data["type"] == "event_callback":
        if not isinstance(data.get("event"), dict) or not isinstance(data["event"].get("type"), str):
            return Refusal(400, "event_callback without an event")
        if not data.get("team_id") and not data.get("enterprise_id"):
            return Refusal(400, "event_callback without a team")
    return Admitted(body, data, "event", text)


def _parse_interactive(raw: str, body: bytes, text: str) -> Admitted | Refusal:
    try:
        payload = json.loads(raw)
    except ValueError:
        return Refusal(400, "malformed interactive payload")
    if not isinstance(payload, dict) or payload.get("type") not in INTERACTIVE_TYPES:
        return Refusal(400, "not an interactive payload")
    team = payload.get("team")
    user = payload.get("user")
    if team is not None and not isinstance(team, dict):
        return Refusal(400, "interactive payload with a malformed team")
    if not isinstance(user, dict) or not user.get("id"):
        return Refusal(400, "interactive payload without a user")
    if not (team or {}).get("id") and not user.get("team_id") and not payload.get("enterprise"):
        return Refusal(400, "interactive payload without a team")
    for key in ("actions", "view", "message", "channel", "container"):
        if key in payload and payload[key] is not None and not isinstance(payload[key], (dict, list)):
            return Refusal(400, f"interactive payload with a malformed {key}")
    if "actions" in payload and not (isinstance(payload["actions"], list)
                                     and all(isinstance(a, dict) for a in payload["actions"])):
        return Refusal(400, "interactive payload with malformed actions")
    return Admitted(body, payload, "interactive", text)


def bolt_request(admitted: Admitted, *, query: str, headers: dict[str, str | Sequence[str]]) -> AsyncBoltRequest:
    """bolt's HTTP-mode request for an admitted body, without parsing that body a second time.

    `AsyncBoltRequest(body=text)` would decode the form and the JSON again (~2-3% of a click's CPU). This is
    the request bolt would build, with the door's parse as its body: the same raw body, headers, query and
    mode, the context bolt derives from the body (team, user, channel...). bolt therefore dispatches exactly
    what the door checked (for a form with a repeated field, the door's first value, where bolt's own parse
    would keep the last). tests/bot/slack/test_frontdoor.py holds it equal to bolt's own request for every kind.
    """
    req = AsyncBoltRequest(body="", query=query, headers=headers)  # HTTP mode; an empty body parses to {}
    req.raw_body = admitted.text
    req.body = admitted.payload
    req.context = build_async_context(AsyncBoltContext({}), admitted.payload)
    return req


class RefusalLog:
    """Logs refusals as one line with a reason and a count, at most every `every_s` (an attack must not
    flood the log, and a body is never part of the line)."""

    def __init__(self, every_s: float = 5.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.every_s = every_s
        self._clock = clock
        self.counts: dict[str, int] = {}
        self._last = float("-inf")

    def note(self, refusal: Refusal) -> None:
        self.counts[refusal.reason] = self.counts.get(refusal.reason, 0) + 1
        now = self._clock()
        if now - self._last >= self.every_s:
            self._last = now
            log.warning("Slack request refused at the door: %s (HTTP %d; refusals so far: %s)",
                        refusal.reason, refusal.status, dict(self.counts))


class NoBodies(logging.Filter):
    """Keeps request bodies out of bolt's log lines (it prints payloads in some warnings and info lines).

    The line is cut before the first payload-looking part; what remains names the problem.
    """

    MARKERS = ("body:", "{", "(signature", "payload")

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        cut = min((i for i in (msg.find(m) for m in self.MARKERS) if i >= 0), default=len(msg))
        short = msg[:min(cut, 200)].rstrip(" (:") + (" [request content not logged]" if cut < len(msg) else "")
        record.msg, record.args = short, None
        return True
