"""Mail triage beyond triage, through the real FastAPI app: mail stuck mid-processing (taken, never settled: the
process died) listed with its age and taken again without a second ticket; automatic (ignored) mail listed
read-only and taken anyway; and a failure after an assignment's words are on a ticket leaves the mail settled."""

from __future__ import annotations

from datetime import timedelta
from email.message import EmailMessage

import pytest
import sqlalchemy as sa
from sqlmodel import col, select

from core.errors import ConnectionProblem
from core.intake.mail import MailIntake
from store.db import Scope
from store.tables import AuditLog, MailReceipt, Ticket
from tests.bot.admin.helpers import sign_in
from tests.bot.admin.test_mail_triage_page import _ingest, _receipt, _setup, message
from tests.bot.api.conftest import Api


class Died(Exception):
    """The process stopping part way (not a DeskbridgeError: nothing in the intake catches it)."""


async def _tickets(api: Api, subject: str) -> list[Ticket]:
    async with api.container.db.read(Scope.workspace(api.ws)) as s:
        return list((await s.exec(select(Ticket).where(Ticket.subject == subject))).all())


async def _age(api: Api, receipt_id: int, minutes: int) -> None:
    """The receipt was taken `minutes` ago (the poll's LEASE is 5)."""
    async with api.container.db.write(Scope.workspace(api.ws)) as s:
        await s.execute(sa.update(MailReceipt).where(col(MailReceipt.id) == receipt_id).values(
            received_at=api.container.mailboxes.intake.now() - timedelta(minutes=minutes)))


def _with_file(sender: str, subject: str, mid: str) -> bytes:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"], msg["Message-ID"] = sender, "help@msp.example", subject, mid
    msg.set_content(f"Words about {subject}.")
    msg.add_attachment(b"%PDF-1.4", maintype="application", subtype="pdf", filename="scan.pdf")
    return bytes(msg)


async def test_stuck_mail_is_listed_with_its_age_and_taken_again_without_a_second_ticket(
        api: Api, monkeypatch: pytest.MonkeyPatch):
    await _setup(api)  # ann@acme.example is ACME's contact
    real = MailIntake.attachments

    async def dies(self: MailIntake, *a: object, **k: object) -> None:
        raise Died("killed")

    monkeypatch.setattr(MailIntake, "attachments", dies)  # the ticket is made, then the process dies
    with pytest.raises(Died):
        await _ingest(api, _with_file("ann@acme.example", "Printer down", "<p1@x>"))
    monkeypatch.setattr(MailIntake, "attachments", real)
    made = await _receipt(api, message_id="<p1@x>")
    assert made.outcome == "processing" and made.ticket_id is not None
    [ticket] = await _tickets(api, "Printer down")
    assert made.ticket_id == ticket.id
    assert await _ingest(api, _with_file("ann@acme.example", "Printer down", "<p1@x>")) == "busy"  # the poll: leased
    async with api.container.db.write(Scope.workspace(api.ws)) as s:  # died before anything: a bare claim
        s.add(MailReceipt(workspace_id=api.ws, message_id="<p2@x>", sender="bob@acme.example", subject="Scanner",
                          outcome="processing", raw=message("bob@acme.example", "Scanner", mid="<p2@x>"),
                          received_at=api.container.mailboxes.intake.now()))
    bare = await _receipt(api, message_id="<p2@x>")
    csrf = await sign_in(api)

    fresh = await api.client.get("/admin/mail", params={"why": "stuck"})  # under 5 minutes: still being taken
    assert "No e-mail is stuck mid-processing." in fresh.text
    early = await api.client.post(f"/admin/mail/{made.id}/replay", data={"csrf": csrf})
    assert early.status_code == 409 and "being taken right now" in early.text
    await _age(api, made.id, 42)
    await _age(api, bare.id, 3 * 60 + 5)
    listed = await api.client.get("/admin/mail", params={"why": "stuck"})
    assert listed.text.count('<tr><td><a href="/admin/mail/') == 2
    assert '<td class="age">42 minutes</td>' in listed.text and '<td class="age">3 hours</td>' in listed.text
    assert "Printer down" not in (await api.client.get("/admin/mail")).text  # not in triage itself
    page = await api.client.get(f"/admin/mail/{made.id}")
    assert "stuck mid-processing for 42 minutes" in page.text and 'id="mail-replay"' in page.text
    assert 'id="mail-assign"' not in page.text

    again = await api.client.post(f"/admin/mail/{made.id}/replay", data={"csrf": csrf})
    assert again.headers["location"].endswith("done=mail_created")
    settled = await _receipt(api, id=made.id)
    assert settled.outcome == "created" and settled.ticket_id == ticket.id
    assert "nothing written twice" in (settled.reason or "")
    assert [t.id for t in await _tickets(api, "Printer down")] == [ticket.id]  # no second ticket
    twice = await api.client.post(f"/admin/mail/{made.id}/replay", data={"csrf": csrf})
    assert twice.status_code == 409

    assert await _ingest(api, _with_file("ann@acme.example", "Printer down", "<p1@x>")) == "duplicate"
    other = await api.client.post(f"/admin/mail/{bare.id}/replay", data={"csrf": csrf})
    assert other.headers["location"].endswith("done=mail_created")
    [scanner] = await _tickets(api, "Scanner")  # nothing was written before: one ticket now
    assert (await _receipt(api, id=bare.id)).ticket_id == scanner.id
    assert "No e-mail is stuck mid-processing." in (await api.client.get("/admin/mail", params={"why": "stuck"})).text
    async with api.container.db.read(Scope.workspace(api.ws)) as s:
        audited = (await s.exec(select(AuditLog).where(AuditLog.action == "intake.mail.replay"))).all()
    assert len(audited) == 2


