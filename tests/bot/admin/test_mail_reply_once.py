"""A mail's reply (or an assignment's internal note) and its record on the mail are one transaction: the process
killed at each point of taking it, then the mail taken again (the poll's takeover or "take it again"), the words are
on the ticket exactly once, and nothing is lost. Through the real FastAPI app and the real MailIntake."""

from __future__ import annotations

from collections.abc import Callable
from email.message import EmailMessage
from typing import Any

import pytest
from sqlmodel import select

from core.intake.mail import MailIntake
from store.db import Scope
from store.enums import EntryKind
from store.tables import TimelineEntry
from tests.bot.admin.helpers import sign_in
from tests.bot.admin.test_mail_stuck_and_automatic import Died, _age, _tickets
from tests.bot.admin.test_mail_triage_page import _ingest, _receipt, _setup, message
from tests.bot.api.conftest import Api


def _reply(sender: str, mid: str, refs: str, words: str, *, file: bool = True) -> bytes:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"], msg["Message-ID"] = sender, "help@msp.example", "Re: Printer", mid
    msg["In-Reply-To"] = msg["References"] = refs
    msg.set_content(words)
    if file:
        msg.add_attachment(b"%PDF-1.4 scan", maintype="application", subtype="pdf", filename="scan.pdf")
    return bytes(msg)


async def _entries(api: Api, ticket_id: int, kind: EntryKind) -> list[TimelineEntry]:
    async with api.container.db.read(Scope.workspace(api.ws)) as s:
        return list((await s.exec(select(TimelineEntry).where(TimelineEntry.ticket_id == ticket_id,
                                                                 TimelineEntry.kind == kind))).all())


def _dying_marker(monkeypatch: pytest.MonkeyPatch) -> None:
    """Killed inside the transaction that writes the words and records them on the mail."""
    def dying(self: MailIntake, mail: object, outcome: str) -> object:
        async def mark(session: object, ticket: object) -> None:
            raise Died("killed")
        return mark
    monkeypatch.setattr(MailIntake, "marker", dying)


def _dying(monkeypatch: pytest.MonkeyPatch, name: str) -> Callable[[], None]:
    """Killed on the first call of MailIntake.<name> (after the words and their record); returns the undo."""
    real = getattr(MailIntake, name)

    async def dies(self: MailIntake, *a: Any, **k: Any) -> Any:
        raise Died("killed")
    monkeypatch.setattr(MailIntake, name, dies)
    return lambda: monkeypatch.setattr(MailIntake, name, real)


POINTS = ["in_the_reply_transaction", "before_its_files", "before_it_is_settled"]


def _kill_at(monkeypatch: pytest.MonkeyPatch, point: str) -> Callable[[], None]:
    if point == "in_the_reply_transaction":
        real = MailIntake.marker
        _dying_marker(monkeypatch)
        return lambda: monkeypatch.setattr(MailIntake, "marker", real)
    return _dying(monkeypatch, "attachments" if point == "before_its_files" else "_finish")


@pytest.mark.parametrize("point", POINTS)
async def test_a_threaded_reply_killed_at_each_point_is_on_its_ticket_once(
        api: Api, monkeypatch: pytest.MonkeyPatch, point: str):
    await _setup(api)  # ann@acme.example is ACME's contact
    assert await _ingest(api, message("ann@acme.example", "Printer", mid="<t1@x>")) == "created"
    [ticket] = await _tickets(api, "Printer")
    raw = _reply("ann@acme.example", "<t2@x>", "<t1@x>", "It jams on page 2.")
    undo = _kill_at(monkeypatch, point)
    with pytest.raises(Died):
        await _ingest(api, raw)
    undo()
    row = await _receipt(api, message_id="<t2@x>")
    assert row.outcome == "processing"
    written = await _entries(api, int(ticket.id), EntryKind.NOTE_PUBLIC)  # type: ignore[arg-type]
    if point == "in_the_reply_transaction":  # rolled back together: neither the reply nor its record
        assert row.ticket_id is None and [e.body for e in written] == []
    else:  # both or neither: here both
        assert row.ticket_id == ticket.id and [e.body for e in written] == ["It jams on page 2."]
    await _age(api, int(row.id), 6)  # type: ignore[arg-type]  # past the lease: the next poll takes it over
    assert await _ingest(api, raw) == "replied"
    notes = await _entries(api, int(ticket.id), EntryKind.NOTE_PUBLIC)  # type: ignore[arg-type]
    assert [e.body for e in notes] == ["It jams on page 2."]  # once, word for word
    files = await _entries(api, int(ticket.id), EntryKind.ATTACHMENT)  # type: ignore[arg-type]
    assert [f.body for f in files] == ["scan.pdf"]  # its file: kept, once
    settled = await _receipt(api, message_id="<t2@x>")
    assert (settled.outcome, settled.ticket_id) == ("replied", ticket.id)
    assert await _ingest(api, raw) == "duplicate"
    assert len(await _entries(api, int(ticket.id), EntryKind.NOTE_PUBLIC)) == 1  # type: ignore[arg-type]


