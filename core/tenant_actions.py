"""Microsoft 365 quick actions beside a ticket: reset password, revoke sessions, sync device.

Rules (all here, not in the surfaces):
- Only a technician an admin granted the quick-action role (`grant`), or an admin, never in a customer channel,
  and only on the user (and that user's devices) in the ticket's own customer's tenant (core/tenant_context.py
  resolves the subject; nothing typed by the user picks the tenant).
- Checked before anything is accepted: the user exists and is enabled for the action (a password reset needs
  a cloud-only user: one synced from on-premises AD is reset there), the device is one of the user's.
- Accepted actions are outbox ops (OpKind.TENANT_ACTION): retried on 429/5xx honouring Retry-After, audited,
  dead-lettered like PSA writes. One intent is one op: its marker is derived from the surface's intent id
  (the click), so a repeated click or a redelivered request finds the op it already made.
- A reset's temporary password is generated here, returned once to the surface (shown only to the clicking
  technician), and kept encrypted in the op until it is finished (core/outbox/recorder.py erases it).
- An internal note on the ticket says who asked for what (never a password).
- A second reset of the same user within `REPEAT_WINDOW` (another click, another technician) is not queued
  until the technician confirms that one too (`again=True`): `request` raises `AskAgain`, whose message says
  who reset it when, and each surface asks once more. A redelivered click is still the op it made.
- What a surface tells the technician about a quick action (confirmations, the password notice) is worded here
  once, so Slack, Teams and the console say the same.
- Graph's refusals are explained: which application permission or Entra role the app lacks in that tenant.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

from sqlalchemy.exc import IntegrityError
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from connectors.errors import (
    PsaAuthError,
    PsaError,
    PsaNotFound,
    PsaRateLimited,
    PsaUnavailable,
    PsaUnsupported,
    PsaValidationError,
)
from connectors.tenant import (
    DirectoryAuthError,
    DirectoryError,
    DirectoryNotFound,
    DirectoryThrottled,
    DirectoryUnavailable,
    LicenceMissing,
    PermissionMissing,
)
from core.admin_audit import record_change
from core.context import Actor
from core.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from core.outbox.delivery import TenantSend
from core.outbox.ops import OpKind, TenantAction, enqueue
from core.tenant_context import TenantContextService
from core.ticket_lookup import ticket_id_not_found
from core.tickets import TicketService
from store.crypto import CredentialCipher
from store.db import Database
from store.enums import OutboxStatus
from store.tables import M365ActionGrant, Member, OutboxOp, Ticket
from store.types import utcnow

log = logging.getLogger("deskbridge.tenant_actions")

Action = Literal["reset_password", "revoke_sessions", "sync_device"]
ACTIONS: tuple[Action, ...] = ("reset_password", "revoke_sessions", "sync_device")
LABELS = {"reset_password": "Reset password", "revoke_sessions": "Revoke sessions", "sync_device": "Sync device"}
# What a technician confirms before each action runs (every surface asks the same question).
CONFIRM = {
    "reset_password": "Reset {user}'s password? They are signed out and must choose a new one at next sign-in; "
                      "you get a temporary password to give them.",
    "revoke_sessions": "Sign {user} out of every Microsoft 365 session? It takes Microsoft a few minutes.",
    "sync_device": "Ask Intune to sync {device} now?",
}
# Under the temporary password, wherever it is shown (once, to the technician who asked).
SHOWN_ONCE = ("Only you see this, and only now: Deskbridge does not show it again. Give it to the user by phone or "
              "in person; they must change it at next sign-in. If Microsoft 365 refuses the reset, the ticket's "
              "thread says so.")
NOT_SHOWN_AGAIN = "A temporary password is shown only to the click that asked for it."
REPEAT_WINDOW = timedelta(minutes=15)  # a reset of the same user this recent needs its own confirmation
RESET_AGAIN_LABEL = "Reset again"
CIPHER_KIND = "m365-temp-password"
# What each action needs in the customer's tenant, said when Graph refuses it.
NEEDS = {
    "reset_password": "the application permission User-PasswordProfile.ReadWrite.All and the User Administrator "
                      "role for the Deskbridge app (Privileged Authentication Administrator to reset an admin)",
    "revoke_sessions": "the application permission User.RevokeSessions.All",
    "sync_device": "the application permission DeviceManagementManagedDevices.PrivilegedOperations.All",
}


class AskAgain(Conflict):
    """The user's password was reset (or is being reset) moments ago: nothing was queued for this click. The
    surface asks the technician once more (`question`) and, on yes, calls `request(..., again=True)`."""

    def __init__(self, message: str, *, question: str) -> None:
        super().__init__(message, hint=question)
        self.question = question


@dataclass(frozen=True, slots=True)
class QuickActionAccepted:
    action: Action
    user_label: str
    device_label: str | None
    op_id: int
    confirmation: str  # what the technician is told (never the password)
    temporary_password: str | None = None  # reset only; shown once, to the technician who asked
    repeated: bool = False  # the same intent had already been accepted (nothing new was queued)


def temporary_password(length: int = 16) -> str:
    """A random password meeting Entra's complexity rule (upper, lower, digit, symbol), no look-alikes."""
    upper, lower, digits, symbols = "ABCDEFGHJKLMNPQRSTUVWXYZ", "abcdefghijkmnopqrstuvwxyz", "23456789", "!#%+=?@"
    pool = upper + lower + digits + symbols
    while True:
        pw = "".join(secrets.choice(pool) for _ in range(length))
        if all(any(c in group for c in pw) for group in (upper, lower, digits, symbols)):
            return pw


