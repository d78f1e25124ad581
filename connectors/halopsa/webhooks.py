"""HaloPSA webhooks (reference/psa-apis.md §4.7, gotcha 40): verification, parsing, registration housekeeping.

Halo has no fixed signature. Deskbridge registers its webhook as djpsa does, and verifies accordingly:
    "hmac"  (default)  authentication_type 3, header `authentication_header` (default `Token`) carrying
                       base64(HMAC-SHA256(webhook_secret, raw body)) ([unverified] on a live tenant)
    "basic"            for tenants that cannot sign: an unguessable URL plus Basic auth
                       (`basic_username`/`basic_password` = `deskbridge`/webhook_secret); authentication_type 1
                       ([unverified])
    "hint"             nothing checked: events are `verified=False`, only a hint to re-read the ticket
The payload carries the record under its entity key (`ticket`, or `action` with its `ticket_id`); the sync
engine re-reads the ticket it names, never trusts the payload. The catch-up poll always keeps running.

Registration: Halo cannot mark a webhook as ours, so ours are named `Deskbridge <host>` and reconciled by
that name (one kept and updated, duplicates deleted); each is subscribed through `Notification` records
(delivery_method 6) to ticket events 3 (new ticket, [unverified]) and 61 (ticket updated, djpsa).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Collection, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from connectors.base import WebhookEvent
from connectors.errors import PsaValidationError, WebhookRejected
from connectors.halopsa.client import NOTIFICATION, WEBHOOK, HaloClient

MODES = ("hmac", "basic", "hint")
NAME_PREFIX = "Deskbridge"
AUTH_BASIC, AUTH_API_KEY = 1, 3
DELIVERY_WEBHOOK = 6
EVENTS = (3, 61)
BASIC_USER = "deskbridge"


def header(headers: Mapping[str, str], name: str) -> str | None:
    """A header by case-insensitive name."""
    low = name.lower()
    return next((v for k, v in headers.items() if k.lower() == low), None)


def signature(secret: str, body: bytes) -> str:
    """base64(HMAC-SHA256(secret, body)): what a signing Halo webhook puts in its header."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def _verify(mode: str, secret: str | None, header_name: str, headers: Mapping[str, str], body: bytes) -> None:
    if not secret:
        raise WebhookRejected("No webhook_secret is configured for this HaloPSA connection.")
    if mode == "hmac":
        got = header(headers, header_name)
        if not got or not hmac.compare_digest(got.strip(), signature(secret, body)):
            raise WebhookRejected(f"The webhook's {header_name} header does not match its body.")
        return
    expected = "Basic " + base64.b64encode(f"{BASIC_USER}:{secret}".encode()).decode()
    got = header(headers, "authorization") or ""
    if not hmac.compare_digest(got.strip(), expected):
        raise WebhookRejected("The webhook's Basic credentials do not match.")


def _id(value: Any) -> str | None:
    text = str(value or "").strip()
    return str(int(text)) if text.isdigit() and int(text) > 0 else None


def _ticket_id(data: Mapping[str, Any]) -> tuple[str, str | None]:
    for entity in ("ticket", "action", "attachment"):
        record = data.get(entity)
        if isinstance(record, Mapping):
            return entity, _id(record.get("id") if entity == "ticket" else record.get("ticket_id"))
    return "ticket", _id(data.get("ticket_id") or data.get("id"))


def parse(body: bytes, headers: Mapping[str, str], *, mode: str, secret: str | None,
          header_name: str = "Token") -> WebhookEvent:
    """Verify (per `mode`) and parse one delivery; WebhookRejected when it cannot be trusted or read."""
    if mode != "hint":
        _verify(mode, secret, header_name, headers, body)
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):  # RecursionError: nested too deep
        raise WebhookRejected("The webhook body is not JSON.") from None
    if not isinstance(data, Mapping):
        raise WebhookRejected("The webhook body is not a JSON object.")
    entity, tid = _ticket_id(data)
    record = data.get(entity) if isinstance(data.get(entity), Mapping) else {}
    action = "deleted" if isinstance(record, Mapping) and record.get("deleted") is True else "updated"
    return WebhookEvent(event_id="halo:" + hashlib.sha256(body).hexdigest()[:40], entity="ticket" if tid else entity,
                        action=action, ticket_external_id=tid, verified=mode != "hint")


