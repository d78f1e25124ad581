"""Alert sources and customer mapping rules: what an admin configures (`deskbridge intake ...`).

A source's secret is generated here, shown once, and stored only encrypted (CredentialCipher, bound to the
workspace and the source's key); the URL path carries the source's public key, never the secret.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from core.admin_audit import Who, record_change
from core.alert_webhooks import generate_secret
from core.errors import Conflict, InvalidInput, NotFound
from core.intake.rules import SCOPES, SOURCE_KINDS, check_setting
from store.crypto import CredentialCipher
from store.db import Database, Scope
from store.tables import Alert, AlertMapping, AlertSource, Customer

CIPHER_KIND = "alert_source:"
PATH = "/webhooks/alerts/"


@dataclass(frozen=True, slots=True)
class SourceInfo:
    name: str
    key: str
    kind: str
    enabled: bool
    settings: dict[str, Any]

    @property
    def path(self) -> str:
        return PATH + self.key


@dataclass(frozen=True, slots=True)
class MappingInfo:
    id: int
    scope: str
    by: str
    value: str
    customer: str


@dataclass(frozen=True, slots=True)
class TriageItem:
    alert_id: int
    source: str
    summary: str
    device: str | None
    status: str
    first_at: Any


def _info(row: AlertSource) -> SourceInfo:
    return SourceInfo(row.name, row.key, row.kind, row.enabled, dict(row.settings or {}))


class AlertSourceService:
    """Sources (with their secrets), settings, mapping rules and the triage list of a workspace."""

    def __init__(self, db: Database, *, cipher: CredentialCipher) -> None:
        self.db, self.cipher = db, cipher

    def encrypt_secret(self, workspace_id: int, key: str, secret: str) -> bytes:
        return self.cipher.encrypt({"secret": secret}, workspace_id=workspace_id, kind=CIPHER_KIND + key)

    def secret_of(self, row: AlertSource) -> str:
        data = self.cipher.decrypt(row.secret_ciphertext, workspace_id=row.workspace_id, kind=CIPHER_KIND + row.key)
        return str(data["secret"])

    async def add(self, workspace_id: int, *, name: str, kind: str, actor: Who = None) -> tuple[SourceInfo, str]:
        """A new source and its secret (the only time the secret is returned)."""
        name = name.strip()
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9 ._-]{0,99}", name):
            raise InvalidInput(f"'{name}' is not a usable source name.",
                               hint="Use letters, digits, spaces, dots, dashes (up to 100), e.g. ninja-main.")
        if kind not in SOURCE_KINDS:
            raise InvalidInput(f"'{kind}' is not an alert format.", hint="Use " + ", ".join(SOURCE_KINDS) + ".")
        key = f"{kind.replace('_', '')}-{secrets.token_hex(6)}"
        secret = generate_secret()
        row = AlertSource(workspace_id=workspace_id, key=key, name=name, kind=kind,
                          secret_ciphertext=self.encrypt_secret(workspace_id, key, secret))
        try:
            async with self.db.write(Scope.workspace(workspace_id)) as session:
                session.add(row)
                await session.flush()
                record_change(session, actor, workspace_id, "intake.source.add", {"name": name, "kind": kind})
        except IntegrityError:
            raise Conflict(f"A source named '{name}' exists already.",
                           hint="Pick another name, or give it a new secret (admin page Intake, or "
                                "`deskbridge intake rotate-secret`).") from None
        return _info(row), secret

    async def _get(self, session: Any, name: str) -> AlertSource:
        row = (await session.exec(select(AlertSource).where(AlertSource.name == name.strip()))).first()
        if row is None:
            raise NotFound(f"No alert source is named '{name}'.", hint="See them on the admin page Intake (/admin/intake) or with "
                                                                                  "`deskbridge intake sources`.")
        return row

    async def rotate_secret(self, workspace_id: int, name: str, *, actor: Who = None) -> str:
        """A new secret for the source; the old one stops working at once."""
        secret = generate_secret()
        async with self.db.write(Scope.workspace(workspace_id)) as session:
            row = await self._get(session, name)
            row.secret_ciphertext = self.encrypt_secret(workspace_id, row.key, secret)
            record_change(session, actor, workspace_id, "intake.source.rotate", {"name": row.name})  # not the secret
        return secret

    async def sources(self, workspace_id: int, *, limit: int | None = None,
                      after: str | None = None) -> list[SourceInfo]:
        """Sources by name (a keyset page: `limit` of them after the name `after`)."""
        stmt = select(AlertSource).where(AlertSource.name > after) if after else select(AlertSource)
        stmt = stmt.order_by(AlertSource.name)
        async with self.db.read(Scope.workspace(workspace_id)) as session:
            rows = (await session.exec(stmt.limit(limit) if limit is not None else stmt)).all()
            return [_info(r) for r in rows]

    async def set_option(self, workspace_id: int, name: str, option: str, value: str, *,
                         actor: Who = None) -> SourceInfo:
        """Change one source setting (on_resolve, group_window_minutes, storm_threshold, severity.<sev>, enabled)."""
        async with self.db.write(Scope.workspace(workspace_id)) as session:
            row = await self._get(session, name)
            record_change(session, actor, workspace_id, "intake.source.set", {"name": row.name, option: value})
            if option == "enabled":
                if value not in ("on", "off"):
                    raise InvalidInput("enabled is on or off.", hint="Use on or off.", field=option)
                row.enabled = value == "on"
                return _info(row)
            stored = check_setting(option, value)
            settings = dict(row.settings or {})
            if option.startswith("severity."):
                settings["severity_map"] = {**settings.get("severity_map", {}), option.split(".", 1)[1]: stored}
            else:
                settings[option] = stored
            row.settings = settings
            return _info(row)

    # ------------------------------------------------------------ mappings

    async def map(self, workspace_id: int, *, scope: str, by: str, value: str, customer: str,
                  actor: Who = None) -> MappingInfo:
        """Alerts whose `scope` (device/site/org) has this RMM id or name belong to `customer` (id, identifier or name)."""
        if scope not in SCOPES:
            raise InvalidInput(f"'{scope}' is not a scope.", hint="Use device, site or org.")
        if by not in ("id", "name"):
            raise InvalidInput(f"'{by}' is not a match kind.", hint="Use id (the RMM's id) or name.")
        value = value.strip().lower() if by == "name" else value.strip()
        if not value or len(value) > 200:
            raise InvalidInput("The value to match is empty or longer than 200 characters.",
                               hint="Give the RMM's id or name of the device, site or organisation.", field="value")
        async with self.db.write(Scope.workspace(workspace_id)) as session:
            target = await _customer(session, customer)
            existing = (await session.exec(select(AlertMapping).where(
                AlertMapping.scope == scope, AlertMapping.by == by, AlertMapping.value == value))).first()
            row = existing or AlertMapping(workspace_id=workspace_id, scope=scope, by=by, value=value,
                                           customer_id=target.id)  # type: ignore[arg-type]
            row.customer_id = target.id  # type: ignore[assignment]
            session.add(row)
            await session.flush()
            record_change(session, actor, workspace_id, "intake.rule.add",
                          {"rule": row.id, "scope": scope, "by": by, "value": value, "customer": target.name})
            return MappingInfo(row.id, scope, by, value, target.name)  # type: ignore[arg-type]

    async def unmap(self, workspace_id: int, mapping_id: int, *, actor: Who = None) -> None:
        async with self.db.write(Scope.workspace(workspace_id)) as session:
            row = await session.get(AlertMapping, mapping_id)
            if row is None:
                raise NotFound(f"Mapping {mapping_id} was not found.", hint="See them on the admin page Intake (/admin/intake) or "
                                            "with `deskbridge intake mappings`.")
            record_change(session, actor, workspace_id, "intake.rule.remove",
                          {"rule": mapping_id, "scope": row.scope, "by": row.by, "value": row.value})
            await session.delete(row)

    async def mappings(self, workspace_id: int, *, limit: int | None = None,
                       after: int | None = None) -> list[MappingInfo]:
        """Every rule by scope, kind and value; or a keyset page by id (`limit` after the id `after`)."""
        stmt = select(AlertMapping, Customer).join(Customer, col(Customer.id) == AlertMapping.customer_id)
        if limit is None:
            stmt = stmt.order_by(col(AlertMapping.scope), col(AlertMapping.by), col(AlertMapping.value))
        else:
            stmt = stmt.where(col(AlertMapping.id) > (after or 0)).order_by(col(AlertMapping.id)).limit(limit)
        async with self.db.read(Scope.workspace(workspace_id)) as session:
            rows = (await session.exec(stmt)).all()
            return [MappingInfo(m.id, m.scope, m.by, m.value, c.name) for m, c in rows]  # type: ignore[arg-type]

    async def triage(self, workspace_id: int, limit: int = 100, *, after: int | None = None) -> list[TriageItem]:
        """Alerts no rule could place with a customer (kept, waiting for a mapping), oldest first; with `after`
        (an alert id) a keyset page in the order they arrived."""
        stmt = (select(Alert, AlertSource).join(AlertSource, col(AlertSource.id) == Alert.source_id)
                .where(col(Alert.customer_id).is_(None), col(Alert.ticket_id).is_(None))
                .where(col(Alert.status).in_(("triage", "triage_resolved"))))
        if after is None:
            stmt = stmt.order_by(col(Alert.first_at))
        else:
            stmt = stmt.where(col(Alert.id) > after).order_by(col(Alert.id))
        async with self.db.read(Scope.workspace(workspace_id)) as session:
            rows = (await session.exec(stmt.limit(limit))).all()
            return [TriageItem(a.id, s.name, a.summary, a.device_name, a.status, a.first_at)  # type: ignore[arg-type]
                    for a, s in rows]


async def _customer(session: Any, text: str) -> Customer:
    q = text.strip()
    rows = list((await session.exec(select(Customer).where(Customer.active == sa.true()))).all())
    hits = [c for c in rows if str(c.id) == q] or \
        [c for c in rows if c.identifier.lower() == q.lower() or c.name.lower() == q.lower()]
    if len(hits) == 1:
        return hits[0]
    if not hits:
        raise NotFound(f"No active customer matches '{text}'.", hint="Use the customer's id, identifier or exact name.")
    raise InvalidInput(f"'{text}' matches several customers.", hint="Use the customer's id.")
