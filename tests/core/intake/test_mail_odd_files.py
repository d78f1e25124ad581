"""E-mail attachments a mail client really sends: an empty file (Outlook's 0-byte placeholders), a file with a name
of invisible characters, a right-to-left override in a name. The customer's message still becomes the ticket, the
good files are kept, the ones that cannot be kept are named in an internal note with what to do, and a redelivery
of the same message adds nothing."""

from __future__ import annotations

from email.message import EmailMessage

from sqlmodel import select

from store.db import Scope
from store.tables import TimelineEntry
from tests.core.intake.test_mail import mail  # noqa: F401 - fixture


def _message() -> bytes:
    msg = EmailMessage()
    msg["From"], msg["Subject"], msg["Message-ID"] = "ann@acme.example", "Scanner broken", "<odd1@acme.example>"
    msg.set_content("It shows an error, see attached.")
    msg.add_attachment(b"png-bytes", maintype="image", subtype="png", filename="error.png")
    msg.add_attachment(b"", maintype="application", subtype="octet-stream", filename="empty.dat")
    msg.add_attachment(b"exe-bytes", maintype="application", subtype="octet-stream", filename="scan\u202egpj.exe")
    msg.add_attachment(b"text", maintype="text", subtype="plain", filename="\u200b\u200b")
    return bytes(msg)


async def test_odd_attachments_never_cost_the_customers_message(mail):  # noqa: F811
    r = await mail.mail.ingest(mail.ws, _message())
    assert r.outcome == "created", r
    again = await mail.mail.ingest(mail.ws, _message())
    assert again.ticket_id == r.ticket_id
    async with mail.db.read(Scope.workspace(mail.ws)) as s:
        entries = (await s.exec(select(TimelineEntry).where(TimelineEntry.ticket_id == r.ticket_id)
                                .order_by(TimelineEntry.id))).all()
    files = [e.data.get("filename") for e in entries if e.kind == "attachment"]
    notes = [e.body for e in entries if e.kind == "note_internal"]
    assert files == ["error.png", "scangpj.exe", "attachment"]
    assert len(notes) == 1, notes
    assert "empty.dat" in notes[0] and "empty" in notes[0] and "another way" in notes[0]
