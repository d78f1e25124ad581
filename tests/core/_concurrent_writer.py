"""A writer process for test_concurrency: creates and comments on tickets as fast as it can."""

from __future__ import annotations

import asyncio
import json
import sys

from core.context import Actor
from core.tickets import TicketService
from store.db import Database
from store.enums import Origin


async def main(url: str, workspace_id: int, member_id: int, n: int) -> None:
    db = Database(url)
    svc = TicketService(db)
    actor = Actor(workspace_id=workspace_id, origin=Origin.API, member_id=member_id, display="proc")
    numbers, errors = [], []
    for i in range(n):
        try:
            d = await svc.create(actor, subject=f"load {i}")
            await svc.comment(actor, d.summary.number, f"note {i}", visibility="internal")
            await svc.change_status(actor, d.summary.number, "in progress")
            numbers.append(d.summary.number)
        except Exception as exc:  # reported to the test, which fails on any
            errors.append(f"{type(exc).__name__}: {exc}")
    await db.dispose()
    print(json.dumps({"numbers": numbers, "errors": errors}))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])))
