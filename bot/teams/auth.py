"""Inbound Bot Framework tokens, checked by us (the SDK's check fetches keys synchronously on the event loop).

A Teams activity arrives with `Authorization: Bearer <JWT>`. It is accepted only when:
- its signature verifies with a key from the cloud's published OpenID metadata (RS256 only), and that key is
  endorsed for the activity's channel when the key lists endorsements;
- its issuer is the Bot Framework's, its audience our app id (`X`, `api://X` or `api://botid-X`), and it is
  neither expired nor not yet valid (300 s leeway, as the Bot Framework allows);
- its `serviceurl` claim equals the activity's `serviceUrl` (so a token for one service cannot steer our
  replies to another host).
Keys are fetched with httpx on the event loop, cached, refreshed daily, and re-fetched (at most once a
minute) when a token names a key we do not know yet (Microsoft rotates them).

Verified tokens are kept (`VerifiedTokens`): the Bot Framework sends the same token with every activity until it
expires, so its signature, issuer and audience are checked once per token, not once per activity (measured:
about a tenth of a card refresh's CPU, bench/teams_invoke.py). A token is kept only after it passed every check,
keyed by its exact string (a changed byte is another token, verified from scratch), until its expiry, at most
`MAX_KEPT` of them. What depends on the request is checked on every request, kept or not: expiry (with the
leeway), the `serviceurl` claim against the activity's serviceUrl, and the signing key's endorsements for the
activity's channel; and the key must still be the one published under its id (a key Microsoft withdrew, or
replaced, sends the token through the whole check again).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import jwt

log = logging.getLogger("deskbridge.teams")

LEEWAY_S = 300
REFRESH_S = 24 * 3600
MIN_REFETCH_S = 60.0
MAX_KEPT = 1024  # verified tokens kept (one per Bot Framework token in use; a few at a time in practice)


class TokenRefused(Exception):
    """The request is not from the Bot Framework for this bot; `reason` is safe to log (no token in it)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class _Key:
    key: Any
    endorsements: frozenset[str]


class KeySet:
    """The Bot Framework's signing keys, from its OpenID metadata, fetched without blocking the loop."""

    def __init__(self, metadata_url: str, http: httpx.AsyncClient, *, clock: Callable[[], float] = time.monotonic,
                 refresh_s: float = REFRESH_S, min_refetch_s: float = MIN_REFETCH_S) -> None:
        self.metadata_url = metadata_url
        self.http = http
        self._clock = clock
        self.refresh_s = refresh_s
        self.min_refetch_s = min_refetch_s
        self._keys: dict[str, _Key] = {}
        self._fetched_at = float("-inf")
        self._lock = asyncio.Lock()

    def current(self, kid: str) -> _Key | None:
        """The key published under `kid` now, without fetching."""
        return self._keys.get(kid)

    async def get(self, kid: str) -> _Key | None:
        now = self._clock()
        stale = now - self._fetched_at > self.refresh_s
        if stale or (kid not in self._keys and now - self._fetched_at > self.min_refetch_s):
            await self.refresh(only_if_older_than=self.min_refetch_s)
        return self._keys.get(kid)

    async def refresh(self, *, only_if_older_than: float = 0.0) -> None:
        """Fetch the keys again (simultaneous callers share one fetch); a failure keeps the old keys."""
        async with self._lock:
            if self._clock() - self._fetched_at <= only_if_older_than:
                return  # another request fetched them while this one waited
            try:
                meta = (await self.http.get(self.metadata_url)).raise_for_status().json()
                jwks = (await self.http.get(str(meta["jwks_uri"]))).raise_for_status().json()
                keys: dict[str, _Key] = {}
                for k in jwks.get("keys", []):
                    if k.get("kty") != "RSA" or not k.get("kid"):
                        continue
                    keys[str(k["kid"])] = _Key(jwt.PyJWK.from_dict({**k, "alg": "RS256"}).key,
                                               frozenset(str(e) for e in k.get("endorsements") or ()))
            except (httpx.HTTPError, ValueError, KeyError, jwt.PyJWTError) as exc:
                log.warning("Bot Framework signing keys could not be fetched from %s: %s", self.metadata_url,
                            type(exc).__name__)
                self._fetched_at = self._clock() - self.refresh_s + self.min_refetch_s  # retry within a minute
                return
            self._keys, self._fetched_at = keys, self._clock()


@dataclass(frozen=True, slots=True)
class _Kept:
    claims: dict[str, Any]
    expires: float  # the token's `exp` (epoch seconds)
    kid: str
    key: _Key  # the key that verified the signature


