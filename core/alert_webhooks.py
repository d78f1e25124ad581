"""Alert actions (acknowledge / resolve an RMM alert from a ticket card) through a per-workspace webhook.

There is no RMM vendor connector: the MSP points Deskbridge at an HTTPS endpoint of its own (its RMM's API
bridge, Rewst, n8n, Power Automate…) that receives a signed JSON POST (connectors/alert_webhook.py
documents the request). The URL and the signing secret are stored encrypted (CredentialCipher, bound to
the workspace) in the workspace's settings; only a display form of the URL (no query) is kept in clear.
The click is an outbox op (core/outbox/ops.AlertAction), so it is retried, audited and dead-lettered like
every PSA write; `AlertWebhookService.request` queues it, for a chat button, the console and the API alike.
"""

from __future__ import annotations

import base64
import ipaddress
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol
from urllib.parse import urlsplit

from connectors.errors import PsaError, PsaUnsupported, PsaValidationError
from core.context import Actor
from core.errors import InvalidInput, NotFound, PermissionDenied
from core.outbox.ops import AlertAction, enqueue
from core.ticket_lookup import load_ticket
from store.crypto import CredentialCipher, CredentialError
from store.db import Database, Scope
from store.tables import Customer, Workspace
from store.types import utcnow

SETTINGS_KEY = "alert_webhook"  # in Workspace.settings; not a WORKSPACE_OPTIONS entry (set through this service)
CIPHER_KIND = "alert_webhook"
SECRET_PREFIX = "dbwhsec_"  # noqa: S105 - a prefix, not a secret
MIN_SECRET_CHARS = 24
LOCAL_HOSTS = frozenset({"localhost"})


class AlertPoster(Protocol):
    """Speaks HTTP to the endpoint (connectors/alert_webhook.AlertWebhookClient); raises PsaError."""

    async def post(self, url: str, secret: str, body: Mapping[str, Any], *, idempotency_key: str,
                   event: str = "alert_action") -> int:
        ...

    async def aclose(self) -> None:
        ...


@dataclass(frozen=True, slots=True)
class WebhookInfo:
    """What may be shown about a configured webhook (never the secret or the URL's query)."""

    display_url: str
    set_at: str | None


def configured(settings: Mapping[str, Any] | None) -> bool:
    """Whether a workspace (its settings dict) has an alert action webhook."""
    entry = (settings or {}).get(SETTINGS_KEY)
    return isinstance(entry, dict) and bool(entry.get("ciphertext"))


def info(settings: Mapping[str, Any] | None) -> WebhookInfo | None:
    entry = (settings or {}).get(SETTINGS_KEY)
    if not configured(settings) or not isinstance(entry, dict):
        return None
    return WebhookInfo(display_url=str(entry.get("display_url") or "(hidden)"), set_at=entry.get("set_at"))


def public_settings(settings: Mapping[str, Any]) -> dict[str, Any]:
    """Workspace settings as they may be shown: the webhook entry reduced to its display form."""
    out = dict(settings)
    if SETTINGS_KEY in out:
        found = info(settings)
        out[SETTINGS_KEY] = {"url": found.display_url, "set_at": found.set_at} if found else None
    return out


def generate_secret() -> str:
    """A new signing secret (recognizable, so the redaction patterns mask it if it ever leaks)."""
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def is_local_host(host: str) -> bool:
    host = host.strip("[]").lower()
    if host in LOCAL_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_webhook_url(url: str) -> str:
    """The URL if it can receive alert actions: https (http only on this machine), a host, no user:password."""
    url = (url or "").strip()
    if not url:
        raise InvalidInput("The webhook needs a URL.", hint="Use --url https://your-bridge.example.com/deskbridge.")
    if len(url) > 2000 or any(ch.isspace() for ch in url):
        raise InvalidInput("That webhook URL is not valid (too long or has spaces).", field="url",
                           hint="Use a full URL of up to 2,000 characters, e.g. https://your-bridge.example.com/deskbridge.")
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        _ = parts.port
    except ValueError:
        raise InvalidInput("That webhook URL is not valid.", field="url",
                           hint="Use a full URL, e.g. https://your-bridge.example.com/deskbridge.") from None
    if parts.scheme not in ("https", "http") or not host:
        raise InvalidInput("The webhook URL must be a full https:// URL.", field="url",
                           hint="e.g. https://your-bridge.example.com/deskbridge")
    if parts.scheme == "http" and not is_local_host(host):
        raise InvalidInput("The webhook URL must use https:// (http:// is allowed only for localhost).",
                           field="url", hint="Alert actions are signed, but their content must not travel in clear.")
    if parts.username or parts.password:
        raise InvalidInput("Do not put a user name or password in the webhook URL.", field="url",
                           hint="Deskbridge signs every request with the webhook secret instead.")
    if parts.fragment:
        raise InvalidInput("The webhook URL must not have a #fragment.", field="url",
                           hint="Leave out the # and what follows it.")
    return url