def explain(action: str, exc: DirectoryError) -> PsaError:
    """A Graph refusal of a quick action as the outbox's error, saying what the customer's admin can do."""
    needs = NEEDS.get(action, "a Microsoft Graph permission")
    if isinstance(exc, PermissionMissing):
        return PsaAuthError(f"Microsoft 365 refused: the Deskbridge app lacks {needs} in this tenant. Ask the "
                            "customer's admin to grant it (Entra admin center > Enterprise applications), then "
                            "redrive this action.", status=exc.status, code=exc.code)
    if isinstance(exc, DirectoryAuthError):
        return PsaAuthError("Microsoft 365 gave Deskbridge no access to this tenant (has the customer's admin "
                            "consented to the app?).", status=exc.status, code=exc.code)
    if isinstance(exc, LicenceMissing):
        return PsaUnsupported(f"Microsoft 365 refused: this tenant has no {exc.product} licence.",
                              status=exc.status, code=exc.code)
    if isinstance(exc, DirectoryNotFound):
        return PsaNotFound("The user or device no longer exists in the customer's Microsoft 365 tenant.",
                           status=exc.status, code=exc.code)
    if isinstance(exc, DirectoryThrottled):
        return PsaRateLimited("Microsoft 365 is throttling requests for this tenant.", retry_after=exc.retry_after,
                              status=exc.status)
    if isinstance(exc, DirectoryUnavailable):
        return PsaUnavailable(exc.message, status=exc.status, code=exc.code)
    return PsaValidationError(f"Microsoft 365 refused the request: {exc.message}", status=exc.status, code=exc.code)


