"""TenantDirectory over Microsoft Graph: maps Graph JSON to connectors.tenant dataclasses (it never leaves here).

Permissions (application): User.Read.All, AuditLog.Read.All (sign-in activity, sign-ins, directory audits, MFA
report), UserAuthenticationMethod.Read.All (MFA fallback), DeviceManagementManagedDevices.Read.All (devices,
detected apps). Quick actions: User-PasswordProfile.ReadWrite.All plus the User Administrator role on the app's
service principal (reset password), User.RevokeSessions.All, DeviceManagementManagedDevices.PrivilegedOperations.All.
"""

from __future__ import annotations

from datetime import datetime
from urllib.parse import quote, urlencode

from connectors.m365.client import LOGIN_URL, SCOPE, GraphClient
from connectors.tenant import (
    AuditEvent,
    DetectedApp,
    DirectoryNotFound,
    DirectoryUser,
    Licence,
    LicenceMissing,
    ManagedDevice,
    MfaStatus,
    PermissionMissing,
    SignIn,
)

USER_FIELDS = "id,displayName,userPrincipalName,mail,accountEnabled,onPremisesSyncEnabled"
DEVICE_FIELDS = ("id,deviceName,operatingSystem,osVersion,complianceState,lastSyncDateTime,isEncrypted,serialNumber,"
                 "azureADDeviceId,enrolledDateTime")

# skuPartNumber -> the name admins know (Microsoft's "Product names and service plan identifiers" list).
SKU_NAMES = {
    "SPB": "Microsoft 365 Business Premium",
    "O365_BUSINESS_PREMIUM": "Microsoft 365 Business Standard",
    "O365_BUSINESS_ESSENTIALS": "Microsoft 365 Business Basic",
    "O365_BUSINESS": "Microsoft 365 Apps for business",
    "SPE_E3": "Microsoft 365 E3",
    "SPE_E5": "Microsoft 365 E5",
    "SPE_F1": "Microsoft 365 F3",
    "ENTERPRISEPACK": "Office 365 E3",
    "ENTERPRISEPREMIUM": "Office 365 E5",
    "STANDARDPACK": "Office 365 E1",
    "EXCHANGESTANDARD": "Exchange Online (Plan 1)",
    "EXCHANGEENTERPRISE": "Exchange Online (Plan 2)",
    "AAD_PREMIUM": "Microsoft Entra ID P1",
    "AAD_PREMIUM_P2": "Microsoft Entra ID P2",
    "INTUNE_A": "Microsoft Intune Plan 1",
    "EMS": "Enterprise Mobility + Security E3",
    "POWER_BI_STANDARD": "Power BI (free)",
    "POWER_BI_PRO": "Power BI Pro",
    "FLOW_FREE": "Power Automate Free",
    "TEAMS_EXPLORATORY": "Microsoft Teams Exploratory",
    "VISIOCLIENT": "Visio Plan 2",
    "PROJECTPROFESSIONAL": "Project Plan 3",
}

METHOD_TYPES = {  # @odata.type of /authentication/methods -> the name in the registration report
    "#microsoft.graph.microsoftAuthenticatorAuthenticationMethod": "microsoftAuthenticatorPush",
    "#microsoft.graph.phoneAuthenticationMethod": "mobilePhone",
    "#microsoft.graph.fido2AuthenticationMethod": "fido2",
    "#microsoft.graph.softwareOathAuthenticationMethod": "softwareOneTimePasscode",
    "#microsoft.graph.windowsHelloForBusinessAuthenticationMethod": "windowsHelloForBusiness",
    "#microsoft.graph.emailAuthenticationMethod": "email",
    "#microsoft.graph.temporaryAccessPassAuthenticationMethod": "temporaryAccessPass",
}


def admin_consent_url(tenant_id: str, client_id: str, *, login_url: str = LOGIN_URL,
                      redirect_uri: str | None = None) -> str:
    """The link a customer's Global Admin (or a partner with GDAP) opens to consent to our app in that tenant."""
    params = {"client_id": client_id, "scope": SCOPE}
    if redirect_uri:
        params["redirect_uri"] = redirect_uri
    return f"{login_url.rstrip('/')}/{quote(tenant_id, safe='')}/v2.0/adminconsent?{urlencode(params)}"


def _when(value: object) -> datetime | None:
    if not value or not isinstance(value, str) or value.startswith("0001-"):
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


