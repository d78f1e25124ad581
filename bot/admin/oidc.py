"""OpenID Connect for the admin pages: "Sign in with Slack" and "Sign in with Microsoft" (Entra ID).

The authorization-code flow with every check a browser sign-in needs:
- `state` (the callback belongs to a sign-in this browser started), `nonce` (the ID token was minted for that
  sign-in) and PKCE S256 (a stolen code is useless without the verifier), all three kept in a short-lived
  signed, HttpOnly cookie scoped to /admin/oidc;
- the code is exchanged server-side with the client secret; the ID token's RS256 signature is checked
  against the provider's published keys (JWKS, cached; fetched again once for a key id not seen yet), and
  its issuer, audience, expiry and nonce;
- what is trusted afterwards is only what the token says: Slack's team and user id (and its e-mail, which
  Slack verifies), Entra's tenant and object id. An Entra e-mail is not trusted (another tenant can set any
  address on its users), so a Microsoft admin must have linked their Teams account to their technician.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx
import jwt

from core.admin_sessions import VerifiedIdentity

FLOW_COOKIE = "deskbridge_admin_oidc"
FLOW_SECONDS = 600
JWKS_TTL = 3600.0
JWKS_REFETCH_MIN = 60.0  # an unknown key id makes us fetch the keys again at most this often
LEEWAY = 60  # seconds of clock skew allowed on exp/iat/nbf


class SignInFailed(Exception):
    """The sign-in cannot be trusted or did not complete; `message` says what to do (no token contents)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True, slots=True)
class Provider:
    name: str  # "slack" or "microsoft": the path segment
    label: str
    platform: str  # the chat platform its identities belong to: "slack" or "teams"
    client_id: str
    client_secret: str
    authorize_url: str
    token_url: str
    jwks_url: str
    issuer: str  # for Microsoft a template with {tid}: each tenant issues its own tokens
    scope: str = "openid email profile"


def slack_provider(base: str, client_id: str, client_secret: str) -> Provider:
    base = base.rstrip("/")
    return Provider("slack", "Sign in with Slack", "slack", client_id, client_secret,
                    f"{base}/openid/connect/authorize", f"{base}/api/openid.connect.token",
                    f"{base}/openid/connect/keys", base)


def microsoft_provider(login_url: str, tenant: str, client_id: str, client_secret: str) -> Provider:
    base = f"{login_url.rstrip('/')}/{tenant}"
    return Provider("microsoft", "Sign in with Microsoft", "teams", client_id, client_secret,
                    f"{base}/oauth2/v2.0/authorize", f"{base}/oauth2/v2.0/token",
                    f"{base}/discovery/v2.0/keys", login_url.rstrip("/") + "/{tid}/v2.0")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass(frozen=True, slots=True)
class Flow:
    """One sign-in in progress (lives in the flow cookie)."""

    provider: str
    state: str
    nonce: str
    verifier: str
    expires: int

    @classmethod
    def start(cls, provider: str) -> Flow:
        return cls(provider, secrets.token_urlsafe(24), secrets.token_urlsafe(24), secrets.token_urlsafe(48),
                   int(time.time()) + FLOW_SECONDS)

    @property
    def challenge(self) -> str:
        return _b64(hashlib.sha256(self.verifier.encode()).digest())

    def sign(self, key: bytes) -> str:
        body = _b64(json.dumps([self.provider, self.state, self.nonce, self.verifier, self.expires]).encode())
        return f"{body}.{_b64(hmac.new(key, b'oidc:' + body.encode(), hashlib.sha256).digest())}"

    @classmethod
    def verify(cls, value: str | None, key: bytes) -> Flow | None:
        if not value or value.count(".") != 1 or len(value) > 2000:
            return None
        body, mac = value.split(".")
        expected = _b64(hmac.new(key, b"oidc:" + body.encode(), hashlib.sha256).digest())
        if not hmac.compare_digest(expected, mac):
            return None
        try:
            provider, state, nonce, verifier, expires = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        except (ValueError, TypeError):
            return None
        flow = cls(str(provider), str(state), str(nonce), str(verifier), int(expires))
        return flow if flow.expires > time.time() else None


