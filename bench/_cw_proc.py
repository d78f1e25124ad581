"""The fake ConnectWise of bench/e2e_latency.py, in a child process on 127.0.0.1 (its HTTP handling does not
share the server's GIL), driven over a pipe: edits as a technician or customer makes them in the PSA, each
answered with its time (time.monotonic(), one clock for every process on Linux) and the signed callback
ConnectWise would POST for it; and the times at which writes from Deskbridge arrived.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from bench._e2e_home import HOME_TECHS
from tests.fakes.connectwise import FakeClock, FakeConnectWise
from tests.fakes.connectwise_http import FakeRequest, FakeResponse


class WallClock(FakeClock):
    """Real time (the sync cursor compares PSA stamps; nothing here needs a frozen clock)."""

    def __call__(self) -> datetime:
        return datetime.now(UTC)


class TimedFake(FakeConnectWise):
    """Records when each write (any non-GET) from Deskbridge was applied, with its route and body."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.writes: list[tuple[float, str, str, str]] = []

    def handle(self, req: FakeRequest) -> FakeResponse:
        resp = super().handle(req)
        if req.method != "GET" and resp.status < 300:
            self.writes.append((time.monotonic(), req.method, req.path, req.body[:2000].decode(errors="replace")))
        return resp


def serve(pipe: Any, customers: int) -> None:
    """Child process entry: seed, serve on loopback, answer commands until "stop"."""
    fake = TimedFake(clock=WallClock())
    fake.record_bodies = False
    for ident in HOME_TECHS:  # technicians with their App Home open (bench/_e2e_home.py)
        fake.add_member(ident, ident.title(), "Tech", f"{ident}@msp.example")
    members = {m["identifier"]: mid for mid, m in fake.members.items()}
    board = min(fake.boards)
    statuses = {s["name"]: s["id"] for s in fake.board_statuses(board)}
    companies: list[int] = []
    contacts: dict[int, int] = {}
    for i in range(customers):
        cid = fake.add_company(f"E2E{i}", f"E2E Customer {i}")
        contacts[cid] = fake.add_contact(cid, "Pat", f"E2E-{i}", f"pat{i}@e2e.example")
        companies.append(cid)
        fake.add_ticket(f"Seed ticket of customer {i}", company={"id": cid}, board={"id": board},
                        owner={"id": members["ana"]})
    with fake.serve() as root:
        pipe.send({"settings": fake.settings(root=root), "credentials": fake.credentials(),
                   "statuses": statuses, "companies": companies})
        while True:
            cmd, arg = pipe.recv()
            if cmd == "stop":
                return
            pipe.send(_command(fake, cmd, arg, members, board, statuses, companies, contacts))


def _command(fake: TimedFake, cmd: str, arg: Any, members: dict[str, int], board: int, statuses: dict[str, int],
             companies: list[int], contacts: dict[int, int]) -> Any:
    if cmd == "writes_since":
        return [w for w in fake.writes if w[0] >= arg]
    if cmd == "slow":  # PSA latency on every write from Deskbridge
        fake.clear_faults()
        if arg:
            fake.slow(float(arg), None, match="WRITE")
        return True
    if cmd == "new":  # arg: (customer index, summary)
        idx, summary = arg
        cid = companies[idx % len(companies)]
        t = fake.add_ticket(summary, company={"id": cid}, board={"id": board}, owner={"id": members["ana"]},
                            contact={"id": contacts[cid]})
        at = time.monotonic()
        return {"id": t["id"], "at": at, "callback": fake.signed_callback("ticket", "added", t["id"])}
    tid = int(arg["id"])
    value = None
    if cmd == "status":  # an edit always changes something: a status the ticket already has is not an edit
        value = _differs(arg["status"], statuses, fake.tickets[tid]["status"]["id"], arg.get("choices"))
        fake.edit_ticket(tid, status={"id": statuses[value]})
    elif cmd == "assign":
        value = _differs(arg["owner"], members, (fake.tickets[tid].get("owner") or {}).get("id"), arg.get("choices"))
        fake.edit_ticket(tid, owner={"id": members[value]})
    elif cmd == "note":  # a customer's e-mailed reply (public: it goes into the ticket's threads)
        company = fake.tickets[tid]["company"]["id"]
        fake.add_note(tid, arg["text"], contact_id=contacts.get(company))
    else:
        raise ValueError(cmd)
    at = time.monotonic()
    return {"id": tid, "at": at, "value": value, "callback": fake.signed_callback("ticket", "updated", tid)}


def _differs(wanted: str, ids: dict[str, int], current: int | None, choices: list[str] | None) -> str:
    """`wanted`, or the next of `choices` (default: every name of `ids`) whose id is not `current`: setting a field to the value it
    already has changes nothing in the PSA, so Slack has nothing to show (the bench would count it as lost)."""
    names = list(choices or ids)
    start = names.index(wanted)
    for name in names[start:] + names[:start]:
        if ids[name] != current:
            return name
    raise ValueError(f"every choice equals the current value {current}")