class QuickActions:
    """Grants, validation and enqueueing of quick actions; and their delivery for the outbox worker."""

    def __init__(self, db: Database, *, context: TenantContextService, cipher: CredentialCipher,
                 tickets: TicketService) -> None:
        self.db, self.context, self.cipher, self.tickets = db, context, cipher, tickets

    # ------------------------------------------------------------ grants

    async def grant(self, actor: Actor, member_id: int, *, allow: bool = True) -> None:
        """Give (or take back) a technician the quick-action role; admins only."""
        if not actor.is_admin:
            raise PermissionDenied("Only an admin can grant Microsoft 365 quick actions.",
                                   hint="Ask a Deskbridge admin: `deskbridge customer m365-grant EMAIL`.")
        async with self.db.write(actor.scope) as session:
            member = await session.get(Member, member_id)
            if member is None or member.workspace_id != actor.workspace_id:
                raise NotFound("No such technician in this workspace.",
                               hint="Technicians come from the PSA sync; check the e-mail or run a sync first.")
            row = (await session.exec(select(M365ActionGrant).where(M365ActionGrant.member_id == member_id))).first()
            if allow and row is None:
                session.add(M365ActionGrant(workspace_id=actor.workspace_id, member_id=member_id,
                                            granted_by=actor.display[:200]))
            elif not allow and row is not None:
                await session.delete(row)
            else:
                return  # nothing changed: no audit row
            record_change(session, actor, actor.workspace_id, "m365.grant" if allow else "m365.revoke",
                          {"member": member_id, "email": member.email})

    async def grants(self, actor: Actor) -> list[tuple[Member, M365ActionGrant]]:
        """The technicians granted the quick-action role (admins may act without a grant), by name."""
        self.context.check_actor(actor)
        async with self.db.read(actor.scope) as session:
            rows = (await session.exec(select(Member, M365ActionGrant).join(
                M365ActionGrant, M365ActionGrant.member_id == Member.id)  # type: ignore[arg-type]
                .order_by(Member.name))).all()
        return [(m, g) for m, g in rows]

    async def allowed(self, actor: Actor) -> bool:
        """Whether this technician may run quick actions (an admin, or granted)."""
        if not actor.is_member or actor.customer_scope_id is not None:
            return False
        if actor.is_admin:
            return True
        if actor.member_id is None:
            return False
        async with self.db.read(actor.scope) as session:
            row = (await session.exec(select(M365ActionGrant.id).where(
                M365ActionGrant.member_id == actor.member_id))).first()
        return row is not None

    # ------------------------------------------------------------ asking

    async def request(self, actor: Actor, ticket_id: int, action: str, *, intent: str, device_id: str | None = None,
                      audience: str = "tech", again: bool = False) -> QuickActionAccepted:
        """Validate and queue one quick action on the ticket's user (or one of their devices). A reset of a user
        reset within REPEAT_WINDOW raises AskAgain unless `again` (the technician confirmed that second reset)."""
        if action not in ACTIONS:
            raise InvalidInput(f"'{action}' is not a quick action.", hint="Use reset_password, revoke_sessions "
                                                                          "or sync_device.")
        self.context.check_actor(actor, audience)
        if not await self.allowed(actor):
            raise PermissionDenied("You are not allowed to run Microsoft 365 quick actions.",
                                   hint="Ask a Deskbridge admin: `deskbridge customer m365-grant EMAIL`.")
        if not intent:
            raise InvalidInput("A quick action needs the id of the click that asked for it.",
                               hint="Open the ticket again (/ticket NUMBER) and use the action on its Context view.")
        sub = await self.context.subject(actor, ticket_id, audience=audience)
        if sub.tenant_id is None or sub.key is None:
            raise InvalidInput(sub.note or "This ticket has no Microsoft 365 user.",
                               hint="Choose the user the ticket is about (Context > Change user).")
        directory = self.context.directory(sub.tenant_id)
        device_label = None
        try:
            user = await directory.user(sub.key)
            if action == "sync_device":
                device_id = device_id or sub.device_id
                devices = {d.id: d for d in await directory.devices(user.id)}
                if not device_id or device_id not in devices:
                    raise InvalidInput("That device is not one of the user's Intune devices.", field="device",
                                       hint="Pick one of the devices shown in the ticket's context.")
                device_label = devices[device_id].name
        except DirectoryError as exc:
            raise InvalidInput(f"Nothing was queued: {explain(action, exc).message}",
                               hint="Try again once Microsoft 365 answers.") from None
        if action == "reset_password" and user.on_prem_synced:
            raise InvalidInput(f"{user.upn} is synced from on-premises Active Directory: Microsoft 365 cannot reset "
                               "that password.", hint="Reset it in Active Directory (or enable password writeback).")
        return await self._enqueue(actor, ticket_id, action, intent, TenantAction(
            action=action, tenant_id=sub.tenant_id, user_id=user.id, user_label=user.upn,
            device_id=device_id if action == "sync_device" else None, device_label=device_label), again=again)

    async def _enqueue(self, actor: Actor, ticket_id: int, action: Action, intent: str,
                       payload: TenantAction, *, again: bool = False) -> QuickActionAccepted:
        marker = hashlib.sha256(f"m365:{actor.workspace_id}:{ticket_id}:{action}:{payload.user_id}:"
                                f"{payload.device_id}:{intent}".encode()).hexdigest()[:32]
        existing = await self._by_marker(actor, marker)
        if existing is not None:
            return self._accepted(existing, repeated=True)
        password = temporary_password() if action == "reset_password" else None
        if password is not None:
            blob = self.cipher.encrypt({"password": password}, workspace_id=actor.workspace_id, kind=CIPHER_KIND)
            payload = payload.model_copy(update={"password_ciphertext": base64.b64encode(blob).decode()})
        try:
            async with self.db.write(actor.scope) as session:
                # The ticket row is locked (PostgreSQL; SQLite writes one at a time), so two clicks on Reset at
                # the same instant cannot both pass the check below.
                ticket = await session.get(Ticket, ticket_id, with_for_update=True)
                if action == "reset_password" and not again:
                    await _refuse_recent_reset(session, payload)
                if ticket is None:
                    raise ticket_id_not_found(ticket_id)
                # A PSA ticket's action is filed under its connection (the operator's filters); a standalone
                # ticket's has none: it goes to Graph, never to a PSA, in a workspace with or without one.
                op = enqueue(session, workspace_id=actor.workspace_id, connection_id=ticket.connection_id,
                             payload=payload, ticket_id=ticket_id, actor=actor.display,
                             author_member_id=actor.member_id, marker=marker, max_attempts=6)
                await session.flush()
        except IntegrityError:  # the same click, accepted by a concurrent request a moment ago
            existing = await self._by_marker(actor, marker)
            if existing is None:
                raise
            return self._accepted(existing, repeated=True)
        accepted = self._accepted(op, password=password)
        try:
            await self.tickets.comment(actor, f"id:{ticket_id}", _note_text(payload), visibility="internal")
        except Exception:  # noqa: BLE001 - the action is queued; a missing note must not make it look refused
            log.warning("quick action note failed", extra={"ticket_id": ticket_id, "op_id": op.id}, exc_info=True)
        return accepted

    async def _by_marker(self, actor: Actor, marker: str) -> OutboxOp | None:
        async with self.db.read(actor.scope) as session:
            return (await session.exec(select(OutboxOp).where(OutboxOp.marker == marker))).first()

    @staticmethod
    def _accepted(op: OutboxOp, *, password: str | None = None, repeated: bool = False) -> QuickActionAccepted:
        p = TenantAction.model_validate(op.payload)
        what = {"reset_password": f"Password reset for {p.user_label} queued: it must be changed at next sign-in.",
                "revoke_sessions": f"Sign-in sessions of {p.user_label} are being revoked (Microsoft takes a few "
                                   "minutes; guests are not covered).",
                "sync_device": f"Sync asked for {p.device_label or p.device_id}."}[p.action]
        if repeated:
            what = "Already asked (this click was handled before): " + what
        assert op.id is not None
        return QuickActionAccepted(action=p.action, user_label=p.user_label, device_label=p.device_label,
                                   op_id=op.id, confirmation=what, temporary_password=password, repeated=repeated)

    # ------------------------------------------------------------ delivering (outbox worker)

    def sender(self, workspace_id: int) -> TenantSend:
        """The outbox worker's way to run one op of this workspace."""
        async def send(payload: TenantAction, marker: str) -> str:
            return await self.deliver(workspace_id, payload)

        return send

    async def deliver(self, workspace_id: int, payload: TenantAction) -> str:
        """Make the Graph call of one accepted action; raises PsaError (explained) when Graph refuses."""
        try:
            directory = self.context.directory(payload.tenant_id)
        except InvalidInput as exc:
            raise PsaUnsupported(exc.message, code="NoM365") from None
        try:
            if payload.action == "reset_password":
                if not payload.password_ciphertext:
                    raise PsaValidationError("The temporary password is no longer kept (the action had finished); "
                                             "ask for a new reset.", code="PasswordGone")
                secret = self.cipher.decrypt(base64.b64decode(payload.password_ciphertext),
                                             workspace_id=workspace_id, kind=CIPHER_KIND)["password"]
                await directory.reset_password(payload.user_id, secret)
            elif payload.action == "revoke_sessions":
                await directory.revoke_sessions(payload.user_id)
            else:
                assert payload.device_id is not None
                await directory.sync_device(payload.device_id)
        except DirectoryError as exc:
            raise explain(payload.action, exc) from None
        return f"graph {payload.action}"