@pytest.mark.parametrize("point", POINTS[:2])
async def test_an_assignments_internal_note_killed_at_each_point_is_on_the_ticket_once(
        api: Api, monkeypatch: pytest.MonkeyPatch, point: str):
    await _setup(api)
    assert await _ingest(api, message("ann@acme.example", "Printer", mid="<t1@x>")) == "created"
    [ticket] = await _tickets(api, "Printer")
    outsider = _reply("cara@newco.example", "<c1@x>", "<none@x>", "Cara here: same printer.")
    assert await _ingest(api, outsider) == "triage"  # unknown sender
    cara = await _receipt(api, message_id="<c1@x>")
    csrf = await sign_in(api)
    undo = _kill_at(monkeypatch, point)
    with pytest.raises(Died):
        await api.client.post(f"/admin/mail/{cara.id}/assign", data={"csrf": csrf, "ticket": str(ticket.number)})
    undo()
    internal = await _entries(api, int(ticket.id), EntryKind.NOTE_INTERNAL)  # type: ignore[arg-type]
    row = await _receipt(api, id=cara.id)  # type: ignore[arg-type]
    assert row.outcome == "processing"
    if point == "in_the_reply_transaction":
        assert row.ticket_id is None and internal == []
    else:
        assert row.ticket_id == ticket.id and len(internal) == 1
    await _age(api, int(cara.id), 7)  # type: ignore[arg-type]
    again = await api.client.post(f"/admin/mail/{cara.id}/replay", data={"csrf": csrf})
    after = await _receipt(api, id=cara.id)  # type: ignore[arg-type]
    if point == "in_the_reply_transaction":  # nothing was written: it waits in triage again, to be assigned
        assert after.outcome == "triage" and again.headers["location"].endswith("done=mail_still")
        r = await api.client.post(f"/admin/mail/{cara.id}/assign", data={"csrf": csrf, "ticket": str(ticket.number)})
        assert r.status_code in (302, 303)
    else:  # settled on the ticket: its note is not written again
        assert (after.outcome, after.ticket_id) == ("replied", ticket.id)
        assert "nothing written twice" in (after.reason or "")
    notes = await _entries(api, int(ticket.id), EntryKind.NOTE_INTERNAL)  # type: ignore[arg-type]
    assert len([n for n in notes if "Cara here: same printer." in n.body]) == 1
    assert await _entries(api, int(ticket.id), EntryKind.NOTE_PUBLIC) == []  # type: ignore[arg-type]
    files = await _entries(api, int(ticket.id), EntryKind.ATTACHMENT)  # type: ignore[arg-type]
    assert [(f.body, f.data["visibility"]) for f in files] == [("scan.pdf", "internal")]  # once, internal as the note


async def _moves_to_in_progress(api: Api, ticket_id: int) -> int:
    entries = await _entries(api, ticket_id, EntryKind.STATUS_CHANGE)
    return len([e for e in entries if (e.data.get("to") or {}).get("stage") == "in_progress"])


def _dies_in(monkeypatch: pytest.MonkeyPatch, where: object, name: str) -> Callable[[], None]:
    """Killed on the first call of `where.name`; returns the undo."""
    real = getattr(where, name)

    async def dies(*a: Any, **k: Any) -> Any:
        raise Died("killed")
    monkeypatch.setattr(where, name, dies)
    return lambda: monkeypatch.setattr(where, name, real)


