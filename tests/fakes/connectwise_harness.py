"""The ConnectWise contract-suite harness (interface: tests/connectors/contract.py) over the fake server."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from connectors.base import PsaConnector
from connectors.connectwise.connector import ConnectWiseConnector
from tests.connectors.contract import FaultKind
from tests.fakes.connectwise import FakeClock, FakeConnectWise

ANCHOR = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
PAGE_SIZE = 10  # the suite needs more tickets than one page; the connector's default page is 1000
SEEDED = 25


@dataclass
class ConnectWiseHarness:
    fake: FakeConnectWise
    name: str = "connectwise"
    connectors: list[ConnectWiseConnector] = field(default_factory=list)

    def make_connector(self, *, bad_credentials: bool = False) -> PsaConnector:
        config = self.fake.config()
        if bad_credentials:
            config = dataclasses.replace(config, credentials={"public_key": self.fake.public_key,
                                                              "private_key": "wrong"})
        connector = ConnectWiseConnector(config, transport=self.fake.transport(), page_size=PAGE_SIZE)
        self.connectors.append(connector)
        return connector

    def now(self) -> datetime:
        return self.fake.clock.now

    def set_now(self, when: datetime) -> None:
        self.fake.clock.set(when)

    def seed_ticket(self, summary: str, *, at: datetime) -> str:
        saved = self.fake.clock.now
        self.fake.clock.set(at)
        try:
            return str(self.fake.add_ticket(summary)["id"])
        finally:
            self.fake.clock.set(saved)

    def touch_ticket(self, external_id: str, *, at: datetime) -> None:
        saved = self.fake.clock.now
        self.fake.clock.set(at)
        try:
            self.fake.edit_ticket(int(external_id), summary="Touched by the contract suite")
        finally:
            self.fake.clock.set(saved)

    def delete_ticket(self, external_id: str) -> None:
        self.fake.delete_ticket(int(external_id))

    def ticket_ids(self) -> set[str]:
        return {str(t) for t in self.fake.tickets}

    def fail_next(self, kind: FaultKind, *, retry_after: float | None = None, times: int = 1) -> None:
        if kind is FaultKind.LOST_RESPONSE:
            self.fake.lose_next_response(times, match="WRITE")
        else:
            status = {FaultKind.AUTH: 401, FaultKind.RATE_LIMIT: 429, FaultKind.SERVER_ERROR: 500}[kind]
            self.fake.fail_next(status, times, retry_after=retry_after)

    def count_writes(self, marker: str) -> int:
        return sum(1 for t in self.fake.tickets.values() if t.get("externalXRef") == marker)

    def stored_texts(self, ticket_external_id: str) -> list[str]:
        f, tid = self.fake, int(ticket_external_id)
        return ([n["text"] for n in f.notes.values() if n["ticketId"] == tid]
                + [e["notes"] for e in f.time_entries.values() if e["chargeToId"] == tid]
                + [x for d in f.documents.values() if d["recordId"] == tid for x in (d["title"], d["fileName"])])

    def ticket_fields(self, external_id: str) -> dict[str, object]:
        return {k: v for k, v in self.fake.tickets[int(external_id)].items() if k not in ("_info",)}

    def request_count(self) -> int:
        return len(self.fake.requests)

    def webhook(self, ticket_external_id: str, *, action: str = "updated",
                valid: bool = True) -> tuple[Mapping[str, str], bytes]:
        headers, body = self.fake.signed_callback("ticket", action, int(ticket_external_id))
        if not valid:
            headers = {**headers, "x-content-signature": "AAAA" + headers["x-content-signature"][4:]}
        return headers, body


@asynccontextmanager
async def connectwise_harness(tmp_path: Path) -> AsyncIterator[ConnectWiseHarness]:
    """A fresh fake tenant holding SEEDED tickets changed before ANCHOR, its clock frozen at ANCHOR."""
    fake = FakeConnectWise(clock=FakeClock(ANCHOR - timedelta(hours=2), step=timedelta(0)))
    for i in range(SEEDED):
        fake.clock.set(ANCHOR - timedelta(hours=1) + timedelta(seconds=i // 3))  # several share a second
        fake.add_ticket(f"Seeded ticket {i}")
    fake.clock.set(ANCHOR)
    harness = ConnectWiseHarness(fake)
    try:
        yield harness
    finally:
        for connector in harness.connectors:
            await connector.aclose()
