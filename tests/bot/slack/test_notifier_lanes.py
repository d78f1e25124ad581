"""The Slack notifier's lanes (bot/slack/lanes.py): notes and new tickets before card refreshes, one refresh per
ticket however many changes waited, and no App Home read while nobody has a Home open. Unit tests of the lanes,
then the real notifier in the real bolt app's container against the fake Slack Web API, on the sandbox PSA."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

from bot.slack.lanes import Lanes, merge_changes
from core.chat import ChatUser
from core.context import Actor
from core.notify import DomainEvent, NoteAdded, TicketChanged, TicketCreated
from core.queue import QueueFilter
from tests.bot.slack import test_technician_day
from tests.bot.slack.conftest import TEAM

day = test_technician_day.day  # the harness against the sandbox PSA, synced once
NOW = datetime.now(UTC)


def changed(ticket: int, origin: str = "psa", **changes: tuple[Any, Any]) -> TicketChanged:
    return TicketChanged(workspace_id=1, ticket_id=ticket, ticket_number=ticket, origin=origin, occurred_at=NOW,
                         changes=changes)


def note(ticket: int, body: str = "hello") -> NoteAdded:
    return NoteAdded(workspace_id=1, ticket_id=ticket, ticket_number=ticket, origin="psa", occurred_at=NOW,
                     entry_id=ticket, visibility="public", author_name="Ann", body=body)


# ---------------------------------------------------------------- the lanes alone


async def test_a_note_queued_after_changes_is_taken_first_and_changes_of_one_ticket_are_taken_once():
    lanes = Lanes()
    assert lanes.put(changed(1, stage=("new", "in_progress")))
    assert lanes.put(changed(2, stage=("new", "closed")))
    assert not lanes.put(changed(1, priority=("low", "high")))  # joined ticket 1's waiting change
    assert lanes.put(note(3))
    assert lanes.put(TicketCreated(workspace_id=1, ticket_id=4, ticket_number=4, origin="psa", occurred_at=NOW,
                                   subject="new"))
    taken = [await lanes.get() for _ in range(4)]
    assert [(type(e).__name__, e.ticket_id) for e in taken] == [
        ("NoteAdded", 3), ("TicketCreated", 4), ("TicketChanged", 1), ("TicketChanged", 2)]
    first_change = taken[2]
    assert isinstance(first_change, TicketChanged)
    assert first_change.changes == {"stage": ("new", "in_progress"), "priority": ("low", "high")}
    assert lanes.merged == 1 and len(lanes) == 0
    lanes.put(changed(7, stage=("a", "b")))
    lanes.put(changed(8, stage=("a", "b")))
    lanes.put(changed(9, stage=("a", "b")))
    assert [e.ticket_id for e in lanes.more_changes(2)] == [7, 8]  # a burst taken together, oldest first
    lanes.put(note(10))
    assert lanes.more_changes(5) == []  # not while a note waits: it goes first
    assert [(await lanes.get()).ticket_id for _ in range(2)] == [10, 9]
    waiting = asyncio.ensure_future(lanes.get())  # an empty lane waits for the next event
    await asyncio.sleep(0)
    assert not waiting.done()
    lanes.put(note(5))
    assert (await asyncio.wait_for(waiting, 1)).ticket_id == 5


def test_merged_changes_keep_every_owner_along_the_way_and_a_psa_origin_refreshes_the_card():
    assert merge_changes({"assignee_member_id": (7, 8)}, {"assignee_member_id": (8, 9), "stage": ("a", "b")}) == {
        "assignee_member_id": (7, 8, 9), "stage": ("a", "b")}
    lanes = Lanes()
    lanes.put(changed(1, origin="slack", stage=("new", "in_progress")))
    lanes.put(changed(1, origin="psa", stage=("in_progress", "closed")))
    lanes.put(changed(2, origin="psa", stage=("new", "closed")))
    lanes.put(changed(2, origin="slack", stage=("closed", "new")))
    one, two = lanes.changes[1], lanes.changes[2]
    # a change made in Slack updated its card already; once the PSA changed it too, the card is refreshed
    assert one.origin == "psa" and two.origin == "psa"
    assert one.changes == {"stage": ("new", "in_progress", "closed")}


# ---------------------------------------------------------------- the real notifier


async def _threads(h: Any, numbers: list[int], channel: str) -> dict[int, int]:
    """number -> ticket id, each with a card thread in `channel`."""
    items = (await h.c.queue.list(Actor.system(h.ws), QueueFilter(), limit=100)).items
    ids = {t.number: t.id for t in items if t.number in numbers}
    for i, number in enumerate(numbers):
        await h.c.chat.record_post(h.ws, ticket_id=ids[number], platform="slack", team_id=TEAM, channel_id=channel,
                                   message_ts=f"1700000000.00{i:04d}")
    return ids


class Held:
    """Wraps a notifier's deliver: records each event, holds the first until `release` is set."""

    def __init__(self, notifier: Any) -> None:
        self.order: list[DomainEvent] = []
        self.release = asyncio.Event()
        self.started = asyncio.Event()
        self.batches: list[list[int | None]] = []  # tickets of each burst of changes delivered together
        self._deliver = notifier.deliver
        self._deliver_changes = notifier.deliver_changes
        notifier.deliver = self
        notifier.deliver_changes = self.changes

    async def __call__(self, event: DomainEvent) -> None:
        self.order.append(event)
        if len(self.order) == 1:
            self.started.set()
            await self.release.wait()
        await self._deliver(event)

    async def changes(self, events: list[TicketChanged]) -> None:
        self.order.extend(events)
        self.batches.append([e.ticket_id for e in events])
        await self._deliver_changes(events)


