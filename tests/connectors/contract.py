"""The HARNESS interface of the PSA connector contract suite (tests/connectors/test_contract.py).

Every connector passes the same suite. A connector joins it by providing a harness: an object that
builds the connector against its fake PSA and exposes the fake-side controls the tests need. Register
the harness factory in `HARNESSES` in tests/connectors/conftest.py.

    HarnessFactory = Callable[[Path], AbstractAsyncContextManager[Harness]]

The factory gets a fresh temporary directory and yields a harness for ONE test (a fresh fake per test,
so tests never see each other's writes). Everything on the fake side is synchronous: fakes live in this
process (an httpx transport, or a loopback server whose state is a Python object).

What the suite assumes of the fake behind the harness:
- It holds MORE tickets than one page of the connector it builds (so paging really pages), at least one
  board whose statuses include an open and a closed one, at least two priorities, at least one active
  member, one company and one contact (found by the suite through the connector itself: picklists(),
  list_members(), list_companies(), list_contacts()).
- Every seeded ticket was last changed BEFORE `now()`; tickets the suite seeds later are changed at the
  times it passes (`at=`), and the fake's clock (`set_now`) stamps every change the connector makes.
- Connectors do not retry 401/429/5xx internally: they raise the PsaError (the outbox and the sync
  engine own retries). A fault set with `fail_next` answers the next matching request(s) only.

Times passed to the harness are tz-aware UTC with whole seconds (ConnectWise keeps seconds only).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Protocol, runtime_checkable

from connectors.base import PsaConnector


class FaultKind(StrEnum):
    """Faults a fake can inject into the next request(s)."""

    AUTH = "auth"  # answer 401 (PSA's own error body) -> PsaAuthError
    RATE_LIMIT = "rate_limit"  # answer 429 with Retry-After: <retry_after> -> PsaRateLimited(retry_after)
    SERVER_ERROR = "server_error"  # answer 500 -> PsaUnavailable (retryable)
    LOST_RESPONSE = "lost_response"  # the next WRITE is applied, then its response is lost -> PsaTimeout
    #                                  with outcome_unknown=True (reads pass through untouched)


@runtime_checkable
class Harness(Protocol):
    """A connector under test plus the controls of the fake PSA behind it."""

    name: str  # "sandbox", "connectwise", … (the pytest parameter id)

    def make_connector(self, *, bad_credentials: bool = False) -> PsaConnector:
        """A connector for the fake tenant; with `bad_credentials`, keys the fake will refuse (401)."""
        ...

    def now(self) -> datetime:
        """The fake server's current time."""
        ...

    def set_now(self, when: datetime) -> None:
        """Set the fake server's clock; every later change is stamped with this time until set again."""
        ...

    def seed_ticket(self, summary: str, *, at: datetime) -> str:
        """Create a ticket directly in the fake (not through the connector), last changed at `at`; its id."""
        ...

    def touch_ticket(self, external_id: str, *, at: datetime) -> None:
        """Change a ticket directly in the fake (e.g. its summary) so its last-updated time becomes `at`."""
        ...

    def delete_ticket(self, external_id: str) -> None:
        """Delete a ticket directly in the fake (delete detection)."""
        ...

    def ticket_ids(self) -> set[str]:
        """Ids of every live ticket in the fake."""
        ...

    def fail_next(self, kind: FaultKind, *, retry_after: float | None = None, times: int = 1) -> None:
        """Inject a fault into the next `times` matching requests (see FaultKind)."""
        ...

    def count_writes(self, marker: str) -> int:
        """How many tickets in the fake carry `marker` in the field the connector keeps it in."""
        ...

    def stored_texts(self, ticket_external_id: str) -> list[str]:
        """Every text the fake stores for the ticket's notes, time entries (their notes) and documents (title
        and file name): what a customer or an invoice could show, raw, as the PSA keeps it."""
        ...

    def ticket_fields(self, external_id: str) -> dict[str, object]:
        """The ticket's stored fields except bookkeeping the PSA changes on any write (last-updated stamps,
        `_info`): two snapshots differ only if a setting of the ticket itself was changed."""
        ...

    def request_count(self) -> int:
        """Requests the fake has received so far (to prove that nothing was sent)."""
        ...

    def webhook(self, ticket_external_id: str, *, action: str = "updated",
                valid: bool = True) -> tuple[Mapping[str, str], bytes]:
        """Headers and body of a push the PSA would send about a ticket; `valid=False` spoils its signature."""
        ...


HarnessFactory = Callable[[Path], AbstractAsyncContextManager[Harness]]