class OidcClient:
    """Code exchange and ID-token checks for the configured providers (HTTP through one httpx client)."""

    def __init__(self, providers: Mapping[str, Provider], *, transport: httpx.AsyncBaseTransport | None = None,
                 timeout: float = 10.0) -> None:
        self.providers = dict(providers)
        self._transport = transport
        self._timeout = timeout
        self._jwks: dict[str, tuple[float, dict[str, jwt.PyJWK]]] = {}  # provider -> (fetched at, kid -> key)

    def authorize_url(self, provider: Provider, flow: Flow, redirect_uri: str) -> str:
        return provider.authorize_url + "?" + urlencode({
            "response_type": "code", "client_id": provider.client_id, "redirect_uri": redirect_uri,
            "scope": provider.scope, "state": flow.state, "nonce": flow.nonce,
            "code_challenge": flow.challenge, "code_challenge_method": "S256"})

    async def _post(self, url: str, data: dict[str, str]) -> dict[str, Any]:
        async with httpx.AsyncClient(transport=self._transport, timeout=self._timeout) as client:
            try:
                r = await client.post(url, data=data, headers={"Accept": "application/json"})
                body = r.json()
            except (httpx.HTTPError, ValueError):
                raise SignInFailed("The sign-in provider could not be reached. Try again in a minute.") from None
        if not isinstance(body, dict) or r.status_code >= 400 or body.get("ok") is False:
            raise SignInFailed("The sign-in provider did not accept this sign-in (it may have been used already). "
                               "Start again.")
        return body

    async def _keys(self, provider: Provider, kid: str) -> jwt.PyJWK:
        fetched, keys = self._jwks.get(provider.name, (0.0, {}))
        now = time.monotonic()
        stale = now - fetched > JWKS_TTL or (kid not in keys and now - fetched > JWKS_REFETCH_MIN)
        if stale:
            async with httpx.AsyncClient(transport=self._transport, timeout=self._timeout) as client:
                try:
                    r = await client.get(provider.jwks_url)
                    r.raise_for_status()
                    keyset = jwt.PyJWKSet.from_dict(r.json())
                except (httpx.HTTPError, ValueError, jwt.PyJWTError):
                    raise SignInFailed("The sign-in provider's keys could not be read. Try again in a minute.") from None
            keys = {k.key_id: k for k in keyset.keys if k.key_id}
            self._jwks[provider.name] = (now, keys)
        if kid not in keys:
            raise SignInFailed("The sign-in could not be verified (unknown signing key). Start again.")
        return keys[kid]

    async def finish(self, provider: Provider, flow: Flow, code: str, redirect_uri: str) -> VerifiedIdentity:
        """Exchange the code (with the PKCE verifier), check the ID token, and say who signed in."""
        body = await self._post(provider.token_url, {
            "grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri,
            "client_id": provider.client_id, "client_secret": provider.client_secret, "code_verifier": flow.verifier})
        token = body.get("id_token")
        if not isinstance(token, str):
            raise SignInFailed("The sign-in provider sent no identity. Start again.")
        claims = await self.check_id_token(provider, token, flow.nonce)
        return identity(provider, claims)

    async def check_id_token(self, provider: Provider, token: str, nonce: str) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
            key = await self._keys(provider, str(header.get("kid") or ""))
            claims = jwt.decode(token, key=key, algorithms=["RS256"], audience=provider.client_id, leeway=LEEWAY,
                                options={"require": ["exp", "iat", "iss", "aud", "sub", "nonce"]})
        except jwt.PyJWTError:
            raise SignInFailed("The sign-in could not be verified. Start again.") from None
        issuer = provider.issuer.replace("{tid}", str(claims.get("tid") or "")) if "{tid}" in provider.issuer \
            else provider.issuer
        if claims.get("iss") != issuer or ("{tid}" in provider.issuer and not claims.get("tid")):
            raise SignInFailed("The sign-in came from an unexpected issuer. Start again.")
        if not hmac.compare_digest(str(claims.get("nonce")), nonce):
            raise SignInFailed("This sign-in does not belong to this browser's attempt. Start again.")
        return claims


def identity(provider: Provider, claims: Mapping[str, Any]) -> VerifiedIdentity:
    """Who the checked claims name, in chat-platform terms (team/tenant and user ids)."""
    if provider.platform == "slack":
        team = str(claims.get("https://slack.com/team_id") or "")
        user = str(claims.get("https://slack.com/user_id") or claims.get("sub") or "")
        email = str(claims["email"]) if claims.get("email") and claims.get("email_verified") is True else None
    else:
        team, user, email = str(claims.get("tid") or ""), str(claims.get("oid") or ""), None
    if not team or not user:
        raise SignInFailed("The sign-in provider did not say which organisation you belong to. Start again.")
    name = str(claims.get("name") or claims.get("preferred_username") or "")[:100] or None
    return VerifiedIdentity(provider.platform, team, user, email, name)