class VerifiedTokens:
    """Tokens that passed the whole check, by their exact string, until they expire (at most `size`, the least
    recently used dropped first). Only `InboundVerifier` adds to it, after a successful verification."""

    def __init__(self, size: int = MAX_KEPT) -> None:
        self.size = size
        self._kept: OrderedDict[str, _Kept] = OrderedDict()
        self.hits = 0

    def get(self, raw: str) -> _Kept | None:
        kept = self._kept.get(raw)
        if kept is not None:
            self._kept.move_to_end(raw)
        return kept

    def keep(self, raw: str, kept: _Kept) -> None:
        self._kept[raw] = kept
        self._kept.move_to_end(raw)
        while len(self._kept) > self.size:
            self._kept.popitem(last=False)

    def drop(self, raw: str) -> None:
        self._kept.pop(raw, None)

    def __len__(self) -> int:
        return len(self._kept)


class InboundVerifier:
    """Checks one activity's bearer token (see the module docstring)."""

    def __init__(self, *, app_id: str, issuer: str, keys: KeySet, leeway_s: int = LEEWAY_S,
                 kept: VerifiedTokens | None = None, clock: Callable[[], float] = time.time) -> None:
        self.app_id = app_id
        self.issuer = issuer
        self.keys = keys
        self.leeway_s = leeway_s
        self.audiences = [app_id, f"api://{app_id}", f"api://botid-{app_id}"]
        self.kept = kept if kept is not None else VerifiedTokens()
        self._clock = clock  # epoch seconds, as `exp`

    def _per_request(self, claims: dict[str, Any], key: _Key, *, service_url: str | None,
                     channel_id: str | None, partial: bool) -> dict[str, Any]:
        """The checks that depend on the request (done for a kept token as for a new one)."""
        if partial:
            return claims
        if key.endorsements and channel_id not in key.endorsements:
            raise TokenRefused("signing key is not endorsed for this channel")
        claimed = str(claims.get("serviceurl") or "").rstrip("/")
        if not claimed or claimed != (service_url or "").rstrip("/"):
            raise TokenRefused("token's serviceurl does not match the activity's serviceUrl")
        return claims

    def _kept_claims(self, raw: str, *, service_url: str | None, channel_id: str | None,
                     partial: bool) -> dict[str, Any] | None:
        """A kept token's claims after this request's checks; None when it is not kept (or no longer may be)."""
        kept = self.kept.get(raw)
        if kept is None:
            return None
        if self.keys.current(kept.kid) is not kept.key:  # the key was withdrawn or replaced: check it all again
            self.kept.drop(raw)
            return None
        if self._clock() > kept.expires + self.leeway_s:
            self.kept.drop(raw)
            raise TokenRefused("token expired")
        self.kept.hits += 1
        return self._per_request(dict(kept.claims), kept.key, service_url=service_url, channel_id=channel_id,
                                 partial=partial)

    async def verify(self, authorization: str | None, *, service_url: str | None,
                     channel_id: str | None, partial: bool = False) -> dict[str, Any]:
        """The token's claims, or TokenRefused saying why. `partial`: signature, issuer, audience and expiry
        only (for a body too broken to name its channel and serviceUrl)."""
        if not authorization or not authorization.startswith("Bearer "):
            raise TokenRefused("no bearer token")
        raw = authorization.removeprefix("Bearer ").strip()
        known = self._kept_claims(raw, service_url=service_url, channel_id=channel_id, partial=partial)
        if known is not None:
            return known
        try:
            header = jwt.get_unverified_header(raw)
        except jwt.PyJWTError:
            raise TokenRefused("token is not a JWT") from None
        if header.get("alg") != "RS256":
            raise TokenRefused(f"token algorithm {str(header.get('alg'))[:16]!r} is not RS256")
        kid = str(header.get("kid") or "")
        found = await self.keys.get(kid)
        if found is None:
            raise TokenRefused("token signed with a key the Bot Framework does not publish")
        if not partial and found.endorsements and channel_id not in found.endorsements:
            raise TokenRefused("signing key is not endorsed for this channel")
        try:
            claims: dict[str, Any] = jwt.decode(
                raw, found.key, algorithms=["RS256"], audience=self.audiences, issuer=self.issuer,
                leeway=self.leeway_s, options={"require": ["exp", "iss", "aud"]})
        except jwt.ExpiredSignatureError:
            raise TokenRefused("token expired") from None
        except jwt.InvalidAudienceError:
            raise TokenRefused("token is for another app (audience)") from None
        except jwt.InvalidIssuerError:
            raise TokenRefused("token issuer is not the Bot Framework") from None
        except jwt.PyJWTError as exc:
            raise TokenRefused(f"token invalid: {type(exc).__name__}") from None
        if isinstance(claims.get("exp"), int | float):  # signature, issuer, audience and expiry passed: kept
            self.kept.keep(raw, _Kept(dict(claims), float(claims["exp"]), kid, found))
        return self._per_request(claims, found, service_url=service_url, channel_id=channel_id, partial=partial)
