"""The tenant-directory seam: canonical user/device facts from a customer's Microsoft 365 tenant, and errors.

core/ imports this module (like connectors.base, connectors.errors and connectors.tokens), never
connectors.m365: Graph JSON is mapped to these dataclasses inside that package.

    DirectoryError              base; `message` is safe to show a technician, never holds secrets
    ├── DirectoryAuthError      the token endpoint refused us (bad secret, app not consented in that tenant)
    ├── PermissionMissing       403: the app lacks an application permission (`permission` names it if known)
    ├── LicenceMissing          the tenant lacks a licence the call needs (`product`: "Entra ID P1", "Intune")
    ├── DirectoryNotFound       404: no such user/object
    ├── DirectoryThrottled      429 after our retries; `retry_after` seconds when Graph said so
    └── DirectoryUnavailable    5xx, network errors, garbled answers
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


class DirectoryError(Exception):
    """Base of every tenant-directory error."""

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message, self.status, self.code = message, status, code


class DirectoryAuthError(DirectoryError):
    """No token for this tenant: wrong client secret, or the customer admin has not consented."""


class PermissionMissing(DirectoryError):
    """The app registration lacks an application permission in this tenant."""

    def __init__(self, message: str, *, permission: str | None = None, **kw: object) -> None:
        super().__init__(message, **kw)  # type: ignore[arg-type]
        self.permission = permission


class LicenceMissing(DirectoryError):
    """The tenant lacks the licence this data needs (sign-in logs need Entra ID P1; devices need Intune)."""

    def __init__(self, message: str, *, product: str, **kw: object) -> None:
        super().__init__(message, **kw)  # type: ignore[arg-type]
        self.product = product


class DirectoryNotFound(DirectoryError):
    """The user or object does not exist in the tenant."""


class DirectoryThrottled(DirectoryError):
    """Graph kept answering 429."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: object) -> None:
        super().__init__(message, **kw)  # type: ignore[arg-type]
        self.retry_after = retry_after


class DirectoryUnavailable(DirectoryError):
    """Graph or the network failed; try later."""


@dataclass(frozen=True, slots=True)
class DirectoryUser:
    id: str
    display_name: str
    upn: str
    mail: str | None
    enabled: bool
    on_prem_synced: bool


@dataclass(frozen=True, slots=True)
class MfaStatus:
    registered: bool | None  # None when only the methods list was readable
    methods: tuple[str, ...]
    default_method: str | None = None


@dataclass(frozen=True, slots=True)
class Licence:
    sku: str  # skuPartNumber, e.g. "SPB"
    name: str  # friendly, e.g. "Microsoft 365 Business Premium"


@dataclass(frozen=True, slots=True)
class ManagedDevice:
    id: str
    name: str
    os: str
    os_version: str
    compliance: str  # compliant, noncompliant, inGracePeriod, unknown ...
    last_sync: datetime | None  # its last check-in with Intune
    encrypted: bool | None
    serial: str = ""  # serialNumber: how a PSA configuration item or RMM device finds it
    aad_device_id: str = ""  # azureADDeviceId: what a sign-in's deviceDetail.deviceId names
    enrolled: datetime | None = None


@dataclass(frozen=True, slots=True)
class SignIn:
    at: datetime | None
    app: str
    ip: str
    location: str  # "City, CC" or ""
    ok: bool
    failure: str  # Graph's failureReason when not ok
    client: str  # clientAppUsed / device OS
    device_id: str = ""  # deviceDetail.deviceId: the Entra device signed in from ("" when unregistered)


@dataclass(frozen=True, slots=True)
class AuditEvent:
    at: datetime | None
    activity: str  # activityDisplayName, e.g. "Reset user password"
    by: str  # initiating user's UPN or app name
    result: str  # success, failure ...


@dataclass(frozen=True, slots=True)
class DetectedApp:
    name: str
    version: str
    publisher: str


class TenantDirectory(Protocol):
    """Reads about one user in one customer tenant (one instance per tenant)."""

    tenant_id: str

    async def user(self, key: str) -> DirectoryUser:
        """The user by UPN, e-mail or object id."""
        ...

    async def last_sign_in(self, user_id: str) -> datetime | None:
        """When the user last signed in interactively (needs Entra ID P1 and AuditLog.Read.All)."""
        ...

    async def mfa(self, user_id: str) -> MfaStatus:
        """MFA registration and methods."""
        ...

    async def licences(self, user_id: str) -> tuple[Licence, ...]:
        """Licences assigned to the user, friendly names."""
        ...

    async def devices(self, user_id: str) -> tuple[ManagedDevice, ...]:
        """The user's Intune managed devices."""
        ...

    async def sign_ins(self, user_id: str, top: int = 10) -> tuple[SignIn, ...]:
        """The user's latest sign-ins, newest first (Entra ID P1 and AuditLog.Read.All)."""
        ...

    async def audits(self, user_id: str, top: int = 10) -> tuple[AuditEvent, ...]:
        """The latest directory audit events that targeted the user, newest first (AuditLog.Read.All)."""
        ...

    async def detected_apps(self, device_id: str) -> tuple[DetectedApp, ...]:
        """Apps Intune detected on a managed device (Intune and DeviceManagementManagedDevices.Read.All)."""
        ...

    async def reset_password(self, user_id: str, password: str) -> None:
        """Set a temporary password that must be changed at next sign-in (cloud-only users)."""
        ...

    async def revoke_sessions(self, user_id: str) -> None:
        """Invalidate the user's refresh tokens and session cookies."""
        ...

    async def sync_device(self, device_id: str) -> None:
        """Ask Intune to make the device check in now."""
        ...
