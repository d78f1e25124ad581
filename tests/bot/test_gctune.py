"""The server's GC settings (bot/gctune.py): start-up objects are frozen, young collections are rarer."""

from __future__ import annotations

import gc

from bot import gctune


def test_settle_freezes_survivors_and_raises_the_young_threshold() -> None:
    before = gc.get_threshold()
    try:
        survivor = [object() for _ in range(1000)]  # alive across the call: must end up frozen
        frozen = gctune.settle()
        assert frozen >= len(survivor)
        assert gc.get_freeze_count() == frozen
        assert gc.get_threshold() == gctune.THRESHOLDS
        assert gc.get_threshold()[0] > 700  # above CPython's default
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
