"""The sandbox PSA's own behaviour beyond the contract: seeded data, shared state, persistence, clock,
faults, signed webhooks and the demo helpers."""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from connectors import errors
from connectors.base import ConnectionConfig, NewNote, NoteVisibility, TicketPatch
from connectors.registry import Registry
from connectors.sandbox import demo, seed
from connectors.sandbox.connector import SandboxConnector
from connectors.sandbox.server import forget

ANCHOR = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def settings() -> Iterator[dict[str, Any]]:
    s: dict[str, Any] = {"seed": 42, "instance": uuid.uuid4().hex}
    yield s
    forget(s)


def connector(settings: dict[str, Any], *, api_key: str = "sandbox", **options: Any) -> SandboxConnector:
    config = ConnectionConfig(connection_id=1, workspace_id=1, kind="sandbox", settings=settings,
                              credentials={"api_key": api_key})
    return SandboxConnector(config, clock=options.pop("clock", lambda: ANCHOR), **options)


# ---------------------------------------------------------------- seeded data


def test_seed_is_deterministic_and_realistic() -> None:
    a, b, other = seed.generate(42, ANCHOR), seed.generate(42, ANCHOR), seed.generate(43, ANCHOR)
    assert a == b
    assert a["tickets"] != other["tickets"]
    assert len(a["companies"]) == 12 and len(a["tickets"]) == 300
    assert all(2 <= sum(c["company_id"] == co["id"] for c in a["contacts"]) <= 5 for co in a["companies"])
    assert len(a["members"]) >= 4 and all(m["email"].endswith("@msp.example") for m in a["members"])
    assert len(a["boards"]) == 3
    for board in a["boards"]:
        statuses = [s for s in a["statuses"] if s["board_id"] == board["id"]]
        assert any(s["closed"] for s in statuses) and sum(s["default"] for s in statuses) == 1
    assert {n["visibility"] for n in a["notes"]} == {"public", "internal", "resolution"}
    assert any(n["contact_id"] for n in a["notes"]) and a["time_entries"] and a["attachments"]
    stamps = [seed_ts for t in a["tickets"] for seed_ts in (t["created_at"], t["updated_at"])]
    assert all(ANCHOR - timedelta(days=61) < datetime.fromisoformat(s) < ANCHOR for s in stamps)
    assert any(t["closed_at"] for t in a["tickets"]) and any(not t["closed_at"] for t in a["tickets"])


async def test_connectors_of_one_connection_share_one_server(settings: dict[str, Any]) -> None:
    first, second = connector(settings), connector(settings)
    other = connector({**settings, "instance": "elsewhere"})
    try:
        tid = (await first.list_changed_tickets(None)).items[0].external_id
        await first.add_note(NewNote(ticket_external_id=tid, text="shared?", visibility=NoteVisibility.INTERNAL,
                                     marker="m-shared"))
        assert any(n.text == "shared?" for n in await second.list_notes(tid))
        assert not any(n.text == "shared?" for n in await other.list_notes(tid))
    finally:
        forget(other.config.settings)


# ---------------------------------------------------------------- persistence


async def test_state_file_survives_a_reload(tmp_path: Path) -> None:
    settings: dict[str, Any] = {"seed": 5, "state_path": str(tmp_path / "state" / "sandbox.db")}
    try:
        conn = connector(settings)
        tid = (await conn.list_changed_tickets(None)).items[0].external_id
        await conn.update_ticket(tid, TicketPatch(summary="Renamed before the restart"))
        with sqlite3.connect(settings["state_path"]) as db:  # the sandbox's own SQLite file, not our database
            assert json.loads(db.execute("SELECT value FROM meta WHERE key = 'seed'").fetchone()[0]) == 5
            (body,) = db.execute("SELECT body FROM records WHERE kind = 'tickets' AND id = ?", (int(tid),)).fetchone()
            assert json.loads(body)["summary"] == "Renamed before the restart"
        forget(settings)  # as after a process restart
        reloaded = connector(settings)
        assert reloaded.server is not conn.server
        assert (await reloaded.get_ticket(tid)).summary == "Renamed before the restart"
    finally:
        forget(settings)


async def test_a_json_state_file_is_migrated_once(tmp_path: Path) -> None:
    legacy = tmp_path / "sandbox-state.json"
    data = seed.generate(5, ANCHOR, tickets=20)
    data["tickets"][0]["summary"] = "Written while the state was JSON"
    legacy.write_text(json.dumps(data))
    settings = {"seed": 5, "state_path": str(legacy)}  # the setting existing installations have
    try:
        conn = connector(settings)
        first = str(data["tickets"][0]["id"])
        assert (await conn.get_ticket(first)).summary == "Written while the state was JSON"
        assert not legacy.exists() and (tmp_path / "sandbox-state.json.migrated").exists()
        assert (tmp_path / "sandbox-state.db").exists()
        await conn.update_ticket(first, TicketPatch(summary="Written after the move"))
        legacy.write_text(json.dumps(data))  # a stale JSON file appearing again is not imported twice
        forget(settings)
        again = connector(settings)
        assert (await again.get_ticket(first)).summary == "Written after the move"
        assert len((await again.list_ticket_ids()).items) == 20
    finally:
        forget(settings)


