"""IT Glue: organization, configuration and document links for a ticket (JSON:API, 3,000 requests/5 min)."""

from connectors.itglue.client import ItGlueDocs

__all__ = ["ItGlueDocs"]