async def test_the_polls_own_takeover_of_a_stuck_mail_makes_no_second_ticket(api: Api, monkeypatch: pytest.MonkeyPatch):
    await _setup(api)
    real = MailIntake.attachments

    async def dies(self: MailIntake, *a: object, **k: object) -> None:
        raise Died("killed")

    monkeypatch.setattr(MailIntake, "attachments", dies)
    with pytest.raises(Died):
        await _ingest(api, _with_file("ann@acme.example", "Router", "<r1@x>"))
    monkeypatch.setattr(MailIntake, "attachments", real)
    await _age(api, (await _receipt(api, message_id="<r1@x>")).id, 6)  # past the lease: the next poll takes it over
    assert await _ingest(api, _with_file("ann@acme.example", "Router", "<r1@x>")) == "created"
    [ticket] = await _tickets(api, "Router")
    assert (await _receipt(api, message_id="<r1@x>")).ticket_id == ticket.id


async def test_a_failure_after_the_ticket_is_made_settles_the_mail_and_a_replay_makes_no_second_ticket(
        api: Api, monkeypatch: pytest.MonkeyPatch):
    await _setup(api)

    async def refused(self: MailIntake, *a: object, **k: object) -> None:
        raise ConnectionProblem("The PSA did not answer.")

    monkeypatch.setattr(MailIntake, "attachments", refused)
    assert await _ingest(api, _with_file("ann@acme.example", "Laptop", "<l1@x>")) == "created"
    row = await _receipt(api, message_id="<l1@x>")
    [ticket] = await _tickets(api, "Laptop")
    assert row.ticket_id == ticket.id and row.reason == "then: The PSA did not answer."
    csrf = await sign_in(api)
    r = await api.client.post(f"/admin/mail/{row.id}/replay", data={"csrf": csrf})
    assert r.status_code == 409
    assert len(await _tickets(api, "Laptop")) == 1


