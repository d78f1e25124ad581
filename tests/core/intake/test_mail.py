"""E-mail intake in core: new tickets by contact and domain, triage, threading by headers and by token,
reply stripping, loop/noise protection, attachments over the cap, and exactly-once per Message-ID."""

from __future__ import annotations

from email.message import EmailMessage

import pytest
from sqlmodel import select

from core.intake.mail import MailIntake
from core.intake.mailparse import strip_reply
from store.db import Scope
from store.tables import Contact, Customer, MailReceipt, Ticket, TimelineEntry


def message(subject: str = "Printer on 2nd floor jams", body: str = "It jams on every page.\n\nThanks, Ann",
            sender: str = "Ann Lee <ann@acme.example>", mid: str = "<m1@acme.example>", **headers: str) -> bytes:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"], msg["Message-ID"] = sender, "help@msp.example", subject, mid
    for k, v in headers.items():
        msg[k.replace("_", "-")] = v
    msg.set_content(body)
    return bytes(msg)


@pytest.fixture
async def mail(intake):
    async with intake.db.write(Scope.workspace(intake.ws)) as s:
        acme = (await s.exec(select(Customer).where(Customer.identifier == "ACME"))).one()
        s.add(Contact(workspace_id=intake.ws, customer_id=acme.id, name="Ann Lee", email="ann@acme.example"))
    intake.mail = MailIntake(intake.db, tickets=intake.tickets, clock=intake.clock)
    intake.acme = acme.id
    return intake


async def _tickets(m) -> list[Ticket]:
    return await m.tickets_()


async def test_new_message_creates_a_ticket_for_the_contact_and_a_redelivery_does_not(mail):
    out = await mail.mail.ingest(mail.ws, message())
    assert out.outcome == "created"
    [t] = await _tickets(mail)
    assert t.customer_id == mail.acme and t.contact_id is not None and t.source == "email"
    assert t.subject == "Printer on 2nd floor jams" and "jams on every page" in t.description
    again = await mail.mail.ingest(mail.ws, message())
    assert again.outcome == "duplicate" and len(await _tickets(mail)) == 1


async def test_domain_match_and_unknown_sender_goes_to_triage_with_the_raw_message(mail):
    r = await mail.mail.ingest(mail.ws, message(sender="bob@acme.example", mid="<m2@x>"))
    assert r.outcome == "created" and (await _tickets(mail))[0].contact_id is None
    r = await mail.mail.ingest(mail.ws, message(sender="eve@unknown.example", mid="<m3@x>"))
    assert r.outcome == "triage" and r.reason == "unknown sender"
    async with mail.db.read(Scope.workspace(mail.ws)) as s:
        row = (await s.exec(select(MailReceipt).where(MailReceipt.message_id == "<m3@x>"))).one()
    assert b"eve@unknown.example" in row.raw


async def test_replies_join_by_headers_and_by_token_with_quotes_and_signature_stripped(mail):
    await mail.mail.ingest(mail.ws, message())
    [t] = await _tickets(mail)
    reply = message(subject="RE: Printer on 2nd floor jams", mid="<m4@acme.example>",
                    body="Still broken after the restart.\n-- \nAnn Lee\nAcme\n\nOn Mon, Ann wrote:\n> It jams",
                    In_Reply_To="<m1@acme.example>")
    r = await mail.mail.ingest(mail.ws, reply)
    assert r.outcome == "replied" and r.ticket_id == t.id
    by_token = message(subject=f"AW: [DB-{t.number}] Printer", mid="<m5@acme.example>",
                       body="Works now!\n\n-----Original Message-----\nFrom: help")
    assert (await mail.mail.ingest(mail.ws, by_token)).outcome == "replied"
    notes = await mail.notes(t.id)
    assert notes == ["Still broken after the restart.", "Works now!"]  # their words (test_mail_reply_echo.py)
    async with mail.db.read(Scope.workspace(mail.ws)) as s:
        kinds = {e.kind for e in (await s.exec(select(TimelineEntry))).all()}
    assert kinds == {"note_public"}
    stranger = message(subject=f"[DB-{t.number}] hello", sender="eve@other.example", mid="<m6@x>")
    assert (await mail.mail.ingest(mail.ws, stranger)).outcome == "triage"  # a token alone is not trusted


@pytest.mark.parametrize("headers", [
    {"Auto_Submitted": "auto-replied"}, {"Auto_Submitted": "auto-generated"}, {"Auto_Submitted": "auto-notified"},
    {"Auto_Submitted": 'auto-replied; owner-email="ann@acme.example"'}, {"Auto_Submitted": "Auto-Replied (vacation)"},
    {"Auto_Submitted": "auto-replied", "X_Auto_Response_Suppress": "All"},  # Exchange's out-of-office
    {"Precedence": "bulk"}, {"Precedence": "junk"}, {"Precedence": "list"}, {"Precedence": "auto_reply"},
    {"List_Id": "<news.acme.example>"}, {"List_Unsubscribe": "<mailto:leave@news.acme.example>"},
    {"X_Autoreply": "yes"}, {"X_Autorespond": "yes"}, {"Return_Path": "<>"},
])
async def test_auto_replies_bounces_and_lists_are_not_ingested(mail, headers):
    r = await mail.mail.ingest(mail.ws, message(**headers))
    assert r.outcome == "ignored" and r.reason and await _tickets(mail) == []


