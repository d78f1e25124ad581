"""Rate limits, latency, thread limits and every vendor error translated into connectors/errors.py classes."""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from datetime import date, timedelta

import httpx
import pytest

from connectors.autotask.auth import AtCredentials
from connectors.autotask.client import AtClient, translate_response
from connectors.errors import (
    PsaAuthError,
    PsaError,
    PsaForbidden,
    PsaNotFound,
    PsaRateLimited,
    PsaTimeout,
    PsaTooLarge,
    PsaUnavailable,
    PsaValidationError,
)
from tests.fakes.autotask import FakeAutotask

TICKET = {"companyID": 175, "title": "Printer on fire", "status": 1, "priority": 2}


async def test_429_carries_retry_after(fake: FakeAutotask, client: AtClient) -> None:
    fake.fail_next(429, retry_after=7)
    with pytest.raises(PsaRateLimited) as caught:
        await client.query_all("Tickets")
    assert caught.value.retry_after == 7 and caught.value.retryable and caught.value.status == 429
    assert await client.query_all("Tickets") == []  # only the next request failed


async def test_hourly_threshold_answers_429_until_the_window_moves(fake: FakeAutotask, client: AtClient) -> None:
    fake.threshold, fake.latency_scale = 20, 0.0
    await client.get_item("Companies/0")
    fake.clock.advance(600)
    fake.use_budget(19)  # other integrations on the same database
    with pytest.raises(PsaRateLimited) as caught:
        await client.get_item("Companies/0")
    assert caught.value.code == "Threshold" and caught.value.retry_after == 3000  # our call leaves first
    assert "threshold" in caught.value.message
    fake.clock.advance(3000)
    assert (await client.get_item("Companies/0"))["id"] == 0


async def test_latency_is_added_from_half_and_three_quarters_of_the_budget(fake: FakeAutotask,
                                                                          client: AtClient) -> None:
    fake.threshold, fake.latency_scale = 100, 0.1
    fake.use_budget(48)
    for _ in range(4):
        await client.get_item("Companies/0")  # calls 49..52 of 100
    fake.use_budget(23)
    await client.get_item("Companies/0")  # call 76
    assert fake.added_latency == [0.0, 0.05, 0.05, 0.05, 0.1]
    started = time.perf_counter()
    usage = await client.threshold()
    assert time.perf_counter() - started >= 0.09  # the delay is real
    assert (usage.limit, usage.window_minutes, usage.used) == (100, 60, 77) and usage.share == 0.77


async def test_the_client_stays_under_the_thread_limit(fake: FakeAutotask, creds: AtCredentials) -> None:
    fake.slow(0.03, match="GET /Companies")
    gated = AtClient(creds, transport=fake.transport())
    await asyncio.gather(*(gated.get_item("Companies/175") for _ in range(8)))
    assert fake.max_inflight["Companies"] == 3
    ungated = AtClient(creds, transport=fake.transport(), per_endpoint=8)
    results = await asyncio.gather(*(ungated.get_item("Companies/175") for _ in range(8)), return_exceptions=True)
    # reads refused by the thread limit (nothing was done) wait for a slot and are sent again
    assert all(isinstance(r, dict) for r in results) and fake.count("GET /Companies/{id}") > 16
    assert fake.max_inflight["Companies"] == 3  # the fake refused the fourth, never served it
    fake.clear_faults()
    fake.slow(0.03, match="POST /Companies")
    writes = await asyncio.gather(*(ungated.create("Companies", {"companyName": f"C{i}", "companyType": 1,
                                                                 "ownerResourceID": fake.api_resource_id,
                                                                 "phone": "1"}) for i in range(8)),
                                  return_exceptions=True)
    limited = [r for r in writes if isinstance(r, PsaRateLimited)]  # writes are the outbox's to retry
    assert limited and all(r.code == "ThreadLimit" and "Itgenatr005" in r.message for r in limited)
    await gated.aclose()
    await ungated.aclose()


