"""The sandbox's desk as Deskbridge sees it: the SLA mix of its open tickets on several dates and hours.

Each anchor generates the sandbox's demo data at that instant, syncs it into a fresh SQLite database
and asks Deskbridge's own SLA service (default policy: business hours Mon-Fri 08:00-17:00 UTC) how
much of each open ticket's target is used: within (< 75 %), at risk (75-100 %), breached. The target is
"most within, a few at risk, a couple breached" whatever the weekday or hour.

    .venv/bin/python bench/sandbox_desk.py      # prints the mix, writes bench/results/sandbox_desk.json

The fixed anchors cover weekdays, a Friday evening, a weekend night and the turn of the year; the run's own
moment is added last, so the mix of the desk a newcomer gets today is reported too.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]  # bench/queue.py

from bot.main import Deskbridge, bootstrap, build, settings_from_env  # noqa: E402
from connectors.sandbox.server import forget, server_for  # noqa: E402
from store.crypto import generate_key  # noqa: E402
from store.enums import Stage  # noqa: E402

ANCHORS = [datetime(2026, 3, 2, 9, 0, tzinfo=UTC), datetime(2026, 3, 4, 15, 30, tzinfo=UTC),
           datetime(2026, 3, 6, 16, 55, tzinfo=UTC), datetime(2026, 3, 7, 3, 0, tzinfo=UTC),
           datetime(2026, 12, 27, 23, 0, tzinfo=UTC), datetime(2027, 7, 13, 12, 10, tzinfo=UTC)]
AT_RISK = 0.75


async def desk_mix(container: Deskbridge, anchor: datetime, seed: int = 42) -> dict[str, Any]:
    """Sync a sandbox generated at `anchor` into a bootstrapped container with no other tickets; the SLA
    bands of its open tickets."""
    ws = container.default_workspace_id
    instance = uuid.uuid4().hex
    settings = {"seed": seed, "instance": instance}
    server_for(settings, clock=lambda: anchor)  # the PSA's clock stands at the anchor
    try:
        conn, _ = await container.connections.add(ws, kind="sandbox", name=f"desk-{instance[:8]}",
                                               settings=settings, credentials={"api_key": "sandbox"})
        assert conn.id is not None
        await container.sync.run(conn.id, full=True)
        worst: dict[int, float] = {}
        stages: dict[int, str] = {}
        for r in await container.sla.results(ws, None, anchor):
            if not Stage(r.ticket.stage).is_open or r.state.target_s <= 0:
                continue
            if r.state.stopped_at is not None:
                continue
            stages[r.ticket.id] = r.ticket.stage
            share = r.figures.used / r.state.target_s
            worst[r.ticket.id] = max(worst.get(r.ticket.id, 0.0), share)
        bands = Counter("breached" if s >= 1.0 else "at_risk" if s >= AT_RISK else "within" for s in worst.values())
        return {"anchor": anchor.isoformat(), "open": len(worst), **{k: bands.get(k, 0) for k in
                ("within", "at_risk", "breached")}, "stages": dict(Counter(stages.values()))}
    finally:
        forget(settings)


async def main() -> None:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, anchor in enumerate([*ANCHORS, datetime.now(UTC).replace(microsecond=0)]):
            settings = settings_from_env(database_url=f"sqlite:///{tmp}/desk{i}.db", sandbox="off",
                                         secret_key=generate_key(), secret_key_file=Path(tmp) / "k")
            container = build(settings)
            await bootstrap(container)
            try:
                rows.append(await desk_mix(container, anchor))
            finally:
                await container.aclose()
    for r in rows:
        print(f"{r['anchor']:<26} open {r['open']:>3}: within {r['within']:>3}, at risk {r['at_risk']:>2}, "
              f"breached {r['breached']:>2}")
    out = ROOT / "bench" / "results" / "sandbox_desk.json"
    out.write_text(json.dumps({"anchors": rows}, indent=2) + "\n")


if __name__ == "__main__":
    asyncio.run(main())
