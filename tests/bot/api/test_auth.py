"""API keys: bearer auth failures are 401 problems, missing scopes 403; keys are stored hashed."""

from __future__ import annotations

import hashlib

import pytest
from sqlmodel import select

from core.apikeys import normalize_scopes
from core.errors import Conflict, InvalidInput, NotFound
from store.db import Scope
from store.tables import ApiKey
from tests.bot.api.conftest import PREFIX, Api, assert_problem


@pytest.mark.parametrize("header", [
    None,  # missing
    "Bearer",  # no credentials
    "Basic dXNlcjpwYXNz",  # another scheme
    "Bearer not-a-key",  # malformed
    "Bearer dbk_000000000000_" + "A" * 43,  # well-formed, unknown
])
async def test_missing_or_bad_keys_are_401(api: Api, header: str | None):
    headers = {"Authorization": header} if header else {}
    r = await api.client.get(PREFIX + "/tickets", headers=headers)
    body = assert_problem(r, 401, kind="unauthenticated")
    assert r.headers["www-authenticate"].startswith("Bearer")
    assert "apikey create" in body["hint"]


async def test_tampered_secret_of_a_real_key_is_401(api: Api):
    token = api.keys["read"]
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    r = await api.client.get(PREFIX + "/tickets", headers={"Authorization": f"Bearer {forged}"})
    assert_problem(r, 401)


async def test_revoked_key_stops_working_at_once(api: Api):
    assert (await api.get("/tickets", "read")).status_code == 200
    await api.container.apikeys.revoke(api.ws, "read-key")
    assert_problem(await api.get("/tickets", "read"), 401)
    listed = {k.name: k for k in await api.container.apikeys.list(api.ws)}
    assert listed["read-key"].revoked_at is not None and listed["write-key"].revoked_at is None


@pytest.mark.parametrize(("which", "method", "path", "body"), [
    ("read", "post", "/tickets", {"subject": "x"}),
    ("read", "put", "/tickets/1", {"priority": "high"}),
    ("read", "post", "/tickets/1/comments", {"body": "x"}),
    ("write", "get", "/outbox", None),
    ("write", "get", "/outbox/1", None),
    ("write", "post", "/outbox/1/retry", None),
    ("write", "post", "/outbox/1/discard", {"reason": "x"}),
])
async def test_insufficient_scope_is_403(api: Api, which: str, method: str, path: str, body: object):
    r = await api.client.request(method.upper(), PREFIX + path, json=body, headers=api.auth(which))
    problem = assert_problem(r, 403, kind="forbidden")
    assert "scope" in problem["detail"]


async def test_higher_scopes_include_lower_ones(api: Api):
    assert (await api.get("/tickets", "admin")).status_code == 200
    assert (await api.post("/tickets", {"subject": "by admin"}, "admin")).status_code == 201
    assert (await api.get("/tickets", "write")).status_code == 200


async def test_keys_are_stored_hashed_and_last_use_recorded(api: Api):
    token = api.keys["write"]
    async with api.container.db.read(Scope.system_wide()) as s:
        row = (await s.exec(select(ApiKey).where(ApiKey.name == "write-key"))).one()
    assert row.secret_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token not in (row.secret_hash, row.key_id, row.name) and row.key_id in token
    assert row.last_used_at is None
    await api.get("/tickets", "write")
    info = {k.name: k for k in await api.container.apikeys.list(api.ws)}["write-key"]
    assert info.last_used_at is not None


async def test_key_management_rules(api: Api):
    with pytest.raises(Conflict):
        await api.container.apikeys.create(api.ws, name="read-key", scopes=["read"])
    with pytest.raises(InvalidInput, match="Unknown scope"):
        await api.container.apikeys.create(api.ws, name="x", scopes=["root"])
    with pytest.raises(InvalidInput):
        await api.container.apikeys.create(api.ws, name="../etc", scopes=["read"])
    with pytest.raises(NotFound):
        await api.container.apikeys.revoke(api.ws, "no-such-key")
    # Revoking by name in another workspace does not reach this workspace's key.
    with pytest.raises(NotFound):
        await api.container.apikeys.revoke(api.other_ws, "read-key")
    assert normalize_scopes(["ADMIN", "read", "read"]) == ("read", "admin")


async def test_revoke_from_another_process_applies_within_the_cache_ttl(api: Api):
    from datetime import timedelta

    from core.apikeys import AUTH_CACHE_TTL, ApiKeyService, Unauthenticated
    from store.types import utcnow

    clock = [utcnow()]
    serving = ApiKeyService(api.container.db, clock=lambda: clock[0])
    cli = ApiKeyService(api.container.db)  # e.g. `deskbridge apikey revoke` run elsewhere
    token = api.keys["read"]
    assert (await serving.authenticate(token)).name == "read-key"
    await cli.revoke(api.ws, "read-key")
    assert (await serving.authenticate(token)).name == "read-key"  # still cached
    clock[0] += AUTH_CACHE_TTL + timedelta(seconds=1)
    with pytest.raises(Unauthenticated):
        await serving.authenticate(token)
    good = api.keys["write"]
    assert (await serving.authenticate(good)).name == "write-key"  # now cached
    forged = good[:-1] + ("A" if not good.endswith("A") else "B")
    with pytest.raises(Unauthenticated):  # a cached key id with another secret is still refused
        await serving.authenticate(forged)