@pytest.mark.parametrize("body,fields,needle", [
    ({**TICKET, "status": 99}, {"status"}, "does not reference an existing entity for status"),
    ({**TICKET, "status": 12}, {"status"}, "is inactive"),
    ({k: v for k, v in TICKET.items() if k != "title"}, {"title"}, "Missing required field: title"),
    ({**TICKET, "assignedResourceID": 29682886}, {"assignedResourceID", "assignedResourceRoleID"},
     "you must assign both"),
    ({**TICKET, "title": "x" * 256}, {"title"}, "maximum length"),
    ({**TICKET, "contactID": 30682802}, {"contactID", "companyID"}, "does not belong"),
])
async def test_refusals_are_validation_errors_naming_fields(fake: FakeAutotask, client: AtClient, body: dict,
                                                            fields: set[str], needle: str) -> None:
    with pytest.raises(PsaValidationError) as caught:
        await client.create("Tickets", body)
    err = caught.value
    assert err.status == 500 and needle in err.message and set(err.fields) >= fields
    assert not err.retryable and not err.outcome_unknown and fake.tables["Tickets"] == {}


async def test_permission_500_is_an_auth_error(fake: FakeAutotask, client: AtClient) -> None:
    tid = await client.create("Tickets", TICKET)
    fake.deny("POST /TimeEntries")
    with pytest.raises(PsaAuthError) as caught:
        await client.create("TimeEntries", {"ticketID": tid, "resourceID": fake.api_resource_id, "hoursWorked": 1,
                                            "dateWorked": "2026-01-05T00:00:00Z", "summaryNotes": "x"})
    assert caught.value.code == "Permission" and caught.value.status == 500 and not caught.value.retryable


async def test_missing_records(fake: FakeAutotask, client: AtClient) -> None:
    with pytest.raises(PsaNotFound) as item_null:
        await client.get_item("Tickets/424242")
    assert item_null.value.code == "ItemNull"
    with pytest.raises(PsaNotFound) as patch:
        await client.update("Tickets", {"id": 424242, "title": "x"})
    assert patch.value.status == 500 and "No matching records found" in patch.value.message
    tid = await client.create("Tickets", TICKET)
    with pytest.raises(PsaNotFound):
        await client.delete(f"Tickets/{tid}/Attachments/99")
    with pytest.raises(PsaNotFound) as route:
        await client.create("TicketNotes", {"ticketID": tid, "description": "x", "noteType": 2, "publish": 2})
    assert route.value.status == 404  # children are created through the parent URL only
    with pytest.raises(PsaValidationError):
        await client.update("Tickets", {"title": "no id"})


async def test_server_errors_are_retryable_and_outcome_unknown_only_for_writes(fake: FakeAutotask,
                                                                              client: AtClient) -> None:
    fake.fail_next(500)
    with pytest.raises(PsaUnavailable) as read:
        await client.get_item("Companies/0")
    assert read.value.retryable and not read.value.outcome_unknown
    fake.fail_next(500, match="POST /Tickets/query")
    with pytest.raises(PsaUnavailable) as query:
        await client.query_all("Tickets")
    assert not query.value.outcome_unknown  # a query is a read, although it is a POST
    fake.fail_next(503, match="POST /Tickets")
    with pytest.raises(PsaUnavailable) as write:
        await client.create("Tickets", TICKET)
    assert write.value.outcome_unknown and write.value.status == 503


async def test_lost_write_response_is_outcome_unknown_and_was_applied(fake: FakeAutotask, client: AtClient) -> None:
    await client.get_item("Companies/0")
    fake.lose_next_response()
    with pytest.raises(PsaTimeout) as caught:
        await client.create("Tickets", {**TICKET, "externalID": "lost-1"})
    assert caught.value.outcome_unknown and caught.value.retryable
    assert [t["externalID"] for t in fake.tables["Tickets"].values()] == ["lost-1"]
    fake.lose_next_response(match="POST /Tickets/query")
    with pytest.raises(PsaTimeout) as query:
        await client.query_all("Tickets")
    assert not query.value.outcome_unknown


async def test_slow_write_times_out_after_landing(fake: FakeAutotask, creds: AtCredentials) -> None:
    client = AtClient(creds, transport=fake.transport(), timeout=0.05)
    await client.get_item("Companies/0")
    fake.slow(0.2, times=1, match="POST /Tickets")
    with pytest.raises(PsaTimeout) as caught:
        await client.create("Tickets", TICKET)
    assert caught.value.outcome_unknown and len(fake.tables["Tickets"]) == 1
    await client.aclose()


async def test_connect_errors_retry_reads_once_and_never_writes(creds: AtCredentials) -> None:
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("zoneInformation"):
            return httpx.Response(200, json={"url": "https://webservices9.autotask.net/ATServicesRest/"})
        calls.append(request.method)
        raise httpx.ConnectError("refused", request=request)

    client = AtClient(creds, transport=httpx.MockTransport(handler))
    with pytest.raises(PsaUnavailable) as read:
        await client.get_item("Tickets/1")
    assert calls == ["GET", "GET"] and not read.value.outcome_unknown
    calls.clear()
    with pytest.raises(PsaUnavailable) as write:
        await client.create("Tickets", TICKET)
    assert calls == ["POST"] and not write.value.outcome_unknown  # nothing was sent
    await client.aclose()


