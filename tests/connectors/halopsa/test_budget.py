"""The tenant's request budget: a sliding window (hosted Halo: 300 per rolling 5 minutes, token calls included),
shared by every connector of the tenant built with the same RequestBudgets."""

from __future__ import annotations

import pytest

from connectors.errors import PsaValidationError
from connectors.halopsa.budget import WINDOW_MARGIN, RequestBudget, RequestBudgets, budget_settings
from connectors.halopsa.connector import HaloPsaConnector
from tests.fakes.halopsa import FakeHalo


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


async def test_the_window_waits_for_its_oldest_request() -> None:
    clock = Clock()
    budget = RequestBudget(3, 10.0, clock=clock, sleep=clock.sleep)
    for _ in range(3):
        await budget.acquire()
        clock.now += 1
    assert clock.slept == []
    await budget.acquire()  # the 4th waits until the 1st (at 1000) leaves the window (1010)
    assert clock.slept == [pytest.approx(7.0)] and clock.now == pytest.approx(1010.0)
    assert budget.requests == 4 and budget.waited == pytest.approx(7.0)


def test_settings_and_one_budget_per_tenant() -> None:
    assert budget_settings({}) == (300, 300.0 + WINDOW_MARGIN)
    assert budget_settings({"rate_limit_requests": "150", "rate_limit_window_seconds": 300}) == (150, 302.0)
    budgets = RequestBudgets()
    assert budgets.get("a") is budgets.get("a") and budgets.get("a") is not budgets.get("b")
    assert budgets.get("a", 100).limit == 100


async def test_connectors_sharing_budgets_count_every_request_token_calls_included() -> None:
    fake = FakeHalo()
    clock = Clock()
    budgets = RequestBudgets(clock=clock, sleep=clock.sleep)
    sync, outbox = (HaloPsaConnector(fake.config(), transport=fake.transport(), budgets=budgets) for _ in range(2))
    await sync.list_members()
    await outbox.list_members()
    assert sync.budget is outbox.budget
    sent = len(fake.requests)  # authinfo, token(s) and the API calls of both
    assert sync.budget.requests == sent and sent >= 4
    with pytest.raises(PsaValidationError):
        HaloPsaConnector(fake.config(rate_limit_requests="many"), transport=fake.transport())
    for c in (sync, outbox):
        await c.aclose()
