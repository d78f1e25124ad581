"""Where a HaloPSA tenant lives and how we get its bearer token (reference/psa-apis.md §4.1, gotcha 34).

- Resource server: `{root}/api/...` where root is the admin's URL (`acme.halopsa.com`, a self-hosted host,
  or a loopback root in tests; https by default).
- Authorisation server: discovered with an unauthenticated `GET {root}/api/authinfo` -> `{auth_url,
  tenant_id?}` (homotechsual/HaloAPI); `{root}/auth` when authinfo is missing (404 or not JSON); the
  setting `auth_url` skips discovery. A discovered auth_url on another host, or plain http under an
  https root, is refused: the client secret is only ever sent where the admin pointed us.
- Token: `POST {auth_url}/token[?tenant=…]`, form-encoded client credentials (`scope=all` by default).
  Hosted Halo needs `?tenant=`: the `tenant` setting, else authinfo's `tenant_id`, else the first label
  of a `*.halopsa.com` host.
- One token per tenant and client, shared by every instance through a `TokenCache` (a new token may
  invalidate older ones, djpsa): the cache's lock serialises minting, the token is refreshed before it
  expires, and after a 401 a token is minted only if the cache still holds the rejected one.
- A 4xx from the token endpoint means bad credentials or tenant: PsaAuthError, never retried (429 is the
  exception: PsaRateLimited). Nothing here logs or puts into an error the secret or any token.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import quote, urlsplit

import httpx

from connectors.errors import PsaAuthError, PsaRateLimited, PsaUnavailable, PsaValidationError
from connectors.halopsa import problems
from connectors.http import make_client, parse_retry_after

log = logging.getLogger("deskbridge.psa.halopsa")

DEFAULT_SCOPE = "all"
DEFAULT_EXPIRES_IN = 3600.0
REFRESH_MARGIN = 300.0  # refresh this many seconds before the token expires
HOSTED_SUFFIX = ".halopsa.com"


@dataclass(frozen=True, slots=True)
class HaloTenant:
    """The non-secret coordinates of one Halo tenant, from connection settings."""

    root: str  # scheme://host[:port] of the resource server (the API is under /api)
    tenant: str | None = None  # the hosted tenant name, when configured
    auth_url: str | None = None  # an explicit authorisation server (skips discovery)
    scope: str = DEFAULT_SCOPE

    @property
    def host(self) -> str:
        """The resource server's host name."""
        return urlsplit(self.root).hostname or ""

    @property
    def hosted_label(self) -> str | None:
        """`acme` for `acme.halopsa.com` (hosted Halo), else None."""
        host = self.host
        if host.endswith(HOSTED_SUFFIX) and host.count(".") == 2:
            return host.split(".", 1)[0]
        return None


def _root(value: str) -> str:
    text = value.strip()
    if "://" not in text:
        text = "https://" + text
    parts = urlsplit(text)
    if not parts.netloc:
        raise PsaValidationError(f"'{value}' is not a Halo address.", fields={"url": "expected e.g. acme.halopsa.com"})
    return f"{parts.scheme}://{parts.netloc.lower()}"


def tenant_from_settings(settings: Mapping[str, Any]) -> HaloTenant:
    """Validate connection settings (`url`, optional `tenant`, `auth_url`, `scope`) into a HaloTenant."""
    if not str(settings.get("url") or "").strip():
        raise PsaValidationError("The HaloPSA connection is missing its address.", fields={"url": "required"})
    auth_url = str(settings.get("auth_url") or "").strip().rstrip("/") or None
    if auth_url and "://" not in auth_url:
        auth_url = "https://" + auth_url
    return HaloTenant(root=_root(str(settings["url"])), tenant=str(settings.get("tenant") or "").strip() or None,
                      auth_url=auth_url, scope=str(settings.get("scope") or DEFAULT_SCOPE).strip())


def client_credentials(credentials: Mapping[str, Any]) -> tuple[str, str]:
    """(client_id, client_secret) of the Halo API application (PsaValidationError when missing)."""
    missing = {k: "required" for k in ("client_id", "client_secret") if not str(credentials.get(k) or "").strip()}
    if missing:
        raise PsaValidationError("The Halo API application's credentials are missing: "
                                 + ", ".join(sorted(missing)) + ".", fields=missing)
    return str(credentials["client_id"]).strip(), str(credentials["client_secret"]).strip()


# ---------------------------------------------------------------- the shared token cache


@dataclass(frozen=True, slots=True)
class CachedToken:
    """A bearer token and when it expires (epoch seconds)."""

    access_token: str
    expires_at: float

    def __repr__(self) -> str:  # never print the token
        return f"CachedToken(expires_at={self.expires_at:.0f})"


