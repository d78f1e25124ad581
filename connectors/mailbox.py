"""The mailbox seam: a reader hands over raw messages after a watermark (connectors/mail/ holds IMAP and
Microsoft Graph; core/intake sees only this module).

A watermark is opaque text the reader gives back with each batch (IMAP: "uidvalidity:last uid"; Graph: the
delta/next link). The caller stores it only after every message of the batch was taken, so a crash means
the batch is read again (and recognised by Message-ID), never skipped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


class MailboxError(Exception):
    """The mailbox could not be read; `hint` says what to check. `auth` is True for refused credentials."""

    def __init__(self, message: str, hint: str = "", *, auth: bool = False) -> None:
        super().__init__(message)
        self.message, self.hint, self.auth = message, hint, auth


@dataclass(frozen=True, slots=True)
class MailItem:
    ref: str  # the reader's id of the message (IMAP UID, Graph message id)
    raw: bytes  # RFC 5322 bytes


@dataclass(frozen=True, slots=True)
class MailBatch:
    items: tuple[MailItem, ...]
    watermark: str | None
    more: bool  # another batch is waiting


class MailboxReader(Protocol):
    async def fetch(self, watermark: str | None, limit: int) -> MailBatch:
        """Messages after `watermark` (all of the folder when None), at most `limit`."""
        ...

    async def aclose(self) -> None:
        ...
