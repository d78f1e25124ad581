"""The sandbox's demo desk is believable on any date (issue 24): most open tickets within SLA, a few at
risk, a couple breached, as Deskbridge's own SLA service computes it; threads that fit status and age."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bench.sandbox_desk import desk_mix
from bot.main import bootstrap, build, settings_from_env
from connectors.sandbox import seed
from connectors.sandbox.desk import business_back, business_forward
from store.crypto import generate_key

ANCHORS = [datetime(2026, 3, 2, 9, 0, tzinfo=UTC),  # Monday morning
           datetime(2026, 3, 7, 3, 0, tzinfo=UTC),  # Saturday night
           datetime(2026, 11, 18, 19, 45, tzinfo=UTC),  # a weekday evening
           datetime(2027, 1, 1, 0, 0, tzinfo=UTC)]
THANKS = set(seed.CUSTOMER_THANKS)


def test_business_time_skips_nights_and_weekends() -> None:
    monday_9 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    assert business_back(monday_9, 2 * 3600) == datetime(2026, 2, 27, 16, 0, tzinfo=UTC)  # Friday 16:00
    assert business_forward(datetime(2026, 2, 27, 16, 0, tzinfo=UTC), 2 * 3600) == monday_9
    saturday = datetime(2026, 3, 7, 3, 0, tzinfo=UTC)
    assert business_back(saturday, 0) == datetime(2026, 3, 6, 17, 0, tzinfo=UTC)
    assert business_back(monday_9, 9 * 3600 * 5 + 3600) == datetime(2026, 2, 23, 8, 0, tzinfo=UTC)


@pytest.mark.parametrize("anchor", ANCHORS, ids=lambda a: a.strftime("%a-%H%M"))
def test_threads_fit_status_and_age(anchor: datetime) -> None:
    data = seed.generate(42, anchor)
    statuses = {s["id"]: s for s in data["statuses"]}
    boards = {b["id"]: b["name"] for b in data["boards"]}
    notes: dict[int, list[dict[str, Any]]] = {}
    for n in sorted(data["notes"], key=lambda n: n["created_at"]):
        notes.setdefault(n["ticket_id"], []).append(n)
    open_tickets = [t for t in data["tickets"] if not statuses[t["status_id"]]["closed"]]
    assert 0.12 <= len(open_tickets) / len(data["tickets"]) <= 0.25
    for t in data["tickets"]:
        status = statuses[t["status_id"]]["name"]
        thread = notes.get(t["id"], [])
        public = [n for n in thread if n["visibility"] == "public"]
        assert t["created_at"] <= t["updated_at"] < data["anchor"]
        assert all(t["created_at"] <= n["created_at"] <= t["updated_at"] for n in thread), t["id"]
        if statuses[t["status_id"]]["closed"]:
            assert t["closed_at"] is not None and t["closed_at"] >= max((n["created_at"] for n in thread), default="")
            continue
        assert t["closed_at"] is None
        assert not (public and public[-1]["contact_id"] and public[-1]["text"] in THANKS), (t["id"], status)
        if status == "New":  # nobody has answered yet, so nobody owns it and no technician wrote
            assert t["owner_id"] is None and t["responded_at"] is None
            assert all(n["member_id"] is None for n in thread)
        else:
            assert t["owner_id"] is not None and t["responded_at"] is not None
        if status == "Waiting Customer Response":  # we asked last
            assert public[-1]["member_id"] is not None and public[-1]["created_at"] == t["updated_at"]
        if boards[t["board_id"]] == "Alerts":
            assert t["contact_id"] is None and all(n["visibility"] == "internal" for n in thread)
    # Numbers follow the order tickets were opened; the newest one is open.
    by_number = sorted(data["tickets"], key=lambda t: t["id"])
    assert [t["id"] for t in by_number] == list(range(1001, 1301))
    assert [t["created_at"] for t in by_number] == sorted(t["created_at"] for t in data["tickets"])
    assert by_number[-1] in open_tickets
    # A handful of alerts, a couple of projects, and work spread over the whole team.
    open_boards = Counter(boards[t["board_id"]] for t in open_tickets)
    assert 3 <= open_boards["Alerts"] <= 10 and 1 <= open_boards["Projects"] <= 6
    owners = Counter(t["owner_id"] for t in open_tickets if t["owner_id"])
    assert len(owners) == len(data["members"]) and max(owners.values()) <= 0.4 * sum(owners.values())


@pytest.mark.slow
async def test_the_sla_mix_holds_on_any_date(db_url: str, tmp_path: Path) -> None:
    for i, anchor in enumerate(ANCHORS[:3]):
        settings = settings_from_env(database_url=db_url, sandbox="off", secret_key=generate_key(),
                                     secret_key_file=tmp_path / "k", run_scheduler=False, run_outbox_worker=False,
                                     workspace_slug=f"desk-{i}")  # a workspace of its own per date
        container = build(settings)
        await bootstrap(container)
        try:
            mix = await desk_mix(container, anchor)
        finally:
            await container.aclose()
        open_now = mix["open"]
        assert open_now >= 40, mix
        assert mix["within"] / open_now >= 0.75, mix  # most within SLA
        assert 0.05 <= mix["at_risk"] / open_now <= 0.2, mix  # a few at risk
        assert 1 <= mix["breached"] <= 4, mix  # a couple breached
        assert {"new", "in_progress", "waiting"} <= set(mix["stages"]), mix