class TokenCache(Protocol):
    """Where tokens live between requests; a database-backed one shares them across instances."""

    async def get(self, key: str) -> CachedToken | None:
        """The token stored under `key`, or None (implementations may drop expired ones)."""
        ...

    async def put(self, key: str, token: CachedToken) -> None:
        """Store `token` under `key` until its `expires_at`."""
        ...

    async def discard(self, key: str, access_token: str) -> None:
        """Remove the token under `key` only if it is still `access_token` (compare-and-delete)."""
        ...

    def lock(self, key: str) -> AbstractAsyncContextManager[None]:
        """A lock held while a token for `key` is minted (cross-instance in shared implementations)."""
        ...


class InMemoryTokenCache:
    """A TokenCache for one process (tests, the embedded single-process mode)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._tokens: dict[str, CachedToken] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self.puts = 0

    async def get(self, key: str) -> CachedToken | None:
        """The token under `key`, None once it has expired."""
        token = self._tokens.get(key)
        if token is not None and token.expires_at <= self._clock():
            self._tokens.pop(key, None)
            return None
        return token

    async def put(self, key: str, token: CachedToken) -> None:
        """Store `token` under `key`."""
        self._tokens[key] = token
        self.puts += 1

    async def discard(self, key: str, access_token: str) -> None:
        """Remove the token under `key` if it is still `access_token`."""
        current = self._tokens.get(key)
        if current is not None and current.access_token == access_token:
            del self._tokens[key]

    @asynccontextmanager
    async def _held(self, key: str) -> AsyncIterator[None]:
        async with self._locks.setdefault(key, asyncio.Lock()):
            yield

    def lock(self, key: str) -> AbstractAsyncContextManager[None]:
        """A per-key asyncio lock (this process only)."""
        return self._held(key)


def cache_key(tenant: HaloTenant, client_id: str, client_secret: str) -> str:
    """One token per tenant and API application; new credentials never reuse a token minted by old ones."""
    digest = hashlib.sha256(f"{client_id}\0{client_secret}".encode()).hexdigest()[:16]
    return f"halopsa:{tenant.root}:{tenant.tenant or tenant.hosted_label or ''}:{client_id}:{digest}"


# ---------------------------------------------------------------- the token provider


class HaloAuth:
    """Discovers the authorisation server and hands out a valid bearer token for one tenant."""

    def __init__(self, tenant: HaloTenant, client_id: str, client_secret: str, cache: TokenCache, *,
                 transport: httpx.AsyncBaseTransport | None = None, timeout: float | None = None,
                 clock: Callable[[], float] = time.time, refresh_margin: float = REFRESH_MARGIN) -> None:
        self.tenant = tenant
        self.client_id = client_id
        self._secret = client_secret
        self.cache = cache
        self.key = cache_key(tenant, client_id, client_secret)
        self.clock = clock
        self.refresh_margin = refresh_margin
        self.token_url: str | None = None
        self.authinfo: Mapping[str, Any] | None = None
        self.minted = 0  # tokens this instance fetched (observability, tests)
        self._discover_lock = asyncio.Lock()
        self.http = make_client(tenant.root, headers={"Accept": "application/json"}, transport=transport,
                                timeout=timeout)

    def __repr__(self) -> str:
        return f"HaloAuth(root={self.tenant.root!r}, client_id={self.client_id!r})"

    async def aclose(self) -> None:
        """Close the unauthenticated HTTP client."""
        await self.http.aclose()

    # ------------------------------------------------------------ discovery

    async def discover(self, *, force: bool = False) -> str:
        """The token endpoint URL (cached): `auth_url` setting, else authinfo, else `{root}/auth`."""
        async with self._discover_lock:
            if self.token_url is not None and not force:
                return self.token_url
            tenant_id: str | None = None
            if self.tenant.auth_url:
                base = self.tenant.auth_url
            else:
                base, tenant_id = await self._authinfo()
                self._check_auth_host(base)
            name = self.tenant.tenant or tenant_id or self.tenant.hosted_label
            url = base.rstrip("/") + "/token"
            self.token_url = f"{url}?tenant={quote(name, safe='')}" if name else url
            return self.token_url

    async def _send(self, method: str, url: str, **kw: Any) -> httpx.Response:
        """One unauthenticated request; a refused connection (nothing sent) is tried once more."""
        for attempt in (1, 2):
            try:
                return await self.http.request(method, url, **kw)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                if attempt == 1:
                    await asyncio.sleep(0.2)
                    continue
                raise PsaUnavailable(f"Could not reach HaloPSA at {self.tenant.host} ({type(exc).__name__}).") from None
            except httpx.TimeoutException:
                raise PsaUnavailable(f"HaloPSA at {self.tenant.host} did not answer in time.") from None
            except httpx.HTTPError as exc:
                raise PsaUnavailable(f"Could not reach HaloPSA at {self.tenant.host} ({type(exc).__name__}).") from None
        raise AssertionError("unreachable")  # pragma: no cover

    async def _authinfo(self) -> tuple[str, str | None]:
        fallback = f"{self.tenant.root}/auth"
        resp = await self._send("GET", "/api/authinfo")
        if resp.status_code >= 500:
            raise PsaUnavailable("HaloPSA did not answer its authinfo request.", status=resp.status_code)
        if resp.status_code >= 400:
            return fallback, None
        try:
            data = resp.json()
        except ValueError:
            return fallback, None
        if not isinstance(data, Mapping) or not str(data.get("auth_url") or "").strip():
            return fallback, None
        self.authinfo = data
        tenant_id = str(data.get("tenant_id") or "").strip() or None
        return str(data["auth_url"]).strip(), tenant_id

    def _check_auth_host(self, base: str) -> None:
        parts, root = urlsplit(base), urlsplit(self.tenant.root)
        if parts.scheme not in ("https", root.scheme) or (parts.hostname or "") != (root.hostname or ""):
            raise PsaValidationError(
                f"HaloPSA named its authorisation server at {parts.scheme}://{parts.hostname}, not on "
                f"{root.hostname}; set it explicitly as the connection's auth_url if that is right.",
                fields={"auth_url": "confirm the authorisation server"})

    # ------------------------------------------------------------ tokens

    def _fresh(self, token: CachedToken | None) -> bool:
        return token is not None and token.expires_at - self.refresh_margin > self.clock()

    async def token(self) -> str:
        """A bearer token valid for at least `refresh_margin` seconds (minted under the cache lock)."""
        cached = await self.cache.get(self.key)
        if self._fresh(cached):
            assert cached is not None
            return cached.access_token
        async with self.cache.lock(self.key):
            cached = await self.cache.get(self.key)  # another instance may have minted one meanwhile
            if self._fresh(cached):
                assert cached is not None
                return cached.access_token
            return (await self._mint()).access_token

    async def token_after_401(self, rejected: str) -> str:
        """A token to retry with after `rejected` got a 401: a newer cached one, else a freshly minted one."""
        async with self.cache.lock(self.key):
            cached = await self.cache.get(self.key)
            if cached is not None and cached.access_token != rejected and self._fresh(cached):
                return cached.access_token
            await self.cache.discard(self.key, rejected)
            return (await self._mint()).access_token

    async def check(self) -> None:
        """Prove the credentials work by minting a token now (PsaAuthError with Halo's reason if not)."""
        async with self.cache.lock(self.key):
            await self._mint()

    async def _mint(self) -> CachedToken:
        url = await self.discover()
        form = {"grant_type": "client_credentials", "client_id": self.client_id, "client_secret": self._secret,
                "scope": self.tenant.scope}
        resp = await self._send("POST", url, data=form)
        if resp.status_code >= 400:
            raise self._token_error(resp)
        try:
            data = resp.json()
            access = str(data["access_token"])
            expires_in = float(data.get("expires_in") or DEFAULT_EXPIRES_IN)
        except (ValueError, KeyError, TypeError):
            raise PsaUnavailable("HaloPSA's token endpoint answered without a token.") from None
        if not access:
            raise PsaUnavailable("HaloPSA's token endpoint answered without a token.")
        token = CachedToken(access, self.clock() + expires_in)
        await self.cache.put(self.key, token)
        self.minted += 1
        log.info("halopsa token minted", extra={"host": self.tenant.host, "expires_in": int(expires_in)})
        return token

    def _token_error(self, resp: httpx.Response) -> Exception:
        problem = problems.parse(resp.content)
        status = resp.status_code
        if status == 429:
            return PsaRateLimited("HaloPSA is throttling token requests.", status=status,
                                  retry_after=parse_retry_after(resp.headers.get("retry-after")))
        if status >= 500:
            return PsaUnavailable("HaloPSA's token endpoint had a server error.", status=status)
        if status in (404, 405):
            host = urlsplit(self.token_url or "").hostname
            return PsaAuthError(f"There is no HaloPSA token endpoint at {host}; check the address or auth_url.",
                                status=status, code="no_token_endpoint")
        reason = problem.message or "the client id, secret or tenant was not accepted"
        return PsaAuthError(f"HaloPSA refused the API credentials: {reason}.", status=status, code=problem.code)
