"""The README's first picture: what the console shows for the sandbox's desk, from the real views.

Generates the sandbox at this moment (so ages and SLA figures are today's), syncs it into a throwaway
database, runs `/tickets` and `/ticket 1300` in a console session as its first technician, and writes
the transcript between the README's `<!-- console:start -->` and `<!-- console:end -->` markers.
Run it again when the console's views change:

    .venv/bin/python scripts/readme_console.py          # --print to show it without touching README.md
"""

from __future__ import annotations

import asyncio
import re
import sys
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != ROOT / "scripts"]

from bot.console.session import ConsoleSession  # noqa: E402
from bot.main import Deskbridge, bootstrap, build, settings_from_env  # noqa: E402
from connectors.sandbox.server import forget  # noqa: E402
from store.crypto import generate_key  # noqa: E402

COMMANDS = ["/tickets", "/ticket 1300"]
START, END = "<!-- console:start -->", "<!-- console:end -->"


@asynccontextmanager
async def sandbox_desk() -> AsyncIterator[Deskbridge]:
    """A container on a throwaway database with the sandbox desk generated now and synced (used by the pictures too)."""
    with tempfile.TemporaryDirectory() as tmp:
        settings = settings_from_env(database_url=f"sqlite:///{tmp}/readme.db", sandbox="on",
                                     secret_key=generate_key(), secret_key_file=Path(tmp) / "k",
                                     run_scheduler=False, run_outbox_worker=False)
        container = build(settings)
        try:
            await bootstrap(container)
            for conn in await container.connections.list(container.default_workspace_id):
                assert conn.id is not None
                await container.sync.run(conn.id)
            yield container
        finally:
            await container.aclose()
            forget()


async def transcript() -> str:
    """The console's answers to COMMANDS against a fresh sandbox desk."""
    out: list[str] = []
    async with sandbox_desk() as container:
        queue = iter(COMMANDS)

        async def read(prompt: str) -> str | None:
            line = next(queue, None)
            if line is not None:
                out.append(f"{prompt}{line}")
            return line

        session = ConsoleSession(container, read=read, write=out.append, user_id="readme")
        await session.run()
    lines = "\n".join(out).splitlines()
    keep = [line.rstrip() for line in lines if not line.startswith(("Deskbridge console", "You are", "Bye."))]
    return "\n".join(line for line in keep if line.strip() and line.strip() != "deskbridge>")


def splice(readme: str, text: str) -> str:
    """README with the transcript between the markers (which must be there)."""
    if START not in readme or END not in readme:
        raise SystemExit(f"README.md has no {START} … {END} block to fill.")
    block = f"{START}\n```text\n{text}\n```\n{END}"
    return re.sub(re.escape(START) + r".*?" + re.escape(END), lambda _: block, readme, flags=re.S)


def main() -> None:
    text = asyncio.run(transcript())
    if "--print" in sys.argv:
        print(text)
        return
    path = ROOT / "README.md"
    path.write_text(splice(path.read_text(), text))
    print(f"README.md: console picture updated ({len(text.splitlines())} lines)")


if __name__ == "__main__":
    main()
