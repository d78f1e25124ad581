"""Errors every connector raises; vendor errors are translated into these once, at the connector.

    PsaError                      base; `retryable` says whether the outbox may try again
    ├── PsaAuthError              401/403, bad or revoked keys, wrong tenant      (not retryable: re-auth)
    │   └── PsaForbidden          the keys work; the API user's role may not do this one thing (403): not re-auth
    ├── PsaNotFound               the record does not exist (or the codebase moved and re-discovery failed)
    ├── PsaValidationError        400/409/422: the PSA refused the content (field errors in `fields`)
    │   └── PsaTooLarge           an attachment over the PSA's cap, refused before sending
    ├── PsaUnsupported            this PSA lacks the capability (see connectors.base.Feature)
    ├── PsaRateLimited            429; `retry_after` seconds when the PSA said so           (retryable)
    ├── PsaUnavailable            5xx, connect errors, garbled responses                    (retryable)
    │   └── PsaTimeout            the request may have been applied: `outcome_unknown`      (retryable)
    └── WebhookRejected           a webhook failed verification (answer 401, log, never process)

`outcome_unknown` is True when a write may have landed at the PSA although we saw no success (timeout,
connection dropped after sending, 5xx after sending). The outbox then looks for the write's marker before
trying again (reliability-sla.md §2.3).
"""

from __future__ import annotations

from typing import Any, ClassVar


class PsaError(Exception):
    """Base of every connector error. `message` is safe to show to a person; it never holds secrets."""

    retryable: ClassVar[bool] = False

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        fields: dict[str, str] | None = None,
        outcome_unknown: bool = False,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.fields = fields or {}
        self.outcome_unknown = outcome_unknown
        self.details = details or {}

    def __str__(self) -> str:
        parts = [self.message]
        if self.status is not None:
            parts.append(f"(HTTP {self.status})")
        if self.fields:
            parts.append("; ".join(f"{k}: {v}" for k, v in sorted(self.fields.items())))
        return " ".join(parts)


class PsaAuthError(PsaError):
    """Credentials rejected or lacking rights; needs an admin to re-enter keys or fix the API member's role."""


class PsaForbidden(PsaAuthError):
    """The credentials work, but the API user's security role may not do this (ConnectWise 403, HaloPSA 403,
    Autotask's "does not have the adequate permissions"): one kind of write is refused, not the connection."""


class PsaNotFound(PsaError):
    """The named record does not exist at the PSA."""


class PsaValidationError(PsaError):
    """The PSA refused the request's content; `fields` maps field names to the PSA's reasons."""


class PsaTooLarge(PsaValidationError):
    """A payload over the PSA's size cap, refused before it was sent."""


class PsaUnsupported(PsaError):
    """The PSA has no way to do this."""


class PsaRateLimited(PsaError):
    """The PSA throttled us; wait at least `retry_after` seconds (None when it did not say)."""

    retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after


class PsaUnavailable(PsaError):
    """The PSA is down, slow or answered nonsense; try again later."""

    retryable = True


class PsaTimeout(PsaUnavailable):
    """No answer in time; a write may or may not have been applied."""

    def __init__(self, message: str, **kw: Any) -> None:
        kw.setdefault("outcome_unknown", True)
        super().__init__(message, **kw)


class WebhookRejected(PsaError):
    """A webhook whose signature or origin could not be verified."""
