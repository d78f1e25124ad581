"""Where a ConnectWise tenant lives and how we authenticate (reference/psa-apis.md §2.1).

- Cloud login hosts map to API hosts: `na|eu|au|aus|za.myconnectwise.net` -> `api-<region>.myconnectwise.net`,
  `staging.connectwisedev.com` -> `api-staging.connectwisedev.com`. Any other host is on-premises: the API is
  on the same host. A scheme may be given (`http://127.0.0.1:8123` for tests); the default is https.
- Auth: HTTP Basic `{companyId}+{publicKey}` / `{privateKey}`, plus the integration's `clientId` header.
- Responses are pinned with `Accept: application/vnd.connectwise.com+json; version=<api_version>`
  (default 2020.4, the version django-connectwise pins), so fields do not drift when the tenant upgrades.
- The codebase (`v2024_1/`) comes from `GET https://{site}/login/companyinfo/{companyId}` (no auth).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from connectors.errors import PsaValidationError

CLOUD_REGIONS = frozenset({"na", "eu", "au", "aus", "za"})
DEFAULT_API_VERSION = "2020.4"
ON_PREM_CODEBASE = "v4_6_release/"


@dataclass(frozen=True, slots=True)
class CwTenant:
    """The non-secret coordinates of one tenant, derived from connection settings."""

    site_root: str  # scheme://host[:port] of the login/UI site
    api_root: str  # scheme://host[:port] of the REST API
    company_id: str
    client_id: str
    is_cloud: bool
    codebase: str | None  # an explicit override (on-prem, tests); None = discover
    api_version: str = DEFAULT_API_VERSION

    @property
    def api_host(self) -> str:
        return urlsplit(self.api_root).netloc.lower()

    @property
    def site_host(self) -> str:
        return urlsplit(self.site_root).netloc.lower()


def _root(value: str) -> tuple[str, str]:
    """(scheme, netloc) of a host or URL given by an admin."""
    text = value.strip()
    if "://" not in text:
        text = "https://" + text
    parts = urlsplit(text)
    if not parts.netloc:
        raise PsaValidationError(f"'{value}' is not a host name.", fields={"site": "expected e.g. na.myconnectwise.net"})
    return parts.scheme, parts.netloc.lower()


def api_host_for(site_host: str) -> tuple[str, bool]:
    """(API host, is cloud) for a login host."""
    host, _, port = site_host.partition(":")
    first, _, rest = host.partition(".")
    if rest == "myconnectwise.net" and first in CLOUD_REGIONS:
        return f"api-{first}.{rest}", True
    if rest == "myconnectwise.net" and first.startswith("api-") and first[4:] in CLOUD_REGIONS:
        return host, True
    if host == "staging.connectwisedev.com":
        return "api-staging.connectwisedev.com", True
    if host == "api-staging.connectwisedev.com":
        return host, True
    return site_host, False  # on-premises: the API lives on the site host


def site_host_for(host: str) -> str:
    """The login/UI host for an API host (`api-na.myconnectwise.net` -> `na.myconnectwise.net`)."""
    if host.startswith("api-") and (host.endswith(".myconnectwise.net") or host.endswith(".connectwisedev.com")):
        return host[4:]
    return host


def tenant_from_settings(settings: Mapping[str, Any]) -> CwTenant:
    """Validate connection settings into a CwTenant (PsaValidationError names what is missing)."""
    missing = {k: "required" for k in ("site", "company_id", "client_id") if not str(settings.get(k) or "").strip()}
    if missing:
        raise PsaValidationError("The ConnectWise connection is missing settings: " + ", ".join(sorted(missing)) + ".",
                                 fields=missing)
    scheme, netloc = _root(str(settings["site"]))
    api_netloc, cloud = api_host_for(netloc)
    site_netloc = site_host_for(netloc)
    api_root = f"{scheme}://{api_netloc}"
    codebase = str(settings.get("codebase") or "").strip() or None
    if settings.get("api_base_url"):
        parts = urlsplit(str(settings["api_base_url"]).strip())
        api_root = f"{parts.scheme or 'https'}://{parts.netloc.lower()}"
        path = parts.path.strip("/")
        if path.endswith("apis/3.0"):  # a full base URL: take its codebase too
            codebase = codebase or (path[: -len("apis/3.0")].strip("/") + "/")
    if codebase and not codebase.endswith("/"):
        codebase += "/"
    return CwTenant(site_root=f"{scheme}://{site_netloc}", api_root=api_root,
                    company_id=str(settings["company_id"]).strip(), client_id=str(settings["client_id"]).strip(),
                    is_cloud=cloud, codebase=codebase,
                    api_version=str(settings.get("api_version") or DEFAULT_API_VERSION))


def basic_auth(tenant: CwTenant, credentials: Mapping[str, Any]) -> httpx.BasicAuth:
    """Basic auth for the API member's keys (PsaValidationError when a key is missing)."""
    missing = {k: "required" for k in ("public_key", "private_key") if not str(credentials.get(k) or "").strip()}
    if missing:
        raise PsaValidationError("The ConnectWise API member keys are missing: " + ", ".join(sorted(missing)) + ".",
                                 fields=missing)
    return httpx.BasicAuth(f"{tenant.company_id}+{str(credentials['public_key']).strip()}",
                           str(credentials["private_key"]).strip())


def api_headers(tenant: CwTenant) -> dict[str, str]:
    return {"clientId": tenant.client_id,
            "Accept": f"application/vnd.connectwise.com+json; version={tenant.api_version}"}


def codebase_from_companyinfo(data: Any) -> str | None:
    """The `Codebase` of a companyinfo answer (None for an unknown company: the body is `null`)."""
    if not isinstance(data, Mapping):
        return None
    codebase = str(data.get("Codebase") or "").strip()
    if not codebase:
        return None
    return codebase if codebase.endswith("/") else codebase + "/"
