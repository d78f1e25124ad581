"""What the PSA holds is shown in a technician's terminal: a subject or note carrying terminal escapes (ESC [2J
clears the screen, ESC ]0; retitles the window, BEL rings) is text from outside, so the console shows its words and
never sends the terminal a control sequence."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.console.session import ConsoleNotifier, ConsoleSession
from core.notify import NoteAdded
from store.db import Scope
from store.tables import Ticket
from tests.bot.console.test_console import Script, container  # noqa: F401 - the fixture
from tests.factories import BOARD, psa_backed

HOSTILE = "\x1b]0;owned\x07VPN \x1b[2Jdown\x9b31m\x08!"


async def test_psa_text_reaches_the_terminal_without_control_sequences(container, db, workspace_id):  # noqa: F811
    setup = await psa_backed(db, workspace_id)
    async with db.write(Scope.workspace(workspace_id)) as s:
        s.add(Ticket(workspace_id=workspace_id, number=5001, external_id="5001", connection_id=setup.connection_id,
                     customer_id=setup.customer_id, subject=HOSTILE, description="Line 1\n\x1b[31mLine 2",
                     priority="high", priority_rank=1, stage="new", psa_status_id="10", psa_status_name="New",
                     board_external_id=BOARD, board_name="Service Desk", source="psa"))
    out: list[str] = []
    session = ConsoleSession(container, read=Script(["/ticket 5001", "/tickets", "quit"]), write=out.append,
                             as_email="bob@acme-msp.example")
    await session.run()
    notified: list[str] = []
    await ConsoleNotifier(notified.append).notify(NoteAdded(
        workspace_id=workspace_id, ticket_id=1, ticket_number=5001, origin="psa", occurred_at=datetime.now(UTC),
        entry_id=1, visibility="public", author_name="Pat\x1b[8m", body=f"Done {HOSTILE}", source=None))
    text = "\n".join(out + notified)
    assert "VPN" in text and "Done" in text and "Line 2" in text
    bad = sorted({hex(ord(ch)) for ch in text if (ord(ch) < 32 and ch not in "\n\t") or 0x7f <= ord(ch) <= 0x9f})
    assert not bad, bad


def test_a_dead_write_line_names_where_to_see_what_to_do():
    from bot.console.render import render_event
    from core.notify import WriteDead

    line = render_event(WriteDead(workspace_id=1, ticket_id=1, ticket_number=5001, origin="system",
                                  occurred_at=datetime.now(UTC), op_id=77, kind="add_note", error="HTTP 400"))
    assert line is not None and "HTTP 400" in line and "deskbridge outbox show 77" in line