async def test_unreadable_state_file_is_moved_aside(tmp_path: Path) -> None:
    path = tmp_path / "sandbox.json"
    path.write_text("{not json")
    settings = {"seed": 5, "state_path": str(path)}
    try:
        conn = connector(settings)
        assert (await conn.check_credentials()).details["companies"] == "12"
        assert (tmp_path / "sandbox.json.corrupt").read_text() == "{not json"
    finally:
        forget(settings)


async def test_a_file_that_is_not_a_database_is_moved_aside(tmp_path: Path) -> None:
    path = tmp_path / "sandbox.db"
    path.write_bytes(b"this is not SQLite" * 100)
    settings = {"seed": 5, "state_path": str(path)}
    try:
        conn = connector(settings)
        assert (await conn.check_credentials()).details["companies"] == "12"
        assert (tmp_path / "sandbox.db.corrupt").read_bytes().startswith(b"this is not SQLite")
    finally:
        forget(settings)


async def test_changes_by_another_process_are_picked_up(tmp_path: Path) -> None:
    settings = {"seed": 5, "state_path": str(tmp_path / "sandbox.db")}
    try:
        ours = connector(settings)
        tid = (await ours.list_changed_tickets(None)).items[0].external_id
        forget(settings)
        theirs = connector(settings)  # a second server object on the same file, like another process
        await theirs.update_ticket(tid, TicketPatch(summary="Changed elsewhere"))
        await theirs.add_note(NewNote(ticket_external_id=tid, text="from elsewhere", visibility=NoteVisibility.INTERNAL,
                                      marker="m-elsewhere"))
        assert (await ours.get_ticket(tid)).summary == "Changed elsewhere"
        assert "from elsewhere" in [n.text for n in await ours.list_notes(tid)]
        await ours.add_note(NewNote(ticket_external_id=tid, text="ours", visibility=NoteVisibility.INTERNAL,
                                    marker="m-ours"))  # on top of theirs: neither write is lost
        assert [n.text for n in await theirs.list_notes(tid)][-2:] == ["from elsewhere", "ours"]
    finally:
        forget(settings)


# ---------------------------------------------------------------- rules, clock, faults


async def test_updated_at_advances_even_on_a_frozen_clock(settings: dict[str, Any]) -> None:
    conn = connector(settings)
    t = (await conn.list_changed_tickets(None)).items[0]
    first = await conn.update_ticket(t.external_id, TicketPatch(summary="one"))
    second = await conn.update_ticket(t.external_id, TicketPatch(summary="two"))
    assert first.updated_at == ANCHOR
    assert second.updated_at is not None and first.updated_at is not None and second.updated_at > first.updated_at


async def test_moving_board_resets_status_to_the_boards_default(settings: dict[str, Any]) -> None:
    conn = connector(settings)
    picks = await conn.picklists()
    tickets = (await conn.list_changed_tickets(None)).items
    ticket = next(t for t in tickets if t.board and t.board.id == picks.boards[0].external_id)
    target = picks.boards[1]
    moved = await conn.update_ticket(ticket.external_id, TicketPatch(board_external_id=target.external_id))
    default = next(s for s in picks.statuses if s.board_external_id == target.external_id and s.default)
    assert moved.board is not None and moved.board.id == target.external_id
    assert moved.status is not None and moved.status.id == default.external_id


async def test_invalid_status_names_the_field(settings: dict[str, Any]) -> None:
    conn = connector(settings)
    picks = await conn.picklists()
    ticket = next(t for t in (await conn.list_changed_tickets(None)).items
                  if t.board and t.board.id == picks.boards[0].external_id)
    foreign = next(s for s in picks.statuses if s.board_external_id == picks.boards[1].external_id)
    with pytest.raises(errors.PsaValidationError) as caught:
        await conn.update_ticket(ticket.external_id, TicketPatch(status_external_id=foreign.external_id))
    assert "status" in caught.value.fields and picks.boards[0].name in caught.value.fields["status"]


async def test_only_public_notes_email_the_contact(settings: dict[str, Any]) -> None:
    conn = connector(settings)
    tid = (await conn.list_changed_tickets(None)).items[0].external_id
    for vis, marker in ((NoteVisibility.PUBLIC, "m-pub"), (NoteVisibility.INTERNAL, "m-int")):
        await conn.add_note(NewNote(ticket_external_id=tid, text=f"hi {vis.value}", visibility=vis, marker=marker,
                                    email_contact=True))
    emailed = {n["text"]: n["emailed_contact"] for n in conn.server.data["notes"] if n["text"].startswith("hi ")}
    assert emailed == {"hi public": True, "hi internal": False}


