"""Hudu: company, asset and runbook links for a ticket (x-api-key, pages of 25, ~300 requests/min)."""

from connectors.hudu.client import HuduDocs

__all__ = ["HuduDocs"]
