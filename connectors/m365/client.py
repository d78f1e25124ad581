"""A Microsoft Graph client for one customer tenant: our own call to the v2.0 token endpoint (client
credentials), the token kept in a TokenCache until shortly before it expires, 429 + Retry-After honoured,
`@odata.nextLink` followed, and Graph errors translated once into connectors.tenant errors.

No msal/msgraph-sdk: one form POST mints the token. Base URLs are injectable (tests point them at the fake).
Tokens, secrets and query strings are never logged; errors carry Graph's code, never the request.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

import httpx

from connectors.http import make_client, parse_retry_after, redact_addresses
from connectors.tenant import (
    DirectoryAuthError,
    DirectoryError,
    DirectoryNotFound,
    DirectoryThrottled,
    DirectoryUnavailable,
    LicenceMissing,
    PermissionMissing,
)
from connectors.tokens import CachedToken, InMemoryTokenCache, TokenCache

GRAPH_URL = "https://graph.microsoft.com/v1.0"
LOGIN_URL = "https://login.microsoftonline.com"
SCOPE = "https://graph.microsoft.com/.default"
EXPIRY_SKEW = 120.0  # renew this long before Graph's expiry
NON_PREMIUM = "Authentication_RequestFromNonPremiumTenantOrB2CTenant"


class GraphClient:
    """Graph access for one tenant: reads for the quick views, and the few writes quick actions make."""

    def __init__(self, *, tenant_id: str, client_id: str, client_secret: str,
                 graph_url: str = GRAPH_URL, login_url: str = LOGIN_URL,
                 transport: httpx.AsyncBaseTransport | None = None, token_cache: TokenCache | None = None,
                 max_retries: int = 3, max_wait: float = 30.0,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 clock: Callable[[], float] = time.time) -> None:
        self.tenant_id, self.client_id, self._secret = tenant_id, client_id, client_secret
        self.graph_url, self.login_url = graph_url.rstrip("/"), login_url.rstrip("/")
        self._http = make_client(self.graph_url, transport=transport, timeout=20.0, path_for_log=redact_addresses)
        self._tokens = token_cache or InMemoryTokenCache(clock)
        self._key = f"m365:{client_id}:{tenant_id}"
        self._max_retries, self._max_wait, self._sleep, self._clock = max_retries, max_wait, sleep, clock

    def __repr__(self) -> str:  # never show the secret
        return f"GraphClient(tenant_id={self.tenant_id!r})"

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _token(self) -> str:
        cached = await self._tokens.get(self._key)
        if cached is not None:
            return cached.access_token
        async with self._tokens.lock(self._key):
            cached = await self._tokens.get(self._key)
            if cached is not None:
                return cached.access_token
            url = f"{self.login_url}/{quote(self.tenant_id, safe='')}/oauth2/v2.0/token"
            try:
                r = await self._http.post(url, data={"grant_type": "client_credentials", "client_id": self.client_id,
                                                     "client_secret": self._secret, "scope": SCOPE})
            except httpx.HTTPError as exc:
                raise DirectoryUnavailable(f"Microsoft sign-in could not be reached ({type(exc).__name__}).") from None
            if r.status_code >= 500:
                raise DirectoryUnavailable(f"Microsoft sign-in answered {r.status_code}.", status=r.status_code)
            body = _json(r)
            if r.status_code != 200 or not body.get("access_token"):
                code = str(body.get("error") or "error")
                desc = str(body.get("error_description") or "").split("\r\n")[0][:160]
                raise DirectoryAuthError(f"Microsoft refused a token for tenant {self.tenant_id} ({code}: {desc}). "
                                         "Check the client secret and that the customer's admin consented.",
                                         status=r.status_code, code=code)
            expires = self._clock() + max(60.0, float(body.get("expires_in", 3600)) - EXPIRY_SKEW)
            token = CachedToken(str(body["access_token"]), expires)
            await self._tokens.put(self._key, token)
            return token.access_token

    async def get(self, path_or_url: str, params: dict[str, str] | None = None) -> dict[str, Any]:
        """One GET (a path under the Graph base URL, or an absolute nextLink) as JSON."""
        return await self.request("GET", path_or_url, params=params)

    async def request(self, method: str, path_or_url: str, *, params: dict[str, str] | None = None,
                      json: dict[str, Any] | None = None) -> dict[str, Any]:
        """One call as JSON ({} for 202/204). Writes retried here (429, 401 once) are the quick actions,
        each idempotent in effect (the same password set again, sessions revoked again, a sync asked again)."""
        reauthed = False
        attempt = 0
        while True:
            token = await self._token()
            try:
                r = await self._http.request(method, path_or_url, params=params, json=json,
                                             headers={"Authorization": f"Bearer {token}", "Accept": "application/json"})
            except httpx.HTTPError as exc:
                raise DirectoryUnavailable(f"Microsoft Graph could not be reached ({type(exc).__name__}).") from None
            if r.status_code == 401 and not reauthed:
                await self._tokens.discard(self._key, token)
                reauthed = True
                continue
            if r.status_code == 429 or (r.status_code in (503, 504) and "Retry-After" in r.headers):
                wait = parse_retry_after(r.headers.get("Retry-After"), cap=self._max_wait)
                if attempt >= self._max_retries:
                    raise DirectoryThrottled("Microsoft Graph is throttling requests for this tenant.",
                                             status=r.status_code, retry_after=wait)
                attempt += 1
                await self._sleep(wait if wait is not None else min(2.0 ** attempt, self._max_wait))
                continue
            if r.status_code >= 400:
                raise _translate(r)
            if r.status_code in (202, 204) or not r.content:
                return {}
            return _json(r)

    async def get_all(self, path: str, params: dict[str, str] | None = None, *, limit: int = 500) -> list[dict]:
        """Every item of a collection, following `@odata.nextLink` until it is absent (at most `limit`)."""
        page = await self.get(path, params)
        items: list[dict] = list(page.get("value", []))
        while (link := page.get("@odata.nextLink")) and len(items) < limit:
            page = await self.get(str(link))
            items.extend(page.get("value", []))
        return items[:limit]


def _json(r: httpx.Response) -> dict[str, Any]:
    try:
        body = r.json()
    except ValueError:
        raise DirectoryUnavailable(f"Microsoft answered {r.status_code} with a body that is not JSON.",
                                   status=r.status_code) from None
    if not isinstance(body, dict):
        raise DirectoryUnavailable("Microsoft answered with unexpected JSON.", status=r.status_code)
    return body


def _translate(r: httpx.Response) -> DirectoryError:
    """A Graph error response as a DirectoryError (classified by status and Graph's error code)."""
    try:
        err = r.json().get("error") or {}
    except (ValueError, AttributeError):
        err = {}
    code = str(err.get("code") or "") if isinstance(err, dict) else ""
    message = str(err.get("message") or "") if isinstance(err, dict) else ""
    status = r.status_code
    if code == NON_PREMIUM or "premium license" in message.lower():
        return LicenceMissing("This tenant has no Microsoft Entra ID P1 licence (sign-in data needs it).",
                              product="Entra ID P1", status=status, code=code)
    if "not applicable to target tenant" in message.lower():
        return LicenceMissing("This tenant has no Intune licence.", product="Intune", status=status, code=code)
    if status == 403:
        return PermissionMissing("The Deskbridge app lacks a Microsoft Graph permission in this tenant.",
                                 status=status, code=code or None)
    if status == 401:
        return DirectoryAuthError("Microsoft Graph rejected our token for this tenant.", status=status, code=code)
    if status == 404:
        return DirectoryNotFound("Not found in this Microsoft 365 tenant.", status=status, code=code)
    if status >= 500:
        return DirectoryUnavailable(f"Microsoft Graph answered {status}.", status=status, code=code)
    return DirectoryError(f"Microsoft Graph refused the request ({status} {code}).", status=status, code=code)
