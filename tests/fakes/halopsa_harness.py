"""The HaloPSA contract-suite harness (interface: tests/connectors/contract.py) over the fake Halo tenant."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from connectors.base import PsaConnector
from connectors.halopsa import webhooks as wh
from connectors.halopsa.connector import HaloPsaConnector
from connectors.tokens import InMemoryTokenCache
from tests.connectors.contract import FaultKind
from tests.fakes.halopsa import FakeHalo
from tests.fakes.halopsa_http import HaloClock

ANCHOR = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
PAGE_SIZE = 10  # the suite needs more tickets than one page; the connector's default page is 100
SEEDED = 25
WEBHOOK_SECRET = "halo-webhook-secret-42"
# Halo's own bookkeeping on any action: change stamps and the SLA's first-response time (not a setting).
BOOKKEEPING = ("last_update", "lastactiondate", "responsedate")


@dataclass
class HaloHarness:
    fake: FakeHalo
    name: str = "halopsa"
    connectors: list[HaloPsaConnector] = field(default_factory=list)
    cache: InMemoryTokenCache | None = None

    def make_connector(self, *, bad_credentials: bool = False) -> PsaConnector:
        config = self.fake.config()
        creds = self.fake.credentials(webhook_secret=WEBHOOK_SECRET)
        if bad_credentials:
            creds["client_secret"] = "wrong"
        config = dataclasses.replace(config, credentials=creds)
        connector = HaloPsaConnector(config, transport=self.fake.transport(), clock=self.fake.clock.epoch,
                                     page_size=PAGE_SIZE, token_cache=None if bad_credentials else self.cache)
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
            return str(self.fake.add_ticket(summary, client_id=12)["id"])
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
        return {str(i) for i, t in self.fake.tickets.items() if not t["deleted"]}

    def fail_next(self, kind: FaultKind, *, retry_after: float | None = None, times: int = 1) -> None:
        if kind is FaultKind.LOST_RESPONSE:
            self.fake.lose_next_response(times, match="WRITE")
        elif kind is FaultKind.AUTH:
            # the connector refreshes its token once after a 401 and re-sends: refused keys refuse both
            self.fake.fail_next(401, times * 2)
        else:
            status = {FaultKind.RATE_LIMIT: 429, FaultKind.SERVER_ERROR: 500}[kind]
            self.fake.fail_next(status, times, retry_after=retry_after)

    def count_writes(self, marker: str) -> int:
        return sum(1 for t in self.fake.tickets.values() if t.get("third_party_id_string") == f"db:{marker}")

    def stored_texts(self, ticket_external_id: str) -> list[str]:
        tid = int(ticket_external_id)
        actions = self.fake.actions.get(tid, {}).values()
        return ([a["note"] for a in actions]  # and Halo's HTML copy where it differs (line breaks as <br>)
                + [a["note_html"] for a in actions if a.get("note_html") and a["note_html"] != a["note"]]
                + [x for a in self.fake.attachments.values() if a["ticket_id"] == tid for x in (a["filename"], a["note"])
                   if x])

    def ticket_fields(self, external_id: str) -> dict[str, object]:
        return {k: v for k, v in self.fake.tickets[int(external_id)].items() if k not in BOOKKEEPING}

    def request_count(self) -> int:
        return len(self.fake.requests)

    def webhook(self, ticket_external_id: str, *, action: str = "updated",
                valid: bool = True) -> tuple[Mapping[str, str], bytes]:
        hook_id = "5f0c1a2b-0000-4000-8000-000000000001"
        self.fake.webhooks.setdefault(hook_id, {
            "id": hook_id, "name": wh.hook_name("https://deskbridge.example/hooks"), "active": True, "type": 0,
            "url": "https://deskbridge.example/hooks", "authentication_type": wh.AUTH_API_KEY,
            "authentication_header": "Token", "basic_password": WEBHOOK_SECRET})
        headers, body = self.fake.signed_delivery(hook_id, int(ticket_external_id))
        if not valid:
            headers = {**headers, "token": "AAAA" + headers["token"][4:]}
        return headers, body


@asynccontextmanager
async def halopsa_harness(tmp_path: Path) -> AsyncIterator[HaloHarness]:
    """A fresh fake tenant holding SEEDED tickets changed before ANCHOR, its clock frozen at ANCHOR."""
    fake = FakeHalo(clock=HaloClock(ANCHOR - timedelta(hours=2), step=timedelta(0)))
    for i in range(SEEDED):
        fake.clock.set(ANCHOR - timedelta(hours=1) + timedelta(seconds=i // 3))  # several share a second
        fake.add_ticket(f"Seeded ticket {i}", client_id=12)
    fake.clock.set(ANCHOR)
    harness = HaloHarness(fake, cache=InMemoryTokenCache(clock=fake.clock.epoch))
    try:
        yield harness
    finally:
        for connector in harness.connectors:
            await connector.aclose()