async def test_a_note_waits_for_no_card_refresh_queued_before_it_and_waiting_changes_are_read_together(day):
    h, c = day, day.c
    n = c.slack.notifier
    n.workers = 1  # one worker: the order below is the order of one lane pair
    items = (await c.queue.list(Actor.system(h.ws), QueueFilter(), limit=100)).items
    numbers = sorted(t.number for t in items if t.number is not None)[:6]
    ids = await _threads(h, numbers, "C_LANES")
    h.fake.clear()
    held = Held(n)
    threads_read: list[list[int]] = []
    read = c.chat.posts_for_tickets

    async def counting(ws: int, ticket_ids: list[int], platform: str) -> Any:
        threads_read.append(sorted(ticket_ids))
        return await read(ws, ticket_ids, platform)

    c.chat.posts_for_tickets = counting
    first, *others, noted = numbers
    await n.notify(changed(ids[first], stage=("new", "in_progress")))
    await asyncio.wait_for(held.started.wait(), 10)  # the worker is busy with it
    for number in others:
        await n.notify(changed(ids[number], stage=("new", "in_progress")))
    await n.notify(changed(ids[others[0]], priority=("low", "high")))  # joins the waiting change
    await n.notify(NoteAdded(workspace_id=h.ws, ticket_id=ids[noted], ticket_number=noted, origin="psa",
                             occurred_at=NOW, entry_id=1, visibility="public", author_name="Ann",
                             body="Printer works again, thanks"))
    held.release.set()
    await h.settle()
    kinds = [(type(e).__name__, e.ticket_id) for e in held.order]
    assert kinds == [("TicketChanged", ids[first]), ("NoteAdded", ids[noted])] + [
        ("TicketChanged", ids[x]) for x in others]
    assert n.merged == 1
    # the changes waiting behind the note were taken together: their threads read in one query
    assert held.batches == [[ids[x] for x in others]] and threads_read == [sorted(ids[x] for x in others)]
    merged = held.order[2]
    assert isinstance(merged, TicketChanged) and set(merged.changes) == {"stage", "priority"}
    posts = [p for p in h.fake.of("chat.postMessage") if "Printer works again" in p.args["text"]]
    assert len(posts) == 1 and posts[0].args["channel"] == "C_LANES"
    updated = [u.args["ts"] for u in h.fake.of("chat.update")]
    # every card shown once more (ticket others[0] too: its two changes are one refresh), each rendered when sent
    assert sorted(updated) == sorted(f"1700000000.00{i:04d}" for i in range(len(numbers)))


