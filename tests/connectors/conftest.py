"""Fixtures of the connector contract suite: one `harness` per registered connector.

To add a connector to the contract suite, add one line to HARNESSES: its name and the dotted path of a
HarnessFactory (see tests/connectors/contract.py for the interface). Factories are imported lazily so
that a connector whose fake is not written yet fails only its own parameter.
"""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.connectors.contract import Harness, HarnessFactory

HARNESSES: dict[str, str] = {
    "autotask": "tests.fakes.autotask_harness:autotask_harness",
    "sandbox": "tests.connectors.sandbox_harness:sandbox_harness",
    "connectwise": "tests.fakes.connectwise_harness:connectwise_harness",
    "halopsa": "tests.fakes.halopsa_harness:halopsa_harness",
}


def _factory(name: str) -> HarnessFactory:
    module, _, attr = HARNESSES[name].partition(":")
    return getattr(importlib.import_module(module), attr)  # type: ignore[no-any-return]


@pytest.fixture(params=sorted(HARNESSES))
async def harness(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Harness]:
    """A fresh fake PSA and its connector factory, once per registered connector."""
    async with _factory(request.param)(tmp_path) as h:
        yield h
