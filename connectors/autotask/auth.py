"""Who we are to Autotask and where the tenant lives (reference/psa-apis.md §3.1, gotcha 28).

- Credentials: the API-only user's `username` (its e-mail address), its `secret`, and the integration's
  `integration_code` (the API tracking identifier). They travel as the headers `UserName`, `Secret`,
  `ApiIntegrationCode` on every API call; `ImpersonationResourceId` attributes a write to a resource and
  is sent on writes only (as django-autotask does).
- Zones: every database lives in one zone, `https://webservices{N}.autotask.net/atservicesrest/`, found by
  `GET https://webservices.autotask.net/atservicesrest/v1.0/zoneInformation?user={username}` (no
  credentials; answers 500 for a blank or unknown user). The API base is `{url}v1.0/`. The zone is cached
  for 12 hours. A 401 may mean the database moved: the client asks `ZoneDirectory.rediscover()` once and
  retries only if the zone changed; otherwise the 401 stands (never retried, to avoid locking the user).
- Nothing here logs or formats the secret: AtCredentials hides it from repr.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

from connectors.errors import PsaAuthError, PsaRateLimited, PsaUnavailable, PsaValidationError
from connectors.http import make_client, parse_retry_after

log = logging.getLogger("deskbridge.psa.autotask")

DISCOVERY_URL = "https://webservices.autotask.net/atservicesrest/v1.0/zoneInformation"
ZONE_TTL_SECONDS = 12 * 3600.0
API_VERSION_PATH = "v1.0/"


@dataclass(frozen=True, slots=True)
class AtCredentials:
    """The API user's identity; `secret` never appears in repr or messages."""

    username: str
    integration_code: str = field(repr=False)
    secret: str = field(repr=False)
    impersonation_resource_id: str | None = None  # default author of writes, when the admin chose one


def credentials_from(settings: Mapping[str, Any], credentials: Mapping[str, Any]) -> AtCredentials:
    """Validate connection settings and secrets into AtCredentials (PsaValidationError names what is wrong)."""

    def pick(name: str) -> str:
        return str(credentials.get(name) or settings.get(name) or "").strip()

    username, code, secret = pick("username"), pick("integration_code"), str(credentials.get("secret") or "")
    missing = {k: "required" for k, v in (("username", username), ("integration_code", code),
                                           ("secret", secret.strip())) if not v}
    if missing:
        raise PsaValidationError("The Autotask connection is missing: " + ", ".join(sorted(missing)) + ".",
                                 fields=missing)
    if "@" not in username or username.startswith("@") or username.endswith("@") or " " in username:
        # Autotask's zone lookup answers 500 for a blank or malformed user name (django-autotask).
        raise PsaValidationError(f"'{username}' is not an e-mail address: use the API-only user's full user name.",
                                 fields={"username": "expected the API user's e-mail address"})
    impersonate = str(settings.get("impersonation_resource_id") or "").strip() or None
    if impersonate is not None and not impersonate.isdigit():
        raise PsaValidationError("impersonation_resource_id must be a resource id (a number).",
                                 fields={"impersonation_resource_id": "expected a number"})
    return AtCredentials(username=username, integration_code=code, secret=secret,
                         impersonation_resource_id=impersonate)


def api_headers(creds: AtCredentials) -> dict[str, str]:
    """Headers every API call carries."""
    return {"ApiIntegrationCode": creds.integration_code, "UserName": creds.username, "Secret": creds.secret,
            "Content-Type": "application/json", "Accept": "application/json"}


def write_headers(creds: AtCredentials, impersonate: str | None = None) -> dict[str, str]:
    """Extra headers for a create/update/delete: the resource the write is attributed to, if any."""
    resource = impersonate or creds.impersonation_resource_id
    return {"ImpersonationResourceId": str(resource)} if resource else {}


@dataclass(frozen=True, slots=True)
class Zone:
    """One zone answer: `url` is the REST root (`…/ATServicesRest/`), `web_url` the UI root."""

    url: str
    web_url: str = ""
    name: str = ""
    ci: int | None = None

    @property
    def api_base(self) -> str:
        """`{url}v1.0/` — every API path is relative to this."""
        return self.url.rstrip("/") + "/" + API_VERSION_PATH

    @property
    def origin(self) -> str:
        parts = urlsplit(self.url)
        return f"{parts.scheme}://{parts.netloc}".lower()


