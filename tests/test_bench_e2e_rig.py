"""The e2e bench's PSA edits (bench/_cw_proc.py): every status or owner edit changes the ticket.

Issue 20 item 1: "3 of 12 PSA edits at 1 edit/s never reach Slack" in every run of bench/e2e_latency.py. They
were edits that set a field to the value it already had (an "Assign to me" click in the chat phase had made the
ticket Bob's; a new ticket is already "New"): nothing changed in the PSA, so nothing was due in Slack. The
bench now edits to the next value instead (and counts those in `edits_redirected`)."""

from __future__ import annotations

from bench._cw_proc import TimedFake, WallClock, _command


def _rig() -> tuple[TimedFake, dict[str, int], int, dict[str, int], int]:
    fake = TimedFake(clock=WallClock())
    members = {m["identifier"]: mid for mid, m in fake.members.items()}
    board = min(fake.boards)
    statuses = {s["name"]: s["id"] for s in fake.board_statuses(board)}
    cid = fake.add_company("E2E0", "E2E Customer 0")
    t = fake.add_ticket("card", company={"id": cid}, board={"id": board}, owner={"id": members["bob"]})
    return fake, members, board, statuses, int(t["id"])


def test_an_edit_to_the_value_the_ticket_has_moves_to_the_next_one():
    fake, members, board, statuses, tid = _rig()
    current = next(n for n, i in statuses.items() if i == fake.tickets[tid]["status"]["id"])
    choices = [current, "In Progress", "Waiting Customer"]
    got = _command(fake, "status", {"id": tid, "status": current, "choices": choices}, members, board, statuses, [], {})
    assert got["value"] == "In Progress" and fake.tickets[tid]["status"]["id"] == statuses["In Progress"]
    got = _command(fake, "status", {"id": tid, "status": "Waiting Customer", "choices": choices}, members, board,
                   statuses, [], {})
    assert got["value"] == "Waiting Customer"  # a real change is made as asked
    got = _command(fake, "assign", {"id": tid, "owner": "bob", "choices": ["bob", "ana"]}, members, board, statuses,
                   [], {})
    assert got["value"] == "ana" and fake.tickets[tid]["owner"]["id"] == members["ana"]