class M365Directory:
    """One customer tenant's directory, read through a GraphClient."""

    def __init__(self, client: GraphClient) -> None:
        self.client = client
        self.tenant_id = client.tenant_id

    async def user(self, key: str) -> DirectoryUser:
        """The user by UPN or object id (Graph resolves both on /users/{key}); an e-mail address that is not
        a UPN is then looked up by `mail` (a contact's address often differs from the sign-in name)."""
        try:
            u = await self.client.get(f"/users/{quote(key, safe='@')}", {"$select": USER_FIELDS})
        except DirectoryNotFound:
            if "@" not in key:
                raise
            escaped = key.replace("'", "''")
            rows = (await self.client.get("/users", {"$filter": f"mail eq '{escaped}'",
                                                     "$select": USER_FIELDS})).get("value") or []
            if len(rows) != 1:
                raise
            u = rows[0]
        return DirectoryUser(id=str(u["id"]), display_name=str(u.get("displayName") or ""),
                             upn=str(u.get("userPrincipalName") or ""), mail=u.get("mail"),
                             enabled=bool(u.get("accountEnabled")),
                             on_prem_synced=bool(u.get("onPremisesSyncEnabled")))

    async def last_sign_in(self, user_id: str) -> datetime | None:
        """signInActivity.lastSignInDateTime (Entra ID P1 + AuditLog.Read.All)."""
        u = await self.client.get(f"/users/{quote(user_id)}", {"$select": "id,signInActivity"})
        return _when((u.get("signInActivity") or {}).get("lastSignInDateTime"))

    async def mfa(self, user_id: str) -> MfaStatus:
        """The registration report (P1); without P1 or AuditLog.Read.All, or not yet in it, the methods list."""
        try:
            d = await self.client.get(f"/reports/authenticationMethods/userRegistrationDetails/{quote(user_id)}")
        except (LicenceMissing, PermissionMissing, DirectoryNotFound):  # no P1, no permission, not in the report
            methods = await self.client.get_all(f"/users/{quote(user_id)}/authentication/methods")
            names = tuple(sorted({METHOD_TYPES[m["@odata.type"]] for m in methods
                                  if m.get("@odata.type") in METHOD_TYPES}))
            return MfaStatus(registered=None, methods=names)
        return MfaStatus(registered=bool(d.get("isMfaRegistered")),
                         methods=tuple(str(m) for m in d.get("methodsRegistered") or ()),
                         default_method=d.get("defaultMfaMethod") or None)

    async def licences(self, user_id: str) -> tuple[Licence, ...]:
        """Assigned licences by friendly SKU name (the part number when the name is unknown)."""
        rows = await self.client.get_all(f"/users/{quote(user_id)}/licenseDetails")
        skus = {str(r.get("skuPartNumber") or "") for r in rows} - {""}
        return tuple(sorted((Licence(sku=s, name=SKU_NAMES.get(s, s)) for s in skus), key=lambda x: x.name))

    async def devices(self, user_id: str) -> tuple[ManagedDevice, ...]:
        """The user's Intune managed devices, every page."""
        rows = await self.client.get_all(f"/users/{quote(user_id)}/managedDevices", {"$select": DEVICE_FIELDS})
        return tuple(ManagedDevice(
            id=str(d["id"]), name=str(d.get("deviceName") or ""), os=str(d.get("operatingSystem") or ""),
            os_version=str(d.get("osVersion") or ""), compliance=str(d.get("complianceState") or "unknown"),
            last_sync=_when(d.get("lastSyncDateTime")), encrypted=d.get("isEncrypted"),
            serial=str(d.get("serialNumber") or ""), aad_device_id=str(d.get("azureADDeviceId") or ""),
            enrolled=_when(d.get("enrolledDateTime"))) for d in rows)

    async def sign_ins(self, user_id: str, top: int = 10) -> tuple[SignIn, ...]:
        """/auditLogs/signIns for the user (one page of `top`, Graph returns newest first)."""
        page = await self.client.get("/auditLogs/signIns", {"$filter": f"userId eq '{_odata(user_id)}'",
                                                            "$top": str(top)})
        out = []
        for r in (page.get("value") or [])[:top]:
            status, loc = r.get("status") or {}, r.get("location") or {}
            code = status.get("errorCode") or 0
            out.append(SignIn(
                at=_when(r.get("createdDateTime")), app=str(r.get("appDisplayName") or ""),
                ip=str(r.get("ipAddress") or ""),
                location=", ".join(str(x) for x in (loc.get("city"), loc.get("countryOrRegion")) if x),
                ok=code == 0, failure="" if code == 0 else str(status.get("failureReason") or f"error {code}"),
                client=str((r.get("deviceDetail") or {}).get("operatingSystem") or r.get("clientAppUsed") or ""),
                device_id=str((r.get("deviceDetail") or {}).get("deviceId") or "")))
        return tuple(out)

    async def audits(self, user_id: str, top: int = 10) -> tuple[AuditEvent, ...]:
        """/auditLogs/directoryAudits whose target is the user (one page of `top`)."""
        page = await self.client.get("/auditLogs/directoryAudits", {
            "$filter": f"targetResources/any(t:t/id eq '{_odata(user_id)}')", "$top": str(top)})
        out = []
        for r in (page.get("value") or [])[:top]:
            by = r.get("initiatedBy") or {}
            who = (by.get("user") or {}).get("userPrincipalName") or (by.get("app") or {}).get("displayName") or ""
            out.append(AuditEvent(at=_when(r.get("activityDateTime")), activity=str(r.get("activityDisplayName") or ""),
                                  by=str(who), result=str(r.get("result") or "")))
        return tuple(out)

    async def detected_apps(self, device_id: str) -> tuple[DetectedApp, ...]:
        """Intune's detectedApps of one managed device, every page, sorted by name."""
        rows = await self.client.get_all(f"/deviceManagement/managedDevices/{quote(device_id)}/detectedApps",
                                         limit=1000)
        apps = {(str(r.get("displayName") or ""), str(r.get("version") or ""), str(r.get("publisher") or ""))
                for r in rows}
        return tuple(DetectedApp(n, v, p) for n, v, p in sorted(apps, key=lambda a: (a[0].lower(), a[1])) if n)

    async def reset_password(self, user_id: str, password: str) -> None:
        """App-only reset: PATCH passwordProfile, forced change at next sign-in."""
        await self.client.request("PATCH", f"/users/{quote(user_id)}", json={"passwordProfile": {
            "password": password, "forceChangePasswordNextSignIn": True}})

    async def revoke_sessions(self, user_id: str) -> None:
        await self.client.request("POST", f"/users/{quote(user_id)}/revokeSignInSessions")

    async def sync_device(self, device_id: str) -> None:
        await self.client.request("POST", f"/deviceManagement/managedDevices/{quote(device_id)}/syncDevice")


def _odata(value: str) -> str:
    """A value inside an OData string literal ('' escapes ')."""
    return value.replace("'", "''")
