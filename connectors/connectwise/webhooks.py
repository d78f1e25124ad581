"""ConnectWise callbacks: parsing, signature verification, and registration housekeeping (§2.7).

Payload keys used: `ID`, `Action` (added/updated/deleted), `Type` (ticket, company, …), `Entity` (a JSON
*string* of the record), `MessageId`, `CompanyId`, `Metadata.key_url`. Everything else is ignored: the sync
engine re-reads the record the callback names.

Signature (`x-content-signature`, as an open-source Go client validates it; [unverified] on a live tenant):
GET `Metadata.key_url` -> `{"signing_key": …}`; HMAC key = SHA-256 digest (raw bytes) of the signing key;
signature = base64(HMAC-SHA256(key, raw body)). The key_url comes from an unverified payload, so it is
fetched only when its host is the tenant's own ConnectWise API (or site) host and its scheme matches; the
request carries no credentials. Keys are cached per key_url.

`webhook_mode` setting: "verify" (default) rejects anything unverifiable (WebhookRejected); "hint" skips the
signature and marks events verified=False, so the sync engine only re-fetches what they name.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from connectors.base import WebhookEvent
from connectors.errors import WebhookRejected

SIGNATURE_HEADER = "x-content-signature"
CALLBACK_TYPES = ("ticket",)  # notes and time entries have no callback type; a ticket callback re-syncs them


@dataclass(frozen=True, slots=True)
class Callback:
    """The fields of a callback payload we trust (after verification) or use as a hint."""

    message_id: str | None
    action: str
    type: str
    record_id: str | None
    company_id: str | None
    key_url: str | None
    record_type: str | None  # from Entity: ServiceTicket / ProjectTicket …


def parse_callback(body: bytes) -> Callback:
    """Parse a callback body (WebhookRejected when it is not a ConnectWise callback)."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):  # RecursionError: nested too deep
        raise WebhookRejected("The callback body is not JSON.") from None
    if not isinstance(data, Mapping) or "Action" not in data or "Type" not in data:
        raise WebhookRejected("The callback body has no Action/Type.")
    record_type = None
    entity = data.get("Entity")
    if isinstance(entity, str) and entity:
        try:
            parsed = json.loads(entity)
            record_type = parsed.get("recordType") if isinstance(parsed, Mapping) else None
        except ValueError:
            record_type = None
    raw_meta = data.get("Metadata")
    meta: Mapping[str, Any] = raw_meta if isinstance(raw_meta, Mapping) else {}
    rid = data.get("ID")
    return Callback(message_id=str(data["MessageId"]) if data.get("MessageId") else None,
                    action=str(data["Action"]).lower(), type=str(data["Type"]).lower(),
                    record_id=str(rid) if rid not in (None, "") else None,
                    company_id=str(data["CompanyId"]) if data.get("CompanyId") else None,
                    key_url=str(meta.get("key_url")) if meta.get("key_url") else None,
                    record_type=str(record_type) if record_type else None)


def key_url_allowed(key_url: str, allowed_roots: tuple[str, ...]) -> bool:
    """True when key_url is on one of the tenant's own roots (same scheme and host:port)."""
    parts = urlsplit(key_url)
    for root in allowed_roots:
        r = urlsplit(root)
        if parts.scheme == r.scheme and parts.netloc.lower() == r.netloc.lower() and parts.netloc:
            return True
    return False


def expected_signature(signing_key: str, body: bytes) -> str:
    key = hashlib.sha256(signing_key.encode()).digest()
    return base64.b64encode(hmac.new(key, body, hashlib.sha256).digest()).decode()


def signature_matches(signing_key: str, body: bytes, signature: str) -> bool:
    return hmac.compare_digest(expected_signature(signing_key, body), signature.strip())


def signing_key_from(data: Any) -> str | None:
    if isinstance(data, Mapping) and data.get("signing_key"):
        return str(data["signing_key"])
    return None


def to_event(cb: Callback, body: bytes, *, verified: bool) -> WebhookEvent:
    ticket_types = {"ticket", "serviceticket"}
    is_ticket = cb.type in ticket_types and cb.record_type in (None, "ServiceTicket")
    event_id = cb.message_id or hashlib.sha256(body).hexdigest()[:32]
    entity = "ticket" if is_ticket else (cb.record_type or cb.type).lower()
    return WebhookEvent(event_id=event_id, entity=entity, action=cb.action,
                        ticket_external_id=cb.record_id if is_ticket else None, verified=verified)


def header(headers: Mapping[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None


def wanted_callback(url: str, type_: str) -> dict[str, Any]:
    """The CallbackEntry we register: every record of `type_` (level owner, objectId 1, as django-connectwise)."""
    return {"url": url, "objectId": 1, "type": type_, "level": "owner", "description": f"Deskbridge {type_}",
            "inactiveFlag": False, "isSelfSuppressedFlag": True}


def plan_callbacks(existing: list[Mapping[str, Any]], url: str, types: tuple[str, ...] = CALLBACK_TYPES
                   ) -> tuple[list[dict[str, Any]], list[int], list[int]]:
    """(entries to add, ids to keep, ids to delete) among callbacks pointing at our host."""
    keep: list[int] = []
    delete: list[int] = []
    covered: set[str] = set()
    for cb in existing:
        same = (cb.get("url") == url and str(cb.get("type", "")).lower() in types
                and str(cb.get("level", "")).lower() == "owner" and not cb.get("inactiveFlag")
                and str(cb.get("type", "")).lower() not in covered)
        if same:
            covered.add(str(cb["type"]).lower())
            keep.append(int(cb["id"]))
        else:
            delete.append(int(cb["id"]))
    add = [wanted_callback(url, t) for t in types if t not in covered]
    return add, keep, delete
