"""The alert action webhook: a signed JSON POST to an endpoint the MSP runs (its RMM's API bridge, Rewst,
n8n, Power Automate, …) asking it to acknowledge or resolve an RMM alert.

What the receiver gets (and should check):

    POST <the configured URL>
    Content-Type: application/json
    Idempotency-Key: <32 hex>            the same on every retry of one button click: act once per key
    X-Deskbridge-Event: alert_action
    X-Deskbridge-Timestamp: <unix seconds>
    X-Deskbridge-Signature: v1=<hex HMAC-SHA256(secret, "<timestamp>." + raw body)>

    {"action": "acknowledge"|"resolve", "alert_ref": "...", "device_ref": "..."|null,
     "ticket_number": 1042|null, "customer": "ACME"|null, "actor": "...", "idempotency_key": "<32 hex>"}

`deskbridge rmm test-webhook` sends `X-Deskbridge-Event: ping` with {"action": "ping", "idempotency_key": …,
"sent_at": "<ISO time>"}, signed the same way: answer it 2xx without acting.

Verify the signature over the raw bytes in constant time and refuse timestamps older than ~5 minutes.
Answer 2xx when done (or already done for that key). 429 (with Retry-After) and 5xx are retried with
backoff; any other 4xx is final (the click goes to the dead letters with the answer's text).

The URL can itself be a credential (Power Automate and Azure Logic Apps put a signature in its query), so
errors and logs name the host only, never the URL, the secret or the signature.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from connectors.errors import PsaError, PsaRateLimited, PsaTimeout, PsaUnavailable, PsaValidationError
from connectors.http import make_client, parse_retry_after

SIGNATURE_HEADER = "X-Deskbridge-Signature"
TIMESTAMP_HEADER = "X-Deskbridge-Timestamp"
EVENT_HEADER = "X-Deskbridge-Event"
RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The signature header's value for one request."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"v1={mac}"


def encode_body(body: Mapping[str, Any]) -> bytes:
    """The exact bytes that are signed and sent."""
    return json.dumps(dict(body), separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode()


class AlertWebhookClient:
    """Posts alert actions; one pooled HTTP client for every workspace's endpoint."""

    def __init__(self, *, transport: httpx.AsyncBaseTransport | None = None, timeout: float = 15.0,
                 clock: Callable[[], float] = time.time) -> None:
        self._transport = transport
        self._timeout = timeout
        self._clock = clock
        self._client: httpx.AsyncClient | None = None

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = make_client("", transport=self._transport,
                                       timeout=httpx.Timeout(self._timeout, connect=min(self._timeout, 10.0)))
        return self._client

    async def post(self, url: str, secret: str, body: Mapping[str, Any], *, idempotency_key: str,
                   event: str = "alert_action") -> int:
        """Send one signed request; returns the 2xx status, raises a connectors.errors.PsaError otherwise."""
        raw = encode_body(body)
        stamp = str(int(self._clock()))
        headers = {"Content-Type": "application/json", "Idempotency-Key": idempotency_key,
                   EVENT_HEADER: event, TIMESTAMP_HEADER: stamp, SIGNATURE_HEADER: sign(secret, stamp, raw),
                   "User-Agent": "Deskbridge-AlertWebhook/1"}
        host = httpx.URL(url).host or "the endpoint"
        try:
            resp = await self._http().post(url, content=raw, headers=headers)
        except httpx.TimeoutException:
            raise PsaTimeout(f"The alert webhook at {host} did not answer in time.", code="WebhookTimeout") from None
        except httpx.HTTPError as exc:
            raise PsaUnavailable(f"Could not reach the alert webhook at {host} ({type(exc).__name__}).",
                                 code="WebhookUnreachable") from None
        if 200 <= resp.status_code < 300:
            return resp.status_code
        raise _error(resp, host)

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


def _error(resp: httpx.Response, host: str) -> PsaError:
    status = resp.status_code
    said = _snippet(resp)
    reason = f": {said}" if said else ""
    if status == 429:
        return PsaRateLimited(f"The alert webhook at {host} asked us to slow down{reason}", status=status,
                              code="WebhookRateLimited", retry_after=parse_retry_after(resp.headers.get("Retry-After")))
    if status in RETRYABLE_STATUS:
        return PsaUnavailable(f"The alert webhook at {host} is unavailable{reason}", status=status,
                              code="WebhookUnavailable")
    if 300 <= status < 400:
        return PsaValidationError(f"The alert webhook at {host} redirected the request; configure the final URL "
                                  "with `deskbridge rmm set-webhook`", status=status, code="WebhookRedirect")
    hint = ("; check that both sides use the same webhook secret (`deskbridge rmm set-webhook`)"
            if status in (401, 403) else "")
    return PsaValidationError(f"The alert webhook at {host} refused the alert action{reason}{hint}", status=status,
                              code="WebhookRefused")


def _snippet(resp: httpx.Response, limit: int = 300) -> str:
    """The start of the endpoint's answer, for a person to read (JSON `error`/`message` when present)."""
    text = resp.text.strip()
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, dict):
        for key in ("error", "message", "detail", "title"):
            if isinstance(data.get(key), str) and data[key].strip():
                text = data[key].strip()
                break
    text = " ".join(text.split())
    return text[:limit] + ("…" if len(text) > limit else "")