async def test_every_owner_a_ticket_passed_through_gets_their_home_once_the_changes_are_merged(day):
    h, c = day, day.c
    n = c.slack.notifier
    n.workers = 1
    members = [m for m in await c.directory.members(h.ws) if m.email][:3]
    assert len(members) == 3
    items = (await c.queue.list(Actor.system(h.ws), QueueFilter(), limit=100)).items
    target, other = items[0], items[1]
    for i, m in enumerate(members):
        uid = f"U_HOME{i}"
        h.fake.add_user(uid, email=m.email, name=m.name)
        await c.chat.link_user(h.ws, ChatUser(platform="slack", team_id=TEAM, user_id=uid), m.email)
        await h.event({"type": "app_home_opened", "user": uid, "tab": "home", "channel": "D1"}, event_id=f"EvH{i}")
    h.fake.clear()
    held = Held(n)
    await n.notify(changed(other.id, origin="psa", subject=("a", "b")))
    await asyncio.wait_for(held.started.wait(), 10)
    a, b, z = (m.id for m in members)
    await n.notify(changed(target.id, assignee_member_id=(a, b)))
    await n.notify(changed(target.id, assignee_member_id=(b, z)))  # b had it for a moment: still told
    held.release.set()
    await h.settle()
    assert n.merged == 1
    published = {p.args["user_id"] for p in h.fake.of("views.publish")}
    assert {"U_HOME0", "U_HOME1", "U_HOME2"} <= published


async def test_no_app_home_read_while_nobody_has_a_home_open(day):
    h, c = day, day.c
    asked: list[int | None] = []
    targets = c.chat.app_home_targets

    async def counting(*a: Any, **kw: Any) -> list[tuple[str, str]]:
        asked.append(kw.get("ticket_id"))
        return list(await targets(*a, **kw))

    c.chat.app_home_targets = counting
    members = [m for m in await c.directory.members(h.ws) if m.email]
    target = next(t for t in (await c.queue.list(Actor.system(h.ws), QueueFilter(), limit=100)).items
                  if t.assignee_id is not None)
    await c.slack.notifier.notify(changed(target.id, stage=("new", "in_progress")))
    await h.settle()
    assert asked == [] and h.fake.of("views.publish") == []
    owner = next(m for m in members if m.id == target.assignee_id)
    h.fake.add_user("U_OWNER", email=owner.email, name=owner.name)
    await c.chat.link_user(h.ws, ChatUser(platform="slack", team_id=TEAM, user_id="U_OWNER"), owner.email)
    await h.event({"type": "app_home_opened", "user": "U_OWNER", "tab": "home", "channel": "D1"}, event_id="EvOwn")
    h.fake.clear()
    await c.slack.notifier.notify(changed(target.id, stage=("in_progress", "new")))
    await h.settle()
    assert asked == [target.id]
    (view,) = [p.args["view"] for p in h.fake.of("views.publish") if p.args["user_id"] == "U_OWNER"]
    assert f"#{target.number}" in json.dumps(view["blocks"])


def _next_page(view: dict[str, Any]) -> str | None:
    for block in view["blocks"]:
        for el in block.get("elements") or []:
            if el.get("action_id") == "db_page":
                return str(el["value"])
    return None


