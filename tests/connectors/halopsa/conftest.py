"""Fixtures for the HaloPSA groundwork tests: a fake tenant and clients wired to it over real httpx."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from connectors.halopsa.auth import (
    HaloAuth,
    InMemoryTokenCache,
    TokenCache,
    client_credentials,
    tenant_from_settings,
)
from connectors.halopsa.client import HaloClient
from tests.fakes.halopsa import FakeHalo
from tests.fakes.halopsa_http import HaloClock

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def make_client(fake: FakeHalo, *, settings: Mapping[str, Any] | None = None,
                credentials: Mapping[str, Any] | None = None, cache: TokenCache | None = None,
                transport: httpx.AsyncBaseTransport | None = None, timeout: float | None = None,
                refresh_margin: float = 300.0, real_http: bool = False) -> HaloClient:
    """A HaloClient for the fake tenant whose token clock is the fake's clock (`real_http`: no injected
    transport, for the loopback server)."""
    tenant = tenant_from_settings(settings if settings is not None else fake.settings())
    client_id, secret = client_credentials(credentials if credentials is not None else fake.credentials())
    if transport is None and not real_http:
        transport = fake.transport()
    auth = HaloAuth(tenant, client_id, secret, cache or InMemoryTokenCache(clock=fake.clock.epoch),
                    transport=transport, timeout=timeout, clock=fake.clock.epoch, refresh_margin=refresh_margin)
    return HaloClient(tenant, auth, transport=transport, timeout=timeout)


@pytest.fixture
def fake() -> FakeHalo:
    return FakeHalo(clock=HaloClock(T0))


@pytest.fixture
async def halo(fake: FakeHalo) -> AsyncIterator[HaloClient]:
    client = make_client(fake)
    yield client
    await client.aclose()