async def test_an_assignment_that_fails_after_its_words_are_on_a_ticket_stays_settled(
        api: Api, monkeypatch: pytest.MonkeyPatch):
    ids = await _setup(api)
    assert await _ingest(api, _with_file("cara@newco.example", "New hire", "<n1@x>")) == "triage"
    cara = await _receipt(api, message_id="<n1@x>")
    csrf = await sign_in(api)

    async def refused(self: MailIntake, *a: object, **k: object) -> None:
        raise ConnectionProblem("The PSA refused the file.")

    monkeypatch.setattr(MailIntake, "attachments", refused)  # after the ticket and its note are written
    r = await api.client.post(f"/admin/mail/{cara.id}/assign", data={"csrf": csrf, "customer": "ACME"})
    assert r.headers["location"].endswith("done=mail_to_customer")
    row = await _receipt(api, id=cara.id)
    [ticket] = await _tickets(api, "New hire")
    assert row.outcome == "created" and row.ticket_id == ticket.id and ticket.customer_id == ids["acme"]
    assert row.reason and row.reason.startswith("assigned by ") and row.reason.endswith(
        "; then: The PSA refused the file.")
    for action, data in (("assign", {"customer": "ACME"}), ("replay", {})):
        again = await api.client.post(f"/admin/mail/{cara.id}/{action}", data={"csrf": csrf, **data})
        assert again.status_code == 409
    assert len(await _tickets(api, "New hire")) == 1
    assert "New hire" not in (await api.client.get("/admin/mail")).text


async def test_automatic_mail_is_listed_read_only_and_a_persons_mail_is_taken_anyway(api: Api):
    ids = await _setup(api)
    auto = EmailMessage()
    auto["From"], auto["To"], auto["Subject"], auto["Message-ID"] = ("ann@acme.example", "help@msp.example",
                                                                     "Re: out of office?", "<a1@x>")
    auto["Auto-Submitted"] = "auto-replied"  # her mail client set it, but Ann typed this one herself
    auto.set_content("I am back; the printer is still broken.")
    assert await _ingest(api, bytes(auto)) == "ignored"
    assert await _ingest(api, message("mailer-daemon@relay.example", "Undeliverable", mid="<b1@x>")) == "ignored"
    ann, bounce = await _receipt(api, message_id="<a1@x>"), await _receipt(api, message_id="<b1@x>")
    csrf = await sign_in(api)

    assert "No e-mail waits in triage." in (await api.client.get("/admin/mail")).text  # not triage
    listed = await api.client.get("/admin/mail", params={"why": "automatic"})
    assert listed.text.count('<tr><td><a href="/admin/mail/') == 2
    assert "Auto-Submitted: auto-replied" in listed.text and "Undeliverable" in listed.text
    page = await api.client.get(f"/admin/mail/{ann.id}")
    assert "automatic (ignored)" in page.text and 'id="mail-take-anyway"' in page.text
    for form in ('id="mail-replay"', 'id="mail-assign"', 'id="mail-discard"'):  # read-only but for take anyway
        assert form not in page.text
    for action in ("replay", "discard"):
        r = await api.client.post(f"/admin/mail/{ann.id}/{action}", data={"csrf": csrf, "reason": "x"})
        assert r.status_code == 409
    assert (await api.client.post(f"/admin/mail/{ann.id}/take-anyway", data={})).status_code == 403

    taken = await api.client.post(f"/admin/mail/{ann.id}/take-anyway", data={"csrf": csrf})
    assert taken.headers["location"].endswith("done=mail_created")
    row = await _receipt(api, id=ann.id)
    [ticket] = await _tickets(api, "out of office?")
    assert row.outcome == "created" and row.ticket_id == ticket.id and ticket.customer_id == ids["acme"]
    assert ticket.description == "I am back; the printer is still broken."
    again = await api.client.post(f"/admin/mail/{ann.id}/take-anyway", data={"csrf": csrf})
    assert again.status_code == 409 and len(await _tickets(api, "out of office?")) == 1
    unknown = await api.client.post(f"/admin/mail/{bounce.id}/take-anyway", data={"csrf": csrf})
    assert unknown.headers["location"].endswith("done=mail_still")  # an unknown sender: now in triage
    assert (await _receipt(api, id=bounce.id)).outcome == "triage"
    async with api.container.db.read(Scope.workspace(api.ws)) as s:
        audited = (await s.exec(select(AuditLog).where(AuditLog.action == "intake.mail.take_anyway"))).all()
    assert len(audited) == 2 and all((a.actor or "").startswith("admin-page:") for a in audited)