async def test_a_home_refresh_keeps_the_page_the_technician_moved_to_until_they_open_the_tab_again(day):
    h, c = day, day.c
    members = [m for m in await c.directory.members(h.ws) if m.email]
    target = next(t for t in (await c.queue.list(Actor.system(h.ws), QueueFilter(), limit=100)).items
                  if t.assignee_id is not None)
    owner = next(m for m in members if m.id == target.assignee_id)
    h.fake.add_user("U_PAGER", email=owner.email, name=owner.name)
    await c.chat.link_user(h.ws, ChatUser(platform="slack", team_id=TEAM, user_id="U_PAGER"), owner.email)
    await h.event({"type": "app_home_opened", "user": "U_PAGER", "tab": "home", "channel": "D1"}, event_id="EvPg")

    def home_click(value: str) -> dict[str, Any]:
        p = h.action_payload("page", value, user="U_PAGER")
        p.pop("response_url"), p.pop("channel"), p.pop("message")
        p["container"] = {"type": "view", "view_id": "VHOME"}
        p["view"] = {"id": "VHOME", "type": "home"}
        return p

    await h.interactive(home_click(json.dumps({"f": "", "c": None})))  # every ticket, first page
    first = h.fake.of("views.publish")[-1].args["view"]
    value = _next_page(first)
    assert value is not None, "the sandbox has more than one page of tickets"
    await h.interactive(home_click(value))
    second = h.fake.of("views.publish")[-1].args["view"]
    assert second["blocks"] != first["blocks"]
    h.fake.clear()
    await c.slack.notifier.notify(changed(target.id, stage=("new", "in_progress")))
    await h.settle()
    (refreshed,) = [p.args["view"] for p in h.fake.of("views.publish") if p.args["user_id"] == "U_PAGER"]
    assert refreshed["blocks"][0] == second["blocks"][0] and _next_page(refreshed) == _next_page(second)
    # opening the tab again shows the first page of their own queue, and so do the refreshes after it
    await h.event({"type": "app_home_opened", "user": "U_PAGER", "tab": "home", "channel": "D1"}, event_id="EvPg2")
    h.fake.clear()
    c.slack.notifier.homes._last.clear()  # noqa: SLF001 - no 2 s wait between the two publishes of this test
    await c.slack.notifier.notify(changed(target.id, stage=("in_progress", "new")))
    await h.settle()
    (mine,) = [p.args["view"] for p in h.fake.of("views.publish") if p.args["user_id"] == "U_PAGER"]
    assert "My tickets" in json.dumps(mine["blocks"][0]) and f"#{target.number}" in json.dumps(mine["blocks"])


async def test_app_home_targets_of_a_burst_are_those_of_each_change_alone(day):
    h, c = day, day.c
    members = [m for m in await c.directory.members(h.ws) if m.email][:3]
    for i, m in enumerate(members):
        await c.chat.link_user(h.ws, ChatUser(platform="slack", team_id=TEAM, user_id=f"U_T{i}"), m.email)
    items = (await c.queue.list(Actor.system(h.ws), QueueFilter(), limit=100)).items
    owned = [t for t in items if t.assignee_id is not None][:2]
    free = [t for t in items if t.assignee_id is None][:1]
    a, b, z = (m.id for m in members)
    burst: list[tuple[int, dict[str, tuple[Any, Any]]]] = [
        (owned[0].id, {"stage": ("new", "closed")}),  # its owner's queue
        (owned[1].id, {"contact_id": (1, 2)}),  # nothing a queue row shows: nobody
        (free[0].id if free else owned[1].id, {"assignee_member_id": (a, b)}),
        (owned[1].id + 100000, {"stage": ("new", "closed")}),  # no such ticket
    ]
    burst.append((owned[0].id, {"assignee_member_id": (a, b, z)}))  # merged: every owner along the way
    together = await c.chat.app_home_targets_of_changes(h.ws, "slack", burst[:4])
    alone = {tid: await c.chat.app_home_targets(h.ws, "slack", ticket_id=tid, changes=ch) for tid, ch in burst[:4]}
    assert {k: v for k, v in together.items() if v} == {k: v for k, v in alone.items() if v}
    assert together[burst[2][0]] == [(TEAM, "U_T0"), (TEAM, "U_T1")]
    merged = await c.chat.app_home_targets_of_changes(h.ws, "slack", burst[4:])
    assert {u for _, u in merged[owned[0].id]} >= {"U_T0", "U_T1", "U_T2"}
