"""The Autotask contract-suite harness (interface: tests/connectors/contract.py) over the fake Autotask tenant."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from connectors.autotask.connector import AutotaskConnector
from connectors.base import ConnectionConfig, PsaConnector
from tests.connectors.contract import FaultKind
from tests.fakes.autotask import FakeAutotask, FakeClock
from tests.fakes.autotask_hooks import delivery

ANCHOR = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
PAGE_SIZE = 10  # the suite needs more tickets than one page; the connector's default page is 500
SEEDED = 25
WEBHOOK_SECRET = "autotask-webhook-secret-42"
# Autotask's own bookkeeping on any write: activity stamps and who/what touched the ticket last.
BOOKKEEPING = ("lastActivityDate", "lastTrackedModificationDateTime", "lastActivityResourceID",
               "lastActivityPersonType", "lastCustomerVisibleActivityDateTime")


def config(fake: FakeAutotask, *, root: str | None = None, connection_id: int = 1, **settings: Any
           ) -> ConnectionConfig:
    """A ConnectionConfig for the fake tenant (in-process, or over loopback at `root`)."""
    return ConnectionConfig(connection_id=connection_id, workspace_id=1, kind="autotask",
                            settings=fake.settings(root, **settings),
                            credentials={**fake.credentials(), "webhook_secret": WEBHOOK_SECRET})


@dataclass
class AutotaskHarness:
    fake: FakeAutotask
    name: str = "autotask"
    connectors: list[AutotaskConnector] = field(default_factory=list)

    def make_connector(self, *, bad_credentials: bool = False) -> PsaConnector:
        cfg = config(self.fake)
        if bad_credentials:
            cfg = ConnectionConfig(connection_id=1, workspace_id=1, kind="autotask", settings=cfg.settings,
                                   credentials={**cfg.credentials, "secret": "wrong"})
        connector = AutotaskConnector(cfg, transport=self.fake.transport(), page_size=PAGE_SIZE)
        self.connectors.append(connector)
        return connector

    def now(self) -> datetime:
        return self.fake.clock.now

    def set_now(self, when: datetime) -> None:
        self.fake.clock.set(when)

    def _at(self, when: datetime) -> Any:
        saved = self.fake.clock.now

        class _Frozen:
            def __enter__(s) -> None:  # noqa: N805
                self.fake.clock.set(when)

            def __exit__(s, *exc: object) -> None:  # noqa: N805
                self.fake.clock.set(saved)

        return _Frozen()

    def seed_ticket(self, summary: str, *, at: datetime) -> str:
        with self._at(at):
            return str(self.fake.add_ticket(summary)["id"])

    def touch_ticket(self, external_id: str, *, at: datetime) -> None:
        with self._at(at):
            self.fake.edit_ticket(int(external_id), title="Touched by the contract suite")

    def delete_ticket(self, external_id: str) -> None:
        self.fake.delete_ticket(int(external_id))

    def ticket_ids(self) -> set[str]:
        return {str(i) for i in self.fake.tables["Tickets"]}

    def fail_next(self, kind: FaultKind, *, retry_after: float | None = None, times: int = 1) -> None:
        if kind is FaultKind.LOST_RESPONSE:
            self.fake.lose_next_response(times, match="WRITE")
        else:
            status = {FaultKind.AUTH: 401, FaultKind.RATE_LIMIT: 429, FaultKind.SERVER_ERROR: 500}[kind]
            self.fake.fail_next(status, times, retry_after=retry_after)

    def count_writes(self, marker: str) -> int:
        return sum(1 for t in self.fake.tables["Tickets"].values() if t.get("externalID") == marker)

    def stored_texts(self, ticket_external_id: str) -> list[str]:
        tid = int(ticket_external_id)
        t = self.fake.tables
        notes = [x for n in t["TicketNotes"].values() if n["ticketID"] == tid  # a one-line note's title is its text
                 for x in dict.fromkeys((n["description"], n["title"])) if x]
        times = [x for e in t["TimeEntries"].values() if e["ticketID"] == tid
                 for x in (e["summaryNotes"], e["internalNotes"]) if x]
        files = [x for a in t["TicketAttachments"].values() if a["parentID"] == tid
                 for x in dict.fromkeys((a["title"], a["fullPath"])) if x]
        return notes + times + files

    def ticket_fields(self, external_id: str) -> dict[str, object]:
        return {k: v for k, v in self.fake.tables["Tickets"][int(external_id)].items() if k not in BOOKKEEPING}

    def request_count(self) -> int:
        return len(self.fake.requests)

    def webhook(self, ticket_external_id: str, *, action: str = "updated",
                valid: bool = True) -> tuple[Mapping[str, str], bytes]:
        record = self.fake.tables["Tickets"][int(ticket_external_id)]
        headers, body = delivery(WEBHOOK_SECRET, "Ticket", {"Update": "Update"}.get(action, "Update"), record,
                                 guid="0d4c5a1e-0000-4000-8000-00000000a7a7", sequence=1)
        if not valid:
            headers = {**headers, "X-Hook-Signature": "sha1=AAAA" + headers["X-Hook-Signature"][9:]}
        return headers, body


@asynccontextmanager
async def autotask_harness(tmp_path: Path) -> AsyncIterator[AutotaskHarness]:
    """A fresh fake tenant holding SEEDED tickets changed before ANCHOR, its clock frozen at ANCHOR."""
    fake = FakeAutotask(clock=FakeClock(ANCHOR - timedelta(hours=2), step=timedelta(0)))
    for i in range(SEEDED):
        fake.clock.set(ANCHOR - timedelta(hours=1) + timedelta(seconds=i // 3))  # several share a second
        fake.add_ticket(f"Seeded ticket {i}")
    fake.clock.set(ANCHOR)
    harness = AutotaskHarness(fake)
    try:
        yield harness
    finally:
        for connector in harness.connectors:
            await connector.aclose()
