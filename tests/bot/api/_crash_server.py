"""A Deskbridge API instance that dies badly, for tests/bot/api/test_crash.py (run as a child process).

Creates commit but their responses are never saved (the process is SIGKILLed while they wait); comments never
reach their commit. Everything else is the real app on the test's database.
Usage: python -m tests.bot.api._crash_server '{"database_url": …, "secret_key": …, "port": …, "lease": …}'
"""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import uvicorn

from bot.api.app import create_app
from bot.main import build
from core.idempotency import IdempotencyService
from core.tickets import TicketService
from tests.bot.api.conftest import api_settings


async def _forever(*_args: Any, **_kwargs: Any) -> Any:
    await asyncio.Event().wait()


def main() -> None:
    cfg = json.loads(sys.argv[1])
    IdempotencyService.complete = _forever  # type: ignore[method-assign]  # work committed, response never saved
    TicketService.comment = _forever  # type: ignore[method-assign]  # work never committed
    settings = api_settings(cfg["database_url"], Path(cfg["tmp"]), secret_key=cfg["secret_key"],
                            api_rate_per_second=10_000.0, api_rate_burst=10_000)
    container = build(settings)
    container.idempotency.lease = timedelta(seconds=cfg["lease"])
    uvicorn.run(create_app(container, start_background=False), host="127.0.0.1", port=cfg["port"],
                log_config=None, access_log=False)


if __name__ == "__main__":
    main()
