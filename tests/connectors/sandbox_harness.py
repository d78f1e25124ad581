"""The sandbox's contract-suite harness (see tests/connectors/contract.py for the interface)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from connectors.base import ConnectionConfig, PsaConnector
from connectors.sandbox.connector import SandboxConnector
from connectors.sandbox.server import SandboxServer, forget, server_for
from tests.connectors.contract import FaultKind

ANCHOR = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # the generated data ends just before this


@dataclass
class SandboxHarness:
    settings: dict[str, Any]
    server: SandboxServer
    name: str = "sandbox"
    connectors: list[SandboxConnector] = field(default_factory=list)

    def make_connector(self, *, bad_credentials: bool = False) -> PsaConnector:
        config = ConnectionConfig(connection_id=1, workspace_id=1, kind="sandbox", settings=self.settings,
                                  credentials={"api_key": "wrong-key" if bad_credentials else "sandbox"})
        connector = SandboxConnector(config)
        self.connectors.append(connector)
        return connector

    def now(self) -> datetime:
        return self.server.now()

    def set_now(self, when: datetime) -> None:
        self.server.set_now(when)

    def seed_ticket(self, summary: str, *, at: datetime) -> str:
        return str(self.server.apply(lambda: self.server.seed_ticket(summary, at=at))["id"])

    def touch_ticket(self, external_id: str, *, at: datetime) -> None:
        self.server.apply(lambda: self.server.touch_ticket(int(external_id), at=at))

    def delete_ticket(self, external_id: str) -> None:
        self.server.apply(lambda: self.server.delete_ticket(int(external_id)))

    def ticket_ids(self) -> set[str]:
        return {str(t["id"]) for t in self.server.data["tickets"] if not t.get("deleted")}

    def fail_next(self, kind: FaultKind, *, retry_after: float | None = None, times: int = 1) -> None:
        self.server.fail_next(kind.value, retry_after=retry_after, times=times)

    def count_writes(self, marker: str) -> int:
        return sum(t.get("marker") == marker for t in self.server.data["tickets"])

    def stored_texts(self, ticket_external_id: str) -> list[str]:
        data, tid = self.server.data, int(ticket_external_id)
        return ([n["text"] for n in data["notes"] if n["ticket_id"] == tid]
                + [e["notes"] for e in data["time_entries"] if e["ticket_id"] == tid]
                + [a["filename"] for a in data["attachments"] if a["ticket_id"] == tid])

    def ticket_fields(self, external_id: str) -> dict[str, object]:
        ticket = next(t for t in self.server.data["tickets"] if t["id"] == int(external_id))
        return {k: v for k, v in ticket.items() if k not in ("updated_at",)}

    def request_count(self) -> int:
        return self.server.requests

    def webhook(self, ticket_external_id: str, *, action: str = "updated",
                valid: bool = True) -> tuple[Mapping[str, str], bytes]:
        headers, body = self.server.webhook_for(int(ticket_external_id), action)
        if not valid:
            headers = {**headers, "x-sandbox-signature": "v1=" + "0" * 64}
        return headers, body


@asynccontextmanager
async def sandbox_harness(tmp_path: Path) -> AsyncIterator[SandboxHarness]:
    """A fresh in-memory sandbox (its own instance name) with its clock frozen at ANCHOR."""
    settings = {"seed": 7, "instance": uuid.uuid4().hex}
    server = server_for(settings, clock=lambda: ANCHOR)
    try:
        yield SandboxHarness(settings=settings, server=server)
    finally:
        forget(settings)
