"""Sandbox webhooks: a simple signed push, in the style of Slack's and Stripe's signatures.

    POST <your receiver>
    X-Sandbox-Timestamp: 1767225600                  (unix seconds when it was sent)
    X-Sandbox-Signature: v1=<hex HMAC-SHA256(secret, "<timestamp>.<raw body>")>
    {"id": "evt-…", "entity": "ticket", "action": "added|updated|deleted", "ticket_id": 123}

The receiver accepts a push only when the signature matches (constant-time compare) and the timestamp is
within 5 minutes of its clock (replay window). The secret is the connection's
settings["webhook_secret"] (default "sandbox-webhook-secret").
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from collections.abc import Mapping
from datetime import datetime

from connectors.base import WebhookEvent
from connectors.errors import WebhookRejected

TIMESTAMP_HEADER = "x-sandbox-timestamp"
SIGNATURE_HEADER = "x-sandbox-signature"
TOLERANCE_SECONDS = 300


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The v1 signature of a body sent at `timestamp`."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "v1=" + mac.hexdigest()


def build(secret: str, now: datetime, ticket_id: int, action: str = "updated",
          entity: str = "ticket") -> tuple[dict[str, str], bytes]:
    """Headers and body of a signed push (what the sandbox would send)."""
    body = json.dumps({"id": f"evt-{uuid.uuid4().hex[:16]}", "entity": entity, "action": action,
                       "ticket_id": ticket_id}).encode()
    ts = int(now.timestamp())
    return {TIMESTAMP_HEADER: str(ts), SIGNATURE_HEADER: signature(secret, ts, body),
            "content-type": "application/json"}, body


def verify(secret: str, now: datetime, headers: Mapping[str, str], body: bytes) -> WebhookEvent:
    """Check the signature and replay window, then parse (WebhookRejected otherwise)."""
    lowered = {k.lower(): v for k, v in headers.items()}
    raw_ts, sent = lowered.get(TIMESTAMP_HEADER), lowered.get(SIGNATURE_HEADER)
    if not raw_ts or not sent:
        raise WebhookRejected("Missing sandbox signature headers.", status=401)
    try:
        ts = int(raw_ts)
    except ValueError as exc:
        raise WebhookRejected("Malformed sandbox timestamp header.", status=401) from exc
    if abs(now.timestamp() - ts) > TOLERANCE_SECONDS:
        raise WebhookRejected("Sandbox webhook timestamp outside the 5-minute window (replay?).", status=401)
    if not hmac.compare_digest(signature(secret, ts, body), sent):
        raise WebhookRejected("Sandbox webhook signature does not match.", status=401)
    try:
        payload = json.loads(body)
        ticket_id = payload.get("ticket_id")
        return WebhookEvent(event_id=str(payload["id"]), entity=str(payload["entity"]), action=str(payload["action"]),
                            ticket_external_id=None if ticket_id is None else str(ticket_id), verified=True)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise WebhookRejected("Sandbox webhook body is not a valid event.", status=400) from exc
