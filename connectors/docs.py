"""The documentation-platform seam (Hudu, IT Glue): deep links for a customer and a device, and errors.

core/ imports this module, never connectors.hudu or connectors.itglue: vendor JSON is mapped to DocLink inside
those packages. Passwords are linked (the customer's page), never read.

    DocsError            base; `message` is safe to show a technician, never holds the API key
    ├── DocsAuthError    401/403: the key is wrong, expired (IT Glue revokes keys unused for 90 days) or limited
    ├── DocsThrottled    429 after our retries; `retry_after` seconds when the platform said so
    └── DocsUnavailable  5xx, network errors, garbled answers
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


class DocsError(Exception):
    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.message, self.status = message, status


class DocsAuthError(DocsError):
    """The API key was refused."""


class DocsThrottled(DocsError):
    def __init__(self, message: str, *, retry_after: float | None = None, **kw: object) -> None:
        super().__init__(message, **kw)  # type: ignore[arg-type]
        self.retry_after = retry_after


class DocsUnavailable(DocsError):
    """The platform or the network failed; try later."""


@dataclass(frozen=True, slots=True)
class DocLink:
    kind: str  # company | asset | article | runbook
    title: str
    url: str


@dataclass(frozen=True, slots=True)
class DocsQuery:
    """What a ticket knows to find its documentation by: PSA ids first, names as the fallback."""

    customer_name: str
    customer_psa_id: str | None = None
    device_name: str | None = None
    device_psa_id: str | None = None


@dataclass(frozen=True, slots=True)
class DocArticle:
    """One knowledge-base article for KB linking (core/ai/knowledge.py): its HTML or Markdown body and, for a
    customer's own article, that customer's PSA id and name as the platform knows them (None: a general one)."""

    external_id: str
    title: str
    body: str
    url: str | None = None
    html: bool = True
    customer_psa_id: str | None = None
    customer_name: str | None = None


class DocsPlatform(Protocol):
    kind: str

    async def links(self, query: DocsQuery) -> tuple[DocLink, ...]:
        """The customer's page, the device's asset/configuration and a few runbooks/articles (may be empty)."""
        ...

    async def articles(self) -> tuple[DocArticle, ...] | None:
        """Every published KB article the key may read (general and per customer), or None when this platform's
        API offers no article text to index."""
        ...

    async def check(self) -> None:
        """One cheap call that proves the URL and key work (raises DocsError)."""
        ...

    async def aclose(self) -> None:
        ...