@pytest.mark.parametrize("point", [*POINTS, "at_the_status_move"])
async def test_a_reply_to_a_waiting_ticket_and_its_move_to_in_progress_are_one_write(
        api: Api, monkeypatch: pytest.MonkeyPatch, point: str):
    """The customer's reply moves a ticket waiting on them back to in progress in the reply's own transaction:
    killed in it, neither is written; killed after it, both are; taken again, the reply once and one move."""
    from core.context import Actor

    await _setup(api)
    assert await _ingest(api, message("ann@acme.example", "Printer", mid="<t1@x>")) == "created"
    [ticket] = await _tickets(api, "Printer")
    tid = int(ticket.id)  # type: ignore[arg-type]
    await api.container.tickets.update(Actor.system(api.ws), f"id:{tid}", status="waiting")
    raw = _reply("ann@acme.example", "<t2@x>", "<t1@x>", "Here is the scan you asked for.")
    import core.tickets

    undo = (_dies_in(monkeypatch, core.tickets, "resolve_status") if point == "at_the_status_move" else
            _kill_at(monkeypatch, point))
    with pytest.raises(Died):
        await _ingest(api, raw)
    undo()
    [now] = await _tickets(api, "Printer")
    notes = await _entries(api, tid, EntryKind.NOTE_PUBLIC)
    if point in ("in_the_reply_transaction", "at_the_status_move"):  # neither the reply nor the move
        assert (now.stage, [e.body for e in notes], await _moves_to_in_progress(api, tid)) == ("waiting", [], 0)
    else:  # both
        assert (now.stage, len(notes), await _moves_to_in_progress(api, tid)) == ("in_progress", 1, 1)
    row = await _receipt(api, message_id="<t2@x>")
    await _age(api, int(row.id), 6)  # type: ignore[arg-type]
    assert await _ingest(api, raw) == "replied"
    [now] = await _tickets(api, "Printer")
    notes = await _entries(api, tid, EntryKind.NOTE_PUBLIC)
    assert [e.body for e in notes] == ["Here is the scan you asked for."] and now.stage == "in_progress"
    assert await _moves_to_in_progress(api, tid) == 1  # moved once, never twice


@pytest.mark.parametrize("point", [*POINTS[:2], "at_the_confirm_note"])
async def test_an_outsiders_mail_assigned_to_a_customer_gets_its_confirm_note_in_the_tickets_transaction(
        api: Api, monkeypatch: pytest.MonkeyPatch, point: str):
    """Assigned to a customer, a mail from someone who is not its contact opens a ticket with an internal note
    asking to confirm who they are: the ticket, that note and the mail's record are one transaction. Killed in it:
    no ticket, no note, the mail waits in triage again; killed after it (before its files): taken again, it is
    settled on that ticket with the note once and its file once."""
    ids = await _setup(api)
    raw = _reply("dan@else.example", "<d1@x>", "<none@x>", "Dan here: invoice question.")
    assert await _ingest(api, raw) == "triage"
    dan = await _receipt(api, message_id="<d1@x>")
    csrf = await sign_in(api)
    from core.tickets import TicketService

    undo = (_dies_in(monkeypatch, TicketService, "_note") if point == "at_the_confirm_note" else
            _kill_at(monkeypatch, point))
    with pytest.raises(Died):
        await api.client.post(f"/admin/mail/{dan.id}/assign", data={"csrf": csrf, "customer": "GLOBEX"})
    undo()
    row = await _receipt(api, id=dan.id)  # type: ignore[arg-type]
    made = await _tickets(api, "Printer")
    if point in ("in_the_reply_transaction", "at_the_confirm_note"):  # no ticket, no note, no record
        assert (row.outcome, row.ticket_id, made) == ("processing", None, [])
    else:
        [ticket] = made
        confirm = await _entries(api, int(ticket.id), EntryKind.NOTE_INTERNAL)  # type: ignore[arg-type]
        assert row.ticket_id == ticket.id and len(confirm) == 1 and "Confirm who they are" in confirm[0].body
    await _age(api, int(dan.id), 7)  # type: ignore[arg-type]
    again = await api.client.post(f"/admin/mail/{dan.id}/replay", data={"csrf": csrf})
    after = await _receipt(api, id=dan.id)  # type: ignore[arg-type]
    if point != "before_its_files":  # nothing was written: back in triage, assigned again
        assert after.outcome == "triage" and again.headers["location"].endswith("done=mail_still")
        r = await api.client.post(f"/admin/mail/{dan.id}/assign", data={"csrf": csrf, "customer": "GLOBEX"})
        assert r.status_code in (302, 303)
        after = await _receipt(api, id=dan.id)  # type: ignore[arg-type]
    [ticket] = await _tickets(api, "Printer")
    assert (after.outcome, after.ticket_id, ticket.customer_id) == ("created", ticket.id, ids["globex"])
    confirm = await _entries(api, int(ticket.id), EntryKind.NOTE_INTERNAL)  # type: ignore[arg-type]
    assert len(confirm) == 1 and "dan@else.example, who is not a contact" in confirm[0].body
    files = await _entries(api, int(ticket.id), EntryKind.ATTACHMENT)  # type: ignore[arg-type]
    assert [f.body for f in files] == ["scan.pdf"]  # once