def display_url(url: str) -> str:
    """scheme://host/path, without the query (which may carry a signature)."""
    p = urlsplit(url)
    shown = f"{p.scheme}://{p.netloc}{p.path}"
    return shown + ("?…" if p.query else "")


class AlertWebhookService:
    """Configure the workspace's webhook (checked, encrypted) and send alert actions through it."""

    def __init__(self, db: Database, *, cipher: CredentialCipher, poster: AlertPoster | None = None) -> None:
        self.db = db
        self.cipher = cipher
        self.poster = poster

    async def configure(self, workspace_id: int, *, url: str, secret: str) -> WebhookInfo:
        """Save (or replace) the webhook; the URL and secret are encrypted before they are stored."""
        url = check_webhook_url(url)
        secret = (secret or "").strip()
        if len(secret) < MIN_SECRET_CHARS:
            raise InvalidInput(f"The webhook secret must be at least {MIN_SECRET_CHARS} characters.",
                               hint="Leave it out and Deskbridge generates a strong one.")
        blob = self.cipher.encrypt({"url": url, "secret": secret}, workspace_id=workspace_id, kind=CIPHER_KIND)
        entry = {"ciphertext": base64.b64encode(blob).decode(), "key_id": self.cipher.primary_key_id,
                 "display_url": display_url(url), "set_at": utcnow().isoformat(timespec="seconds")}
        async with self.db.write(Scope.workspace(workspace_id)) as session:
            ws = await session.get(Workspace, workspace_id)
            if ws is None:
                raise NotFound(f"Workspace {workspace_id} was not found.",
                               hint="List workspaces with `deskbridge workspace list`.")
            ws.settings = {**ws.settings, SETTINGS_KEY: entry}
        return WebhookInfo(display_url=entry["display_url"], set_at=entry["set_at"])

    async def clear(self, workspace_id: int) -> bool:
        """Remove the webhook; True when there was one. Cards stop offering Acknowledge/Resolve."""
        async with self.db.write(Scope.workspace(workspace_id)) as session:
            ws = await session.get(Workspace, workspace_id)
            if ws is None:
                raise NotFound(f"Workspace {workspace_id} was not found.",
                               hint="List workspaces with `deskbridge workspace list`.")
            had = SETTINGS_KEY in ws.settings
            ws.settings = {k: v for k, v in ws.settings.items() if k != SETTINGS_KEY}
        return had

    async def get(self, workspace_id: int) -> WebhookInfo | None:
        return info(await self._settings(workspace_id))

    async def _settings(self, workspace_id: int) -> dict[str, Any]:
        async with self.db.read(Scope.workspace(workspace_id)) as session:
            ws = await session.get(Workspace, workspace_id)
        return dict(ws.settings) if ws else {}

    async def _target(self, workspace_id: int) -> tuple[str, str] | None:
        entry = (await self._settings(workspace_id)).get(SETTINGS_KEY)
        if not isinstance(entry, dict) or not entry.get("ciphertext"):
            return None
        try:
            data = self.cipher.decrypt(base64.b64decode(entry["ciphertext"]), workspace_id=workspace_id,
                                       kind=CIPHER_KIND)
        except (CredentialError, ValueError) as exc:
            raise PsaValidationError(f"The alert webhook's stored settings cannot be read ({exc}); set it again "
                                     "with `deskbridge rmm set-webhook`, then redrive this op.",
                                     code="AlertWebhookUnreadable") from None
        return str(data["url"]), str(data["secret"])

    async def request(self, actor: Actor, ref: str, action: Literal["acknowledge", "resolve"]) -> int:
        """Queue an action on a ticket's linked RMM alert for the webhook; the outbox op's id.

        Delivered through the outbox (retries, audit, dead letters), which files ops under a PSA connection:
        the ticket's, else the workspace's default. Only technicians act on alerts, and only where a webhook
        is configured (a button that always fails is worse than none).
        """
        if not actor.is_member:
            raise PermissionDenied("Only technicians can act on alerts.",
                                   hint="Technicians: link your chat account with /deskbridge link. Customers: ask your MSP.")
        async with self.db.write(actor.scope) as session:
            ws = await session.get(Workspace, actor.workspace_id)
            if not configured(ws.settings if ws else None):
                raise InvalidInput(f"Alert actions are not set up here, so the alert was not {action}d.",
                                   hint="Handle the alert in your RMM. An admin can connect Deskbridge to it "
                                        "with `deskbridge rmm set-webhook`.")
            ticket = await load_ticket(session, actor, ref)
            if not ticket.alert_ref:
                raise InvalidInput("This ticket has no linked alert.",
                                   hint="Act on the alert in your RMM; this card's buttons are for alert tickets.")
            customer = await session.get(Customer, ticket.customer_id) if ticket.customer_id else None
            # A standalone ticket's alert action has no PSA connection: it goes to the MSP's webhook only.
            op = enqueue(session, workspace_id=actor.workspace_id, connection_id=ticket.connection_id,
                         payload=AlertAction(action=action, alert_ref=ticket.alert_ref, device_ref=ticket.device_ref,
                                             ticket_number=ticket.number,
                                             customer=customer.identifier if customer else None,
                                             actor=actor.display),
                         ticket_id=ticket.id, actor=actor.display, author_member_id=actor.member_id)
            await session.flush()
            assert op.id is not None
            return op.id

    async def send(self, workspace_id: int, action: AlertAction, idempotency_key: str) -> int:
        """POST one alert action (raises connectors.errors.PsaError when it did not land)."""
        target = await self._target(workspace_id)
        if target is None or self.poster is None:
            raise PsaUnsupported("No alert action webhook is configured for this workspace, so the alert action "
                                 "was not sent. An admin can set one with `deskbridge rmm set-webhook`, then "
                                 "redrive this op.", code="NoAlertWebhook")
        url, secret = target
        return await self.poster.post(url, secret, body(action, idempotency_key), idempotency_key=idempotency_key)

    async def ping(self, workspace_id: int) -> int:
        """Send a signed test request (event `ping`) to the configured endpoint; its 2xx status, or the
        connectors.errors.PsaError saying what the endpoint answered (wrong secret, unreachable, ...)."""
        target = await self._target(workspace_id)
        if target is None or self.poster is None:
            raise NotFound("No alert action webhook is configured for this workspace.",
                           hint="Set one with `deskbridge rmm set-webhook --url https://…`.")
        url, secret = target
        key = secrets.token_hex(16)
        try:
            return await self.poster.post(url, secret, {"action": "ping", "idempotency_key": key,
                                                        "sent_at": utcnow().isoformat()},
                                          idempotency_key=key, event="ping")
        except PsaError as exc:  # the endpoint's answer, named by host only (the URL may hold a credential)
            raise InvalidInput(f"The alert webhook test failed: {exc}",
                               hint="Check that the endpoint verifies X-Deskbridge-Signature with the same secret "
                                    "and answers 2xx to X-Deskbridge-Event: ping; `deskbridge rmm set-webhook` "
                                    "replaces the URL and secret.") from None

    async def aclose(self) -> None:
        if self.poster is not None:
            await self.poster.aclose()



def body(action: AlertAction, idempotency_key: str) -> dict[str, Any]:
    """The JSON the endpoint receives (the same on every retry of one click)."""
    return {"action": action.action, "alert_ref": action.alert_ref, "device_ref": action.device_ref,
            "ticket_number": action.ticket_number, "customer": action.customer, "actor": action.actor,
            "idempotency_key": idempotency_key}
