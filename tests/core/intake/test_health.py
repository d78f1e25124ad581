"""Intake health for `deskbridge doctor` (core/intake/health.py): events received and not applied, per source;
alerts and mail in triage; no mailbox configured means no mailbox facts."""

from __future__ import annotations

from datetime import timedelta

from connectors.mail import build_reader
from core.intake.health import intake_health
from core.intake.mail import MailIntake
from core.intake.mailbox import MailboxService
from store.crypto import CredentialCipher, generate_key
from store.db import Scope
from store.tables import AlertReceipt
from tests.core.intake.conftest import events_v2, ninja


async def test_events_not_applied_for_over_ten_minutes_are_counted_per_source(intake) -> None:
    mailboxes = MailboxService(intake.db, cipher=CredentialCipher.from_keys([generate_key()]),
                               intake=MailIntake(intake.db, tickets=intake.tickets), readers=build_reader)
    await intake.source("ninja", kind="ninjaone")
    await intake.source("pd", kind="events_v2")
    await intake.send("ninja", ninja(series="s-1"))
    await intake.send("ninja", ninja(series="s-2", activity=2))
    await intake.send("pd", events_v2(org_name="Initech"))  # no such customer: triage
    now = intake.clock.now
    healthy = await intake_health(intake.db, mailboxes, intake.sources, intake.ws, now)
    assert healthy.mailbox is None and healthy.alert_triage == 1
    assert [(s.name, s.stuck, s.secret_problem) for s in healthy.sources] == [("ninja", 0, None), ("pd", 0, None)]
    assert all(s.last_event_at is not None for s in healthy.sources)

    async with intake.db.write(Scope.workspace(intake.ws)) as s:  # as if the worker died before applying one
        receipt = (await s.get(AlertReceipt, (await intake.receipts())[0].id))
        assert receipt is not None
        receipt.applied_at = None
    soon = await intake_health(intake.db, mailboxes, intake.sources, intake.ws, receipt.received_at
                               + timedelta(minutes=5))
    later = await intake_health(intake.db, mailboxes, intake.sources, intake.ws, receipt.received_at
                                + timedelta(minutes=11))
    assert [s.stuck for s in soon.sources] == [0, 0]  # a fresh event may still be on its way
    assert [s.stuck for s in later.sources] == [1, 0]
