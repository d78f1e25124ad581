"""The database TokenCache: one HaloPSA token shared by every instance, encrypted at rest, minted once under a
lease; instances with their own caches would invalidate each other's tokens in turn (the fake Halo, like the
real one, invalidates older tokens when it mints a new one)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from sqlmodel import select

from connectors.halopsa.connector import HaloPsaConnector
from connectors.tokens import CachedToken, InMemoryTokenCache, TokenCache
from core.psa_tokens import DatabaseTokenCache, row_key
from store.crypto import CredentialCipher, generate_key
from store.db import Database, Scope
from store.tables import Lease, PsaToken
from tests.fakes.halopsa import FakeHalo
from tests.fakes.halopsa_http import HaloClock

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
KEY = "halopsa:https://acme.halopsa.com:acme:deskbridge-client-id:0123abcd"


def _instance(fake: FakeHalo, cache: TokenCache) -> HaloPsaConnector:
    """One Deskbridge instance's connector (its own HTTP clients, budget and token provider)."""
    return HaloPsaConnector(fake.config(), transport=fake.transport(), clock=fake.clock.epoch, token_cache=cache)


def _caches(db: Database, cipher: CredentialCipher, fake: FakeHalo, n: int) -> list[DatabaseTokenCache]:
    return [DatabaseTokenCache(db, cipher, holder=f"instance-{i}", clock=fake.clock.epoch, memo_seconds=0,
                               poll_seconds=0.01) for i in range(n)]


async def test_a_token_round_trips_encrypted_under_a_hashed_key(db: Database) -> None:
    cipher = CredentialCipher.from_keys([generate_key()])
    cache = DatabaseTokenCache(db, cipher, clock=lambda: 1000.0)
    await cache.put(KEY, CachedToken("secret-bearer-token-xyz", 4600.0))
    again = await DatabaseTokenCache(db, cipher, clock=lambda: 1000.0).get(KEY)  # another instance reads it
    assert again == CachedToken("secret-bearer-token-xyz", 4600.0)
    async with db.read(Scope.system_wide()) as s:
        rows = list((await s.exec(select(PsaToken))).all())
    assert [r.key for r in rows] == [row_key(KEY)] and "deskbridge-client-id" not in rows[0].key
    assert b"secret-bearer-token-xyz" not in rows[0].ciphertext and rows[0].key_id == cipher.primary_key_id
    assert await DatabaseTokenCache(db, cipher, clock=lambda: 4600.0).get(KEY) is None  # expired
    other_key = CredentialCipher.from_keys([generate_key()])
    assert await DatabaseTokenCache(db, other_key, clock=lambda: 1000.0).get(KEY) is None  # unreadable: mint anew


async def test_discard_removes_only_the_token_it_names(db: Database) -> None:
    cipher = CredentialCipher.from_keys([generate_key()])
    a, b = (DatabaseTokenCache(db, cipher, clock=lambda: 1000.0, memo_seconds=0) for _ in range(2))
    await a.put(KEY, CachedToken("old", 4600.0))
    await b.put(KEY, CachedToken("new", 4600.0))  # another instance minted meanwhile
    await a.discard(KEY, "old")  # a's 401 was about the old token: the new one stays
    assert await a.get(KEY) == CachedToken("new", 4600.0)
    await a.discard(KEY, "new")
    assert await b.get(KEY) is None


async def test_two_instances_share_one_token_without_invalidating_each_other(db: Database) -> None:
    fake = FakeHalo(clock=HaloClock(T0))
    cipher = CredentialCipher.from_keys([generate_key()])
    one, two = (_instance(fake, c) for c in _caches(db, cipher, fake, 2))
    try:
        for _ in range(5):  # interleaved, as two servers behind a load balancer would
            await one.get_ticket(str(fake.add_ticket("Shared", client_id=12)["id"]))
            await two.list_members()
        await asyncio.gather(*(c.picklists() for c in (one, two)))
    finally:
        await one.aclose()
        await two.aclose()
    api = [r for r in fake.requests if r.route.startswith("/api/") and r.route != "/api/authinfo"]
    assert fake.tokens_issued == 1 and len(api) > 20
    assert [r.status for r in api if r.status != 200] == []  # not one 401: no invalidation ping-pong


async def test_private_caches_would_ping_pong(db: Database) -> None:
    """The baseline the shared cache removes: each instance minting its own token kills the other's."""
    fake = FakeHalo(clock=HaloClock(T0))
    one, two = _instance(fake, InMemoryTokenCache(fake.clock.epoch)), _instance(fake, InMemoryTokenCache(fake.clock.epoch))
    try:
        for _ in range(3):
            await one.list_members()
            await two.list_members()
    finally:
        await one.aclose()
        await two.aclose()
    assert fake.tokens_issued == 6
    assert sum(r.status == 401 for r in fake.requests) == 4  # every request after the first round


async def test_a_cold_start_of_many_instances_mints_one_token_under_the_lease(db: Database) -> None:
    fake = FakeHalo(clock=HaloClock(T0))
    cipher = CredentialCipher.from_keys([generate_key()])
    caches = _caches(db, cipher, fake, 4)
    instances = [_instance(fake, c) for c in caches]
    try:
        await asyncio.gather(*(i.list_members() for i in instances for _ in range(3)))
    finally:
        for i in instances:
            await i.aclose()
    assert fake.tokens_issued == 1 and sum(c.writes for c in caches) == 1
    async with db.read(Scope.system_wide()) as s:
        assert list((await s.exec(select(Lease))).all()) == []  # every lease released


async def test_an_expiring_token_is_refreshed_once_for_everyone(db: Database) -> None:
    fake = FakeHalo(clock=HaloClock(T0), token_lifetime=3600)
    cipher = CredentialCipher.from_keys([generate_key()])
    one, two = (_instance(fake, c) for c in _caches(db, cipher, fake, 2))
    try:
        await one.list_members()
        fake.clock.advance(3600 - 120)  # inside the refresh margin: the next request refreshes first
        await two.list_members()
        await one.list_members()
    finally:
        await one.aclose()
        await two.aclose()
    assert fake.tokens_issued == 2
    assert all(r.status == 200 for r in fake.requests if r.route == "/api/Agent")
