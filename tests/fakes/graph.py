"""An httpx-transport fake of Microsoft Graph and the v2.0 token endpoint for several customer tenants.

Behaves like Graph where our client depends on it: client-credentials tokens per tenant (400 invalid_client for
a wrong secret, 400 AADSTS700016-style for a tenant that never consented), bearer tokens bound to their tenant
(401 otherwise), application permissions per tenant (403 Authorization_RequestDenied when one is missing),
signInActivity and the MFA registration report refused on a tenant without Entra ID P1 (403
Authentication_RequestFromNonPremiumTenantOrB2CTenant), managedDevices refused without Intune ("Request not
applicable to target tenant."), collections paged by `page_size` with absolute `@odata.nextLink`s, and
`throttle(n, retry_after)` answering 429 with Retry-After n times. `calls` records (method, path) per request;
`delay` (seconds) makes every Graph call that slow; `max_inflight` is the most calls it held at once.

Also: /auditLogs/signIns (403 without Entra ID P1, like Graph) and /auditLogs/directoryAudits filtered by user,
newest first, `$top` honoured; a managed device's detectedApps (paged); and the three quick-action writes with
their own permissions: PATCH /users/{id} passwordProfile (User-PasswordProfile.ReadWrite.All *and* the User
Administrator role on the service principal, else 403; 400 for a synced user or a password that fails
complexity), POST revokeSignInSessions (User.RevokeSessions.All), POST syncDevice (204;
DeviceManagementManagedDevices.PrivilegedOperations.All). `writes` records each applied write.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote

import httpx

ALL_PERMISSIONS = frozenset({"User.Read.All", "AuditLog.Read.All", "UserAuthenticationMethod.Read.All",
                             "DeviceManagementManagedDevices.Read.All", "User-PasswordProfile.ReadWrite.All",
                             "User.RevokeSessions.All", "DeviceManagementManagedDevices.PrivilegedOperations.All"})
ADMIN_ROLE = "User Administrator"
GRAPH = "https://graph.fake/v1.0"
LOGIN = "https://login.fake"


@dataclass
class FakeTenant:
    tenant_id: str
    users: list[dict] = field(default_factory=list)
    registration: dict[str, dict] = field(default_factory=dict)  # user id -> userRegistrationDetails
    methods: dict[str, list[dict]] = field(default_factory=dict)  # user id -> authentication methods
    licences: dict[str, list[str]] = field(default_factory=dict)  # user id -> skuPartNumbers
    devices: dict[str, list[dict]] = field(default_factory=dict)  # user id -> managedDevices
    sign_ins: list[dict] = field(default_factory=list)  # signIn resources (userId says whose)
    audits: list[dict] = field(default_factory=list)  # directoryAudit resources (targetResources[].id)
    apps: dict[str, list[dict]] = field(default_factory=dict)  # device id -> detectedApps
    roles: set[str] = field(default_factory=lambda: {ADMIN_ROLE})  # Entra roles of our service principal
    writes: list[tuple[str, str, dict]] = field(default_factory=list)  # (what, target id, body) per applied write
    permissions: set[str] = field(default_factory=lambda: set(ALL_PERMISSIONS))
    premium: bool = True  # Entra ID P1
    intune: bool = True
    consented: bool = True


def _err(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, json={"error": {"code": code, "message": message}}, headers=headers)


@dataclass
class FakeGraph:
    client_id: str = "deskbridge-app"
    client_secret: str = "s3cret-value"
    tenants: dict[str, FakeTenant] = field(default_factory=dict)
    page_size: int = 2
    delay: float = 0.0
    expires_in: int = 3599
    calls: list[tuple[str, str]] = field(default_factory=list)
    token_requests: int = 0
    inflight: int = 0  # Graph calls being answered now (counted while `delay` holds them)
    max_inflight: int = 0  # the most at once
    _tokens: dict[str, str] = field(default_factory=dict)  # token -> tenant id
    _throttle: list[str] = field(default_factory=list)

    def tenant(self, tenant_id: str, **kw: Any) -> FakeTenant:
        self.tenants[tenant_id] = FakeTenant(tenant_id, **kw)
        return self.tenants[tenant_id]

    def throttle(self, times: int, retry_after: str = "2") -> None:
        self._throttle.extend([retry_after] * times)

    def expire_tokens(self) -> None:
        self._tokens.clear()

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def routed_transport(self) -> httpx.AsyncBaseTransport:
        """This fake for Graph and its login host; real HTTP for every other host (e.g. loopback fakes)."""
        return _Routed(self.transport, httpx.AsyncHTTPTransport())

    async def handle(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        base = f"{url.scheme}://{url.host}"
        if base == LOGIN:
            return self._token(request)
        if base + "/v1.0" != GRAPH or not url.path.startswith("/v1.0/"):
            return _err(404, "NotFound", "unknown host or path")
        self.calls.append((request.method, url.path))
        if self.delay:
            self.inflight += 1
            self.max_inflight = max(self.max_inflight, self.inflight)
            try:
                await asyncio.sleep(self.delay)
            finally:
                self.inflight -= 1
        auth = request.headers.get("Authorization", "")
        tenant = self.tenants.get(self._tokens.get(auth.removeprefix("Bearer "), ""))
        if not auth.startswith("Bearer ") or tenant is None:
            return _err(401, "InvalidAuthenticationToken", "Access token is empty or invalid.")
        if self._throttle:
            return _err(429, "TooManyRequests", "Too many requests.", {"Retry-After": self._throttle.pop(0)})
        return self._graph(request, tenant, url.path.removeprefix("/v1.0"), {k: v for k, v in url.params.items()})

    def _token(self, request: httpx.Request) -> httpx.Response:
        self.token_requests += 1
        parts = request.url.path.strip("/").split("/")
        form = {k: v[0] for k, v in parse_qs(request.content.decode()).items()}
        tenant = self.tenants.get(unquote(parts[0]))
        if parts[1:] != ["oauth2", "v2.0", "token"] or form.get("grant_type") != "client_credentials":
            return httpx.Response(400, json={"error": "unsupported_grant_type"})
        if form.get("client_id") != self.client_id or form.get("client_secret") != self.client_secret:
            return httpx.Response(401, json={"error": "invalid_client", "error_description":
                                             "AADSTS7000215: Invalid client secret provided."})
        if tenant is None or not tenant.consented:
            return httpx.Response(400, json={"error": "unauthorized_client", "error_description":
                                             "AADSTS700016: Application not found in the directory."})
        if form.get("scope") != "https://graph.microsoft.com/.default":
            return httpx.Response(400, json={"error": "invalid_scope"})
        token = secrets.token_hex(12)
        self._tokens[token] = tenant.tenant_id
        return httpx.Response(200, json={"token_type": "Bearer", "expires_in": self.expires_in,
                                         "ext_expires_in": self.expires_in, "access_token": token})

    def _page(self, items: list[dict], path: str, params: dict[str, str]) -> httpx.Response:
        skip = int(params.pop("$skiptoken", "0"))
        body: dict[str, Any] = {"value": items[skip:skip + self.page_size]}
        if skip + self.page_size < len(items):
            query = "&".join(f"{k}={v}" for k, v in params.items())
            body["@odata.nextLink"] = f"{GRAPH}{path}?{query + '&' if query else ''}$skiptoken={skip + self.page_size}"
        return httpx.Response(200, content=json.dumps(body).encode(), headers={"Content-Type": "application/json"})

    def _graph(self, request: httpx.Request, t: FakeTenant, path: str, params: dict[str, str]) -> httpx.Response:
        denied = _err(403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")
        parts = [unquote(p) for p in path.strip("/").split("/")]
        if parts[0] == "auditLogs":
            return self._audit_logs(t, parts, params)
        if parts[0] == "deviceManagement":
            return self._device_management(request, t, parts, path, params)
        if request.method != "GET":
            return self._user_write(request, t, parts)
        if parts[:3] == ["reports", "authenticationMethods", "userRegistrationDetails"] and len(parts) == 4:
            if "AuditLog.Read.All" not in t.permissions:
                return denied
            if not t.premium:
                return _err(403, "Authentication_RequestFromNonPremiumTenantOrB2CTenant",
                            "Neither tenant is B2C or tenant doesn't have premium license")
            found = t.registration.get(parts[3])
            return httpx.Response(200, json=found) if found else _err(404, "Request_ResourceNotFound", "Not found")
        if parts[0] != "users":
            return _err(400, "BadRequest", "Unsupported in fake")
        if "User.Read.All" not in t.permissions:
            return denied
        if len(parts) == 1:  # /users?$filter=mail eq '...' (a default-supported filter)
            found = re.fullmatch(r"mail eq '((?:[^']|'')*)'", params.get("$filter", ""))
            if not found:
                return _err(400, "Request_UnsupportedQuery", "Unsupported query.")
            mail = found.group(1).replace("''", "'").lower()
            select = params.get("$select", "").split(",")
            rows = [{k: v for k, v in u.items() if k in select or k == "id"} for u in t.users
                    if (u.get("mail") or "").lower() == mail]
            return self._page(rows, path, params)
        user = next((u for u in t.users if parts[1].lower() in (u["id"], u["userPrincipalName"].lower())), None)
        if user is None:
            return _err(404, "Request_ResourceNotFound", f"Resource '{parts[1]}' does not exist.")
        rest = parts[2:]
        if not rest:
            select = params.get("$select", "").split(",")
            if "signInActivity" in select:
                if "AuditLog.Read.All" not in t.permissions:
                    return denied
                if not t.premium:
                    return _err(403, "Authentication_RequestFromNonPremiumTenantOrB2CTenant",
                                "Neither tenant is B2C or tenant doesn't have premium license")
            return httpx.Response(200, json={k: v for k, v in user.items() if k in select or k == "id"})
        if rest == ["licenseDetails"]:
            rows = [{"id": f"lic-{i}", "skuPartNumber": s, "servicePlans": []}
                    for i, s in enumerate(t.licences.get(user["id"], []))]
            return self._page(rows, path, params)
        if rest == ["authentication", "methods"]:
            if "UserAuthenticationMethod.Read.All" not in t.permissions:
                return denied
            return self._page(t.methods.get(user["id"], []), path, params)
        if rest == ["managedDevices"]:
            if "DeviceManagementManagedDevices.Read.All" not in t.permissions:
                return denied
            if not t.intune:
                return _err(400, "BadRequest", "Request not applicable to target tenant.")
            select = [f for f in params.get("$select", "").split(",") if f]
            rows = [{k: v for k, v in d.items() if not select or k in select or k == "id"}
                    for d in t.devices.get(user["id"], [])]
            return self._page(rows, path, params)
        return _err(400, "BadRequest", "Unsupported in fake")


    def _audit_logs(self, t: FakeTenant, parts: list[str], params: dict[str, str]) -> httpx.Response:
        if "AuditLog.Read.All" not in t.permissions:
            return _err(403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")
        top = int(params.get("$top", "50"))
        if parts[1:] == ["signIns"]:
            if not t.premium:
                return _err(403, "Authentication_RequestFromNonPremiumTenantOrB2CTenant",
                            "Neither tenant is B2C or tenant doesn't have premium license")
            found = re.fullmatch(r"userId eq '([^']*)'", params.get("$filter", ""))
            if not found:
                return _err(400, "Request_UnsupportedQuery", "Unsupported query.")
            rows = sorted((r for r in t.sign_ins if r.get("userId") == found.group(1)),
                          key=lambda r: r["createdDateTime"], reverse=True)
            return httpx.Response(200, json={"value": rows[:top]})
        if parts[1:] == ["directoryAudits"]:
            found = re.fullmatch(r"targetResources/any\(t:t/id eq '([^']*)'\)", params.get("$filter", ""))
            if not found:
                return _err(400, "Request_UnsupportedQuery", "Unsupported query.")
            rows = sorted((r for r in t.audits if any(x.get("id") == found.group(1)
                                                      for x in r.get("targetResources", []))),
                          key=lambda r: r["activityDateTime"], reverse=True)
            return httpx.Response(200, json={"value": rows[:top]})
        return _err(400, "BadRequest", "Unsupported in fake")

    def _device_management(self, request: httpx.Request, t: FakeTenant, parts: list[str], path: str,
                           params: dict[str, str]) -> httpx.Response:
        denied = _err(403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")
        if not t.intune:
            return _err(400, "BadRequest", "Request not applicable to target tenant.")
        if parts[1:2] != ["managedDevices"] or len(parts) != 4:
            return _err(400, "BadRequest", "Unsupported in fake")
        device_id = parts[2]
        if not any(d["id"] == device_id for ds in t.devices.values() for d in ds):
            return _err(404, "ResourceNotFound", f"Resource not found for the segment '{device_id}'.")
        if parts[3] == "detectedApps" and request.method == "GET":
            if "DeviceManagementManagedDevices.Read.All" not in t.permissions:
                return denied
            return self._page(t.apps.get(device_id, []), path, params)
        if parts[3] == "syncDevice" and request.method == "POST":
            if "DeviceManagementManagedDevices.PrivilegedOperations.All" not in t.permissions:
                return denied
            t.writes.append(("syncDevice", device_id, {}))
            return httpx.Response(204)
        return _err(405, "MethodNotAllowed", "Unsupported in fake")

    def _user_write(self, request: httpx.Request, t: FakeTenant, parts: list[str]) -> httpx.Response:
        denied = _err(403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")
        user = next((u for u in t.users if len(parts) >= 2 and parts[1] in (u["id"], u["userPrincipalName"])), None)
        if parts[0] != "users" or user is None:
            return _err(404, "Request_ResourceNotFound", "Resource does not exist.")
        if request.method == "POST" and parts[2:] == ["revokeSignInSessions"]:
            if "User.RevokeSessions.All" not in t.permissions:
                return denied
            t.writes.append(("revokeSignInSessions", user["id"], {}))
            return httpx.Response(200, json={"@odata.context": "...$metadata#Edm.Boolean", "value": True})
        if request.method == "PATCH" and len(parts) == 2:
            body = json.loads(request.content or b"{}")
            profile = body.get("passwordProfile") or {}
            if set(body) != {"passwordProfile"} or not profile.get("password"):
                return _err(400, "Request_BadRequest", "Unsupported in fake")
            if "User-PasswordProfile.ReadWrite.All" not in t.permissions or ADMIN_ROLE not in t.roles:
                return denied
            if user.get("onPremisesSyncEnabled"):
                return _err(400, "Request_BadRequest", "Unable to update the specified properties for on-premises "
                                                        "mastered Directory Sync objects or objects currently "
                                                        "undergoing migration.")
            pw = str(profile["password"])
            classes = sum(bool(re.search(x, pw)) for x in (r"[a-z]", r"[A-Z]", r"[0-9]", r"[^a-zA-Z0-9]"))
            if len(pw) < 8 or classes < 3:
                return _err(400, "Request_BadRequest", "The specified password does not comply with password "
                                                        "complexity requirements. Please provide a different password.")
            t.writes.append(("passwordProfile", user["id"], profile))
            return httpx.Response(204)
        return _err(405, "MethodNotAllowed", "Unsupported in fake")


class _Routed(httpx.AsyncBaseTransport):
    def __init__(self, graph: httpx.AsyncBaseTransport, other: httpx.AsyncBaseTransport) -> None:
        self.graph, self.other = graph, other

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        fake = f"{request.url.scheme}://{request.url.host}" in (LOGIN, GRAPH.removesuffix("/v1.0"))
        return await (self.graph if fake else self.other).handle_async_request(request)

    async def aclose(self) -> None:
        await self.other.aclose()


def seed_acme(graph: FakeGraph, tenant_id: str = "acme-tenant-0001", **kw: Any) -> FakeTenant:
    """A tenant with Jane (cloud, MFA, two licences, three devices) and Bob (synced, no MFA, no devices)."""
    t = graph.tenant(tenant_id, **kw)
    t.users += [
        {"id": "u-jane", "displayName": "Jane Doe", "userPrincipalName": "jane@acme.example", "mail": "jane@acme.example",
         "accountEnabled": True, "onPremisesSyncEnabled": None,
         "signInActivity": {"lastSignInDateTime": "2026-12-06T08:15:00Z"}},
        {"id": "u-bob", "displayName": "Bob Roe", "userPrincipalName": "bob@acme.example", "mail": "bob@acme.example",
         "accountEnabled": False, "onPremisesSyncEnabled": True, "signInActivity": {}},
        {"id": "u-carol", "displayName": "Carol Poe", "userPrincipalName": "carol.poe@acmecorp.onmicrosoft.com",
         "mail": "carol@acme.example", "accountEnabled": True, "onPremisesSyncEnabled": False},
    ]
    t.registration["u-jane"] = {"id": "u-jane", "isMfaRegistered": True, "isMfaCapable": True,
                                "methodsRegistered": ["microsoftAuthenticatorPush", "mobilePhone"],
                                "defaultMfaMethod": "microsoftAuthenticatorPush"}
    t.registration["u-bob"] = {"id": "u-bob", "isMfaRegistered": False, "methodsRegistered": []}
    t.methods["u-jane"] = [{"@odata.type": "#microsoft.graph.passwordAuthenticationMethod", "id": "p"},
                           {"@odata.type": "#microsoft.graph.microsoftAuthenticatorAuthenticationMethod", "id": "a"}]
    t.licences["u-jane"] = ["SPB", "POWER_BI_STANDARD", "WEIRD_NEW_SKU"]
    t.devices["u-jane"] = [
        {"id": f"d-{i}", "deviceName": f"ACME-LT-{i}", "operatingSystem": "Windows", "osVersion": "10.0.22631.4460",
         "complianceState": "compliant" if i != 2 else "noncompliant",
         "lastSyncDateTime": f"2026-12-0{i + 1}T10:00:00Z", "isEncrypted": i != 2, "serialNumber": f"5CG{i}41ACME",
         "azureADDeviceId": f"aad-{i}", "enrolledDateTime": "2026-01-05T09:00:00Z"} for i in range(3)]
    t.sign_ins += [
        {"id": f"si-{i}", "userId": "u-jane", "createdDateTime": f"2026-12-06T0{i}:00:00Z", "appDisplayName": "Outlook",
         "ipAddress": f"203.0.113.{i}", "clientAppUsed": "Browser",
         "location": {"city": "Leeds", "countryOrRegion": "GB"}, "deviceDetail": {"operatingSystem": "Windows10", "deviceId": "aad-1" if i % 2 else ""},
         "status": {"errorCode": 0 if i % 3 else 50126,
                    "failureReason": "" if i % 3 else "Invalid username or password."}} for i in range(6)]
    t.sign_ins.append({"id": "si-bob", "userId": "u-bob", "createdDateTime": "2026-12-06T09:00:00Z",
                       "appDisplayName": "Teams", "ipAddress": "198.51.100.7", "status": {"errorCode": 0}})
    t.audits += [
        {"id": "a-1", "activityDateTime": "2026-12-05T11:00:00Z", "activityDisplayName": "Update user",
         "result": "success", "initiatedBy": {"user": {"userPrincipalName": "admin@acme.example"}},
         "targetResources": [{"id": "u-jane", "type": "User"}]},
        {"id": "a-2", "activityDateTime": "2026-12-06T07:30:00Z", "activityDisplayName": "Reset user password",
         "result": "success", "initiatedBy": {"app": {"displayName": "Deskbridge"}},
         "targetResources": [{"id": "u-jane", "type": "User"}]},
        {"id": "a-3", "activityDateTime": "2026-12-06T08:00:00Z", "activityDisplayName": "Disable account",
         "result": "success", "initiatedBy": {"user": {"userPrincipalName": "admin@acme.example"}},
         "targetResources": [{"id": "u-bob", "type": "User"}]},
    ]
    t.apps["d-0"] = [{"id": f"app-{i}", "displayName": name, "version": ver, "publisher": pub}
                     for i, (name, ver, pub) in enumerate([("Microsoft Teams", "24295.605", "Microsoft"),
                                                           ("7-Zip", "23.01", "Igor Pavlov"),
                                                           ("Google Chrome", "131.0.6778.86", "Google LLC")])]
    return t