async def _refuse_recent_reset(session: AsyncSession, payload: TenantAction) -> None:
    """AskAgain when this user's password was reset (asked, queued or done) within REPEAT_WINDOW."""
    since = utcnow() - REPEAT_WINDOW
    recent = (await session.exec(select(OutboxOp).where(
        OutboxOp.kind == OpKind.TENANT_ACTION.value, OutboxOp.created_at >= since,
        OutboxOp.status.notin_([OutboxStatus.DEAD.value, OutboxStatus.DISCARDED.value]))  # type: ignore[attr-defined]
        .order_by(OutboxOp.id.desc()))).all()  # type: ignore[union-attr]
    for op in recent:
        p = op.payload or {}
        if (p.get("action"), p.get("user_id"), p.get("tenant_id")) == ("reset_password", payload.user_id,
                                                                        payload.tenant_id):
            minutes = max(0, int((utcnow() - op.created_at).total_seconds() // 60))
            ago = "less than a minute ago" if minutes == 0 else f"{minutes} min ago"
            state = "was reset" if op.status == OutboxStatus.DONE.value else "is being reset"
            raise AskAgain(f"{payload.user_label}'s password {state}: asked {ago} by {op.actor}. Nothing was "
                           "done for this click.",
                           question=f"{RESET_AGAIN_LABEL}? The temporary password given then stops working.")



def _note_text(p: TenantAction) -> str:
    """The internal note (its author is the technician who asked): what was done, never the password."""
    if p.action == "reset_password":
        return (f"Microsoft 365 quick action: password of {p.user_label} reset (temporary password given to the "
                "technician; must be changed at next sign-in).")
    if p.action == "revoke_sessions":
        return f"Microsoft 365 quick action: sign-in sessions of {p.user_label} revoked."
    return f"Microsoft 365 quick action: Intune sync asked for {p.device_label or p.device_id} ({p.user_label})."
