"""Autotask webhooks: registration with housekeeping, echo suppression, signatures with Autotask's escaping."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from connectors.autotask import webhooks as wh
from connectors.autotask.connector import AutotaskConnector
from connectors.base import CallbackRegistrar, NewNote, NoteVisibility, TicketPatch
from connectors.errors import WebhookRejected
from tests.fakes.autotask import FakeAutotask
from tests.fakes.autotask_harness import WEBHOOK_SECRET, config
from tests.fakes.autotask_hooks import delivery

URL = "https://deskbridge.example/hooks/psa/3/tok"
ACME = 175


@pytest.fixture
async def conn(fake: FakeAutotask) -> AsyncIterator[AutotaskConnector]:
    c = AutotaskConnector(config(fake), transport=fake.transport())
    yield c
    await c.aclose()


async def test_callbacks_are_registered_once_with_fields_and_our_user_excluded(fake: FakeAutotask,
                                                                               conn: AutotaskConnector) -> None:
    assert isinstance(conn, CallbackRegistrar)
    first = await conn.ensure_callbacks(URL)
    assert len(first["added"]) == 2 and first["kept"] == [] and first["deleted"] == []
    for name in ("TicketWebhooks", "TicketNoteWebhooks"):
        [hook] = fake.webhooks[name].values()
        assert hook["webhookUrl"] == URL and hook["deactivationUrl"].startswith(URL + "?")
        assert hook["secretKey"] == WEBHOOK_SECRET and hook["isActive"] and hook["isReady"]
        assert [r["resourceID"] for r in hook["excluded"]] == [fake.api_resource_id]
    again = await conn.ensure_callbacks(URL)  # idempotent: kept, nothing added
    assert again["added"] == [] and len(again["kept"]) == 2
    assert sum(len(h["fields"]) for t in fake.webhooks.values() for h in t.values()) == \
        sum(len(v["subscribe"]) + len(v["always"]) for v in wh.HOOKS.values())


async def test_stale_duplicates_to_our_host_are_removed(fake: FakeAutotask, conn: AutotaskConnector) -> None:
    await conn.ensure_callbacks("https://deskbridge.example/hooks/psa/3/old-token")
    await conn.ensure_callbacks("https://deskbridge.example/hooks/psa/3/old-token")
    fake.webhooks["TicketWebhooks"][999] = {**next(iter(fake.webhooks["TicketWebhooks"].values())), "id": 999}
    other = {**next(iter(fake.webhooks["TicketWebhooks"].values())), "id": 1000, "name": "Someone else",
             "webhookUrl": "https://rmm.example/in"}
    fake.webhooks["TicketWebhooks"][1000] = other
    result = await conn.ensure_callbacks(URL)
    assert result["deleted"] == ["TicketWebhooks:999"]
    assert sorted(h["webhookUrl"] for h in fake.webhooks["TicketWebhooks"].values()) == [URL, "https://rmm.example/in"]
    gone = await conn.remove_callbacks(URL)
    assert len(gone) == 2 and [h["id"] for h in fake.webhooks["TicketWebhooks"].values()] == [1000]


async def test_a_technicians_change_calls_back_and_ours_do_not(fake: FakeAutotask, conn: AutotaskConnector) -> None:
    await conn.ensure_callbacks(URL)
    tid = fake.add_ticket("Printer & <toner> 'x' \"y\" `z` + ü", companyID=ACME)["id"]
    fake.add_note(tid, "Called the customer — ça marche", publish=1)
    made = [(u, h, b) for u, h, b in fake.deliveries]
    assert [u for u, _, _ in made] == [URL, URL]
    events = [await conn.parse_webhook(h, b) for _, h, b in made]
    assert [(e.entity, e.action, e.ticket_external_id, e.verified) for e in events] == [
        ("ticket", "added", str(tid), True), ("note", "added", str(tid), True)]
    assert len({e.event_id for e in events}) == 2
    fake.deliveries.clear()
    await conn.add_note(NewNote(ticket_external_id=str(tid), text="From chat", visibility=NoteVisibility.PUBLIC,
                                marker="m"))
    await conn.update_ticket(str(tid), TicketPatch(summary="Renamed from chat"))
    assert fake.deliveries == []  # our API user is excluded: no echo of our own writes
    fake.edit_ticket(tid, priority=4)
    [(_, headers, body)] = fake.deliveries
    assert (await conn.parse_webhook(headers, body)).action == "updated"


async def test_signatures_are_checked_on_the_raw_body(conn: AutotaskConnector) -> None:
    headers, body = delivery(WEBHOOK_SECRET, "Ticket", "Update", {"id": 7001, "title": "A & B <c> ü"},
                             guid="g", sequence=3)
    assert b"&" in body and "ü".encode() in body  # sent raw; signed over the escaped form
    assert (await conn.parse_webhook(headers, body)).ticket_external_id == "7001"
    with pytest.raises(WebhookRejected):
        await conn.parse_webhook(headers, body.replace(b"7001", b"7002"))
    with pytest.raises(WebhookRejected):
        await conn.parse_webhook({}, body)
    other, _ = delivery("not-our-secret", "Ticket", "Update", {"id": 7001, "title": "A & B <c> ü"}, guid="g",
                        sequence=3)
    with pytest.raises(WebhookRejected):
        await conn.parse_webhook(other, body)


def test_escaping_matches_autotasks_form() -> None:
    raw = '{"a": "x & y < z > \'q\' `b` + \\"c\\" é 😀", "n": 1}'.encode()
    assert wh.escaped(raw) == (b'{"a": "x \\u0026 y \\u003c z \\u003e \\u0027q\\u0027 \\u0060b\\u0060 \\u002b '
                               b'\\u0022c\\u0022 \\u00e9 \\ud83d\\ude00", "n": 1}')


async def test_a_deactivation_notice_names_no_ticket_and_tells_the_operator(conn: AutotaskConnector,
                                                                            caplog: pytest.LogCaptureFixture) -> None:
    headers, body = delivery(WEBHOOK_SECRET, "Ticket", "Deactivated", {"id": 0}, guid="g", sequence=9)
    with caplog.at_level("WARNING", logger="deskbridge.psa.autotask"):
        event = await conn.parse_webhook(headers, body)
    assert (event.entity, event.action, event.ticket_external_id) == ("webhook", "deactivated", None)
    assert "connection callbacks" in caplog.text and WEBHOOK_SECRET not in caplog.text


async def test_without_a_webhook_secret_one_is_derived_and_never_the_api_secret(fake: FakeAutotask) -> None:
    cfg = config(fake)
    c = AutotaskConnector(type(cfg)(connection_id=1, workspace_id=1, kind="autotask", settings=cfg.settings,
                                    credentials=fake.credentials()), transport=fake.transport())
    await c.ensure_callbacks(URL)
    [hook] = fake.webhooks["TicketWebhooks"].values()
    assert len(hook["secretKey"]) == 64 and fake.secret not in hook["secretKey"]
    tid = fake.add_ticket("Signed with the derived key", companyID=ACME)["id"]
    [(_, headers, body)] = [d for d in fake.deliveries if b"Signed with" in d[2]]
    assert (await c.parse_webhook(headers, body)).ticket_external_id == str(tid)
    await c.aclose()