def hook_name(url: str) -> str:
    """Our webhook's name on the tenant (`Deskbridge <host>`), the key reconciliation goes by."""
    return f"{NAME_PREFIX} {urlsplit(url).hostname or url}"


def hook_body(url: str, *, mode: str, secret: str | None, header_name: str = "Token",
              existing_id: str | None = None) -> dict[str, Any]:
    """POST /Webhook item for our webhook (an update when `existing_id` is given)."""
    if mode not in MODES:
        raise PsaValidationError("webhook_mode must be hmac, basic or hint.", fields={"webhook_mode": "invalid"})
    if mode != "hint" and not secret:
        raise PsaValidationError("Registering a verified webhook needs the webhook_secret credential.",
                                 fields={"webhook_secret": "required"})
    body: dict[str, Any] = {"name": hook_name(url), "url": url, "type": 0, "method": 0,
                            "content_type": "application/json", "active": True}
    if mode == "hmac":
        body.update(authentication_type=AUTH_API_KEY, authentication_header=header_name, basic_password=secret)
    elif mode == "basic":
        body.update(authentication_type=AUTH_BASIC, basic_username=BASIC_USER, basic_password=secret)
    else:
        body["authentication_type"] = 0
    if existing_id:
        body["id"] = existing_id
    return body


def plan(existing: Sequence[Mapping[str, Any]], url: str, subscribed: Collection[str] = ()
         ) -> tuple[str | None, list[str]]:
    """(the id of our webhook to keep and update, ids of duplicates to delete) among the tenant's webhooks.
    The one already subscribed to events is kept (its notifications go with it), else the lowest id."""
    ours = sorted((str(h["id"]) for h in existing if str(h.get("name") or "") == hook_name(url) and h.get("id")),
                  key=lambda i: (i.lower() not in subscribed, i))
    return (ours[0] if ours else None), ours[1:]


def notification_bodies(webhook_id: str, have: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """POST /Notification items subscribing the webhook to the ticket events it lacks."""
    subscribed = {int(n.get("eventno") or 0) for n in have if str(n.get("webhook_id") or "").lower() == webhook_id}
    return [{"name": f"{NAME_PREFIX} event {e}", "webhook_id": webhook_id, "delivery_method": DELIVERY_WEBHOOK,
             "eventno": e} for e in EVENTS if e not in subscribed]


async def ensure(client: HaloClient, url: str, *, mode: str, secret: str | None, header_name: str = "Token"
                 ) -> dict[str, Any]:
    """Our webhook at `url` exactly once on the tenant (created or updated, duplicates deleted), subscribed to
    the ticket events it lacks."""
    subscribed = {str(n.get("webhook_id") or "").lower() for n in await client.get_list(NOTIFICATION)}
    keep, delete = plan(await client.get_list(WEBHOOK), url, subscribed)
    body = hook_body(url, mode=mode, secret=secret, header_name=header_name, existing_id=keep)
    hook_id = str((await client.post_one(WEBHOOK, body))["id"]).lower()
    for old in delete:
        await client.delete(WEBHOOK, old)
    added = notification_bodies(hook_id, await client.get_list(NOTIFICATION, {"webhook_id": hook_id}))
    if added:
        await client.post(NOTIFICATION, added)
    return {"webhook_id": hook_id, "created": keep is None, "added": [hook_id] if keep is None else [],
            "kept": [] if keep is None else [hook_id], "deleted": delete, "subscribed": [n["eventno"] for n in added]}


async def remove(client: HaloClient, url: str) -> list[str]:
    """Delete our webhooks for `url`; their ids."""
    keep, delete = plan(await client.get_list(WEBHOOK), url)
    gone = [i for i in (keep, *delete) if i]
    for hook_id in gone:
        await client.delete(WEBHOOK, hook_id)
    return gone
