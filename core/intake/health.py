"""Is intake ready? For `deskbridge doctor`: the support mailbox can be read with its stored credentials, each
alert source has a secret this instance can read, and what waits in triage. Facts only (the doctor words them);
nothing is taken from the mailbox and no alert is applied.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import col, select

from core.errors import DeskbridgeError, NotFound
from core.intake.mailbox import MailboxService
from core.intake.sources import AlertSourceService
from store.crypto import CredentialError
from store.db import Database, Scope
from store.tables import Alert, AlertReceipt, AlertSource, MailReceipt

MAIL_TRIAGE_WINDOW = timedelta(days=30)
STUCK_AFTER = timedelta(minutes=10)  # an event received and not applied for this long waits on something


@dataclass(frozen=True, slots=True)
class MailboxHealth:
    display: str
    kind: str
    psa_handles_mail: bool
    problem: str | None  # None: it was read
    hint: str | None
    triage: int  # messages of the last 30 days kept in triage (unknown sender, or refused)


@dataclass(frozen=True, slots=True)
class SourceHealth:
    name: str
    kind: str
    path: str
    enabled: bool
    secret_problem: str | None  # None: the secret decrypts with this instance's key
    last_event_at: datetime | None
    stuck: int  # events received over 10 min ago and not applied yet


@dataclass(frozen=True, slots=True)
class IntakeHealth:
    mailbox: MailboxHealth | None  # None: no mailbox configured
    sources: tuple[SourceHealth, ...]
    alert_triage: int  # alerts no rule placed with a customer


async def mailbox_health(db: Database, mailboxes: MailboxService, workspace_id: int,
                         now: datetime) -> MailboxHealth | None:
    entry = await mailboxes.entry(workspace_id)
    if entry is None:
        return None
    problem = hint = None
    if not entry.get("psa_handles_mail"):
        try:
            await mailboxes.test(workspace_id)
        except NotFound:
            return None
        except DeskbridgeError as exc:
            problem, hint = exc.message, exc.hint
        except CredentialError:
            problem, hint = ("the stored mailbox credentials cannot be decrypted with this secret key",
                             "Set DESKBRIDGE_SECRET_KEY to the key they were saved with, or set the mailbox again.")
    async with db.read(Scope.workspace(workspace_id)) as s:
        triage = (await s.exec(select(sa.func.count(col(MailReceipt.id))).where(
            MailReceipt.outcome == "triage", col(MailReceipt.received_at) >= now - MAIL_TRIAGE_WINDOW))).one()
    return MailboxHealth(display=str(entry.get("display") or "?"), kind=str(entry.get("kind") or "?"),
                         psa_handles_mail=bool(entry.get("psa_handles_mail")), problem=problem, hint=hint,
                         triage=int(triage or 0))


async def intake_health(db: Database, mailboxes: MailboxService, sources: AlertSourceService, workspace_id: int,
                        now: datetime) -> IntakeHealth:
    mailbox = await mailbox_health(db, mailboxes, workspace_id, now)
    out: list[SourceHealth] = []
    async with db.read(Scope.workspace(workspace_id)) as s:
        rows = (await s.exec(select(AlertSource).order_by(col(AlertSource.name)))).all()
        for row in rows:
            problem = None
            try:
                if not sources.secret_of(row):
                    problem = "its secret is empty"
            except CredentialError:
                problem = "its secret cannot be decrypted with this secret key"
            last, stuck = (await s.exec(select(
                sa.func.max(col(AlertReceipt.received_at)),
                sa.func.count(col(AlertReceipt.id)).filter(col(AlertReceipt.applied_at).is_(None),
                                                           col(AlertReceipt.received_at) < now - STUCK_AFTER))
                .where(AlertReceipt.source_id == row.id))).one()
            out.append(SourceHealth(name=row.name, kind=row.kind, path=f"/webhooks/alerts/{row.key}",
                                    enabled=row.enabled, secret_problem=problem, last_event_at=last,
                                    stuck=int(stuck or 0)))
        triage = (await s.exec(select(sa.func.count(col(Alert.id))).where(
            col(Alert.customer_id).is_(None), col(Alert.ticket_id).is_(None),
            col(Alert.status).in_(("triage", "triage_resolved"))))).one()
    return IntakeHealth(mailbox=mailbox, sources=tuple(out), alert_triage=int(triage or 0))