@pytest.mark.parametrize("value", ["no", "No", "no (typed by a person)", "no; note=manual"])
async def test_auto_submitted_no_with_comments_or_parameters_is_a_person(mail, value):
    """RFC 3834 §5: only the keyword decides; a person's mail is never dropped as an auto-reply."""
    r = await mail.mail.ingest(mail.ws, message(Auto_Submitted=value))
    assert r.outcome == "created"


async def test_delivery_reports_and_postmaster_mail_make_no_ticket_and_no_reply(mail):
    report = EmailMessage()
    report["From"], report["To"] = "Microsoft Outlook <MicrosoftExchange329e71ec88ae@acme.example>", "help@msp.example"
    report["Subject"], report["Message-ID"] = "Undeliverable: Ticket #5001 update", "<ndr1@acme.example>"
    report.set_content("Delivery has failed to these recipients or groups: gone@acme.example")
    report.make_mixed()
    report.replace_header("Content-Type", 'multipart/report; report-type=delivery-status; boundary="b1"')
    r = await mail.mail.ingest(mail.ws, bytes(report))
    assert r.outcome == "ignored" and r.reason == "delivery report"
    r = await mail.mail.ingest(mail.ws, message(sender="postmaster@acme.example", mid="<pm1@acme.example>"))
    assert r.outcome == "ignored" and await _tickets(mail) == []


async def test_mailer_daemon_and_our_own_messages_are_ignored(mail):
    r = await mail.mail.ingest(mail.ws, message(sender="MAILER-DAEMON@acme.example", mid="<b1@x>"))
    assert r.outcome == "ignored"
    r = await mail.mail.ingest(mail.ws, message(sender="help@msp.example", mid="<b2@x>"),
                               own_addresses=frozenset({"help@msp.example"}))
    assert r.reason == "our own address" and await _tickets(mail) == []
    assert (await mail.mail.ingest(mail.ws, message(Auto_Submitted="no", mid="<b3@x>"))).outcome == "created"


async def test_attachments_within_the_cap_are_kept_and_oversized_ones_refused_with_a_note(mail):
    msg = EmailMessage()
    msg["From"], msg["Subject"], msg["Message-ID"] = "ann@acme.example", "Screenshots", "<a1@acme.example>"
    msg.set_content("See attached.")
    msg.add_attachment(b"small-png-bytes", maintype="image", subtype="png", filename="error.png")
    msg.add_attachment(b"x" * (26 * 1024 * 1024), maintype="application", subtype="zip", filename="logs.zip")
    r = await mail.mail.ingest(mail.ws, bytes(msg))
    assert r.outcome == "created"
    async with mail.db.read(Scope.workspace(mail.ws)) as s:
        entries = (await s.exec(select(TimelineEntry).where(TimelineEntry.ticket_id == r.ticket_id))).all()
    files = [e.data.get("filename") for e in entries if e.kind == "attachment"]
    notes = [e.body for e in entries if e.kind == "note_internal"]
    assert files == ["error.png"] and len(notes) == 1 and "logs.zip" in notes[0] and "another way" in notes[0]


def test_reply_stripping_keeps_only_the_new_text():
    assert strip_reply("Yes, go ahead.\n\nSent from my iPhone\n\n> quoted") == "Yes, go ahead."
    assert strip_reply("Fine\r\n\r\nAm 1. Dez. schrieb Bob <b@x>:\r\n> alt") == "Fine"
    assert strip_reply("> only a quote") == ""


async def test_a_sender_past_the_hourly_limit_waits_in_triage_and_nothing_is_lost(mail):
    from store.tables import Workspace

    async with mail.db.write(Scope.workspace(mail.ws)) as s:
        ws = await s.get(Workspace, mail.ws)
        ws.settings = {**(ws.settings or {}), "mail_tickets_per_sender_per_hour": 2}
    outcomes = [(await mail.mail.ingest(mail.ws, message(subject=f"Issue {i}", mid=f"<flood{i}@x>"))) for i in range(3)]
    assert [o.outcome for o in outcomes] == ["created", "created", "triage"]
    assert outcomes[2].reason == "over 2 new tickets from this sender within an hour"
    async with mail.db.read(Scope.workspace(mail.ws)) as s:
        row = (await s.exec(select(MailReceipt).where(MailReceipt.message_id == "<flood2@x>"))).one()
    assert b"Issue 2" in row.raw  # kept whole for a technician
    mail.clock.advance(seconds=3601)
    assert (await mail.mail.ingest(mail.ws, message(subject="Next day", mid="<flood3@x>"))).outcome == "created"


