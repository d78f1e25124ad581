"""A workspace's support mailbox: its configuration (credentials encrypted, checked before saving), and
the poll that hands each new message to MailIntake and advances the watermark only after the whole batch
was taken, so a message is never skipped (a crash re-reads the batch; Message-IDs stop doubles).

`psa_handles_mail` (the PSA's own mail connector is the system of record) turns polling off without losing
the configuration, so nothing is ingested twice.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlmodel import select

from connectors.mailbox import MailboxError, MailboxReader
from core.admin_audit import Who, record_change
from core.errors import ConnectionProblem, InvalidInput, NotFound
from core.intake.mail import MailIntake, MailOutcome
from core.intake.mail_triage import MailTriage
from store.crypto import CredentialCipher
from store.db import Database, Scope
from store.tables import Workspace

log = logging.getLogger("deskbridge.intake.mailbox")

SETTINGS_KEY = "mailbox"
CIPHER_KIND = "mailbox"
BATCH = 25
MAX_BATCHES = 40  # per poll: a large backlog is worked off over several polls
REQUIRED = {"imap": ("host", "username", "password"), "graph": ("mailbox", "tenant", "client_id", "client_secret")}
ReaderFactory = Callable[[str, Mapping[str, Any]], MailboxReader]


@dataclass(frozen=True, slots=True)
class PollResult:
    taken: int
    outcomes: dict[str, int]
    watermark_advanced: bool


class MailboxService:
    def __init__(self, db: Database, *, cipher: CredentialCipher, intake: MailIntake, readers: ReaderFactory) -> None:
        self.db, self.cipher, self.intake, self.readers = db, cipher, intake, readers
        self.triage = MailTriage(db, intake=intake)  # list, read, assign and discard mail waiting in triage

    async def configure(self, workspace_id: int, kind: str, config: Mapping[str, Any], *,
                        own_addresses: tuple[str, ...] = (), actor: Who = None) -> str:
        """Check the mailbox can be read, then store it (credentials encrypted); returns its display name."""
        missing = [k for k in REQUIRED.get(kind, ()) if not str(config.get(k) or "").strip()]
        if kind not in REQUIRED:
            raise InvalidInput(f"'{kind}' is not a mailbox kind.", hint="Use imap or graph.")
        if missing:
            raise InvalidInput(f"The {kind} mailbox needs {', '.join(missing)}.", hint="Give every value and try again.")
        await self._check(kind, config)
        display = str(config.get("mailbox") or f"{config.get('username')}@{config.get('host')}")
        blob = self.cipher.encrypt(dict(config), workspace_id=workspace_id, kind=CIPHER_KIND)
        own = sorted({a.strip().lower() for a in own_addresses if a.strip()} |
                     ({str(config["mailbox"]).lower()} if kind == "graph" else set()))
        async with self.db.write(Scope.workspace(workspace_id)) as session:
            ws = await session.get(Workspace, workspace_id)
            assert ws is not None
            ws.settings = {**ws.settings, SETTINGS_KEY: {
                "kind": kind, "ciphertext": base64.b64encode(blob).decode(), "display": display,
                "own_addresses": own, "watermark": None, "psa_handles_mail": False}}
            record_change(session, actor, workspace_id, "intake.mailbox",
                          {"kind": kind, "mailbox": display, "own_addresses": own})  # never the secret
        return display

    async def _check(self, kind: str, config: Mapping[str, Any]) -> None:
        reader = self.readers(kind, config)
        try:
            await reader.fetch(None, 0)
        except MailboxError as exc:
            raise ConnectionProblem(exc.message, hint=exc.hint or None) from None
        finally:
            await reader.aclose()

    async def test(self, workspace_id: int) -> str:
        """Read the stored mailbox once without taking anything (`deskbridge intake mail-test`)."""
        entry, config = await self._stored(workspace_id)
        await self._check(entry["kind"], config)
        return str(entry["display"])

    async def set_psa_handles_mail(self, workspace_id: int, value: bool, *, actor: Who = None) -> None:
        async with self.db.write(Scope.workspace(workspace_id)) as session:
            ws = await session.get(Workspace, workspace_id)
            assert ws is not None
            entry = dict(ws.settings.get(SETTINGS_KEY) or {})
            if not entry:
                raise NotFound("No mailbox is configured.", hint="Set one on the admin page Intake (/admin/intake) or with `deskbridge intake mail-set`.")
            ws.settings = {**ws.settings, SETTINGS_KEY: {**entry, "psa_handles_mail": value}}
            record_change(session, actor, workspace_id, "intake.mailbox.psa_handles", {"value": value})

    async def entry(self, workspace_id: int) -> dict[str, Any] | None:
        """The configured mailbox without its credentials (kind, display, psa_handles_mail, …), or None."""
        async with self.db.read(Scope.workspace(workspace_id)) as session:
            ws = await session.get(Workspace, workspace_id)
        entry = dict((ws.settings if ws else {}).get(SETTINGS_KEY) or {})
        entry.pop("ciphertext", None)
        return entry or None

    async def describe(self, workspace_id: int) -> dict[str, Any] | None:
        """What the admin pages show of the mailbox: kind, display, own addresses, psa_handles_mail."""
        entry = await self.entry(workspace_id)
        if not entry:
            return None
        return {"kind": entry.get("kind"), "display": entry.get("display"),
                "own_addresses": list(entry.get("own_addresses") or []),
                "psa_handles_mail": bool(entry.get("psa_handles_mail"))}

    async def _stored(self, workspace_id: int) -> tuple[dict[str, Any], dict[str, Any]]:
        async with self.db.read(Scope.workspace(workspace_id)) as session:
            ws = await session.get(Workspace, workspace_id)
        entry = dict((ws.settings if ws else {}).get(SETTINGS_KEY) or {})
        if not entry:
            raise NotFound("No mailbox is configured.", hint="Set one on the admin page Intake (/admin/intake) or with `deskbridge intake mail-set`.")
        blob = base64.b64decode(entry["ciphertext"])
        return entry, self.cipher.decrypt(blob, workspace_id=workspace_id, kind=CIPHER_KIND)

    async def _save_watermark(self, workspace_id: int, watermark: str | None) -> None:
        async with self.db.write(Scope.workspace(workspace_id)) as session:
            ws = await session.get(Workspace, workspace_id)
            assert ws is not None
            ws.settings = {**ws.settings, SETTINGS_KEY: {**ws.settings[SETTINGS_KEY], "watermark": watermark}}

    async def replay(self, workspace_id: int, receipt_id: int, *, actor: Who = None,
                     anyway: bool = False) -> MailOutcome:
        """A message in triage (or stuck; or automatic, `anyway`) taken again from its kept raw bytes
        (MailIntake.replay), with our own addresses."""
        entry = await self.entry(workspace_id) or {}
        return await self.intake.replay(workspace_id, receipt_id, actor=actor, anyway=anyway,
                                        own_addresses=frozenset(entry.get("own_addresses") or ()))

    async def poll(self, workspace_id: int) -> PollResult:
        """Take every new message of the workspace's mailbox (see module doc)."""
        entry, config = await self._stored(workspace_id)
        outcomes: dict[str, int] = {}
        if entry.get("psa_handles_mail"):
            return PollResult(0, outcomes, False)
        reader = self.readers(entry["kind"], config)
        own = frozenset(entry.get("own_addresses") or ())
        watermark, advanced, taken = entry.get("watermark"), False, 0
        try:
            for _ in range(MAX_BATCHES):
                batch = await reader.fetch(watermark, BATCH)
                for item in batch.items:
                    out = await self.intake.ingest(workspace_id, item.raw, own_addresses=own)
                    outcomes[out.outcome] = outcomes.get(out.outcome, 0) + 1
                    taken += 1
                    if out.outcome == "busy":  # another poller holds it: read this batch again next time
                        return PollResult(taken, outcomes, advanced)
                if batch.watermark != watermark:
                    watermark, advanced = batch.watermark, True
                    await self._save_watermark(workspace_id, watermark)
                if not batch.more:
                    break
        except MailboxError as exc:
            log.warning("mailbox poll failed", extra={"workspace_id": workspace_id, "reason": exc.message})
            raise ConnectionProblem(exc.message, hint=exc.hint or None) from None
        finally:
            await reader.aclose()
        return PollResult(taken, outcomes, advanced)

    async def poll_all(self) -> int:
        """The scheduler job: poll every workspace with a mailbox; one failing mailbox never stops the others."""
        async with self.db.read(Scope.system_wide()) as session:
            rows = (await session.exec(select(Workspace))).all()
        total = 0
        for ws in rows:
            entry = (ws.settings or {}).get(SETTINGS_KEY)
            if not entry or entry.get("psa_handles_mail"):
                continue
            try:
                total += (await self.poll(ws.id)).taken  # type: ignore[arg-type]
            except Exception:
                log.warning("mailbox poll failed", extra={"workspace_id": ws.id}, exc_info=False)
        return total
