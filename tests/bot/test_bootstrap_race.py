"""Instances starting at the same moment (serve + background, several serve) all come up."""

from __future__ import annotations

import asyncio

from sqlmodel import select

from bot.main import bootstrap, build, settings_from_env
from store.crypto import generate_key
from store.db import Scope
from store.tables import PsaConnection, Workspace


async def test_concurrent_bootstraps_create_one_workspace_and_one_sandbox(db_url: str, tmp_path):
    key = generate_key()
    containers = [build(settings_from_env(database_url=db_url, sandbox="on", secret_key=key,
                                          secret_key_file=tmp_path / "k", run_scheduler=False))
                  for _ in range(3)]
    try:
        results = await asyncio.gather(*(bootstrap(c) for c in containers), return_exceptions=True)
        assert [r for r in results if isinstance(r, BaseException)] == []
        assert len({c.default_workspace_id for c in containers}) == 1
        async with containers[0].db.read(Scope.system_wide()) as s:
            assert len((await s.exec(select(Workspace))).all()) == 1
            assert len((await s.exec(select(PsaConnection).where(PsaConnection.kind == "sandbox"))).all()) == 1
    finally:
        for c in containers:
            await c.aclose()