@pytest.mark.parametrize("answer,error,unknown", [
    (httpx.Response(200, content=b"<html>maintenance</html>"), PsaUnavailable, True),
    (httpx.Response(200, json={"itemId": None}), PsaUnavailable, True),
    (httpx.Response(502, content=b"Bad gateway"), PsaUnavailable, True),
    (httpx.Response(500, json={"errors": ["Object reference not set to an instance of an object."]}),
     PsaUnavailable, True),
    (httpx.Response(500, json={"Message": "An error has occurred."}), PsaUnavailable, True),
    (httpx.Response(413, content=b""), PsaTooLarge, False),
    (httpx.Response(403, json={"Message": "Forbidden"}), PsaForbidden, False),  # the role, not the keys
])
async def test_odd_answers_to_a_write(creds: AtCredentials, answer: httpx.Response, error: type[PsaError],
                                     unknown: bool) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("zoneInformation"):
            return httpx.Response(200, json={"url": "https://webservices9.autotask.net/ATServicesRest/"})
        return answer

    client = AtClient(creds, transport=httpx.MockTransport(handler))
    with pytest.raises(error) as caught:
        await client.create("Tickets", TICKET)
    err = caught.value
    assert type(err) is error and isinstance(err, PsaError) and err.outcome_unknown is unknown
    await client.aclose()


def test_thread_limit_without_429_is_still_rate_limited() -> None:
    resp = httpx.Response(500, json={"errors": ["Itgenatr005: thread threshold exceeded"]})
    err = translate_response(resp, write=True)
    # a thread limit clears when one of our requests ends: retried after a second unless Autotask says more
    assert isinstance(err, PsaRateLimited) and err.code == "ThreadLimit" and err.retry_after == 1.0


async def test_locked_timesheet_is_a_validation_error(fake: FakeAutotask, client: AtClient) -> None:
    tid = await client.create("Tickets", TICKET)
    fake.lock_timesheet(fake.api_resource_id, through=date(2026, 1, 31))
    with pytest.raises(PsaValidationError) as caught:
        await client.create("TimeEntries", {"ticketID": tid, "resourceID": fake.api_resource_id, "hoursWorked": 1,
                                            "dateWorked": "2026-01-05T00:00:00Z", "summaryNotes": "x"})
    assert "timesheet" in caught.value.message and fake.tables["TimeEntries"] == {}


async def test_attachment_caps(fake: FakeAutotask, client: AtClient) -> None:
    tid = await client.create("Tickets", TICKET)
    fake.max_attachment_bytes, fake.attachment_window_bytes = 1000, 2500

    def upload(size: int) -> dict:
        return {"attachmentType": "FILE_ATTACHMENT", "fullPath": "a.bin", "title": "a.bin", "publish": 2,
                "data": base64.b64encode(b"x" * size).decode()}

    with pytest.raises(PsaTooLarge):
        await client.create(f"Tickets/{tid}/Attachments", upload(1001))
    for _ in range(2):
        await client.create(f"Tickets/{tid}/Attachments", upload(1000))
    with pytest.raises(PsaRateLimited):
        await client.create(f"Tickets/{tid}/Attachments", upload(600))
    fake.clock.advance(timedelta(minutes=4).total_seconds())
    with pytest.raises(PsaRateLimited):  # blocked for 5 minutes after the cap was hit
        await client.create(f"Tickets/{tid}/Attachments", upload(10))
    fake.clock.advance(timedelta(minutes=6).total_seconds())
    assert await client.create(f"Tickets/{tid}/Attachments", upload(10))
    assert len(fake.tables["TicketAttachments"]) == 3


async def test_errors_and_logs_never_carry_the_secret(fake: FakeAutotask, client: AtClient,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    errors: list[Exception] = []
    for status in (401, 429, 500):
        fake.fail_next(status)
        try:
            await client.get_item("Companies/0")
        except Exception as exc:  # noqa: BLE001 - collecting them all
            errors.append(exc)
    assert len(errors) == 3
    text = caplog.text + " ".join(f"{e} {e!r}" for e in errors)
    assert fake.secret not in text and fake.integration_code not in text
