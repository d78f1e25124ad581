"""Verified Bot Framework tokens are kept (bot/teams/auth.py VerifiedTokens): the signature is checked once per
token, while what depends on the request (serviceUrl, channel endorsements, expiry) is checked on every request.
A token that never passed the whole check is never kept; a changed byte is another token. And a card's refresh
answered without the SDK's turn (bot/teams/app.py `light_reads`) is the answer the SDK's router gives."""

from __future__ import annotations

import base64
import json
import time

import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric import rsa

from bot.teams import cards
from bot.teams.auth import VerifiedTokens, _Kept
from store.db import Scope
from store.tables import ProcessedEvent
from tests.bot.teams.conftest import CHANNEL


def kept(h) -> VerifiedTokens:
    return h.c.teams.verifier.kept


async def processed(h) -> int:
    async with h.c.db.read(Scope.system_wide()) as s:
        return (await s.execute(sa.select(sa.func.count()).select_from(ProcessedEvent))).scalar_one()


def refresh(h, **extra):
    return h.activity(kind="invoke", name="adaptiveCard/action",
                      value={"action": {"type": "Action.Execute", "verb": cards.VERB,
                                        "data": {"action": "open", "ref": "5001"}}, "trigger": "automatic"},
                      **extra)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def with_claims(token: str, **changes) -> str:
    """The same header and signature with other claims: what a forger would send."""
    head, payload, sig = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims.update(changes)
    return ".".join((head, _b64(json.dumps(claims).encode()), sig))


async def test_a_token_is_verified_once_then_kept_for_its_next_activities(teams):
    body = teams.activity("help")
    token = teams.fake.sign(body)
    assert (await teams.send(body, token=token)).status_code == 200
    hits = kept(teams).hits
    for _ in range(3):
        assert (await teams.send(teams.activity("help"), token=token)).status_code == 200
    assert kept(teams).hits == hits + 3
    assert len(teams.posted()) == 4


async def test_a_tampered_kept_token_is_refused(teams):
    body = teams.activity("help")
    token = teams.fake.sign(body)
    assert (await teams.send(body, token=token)).status_code == 200
    before = len(teams.posted()), await processed(teams)
    evil = "https://evil.example/"
    head, payload, sig = token.split(".")
    flipped = sig[:-2] + ("A" if sig[-2] != "A" else "B") + sig[-1]
    for forged, url in ((with_claims(token, serviceurl=evil), evil),  # its claims changed, signature kept
                        (with_claims(token, aud="someone-else"), None),
                        (".".join((head, payload, flipped)), None)):  # its signature changed
        forged_body = teams.activity("help")
        if url:
            forged_body["serviceUrl"] = url
        resp = await teams.send(forged_body, token=forged)
        assert resp.status_code == 401, forged
    assert (len(teams.posted()), await processed(teams)) == before
    assert len(kept(teams)) == 1  # only the token that passed


async def test_a_kept_token_with_another_service_url_is_refused(teams):
    body = teams.activity("help")
    token = teams.fake.sign(body)
    assert (await teams.send(body, token=token)).status_code == 200
    posted = len(teams.posted())
    hits = kept(teams).hits
    other = dict(teams.activity("help"), serviceUrl="https://evil.example/")
    assert (await teams.send(other, token=token)).status_code == 401
    assert kept(teams).hits == hits + 1  # it was the kept token, refused on this request's serviceUrl
    assert len(teams.posted()) == posted


async def test_a_kept_token_from_a_channel_its_key_is_not_endorsed_for_is_refused(teams):
    body = teams.activity("help")
    token = teams.fake.sign(body)
    assert (await teams.send(body, token=token)).status_code == 200
    posted = len(teams.posted())
    other = dict(teams.activity("help"), channelId="skype")  # the stand-in's key: msteams and webchat only
    assert (await teams.send(other, token=token)).status_code == 401
    assert len(teams.posted()) == posted


async def test_a_kept_token_expires_with_the_leeway(teams):
    verifier = teams.c.teams.verifier
    body = teams.activity("help")
    token = teams.fake.sign(body, exp_in=600)
    assert (await teams.send(body, token=token)).status_code == 200
    verifier._clock = lambda: time.time() + 600 + 200  # past exp, within the 300 s leeway
    assert (await teams.send(teams.activity("help"), token=token)).status_code == 200
    verifier._clock = lambda: time.time() + 600 + 400  # past the leeway
    posted = len(teams.posted())
    assert (await teams.send(teams.activity("help"), token=token)).status_code == 401
    assert len(teams.posted()) == posted
    assert len(kept(teams)) == 0


async def test_a_kept_token_whose_key_was_withdrawn_is_checked_again_and_refused(teams):
    body = teams.activity("help")
    token = teams.fake.sign(body)
    assert (await teams.send(body, token=token)).status_code == 200
    teams.fake.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)  # Microsoft rotates the key
    await teams.c.teams.keys.refresh()
    posted = len(teams.posted())
    assert (await teams.send(teams.activity("help"), token=token)).status_code == 401
    assert len(teams.posted()) == posted
    assert (await teams.say("help")).status_code == 200  # a token signed with the new key is fine


async def test_refused_tokens_are_never_kept(teams):
    f = teams.fake
    for token in (f.sign(teams.activity("help"), key=f.other_key), f.sign(teams.activity("help"), exp_in=-400),
                  f.sign(teams.activity("help"), aud="someone-else")):
        assert (await teams.send(teams.activity("help"), token=token)).status_code == 401
    assert len(kept(teams)) == 0


def test_kept_tokens_are_bounded_least_recently_used_first():
    tokens = VerifiedTokens(size=2)
    entry = _Kept({}, 0.0, "k", None)  # type: ignore[arg-type]
    tokens.keep("a", entry)
    tokens.keep("b", entry)
    assert tokens.get("a") is entry  # "a" used last
    tokens.keep("c", entry)
    assert len(tokens) == 2 and tokens.get("b") is None and tokens.get("a") is entry


async def test_a_refresh_without_the_sdks_turn_is_the_sdks_answer(teams):
    surface = teams.c.teams
    assert surface.light_reads
    light = await teams.send(refresh(teams))
    surface.light_reads = False
    try:
        through_sdk = await teams.send(refresh(teams))
    finally:
        surface.light_reads = True
    assert light.status_code == through_sdk.status_code == 200
    assert light.json() == through_sdk.json()
    assert light.json()["type"] == "application/vnd.microsoft.card.adaptive"
    assert "#5001" in json.dumps(light.json())
    assert await processed(teams) == 0  # a refresh writes nothing, either way


async def test_a_malformed_refresh_gets_400_and_writes_nothing(teams):
    body = refresh(teams)
    body["conversation"] = {"id": CHANNEL, "conversationType": "channel", "isGroup": "perhaps"}
    resp = await teams.send(body)
    assert resp.status_code == 400
    assert "not a valid invoke activity" in resp.json()["error"]
    assert await processed(teams) == 0 and teams.posted() == []
