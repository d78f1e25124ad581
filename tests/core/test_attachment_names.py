"""File names as a technician or a customer sees them after an upload (standalone desk; the same cleaning runs
before any PSA upload): a right-to-left override could show `invoice‮gpj.exe` as "invoiceexe.jpg" to the customer
reading the ticket, so bidirectional controls are dropped from file names (never from notes); path parts and
control characters cannot reach the PSA; a name that is only dots or blanks gets a plain one; ordinary Unicode
names stay exactly; empty and oversized files are refused with what to do."""

from __future__ import annotations

import pytest

from core.errors import InvalidInput
from core.tickets import TicketService
from store.db import Database
from store.enums import EntryKind


@pytest.fixture
def svc(db: Database) -> TicketService:
    return TicketService(db)


async def _name(svc: TicketService, tech, filename: str) -> str:
    n = (await svc.create(tech, subject="Files")).summary.number
    d = await svc.attach(tech, n, filename=filename, content=b"data")
    [item] = [i for i in d.timeline if i.kind == EntryKind.ATTACHMENT]
    return item.body


@pytest.mark.parametrize(("given", "shown"), [
    ("invoice\u202egpj.exe", "invoicegpj.exe"),          # RIGHT-TO-LEFT OVERRIDE: the real extension shows
    ("a\u2066b\u2069c\u200f.pdf", "abc.pdf"),              # isolates and marks
    ("../../etc/passwd", ".._.._etc_passwd"),
    ("C:\\Users\\bob\\report.docx", "C:_Users_bob_report.docx"),
    ("line\nbreak\t.txt", "line break .txt"),
    ("..", "file"), (" . . ", "file"),
    ("名前 ファイル.pdf", "名前 ファイル.pdf"), ("Résumé – final (2).PDF", "Résumé – final (2).PDF"),
    ("🔥 logs.zip", "🔥 logs.zip"), ("no extension", "no extension"),
])
async def test_file_names_show_what_the_file_is(svc, tech, given: str, shown: str):
    assert await _name(svc, tech, given) == shown


async def test_a_note_keeps_its_bidi_characters(svc, tech):
    """Notes are words (Hebrew, Arabic quoting Latin): nothing is dropped there."""
    n = (await svc.create(tech, subject="Bidi")).summary.number
    text = "\u05e9\u05dc\u05d5\u05dd \u2067ABC\u2069 \u202eok"
    d = await svc.comment(tech, n, text, visibility="internal")
    assert [i.body for i in d.timeline if i.kind == EntryKind.NOTE_INTERNAL] == [text]


@pytest.mark.parametrize(("filename", "content", "words"), [
    ("empty.txt", b"", "Attach a file with content"),
    ("\u202e\u200f", b"x", "file name is empty"),
    ("x" * 256, b"x", "limit is 255"),
])
async def test_refused_files_say_what_to_do(svc, tech, filename: str, content: bytes, words: str):
    n = (await svc.create(tech, subject="Refused")).summary.number
    with pytest.raises(InvalidInput) as caught:
        await svc.attach(tech, n, filename=filename, content=content)
    said = f"{caught.value} {caught.value.hint or ''}"
    assert words in said, said
    assert [i for i in (await svc.get(tech, n)).timeline if i.kind == EntryKind.ATTACHMENT] == []
