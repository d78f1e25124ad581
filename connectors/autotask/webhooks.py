"""Autotask REST webhooks (reference/psa-apis.md §3.7): verification, parsing, registration housekeeping.

Verification: `X-Hook-Signature: sha1=<base64(HMAC-SHA1(SecretKey, body))>`, checked on the raw bytes. Autotask
signs a form of the JSON in which, inside string values, ``& < > ' " ` +`` (an escaped `\\"` too) and every
non-ASCII character are written `\\uXXXX`; the raw body is tried first, then re-escaped that way (hex digits
in either case). The secret is the `webhook_secret` credential, else one derived from the API secret (so a
connection needs nothing more to be stored; rotating the API secret and re-running `connection callbacks`
re-keys the webhooks).

Payload: `Action` (Create/Update/Delete, or a deactivation notice), `Guid`, `EntityType`, `Id`, `Fields`,
`EventTime`, `SequenceNumber`, `PersonID`. It is only a hint: the sync engine re-reads the ticket it names
(the ticket itself, or a note's `TicketID` field, sent in every payload as a display-always field).

Registration (`ensure`): one `TicketWebhooks` and one `TicketNoteWebhooks` named `Deskbridge <host>`, with a
`DeactivationUrl`, create/update/delete subscriptions, subscribed fields (a webhook is not ready until one
is), and our API resource in `ExcludedResources` so our own writes do not call back. Field ids come from
the `fieldID` picklist of `{Entity}WebhookFields/entityInformation/fields` [unverified on a live tenant].
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from connectors.autotask import query as aq
from connectors.autotask.client import AtClient
from connectors.base import WebhookEvent
from connectors.errors import WebhookRejected

log = logging.getLogger("deskbridge.psa.autotask")
HEADER = "x-hook-signature"
NAME_PREFIX = "Deskbridge"
SPECIAL = frozenset("&<>'\"`+")
ACTIONS = {"create": "added", "update": "updated", "delete": "deleted"}
HOOKS: dict[str, dict[str, Any]] = {
    "TicketWebhooks": {"entity": "ticket", "subscribe": ("status", "priority", "queueID", "assignedResourceID",
                                                         "title", "description", "companyID", "contactID",
                                                         "dueDateTime", "issueType", "subIssueType"),
                       "always": ("id",)},
    "TicketNoteWebhooks": {"entity": "note", "subscribe": ("description", "publish", "title"),
                           "always": ("ticketID",)},
}


def derived_secret(api_secret: str, integration_code: str) -> str:
    """A webhook SecretKey (64 hex) derived from the API credentials; never logged."""
    return hmac.new(api_secret.encode(), f"deskbridge-webhook:{integration_code}".encode(), hashlib.sha256).hexdigest()


def escaped(body: bytes, *, upper: bool = False) -> bytes:
    """The body as Autotask signs it: inside JSON strings, the special characters and non-ASCII as \\uXXXX."""
    text = body.decode("utf-8", errors="surrogatepass")
    out: list[str] = []
    fmt = "\\u{:04X}" if upper else "\\u{:04x}"
    in_string, i = False, 0
    while i < len(text):
        ch = text[i]
        if not in_string:
            in_string = ch == '"'
            out.append(ch)
        elif ch == "\\" and i + 1 < len(text):
            nxt = text[i + 1]
            out.append(fmt.format(ord('"')) if nxt == '"' else ch + nxt)
            i += 1
        elif ch == '"':
            in_string = False
            out.append(ch)
        elif ch in SPECIAL or ord(ch) > 127:
            encoded = ch.encode("utf-16-be", errors="surrogatepass")
            out.extend(fmt.format(int.from_bytes(encoded[k:k + 2], "big")) for k in range(0, len(encoded), 2))
        else:
            out.append(ch)
        i += 1
    return "".join(out).encode("ascii", errors="backslashreplace")


def signature(secret: str, body: bytes) -> str:
    """The header value Autotask sends for a signed body."""
    return "sha1=" + base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha1).digest()).decode()


def verify(secret: str, headers: Mapping[str, str], body: bytes) -> None:
    got = next((v for k, v in headers.items() if k.lower() == HEADER), None)
    if not got:
        raise WebhookRejected("The Autotask webhook carries no X-Hook-Signature.")
    for form in (body, escaped(body), escaped(body, upper=True)):
        if hmac.compare_digest(got.strip(), signature(secret, form)):
            return
    raise WebhookRejected("The Autotask webhook's X-Hook-Signature does not match its body.")


def _field(fields: Any, name: str) -> Any:
    if not isinstance(fields, Mapping):
        return None
    return next((v for k, v in fields.items() if str(k).lower() == name.lower()), None)


def _id(value: Any) -> str | None:
    text = str(value if value is not None else "").strip()
    return text if text.isdigit() and int(text) > 0 else None


def parse(body: bytes, headers: Mapping[str, str], *, secret: str) -> WebhookEvent:
    """Verify and parse one delivery (WebhookRejected when it cannot be trusted or read)."""
    verify(secret, headers, body)
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):  # RecursionError: nested too deep
        raise WebhookRejected("The Autotask webhook body is not JSON.") from None
    if not isinstance(data, Mapping):
        raise WebhookRejected("The Autotask webhook body is not a JSON object.")
    action = str(data.get("Action") or "").lower()
    entity_type = str(data.get("EntityType") or "").lower()
    guid, seq = data.get("Guid"), data.get("SequenceNumber")
    event_id = f"autotask:{guid}:{seq}" if guid and seq is not None else \
        "autotask:" + hashlib.sha256(body).hexdigest()[:40]
    if action not in ACTIONS:  # the deactivation notice, or something new: nothing to re-read
        if "deactivat" in action:
            log.warning("autotask webhook deactivated after repeated failed deliveries: run `deskbridge connection "
                        "callbacks <name>` once the endpoint is reachable", extra={"entity_type": entity_type})
        return WebhookEvent(event_id=event_id, entity="webhook", action=action or "unknown",
                            ticket_external_id=None, verified=True)
    if "note" in entity_type:
        tid = _id(_field(data.get("Fields"), "TicketID"))
        return WebhookEvent(event_id=event_id, entity="note", action=ACTIONS[action], ticket_external_id=tid,
                            verified=True)
    return WebhookEvent(event_id=event_id, entity="ticket", action=ACTIONS[action], ticket_external_id=_id(data.get("Id")),
                        verified=True)


# ---------------------------------------------------------------- registration


def hook_name(url: str) -> str:
    return f"{NAME_PREFIX} {urlsplit(url).hostname or url}"[:50]


def deactivation_url(url: str) -> str:
    return url + ("&" if "?" in url else "?") + "deactivated=1"


def hook_body(url: str, secret: str) -> dict[str, Any]:
    return {"name": hook_name(url), "webhookUrl": url, "deactivationUrl": deactivation_url(url), "secretKey": secret,
            "isActive": True, "isSubscribedToCreateEvents": True, "isSubscribedToUpdateEvents": True,
            "isSubscribedToDeleteEvents": True, "sendThresholdExceededNotification": True}


async def _field_ids(client: AtClient, entity: str) -> dict[str, int]:
    """Field name (lower case) -> webhook field id, from the `fieldID` picklist of `{Entity}Fields`."""
    fields = await client.entity_fields(entity.removesuffix("s") + "Fields")
    picks = next((f.get("picklistValues") or [] for f in fields if str(f.get("name")).lower() == "fieldid"), [])
    return {str(p.get("label")).lower(): int(p["value"]) for p in picks if str(p.get("value", "")).isdigit()}


async def _ensure_one(client: AtClient, entity: str, url: str, secret: str, exclude_resource: str) -> dict[str, Any]:
    name = hook_name(url)
    host = (urlsplit(url).hostname or "").lower()
    existing = await client.query_all(entity, [aq.cond("name", "beginsWith", NAME_PREFIX)])
    ours = sorted((h for h in existing if (urlsplit(str(h.get("webhookUrl") or "")).hostname or "").lower() == host
                   or str(h.get("name")) == name), key=lambda h: int(h["id"]))
    keep, stale = (ours[0] if ours else None), ours[1:]
    body = hook_body(url, secret)
    if keep is None:
        hook_id = await client.create(entity, body)
    else:
        hook_id = await client.update(entity, {**body, "id": int(keep["id"])})
    for old in stale:
        await client.delete(f"{entity}/{int(old['id'])}")
    spec = HOOKS[entity]
    ids = await _field_ids(client, entity)
    have = {int(f.get("fieldID") or 0) for f in await client.get_items(f"{entity}/{hook_id}/Fields")}
    added_fields = []
    for name_ in (*spec["subscribe"], *spec["always"]):
        fid = ids.get(name_.lower())
        if fid is None or fid in have:
            continue
        await client.create(f"{entity}/{hook_id}/Fields", {
            "webhookID": hook_id, "fieldID": fid, "isSubscribedField": name_ in spec["subscribe"],
            "isDisplayAlwaysField": name_ in spec["always"]})
        added_fields.append(name_)
    excluded = {str(r.get("resourceID")) for r in await client.get_items(f"{entity}/{hook_id}/ExcludedResources")}
    if exclude_resource not in excluded:
        await client.create(f"{entity}/{hook_id}/ExcludedResources",
                            {"webhookID": hook_id, "resourceID": int(exclude_resource)})
    return {"id": str(hook_id), "created": keep is None, "deleted": [str(h["id"]) for h in stale],
            "fields": added_fields}


async def ensure(client: AtClient, url: str, *, secret: str, exclude_resource: str) -> dict[str, Any]:
    """Our ticket and ticket-note webhooks at `url`, exactly one each; what changed."""
    result = {entity: await _ensure_one(client, entity, url, secret, exclude_resource) for entity in HOOKS}
    added = [f"{e}:{r['id']}" for e, r in result.items() if r["created"]]
    kept = [f"{e}:{r['id']}" for e, r in result.items() if not r["created"]]
    deleted = [f"{e}:{i}" for e, r in result.items() for i in r["deleted"]]
    return {"added": added, "kept": kept, "deleted": deleted, "hooks": result}


async def remove(client: AtClient, url: str) -> list[str]:
    """Delete our webhooks pointing at `url`'s host; their ids."""
    host = (urlsplit(url).hostname or "").lower()
    gone: list[str] = []
    for entity in HOOKS:
        for h in await client.query_all(entity, [aq.cond("name", "beginsWith", NAME_PREFIX)]):
            if (urlsplit(str(h.get("webhookUrl") or "")).hostname or "").lower() == host:
                await client.delete(f"{entity}/{int(h['id'])}")
                gone.append(f"{entity}:{h['id']}")
    return gone
