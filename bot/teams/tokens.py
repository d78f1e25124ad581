"""The bot's outbound token (client credentials against its own tenant), handed to the Teams SDK as `token=`.

MSAL inside the SDK cannot be pointed at a stand-in, so we ask Entra ourselves with httpx: a client secret,
or a certificate (a signed client assertion). Tokens are cached per scope until five minutes before they
expire; simultaneous callers share one request. Errors name Entra's error code and what to check, never a
secret.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import jwt
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from pydantic import SecretStr

EARLY_S = 300.0


class TeamsTokenError(Exception):
    """The bot could not get its token; the message says what to check."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Certificate:
    """A PEM file holding the app registration's certificate and its private key."""

    def __init__(self, path: Path) -> None:
        try:
            data = Path(path).read_bytes()
            self.cert = x509.load_pem_x509_certificate(data)
            self.key = serialization.load_pem_private_key(data, password=None)
        except (OSError, ValueError) as exc:
            raise TeamsTokenError(f"DESKBRIDGE_TEAMS_CERTIFICATE_FILE ({path}) is not a readable PEM file with "
                                  f"the certificate and an unencrypted private key: {type(exc).__name__}") from None
        der = self.cert.public_bytes(serialization.Encoding.DER)
        self.x5t_s256 = _b64(hashlib.sha256(der).digest())
        self.x5t = _b64(hashlib.sha1(der).digest())  # noqa: S324 - the JOSE header Entra matches, not a security hash

    def assertion(self, app_id: str, token_url: str, now: float) -> str:
        claims = {"aud": token_url, "iss": app_id, "sub": app_id, "jti": uuid.uuid4().hex,
                  "nbf": int(now) - 60, "iat": int(now), "exp": int(now) + 600}
        return jwt.encode(claims, self.key, algorithm="RS256",  # type: ignore[arg-type]
                          headers={"x5t": self.x5t, "x5t#S256": self.x5t_s256})


class OutboundTokens:
    """`await tokens(scope, tenant_id)` -> a bearer token for the Bot Connector (the SDK's TokenProvider)."""

    def __init__(self, *, app_id: str, tenant_id: str, login_url: str, http: httpx.AsyncClient,
                 secret: SecretStr | None = None, certificate: Certificate | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        if (secret is None) == (certificate is None):
            raise TeamsTokenError("Give the Teams bot a client secret or a certificate (exactly one).")
        self.app_id = app_id
        self.tenant_id = tenant_id
        self.token_url = f"{login_url.rstrip('/')}/{tenant_id}/oauth2/v2.0/token"
        self.http = http
        self._secret = secret
        self._cert = certificate
        self._clock = clock
        self._cache: dict[str, tuple[str, float]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def __call__(self, scope: Any, tenant_id: str | None = None) -> str:
        scope_s = " ".join(scope) if isinstance(scope, (list, tuple)) else str(scope)
        hit = self._cache.get(scope_s)
        if hit and hit[1] > self._clock():
            return hit[0]
        async with self._locks.setdefault(scope_s, asyncio.Lock()):
            hit = self._cache.get(scope_s)
            if hit and hit[1] > self._clock():
                return hit[0]
            token, expires_in = await self._request(scope_s)
            self._cache[scope_s] = (token, self._clock() + max(0.0, expires_in - EARLY_S))
            return token

    async def _request(self, scope: str) -> tuple[str, float]:
        form = {"grant_type": "client_credentials", "client_id": self.app_id, "scope": scope}
        if self._cert is not None:
            form["client_assertion_type"] = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
            form["client_assertion"] = self._cert.assertion(self.app_id, self.token_url, self._clock())
        else:
            assert self._secret is not None
            form["client_secret"] = self._secret.get_secret_value()
        try:
            resp = await self.http.post(self.token_url, data=form)
        except httpx.HTTPError as exc:
            raise TeamsTokenError(f"Could not reach {self.token_url} for the bot's token: {type(exc).__name__}. "
                                  "Check the network and DESKBRIDGE_TEAMS_LOGIN_URL.") from None
        try:
            body = resp.json()
        except ValueError:
            body = {}
        if resp.status_code != 200 or not body.get("access_token"):
            code = str(body.get("error") or resp.status_code)
            desc = str(body.get("error_description") or "").split("\r\n")[0][:200]
            raise TeamsTokenError(f"Entra refused the bot's token ({code}: {desc}). Check DESKBRIDGE_TEAMS_APP_ID, "
                                  "DESKBRIDGE_TEAMS_TENANT_ID and the secret or certificate of that registration.")
        return str(body["access_token"]), float(body.get("expires_in") or 3600)
