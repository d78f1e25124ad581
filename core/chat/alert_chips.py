"""The RMM alerts linked to a ticket, as chips on a technician's card (issue 21): source, severity, state,
and a link to the alert (the event's own link, else the workspace's `rmm_alert_url` template)."""

from __future__ import annotations

from collections.abc import Callable

from sqlmodel import col, select

from core.context import Actor
from core.views import AlertChip
from store.db import Database
from store.tables import Alert, AlertReceipt, AlertSource

MAX_CHIPS = 10  # a grouped storm ticket can carry many alerts: the newest ones


async def alert_chips(db: Database, actor: Actor, ticket_id: int,
                      template: Callable[[str], str | None]) -> tuple[AlertChip, ...]:
    """The ticket's alerts, newest first; `template(alert_ref)` makes a link when the event had none."""
    async with db.read(actor.scope) as session:
        rows = (await session.exec(select(Alert, AlertSource).join(
            AlertSource, col(AlertSource.id) == col(Alert.source_id)).where(col(Alert.ticket_id) == ticket_id)
            .order_by(col(Alert.id).desc()).limit(MAX_CHIPS))).all()
        if not rows:
            return ()
        links: dict[int, str] = {}
        receipts = (await session.exec(select(AlertReceipt.alert_id, AlertReceipt.event).where(
            col(AlertReceipt.alert_id).in_([a.id for a, _ in rows])).order_by(col(AlertReceipt.id).desc()))).all()
        for alert_id, event in receipts:
            href = next((str(x[0]) for x in (event or {}).get("links") or () if x and str(x[0]).startswith("https://")),
                        None)
            if href and alert_id not in links:
                links[alert_id] = href
    return tuple(AlertChip(source=src.name, severity=a.severity, state=a.status, summary=a.summary,
                           triggers=a.triggers, url=links.get(a.id) or template(f"{src.key}:{a.dedup_key}"))  # type: ignore[arg-type]
                 for a, src in rows)
