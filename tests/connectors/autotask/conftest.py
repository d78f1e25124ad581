"""Fixtures for the Autotask groundwork tests: a fresh fake tenant, credentials for it, a client over it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from connectors.autotask.auth import AtCredentials, credentials_from
from connectors.autotask.client import AtClient
from connectors.autotask.picklists import AtPicklists, picklists_from_fields
from tests.fakes.autotask import FakeAutotask, FakeClock

T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


@pytest.fixture
def fake() -> FakeAutotask:
    return FakeAutotask(clock=FakeClock(T0, step=timedelta(seconds=1)))


@pytest.fixture
def creds(fake: FakeAutotask) -> AtCredentials:
    return credentials_from(fake.settings(), fake.credentials())


@pytest.fixture
async def client(fake: FakeAutotask, creds: AtCredentials) -> AsyncIterator[AtClient]:
    c = AtClient(creds, transport=fake.transport())
    yield c
    await c.aclose()


async def load_picklists(client: AtClient) -> AtPicklists:
    """The tenant's picklists, as a connector would load them."""
    return AtPicklists(ticket=picklists_from_fields(await client.entity_fields("Tickets")),
                       note=picklists_from_fields(await client.entity_fields("TicketNotes")),
                       attachment=picklists_from_fields(await client.entity_fields("TicketAttachments")))


def api_requests(fake: FakeAutotask) -> list[str]:
    """Keys of the requests that reached a zone (not the discovery host)."""
    return [r.key for r in fake.requests if r.key != "GET /zoneInformation"]