async def test_a_reply_to_a_plus_address_joins_its_ticket_when_the_sender_is_its_customers(mail):
    from email import message_from_bytes, policy

    await mail.mail.ingest(mail.ws, message())
    [t] = await _tickets(mail)

    def to_plus(raw: bytes, to: str) -> bytes:
        msg = message_from_bytes(raw, policy=policy.default)
        msg.replace_header("To", to)
        return bytes(msg)

    plus = to_plus(message(subject="the printer", mid="<p1@acme.example>", body="Tray 2 now too."),
                   f"Help Desk <help+db-{t.number}@msp.example>")
    r = await mail.mail.ingest(mail.ws, plus)
    assert (r.outcome, r.ticket_id) == ("replied", t.id)
    assert (await mail.notes(t.id))[-1] == "Tray 2 now too."
    stranger = to_plus(message(subject="hi", sender="eve@other.example", mid="<p2@x>"),
                       f"help+db-{t.number}@msp.example")
    assert (await mail.mail.ingest(mail.ws, stranger)).outcome == "triage"  # an address alone is not trusted


@pytest.mark.parametrize("subject, to", [("Re: printer [DB-999999999999]", "help@msp.example"),
                                         ("Re: printer", "help+db-999999999999@msp.example"),
                                         ("Re: printer [DB-٣]", "help@msp.example")])
async def test_a_token_naming_no_possible_ticket_opens_a_new_one_and_loses_nothing(mail, subject, to):
    """A ticket number above any ticket's (a typo, a forged token) is no ticket: the customer's words start a new
    ticket instead of failing the message (on PostgreSQL the number did not fit the column)."""
    from email import message_from_bytes, policy

    msg = message_from_bytes(message(subject=subject, mid="<big@acme.example>", body="Still broken."),
                             policy=policy.default)
    msg.replace_header("To", to)
    r = await mail.mail.ingest(mail.ws, bytes(msg))
    assert r.outcome == "created", r
    [t] = await _tickets(mail)
    assert "Still broken." in t.description


@pytest.mark.parametrize("subject", ["\u200b\u200d", "\x07\x1b", "\u200b\x7f\x9b"])
async def test_a_subject_of_invisible_characters_still_opens_a_ticket(mail, subject: str):
    """A subject that shows nothing (zero-width or control characters only) is no subject: the ticket is named after
    the sender, and the customer's words are all there."""
    r = await mail.mail.ingest(mail.ws, message(subject=subject, mid="<zw@acme.example>", body="Help please."))
    assert r.outcome == "created", r
    [t] = await _tickets(mail)
    assert t.subject.startswith("E-mail from") and "Help please." in t.description


async def test_mail_in_triage_is_taken_again_from_its_kept_raw_once_its_sender_is_known(mail):
    from core.errors import Conflict, InvalidInput, NotFound
    from core.intake.mail import MAX_RAW_BYTES

    words = "Our new hire cannot log in.\n\nThanks, Cara"
    raw = message(sender="Cara Diaz <cara@newco.example>", subject="New hire login", body=words, mid="<t1@newco.example>")
    assert (await mail.mail.ingest(mail.ws, raw)).outcome == "triage"
    [waiting] = await mail.mail.triage(mail.ws)
    assert (waiting.sender, waiting.subject, waiting.reason) == ("cara@newco.example", "New hire login", "unknown sender")
    assert (await mail.mail.replay(mail.ws, waiting.id)).outcome == "triage"  # still nobody's: waits again
    async with mail.db.write(Scope.workspace(mail.ws)) as s:  # a technician adds her as ACME's contact
        s.add(Contact(workspace_id=mail.ws, customer_id=mail.acme, name="Cara Diaz", email="cara@newco.example"))
    out = await mail.mail.replay(mail.ws, waiting.id)
    [ticket] = await _tickets(mail)
    assert out.outcome == "created" and out.ticket_id == ticket.id and ticket.customer_id == mail.acme
    assert ticket.subject == "New hire login" and "Our new hire cannot log in." in ticket.description
    assert await mail.mail.triage(mail.ws) == []
    with pytest.raises(Conflict):  # taken once: never a second ticket
        await mail.mail.replay(mail.ws, waiting.id)
    with pytest.raises(NotFound):
        await mail.mail.replay(mail.ws, 999_999)
    big = message(sender="dan@elsewhere.example", mid="<t2@elsewhere.example>", body="x" * (MAX_RAW_BYTES + 10))
    assert (await mail.mail.ingest(mail.ws, big)).outcome == "triage"
    [cut] = await mail.mail.triage(mail.ws)
    with pytest.raises(InvalidInput, match="larger than the 512 KB kept") as refused:
        await mail.mail.replay(mail.ws, cut.id)
    assert "send it again" in (refused.value.hint or "")
