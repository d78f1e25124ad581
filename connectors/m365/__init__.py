"""Microsoft Graph for tenant context: client-credentials tokens per customer tenant over plain httpx."""

from connectors.m365.client import GraphClient
from connectors.m365.directory import M365Directory, admin_consent_url
from connectors.m365.pool import DirectoryPool

__all__ = ["DirectoryPool", "GraphClient", "M365Directory", "admin_consent_url"]