def zone_from_answer(data: Any) -> Zone | None:
    """A Zone from a zoneInformation body (`{zoneName, url, webUrl, ci}`); None without a usable url."""
    if not isinstance(data, Mapping):
        return None
    url = str(data.get("url") or "").strip()
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.netloc:
        return None
    ci = data.get("ci")
    return Zone(url=url if url.endswith("/") else url + "/", web_url=str(data.get("webUrl") or ""),
                name=str(data.get("zoneName") or ""), ci=ci if isinstance(ci, int) else None)


ZoneListener = Callable[[Zone | None, Zone], None]

# Zones learned in this process, by API user name: only for building deep links (`known_zone`) where a
# connector has not asked yet itself; requests always go through a ZoneDirectory and its TTL.
_LEARNED: dict[str, Zone] = {}


def known_zone(username: str) -> Zone | None:
    """The zone this process last learned for the API user (None if it never looked)."""
    return _LEARNED.get(username.lower())


def same_zone(a: Zone, b: Zone) -> bool:
    """Whether two zone answers name the same REST root (letter case and trailing slash ignored)."""
    return a.url.rstrip("/").lower() == b.url.rstrip("/").lower()


class ZoneDirectory:
    """Finds and caches the zone of one API user; `rediscover()` is the hook the client calls on a 401."""

    def __init__(self, username: str, *, discovery_url: str = DISCOVERY_URL,
                 transport: httpx.AsyncBaseTransport | None = None, timeout: float | None = None,
                 ttl: float = ZONE_TTL_SECONDS, clock: Callable[[], float] = time.monotonic,
                 fixed: Zone | None = None, on_change: ZoneListener | None = None) -> None:
        self.username = username
        self.discovery_url = discovery_url
        self.ttl, self.clock = ttl, clock
        self.fixed = fixed
        self.on_change = on_change
        self.lookups = 0
        self._zone: Zone | None = fixed
        self._fetched_at = 0.0
        self._lock = asyncio.Lock()
        self._http = make_client(discovery_url, headers={"Accept": "application/json"}, transport=transport,
                                 timeout=timeout)  # no credentials on this one: the lookup is public

    async def aclose(self) -> None:
        await self._http.aclose()

    @property
    def cached(self) -> Zone | None:
        return self._zone

    async def zone(self, *, force: bool = False) -> Zone:
        """The user's zone: cached for `ttl` seconds; `force` looks it up again."""
        if self.fixed is not None:
            return self.fixed
        async with self._lock:
            fresh = self._zone is not None and self.clock() - self._fetched_at < self.ttl
            if fresh and not force:
                assert self._zone is not None
                return self._zone
            return await self._refresh()

    async def rediscover(self, used: Zone) -> Zone | None:
        """After a 401 from `used`: the zone to retry at when the database moved, else None."""
        if self.fixed is not None:
            return None
        async with self._lock:
            current = self._zone
            if current is not None and not same_zone(current, used):
                return current  # a concurrent request already found the move
            zone = await self._refresh()
        return None if same_zone(zone, used) else zone

    async def _refresh(self) -> Zone:
        zone = await self._lookup()
        previous, self._zone, self._fetched_at = self._zone, zone, self.clock()
        _LEARNED[self.username.lower()] = zone
        if previous is None or not same_zone(previous, zone):
            if previous is not None:
                log.info("autotask zone changed", extra={"old": previous.url, "new": zone.url})
            if self.on_change:
                self.on_change(previous, zone)
        return zone

    async def _lookup(self) -> Zone:
        self.lookups += 1
        try:
            resp = await self._http.get(self.discovery_url, params={"user": self.username})
        except httpx.HTTPError as exc:
            raise PsaUnavailable(f"Could not reach Autotask's zone lookup ({type(exc).__name__}).") from None
        if resp.status_code == 429:
            raise PsaRateLimited("Autotask's zone lookup is throttling requests.", status=429,
                                 retry_after=parse_retry_after(resp.headers.get("retry-after")))
        if resp.status_code in (400, 404, 500):
            raise PsaAuthError(f"Autotask's zone lookup does not know the API user '{self.username}' (HTTP "
                               f"{resp.status_code}): check that it is the API-only user's full user name.",
                               status=resp.status_code, code="UnknownApiUser")
        if resp.status_code >= 400:
            raise PsaUnavailable(f"Autotask's zone lookup failed (HTTP {resp.status_code}).",
                                 status=resp.status_code)
        try:
            zone = zone_from_answer(resp.json())
        except ValueError:
            zone = None
        if zone is None:
            raise PsaAuthError(f"Autotask's zone lookup returned no zone for the API user '{self.username}'.",
                               status=resp.status_code, code="UnknownApiUser")
        return zone