async def test_faults_count_down_and_lost_responses_skip_reads(settings: dict[str, Any]) -> None:
    conn = connector(settings)
    tid = (await conn.list_changed_tickets(None)).items[0].external_id
    conn.server.fail_next("server_error", times=2)
    for _ in range(2):
        with pytest.raises(errors.PsaUnavailable):
            await conn.get_ticket(tid)
    assert (await conn.get_ticket(tid)).external_id == tid
    conn.server.fail_next("lost_response")
    await conn.get_ticket(tid)  # a read is not affected
    with pytest.raises(errors.PsaTimeout):
        await conn.update_ticket(tid, TicketPatch(summary="applied, answer lost"))
    assert (await conn.get_ticket(tid)).summary == "applied, answer lost"


async def test_registry_checks_credentials_and_knows_capabilities(settings: dict[str, Any]) -> None:
    registry = Registry()
    info = await registry.check("sandbox", settings, {"api_key": "sandbox"})
    assert "seed 42" in info.display_name and info.details["companies"] == "12"
    with pytest.raises(errors.PsaAuthError) as caught:
        await registry.check("sandbox", settings, {"api_key": "nope"})
    assert "nope" not in str(caught.value)
    assert registry.capabilities("sandbox") is SandboxConnector.CAPABILITIES


async def test_small_page_size_pages_companies(settings: dict[str, Any]) -> None:
    conn = connector(settings, page_size=5)
    names, cursor, pages = [], None, 0
    while True:
        page = await conn.list_companies(cursor)
        names += [c.name for c in page.items]
        pages += 1
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert pages == 3 and len(names) == len(set(names)) == 12
    with pytest.raises(errors.PsaValidationError):
        await conn.list_companies("not-a-cursor!")


# ---------------------------------------------------------------- webhooks


async def test_drained_webhooks_verify_and_replays_are_refused(settings: dict[str, Any]) -> None:
    conn = connector(settings)
    tid = (await conn.list_changed_tickets(None)).items[0].external_id
    conn.server.drain_webhooks()
    await conn.update_ticket(tid, TicketPatch(summary="announce me"))
    pushes = conn.server.drain_webhooks()
    assert len(pushes) == 1
    event = await conn.parse_webhook(*pushes[0])
    assert event.ticket_external_id == tid and event.action == "updated" and event.verified
    headers, body = pushes[0]
    with pytest.raises(errors.WebhookRejected):
        await conn.parse_webhook(headers, body.replace(tid.encode(), b"1"))
    later = connector(settings, clock=lambda: ANCHOR + timedelta(minutes=6))
    with pytest.raises(errors.WebhookRejected):
        await later.parse_webhook(headers, body)


# ---------------------------------------------------------------- demo helpers


async def test_customer_reply_and_technician_status_change(settings: dict[str, Any]) -> None:
    conn = connector(settings)
    server = demo.sandbox_server(settings)
    assert server is conn.server
    ticket = (await conn.list_changed_tickets(None)).items[0]
    server.set_now(ANCHOR + timedelta(minutes=5))
    note = demo.customer_replies(server, ticket.external_id, "Still broken after the reboot")
    assert note.author_is_contact and note.visibility is NoteVisibility.PUBLIC
    assert ticket.contact is not None and note.author == ticket.contact
    changed = (await conn.list_changed_tickets(ANCHOR + timedelta(minutes=5))).items
    assert [t.external_id for t in changed] == [ticket.external_id]

    picks = await conn.picklists()
    board_statuses = [s for s in picks.statuses if ticket.board and s.board_external_id == ticket.board.id]
    target = next(s for s in board_statuses if not s.closed and (ticket.status is None or s.name != ticket.status.name))
    updated = demo.technician_changes_status(server, ticket.external_id, target.name, technician="bob")
    assert updated.status is not None and updated.status.id == target.external_id
    assert updated.owner is not None and updated.owner.name == "Bob Nguyen"
    with pytest.raises(ValueError, match="No status"):
        demo.technician_changes_status(server, ticket.external_id, "Teleported")

    reply = demo.technician_replies(server, ticket.external_id, "On my way", technician="carla", internal=True)
    assert reply.visibility is NoteVisibility.INTERNAL and reply.author is not None
    opened = demo.customer_opens_ticket(server, "acme", "Coffee machine offline")
    assert opened.company is not None and opened.company.name == "Acme Corp" and opened.source == "email"
    assert (await conn.get_ticket(opened.external_id)).summary == "Coffee machine offline"
