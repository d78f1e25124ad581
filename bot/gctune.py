"""Garbage-collector settings for a latency-bound server (Slack acks must leave in well under 3 s).

Measured in bench/slack_ack.py: with CPython's defaults a full (generation 2) collection walked ~290k
long-lived objects (modules, SQLAlchemy and pydantic metadata, caches, the in-process sandbox PSA) every
few seconds and held the event loop for 90-170 ms; a burst of acks that met one missed its p99 target.
After start-up we collect once and move every surviving object to the permanent generation
(`gc.freeze`), so later full collections walk only what was allocated since; and we raise the
generation-0 threshold so short-lived request objects die by reference counting before a collection
promotes them. Reference counting still frees everything acyclic at once; only the cycle finder runs
less often and over fewer objects.
"""

from __future__ import annotations

import gc
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")

# gen0 700 -> 20,000 allocations between young collections; gen1/gen2 multipliers kept near defaults.
THRESHOLDS = (20_000, 10, 10)
# With a quiet-time collector (bot/idle.py runs generations 1 and 2 when THRESHOLDS say they are due and no
# request is in flight), the automatic generation-1 threshold is only a safety net for a server never quiet.
QUIET_THRESHOLDS = (20_000, 50, 10)
_active = THRESHOLDS


def settle() -> int:
    """Collect, freeze what survived start-up, and set the thresholds. Returns the objects frozen."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*_active)
    return gc.get_freeze_count()


def collect_when_quiet() -> None:
    """A quiet-time collector runs from now on (bot/idle.py): older generations wait for it."""
    global _active
    _active = QUIET_THRESHOLDS
    gc.set_threshold(*_active)


def after_first(body: Callable[[], Awaitable[T]]) -> Callable[[], Awaitable[T]]:
    """`body`, settling the collector again once it has completed for the first time in this process.

    Used on a connection's sync job: the first sync loads what stays alive for the life of the process
    (mappings, picklists, connector and ORM state); frozen, it leaves later full collections' walks too.
    The extra `gc.collect()` costs one pause, once.
    """
    done = False

    async def run() -> T:
        nonlocal done
        result = await body()
        if not done:
            done = True
            settle()
        return result

    return run
