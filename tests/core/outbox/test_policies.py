"""Pure policies: full-jitter backoff, the circuit breaker, the token bucket and rate limits, redaction."""

from __future__ import annotations

import asyncio
import random

import pytest

from core.outbox.audit import REDACTED, redact
from core.outbox.backoff import BackoffPolicy
from core.outbox.breaker import BreakerState, CircuitBreaker
from core.outbox.ratelimit import (
    SAFETY,
    BudgetExhausted,
    ConnectionBudget,
    RateLimits,
    TokenBucket,
    limits_for,
)

# ---------------------------------------------------------------- backoff


def test_full_jitter_stays_inside_the_window_and_uses_all_of_it():
    policy, rng = BackoffPolicy(base=2, cap=60), random.Random(1)
    for attempt, window in [(1, 2), (2, 4), (3, 8), (5, 32), (6, 60), (40, 60)]:
        samples = [policy.delay(attempt, rng) for _ in range(2000)]
        assert policy.window(attempt) == window
        assert min(samples) >= 0 and max(samples) <= window
        # Full jitter: spread over the whole window, not bunched at its top (equal jitter) or at a point.
        assert min(samples) < 0.05 * window and max(samples) > 0.95 * window
        assert abs(sum(samples) / len(samples) - window / 2) < 0.05 * window


def test_retry_after_is_a_floor_and_is_capped():
    policy, rng = BackoffPolicy(base=2, cap=60, max_retry_after=300), random.Random(2)
    assert all(policy.delay(1, rng, retry_after=30) >= 30 for _ in range(200))
    assert all(policy.delay(1, rng, retry_after=30) == 30 for _ in range(200))  # window 2 < 30
    assert policy.delay(1, rng, retry_after=10_000) == 300
    big = [policy.delay(10, rng, retry_after=5) for _ in range(500)]
    assert min(big) >= 5 and max(big) > 50  # the jitter still applies above the floor


def test_settle_delay_is_a_floor_for_ambiguous_writes():
    policy, rng = BackoffPolicy(base=1, cap=8), random.Random(3)
    assert all(policy.delay(1, rng, settle=45) >= 45 for _ in range(100))


def test_huge_attempt_numbers_do_not_overflow():
    assert BackoffPolicy(base=2, cap=600).window(10_000) == 600


# ---------------------------------------------------------------- breaker


def test_breaker_opens_after_consecutive_failures_and_recovers_through_half_open():
    b = CircuitBreaker(fail_max=3, reset_timeout=30, success_threshold=2)
    assert b.allow(0)
    assert not b.record_failure(1) and not b.record_failure(2)
    b.record_success(3)  # a success resets the count
    assert not b.record_failure(4) and not b.record_failure(5)
    assert b.record_failure(6) and b.state == BreakerState.OPEN
    assert not b.allow(20) and b.is_open(35.9)
    assert b.allow(36) and b.state == BreakerState.HALF_OPEN  # one probe at a time
    assert not b.allow(36)
    b.record_success(37)
    assert b.state == BreakerState.HALF_OPEN and b.allow(37)
    b.record_success(38)
    assert b.state == BreakerState.CLOSED
    assert [s for _, s in b.transitions] == ["open", "half_open", "closed"]


def test_half_open_failure_reopens_for_a_full_period():
    b = CircuitBreaker(fail_max=1, reset_timeout=10)
    b.record_failure(0)
    assert b.allow(10) and b.state == BreakerState.HALF_OPEN
    assert b.record_failure(11) and b.state == BreakerState.OPEN
    assert b.is_open(20.9) and not b.is_open(21)


def test_trip_forces_open_and_release_returns_an_unused_probe():
    b = CircuitBreaker(fail_max=5, reset_timeout=10)
    b.trip(0, 300, "credentials rejected")
    assert b.is_open(299) and b.reason == "credentials rejected"
    assert b.allow(300)
    b.release()
    assert b.allow(300)  # the probe slot came back
    b.reset(301)
    assert b.state == BreakerState.CLOSED and b.reason is None


# ---------------------------------------------------------------- rate limits


def test_token_bucket_allows_a_burst_then_the_rate():
    bucket = TokenBucket(rate=2, capacity=3, now=0)
    assert [bucket.reserve(0) for _ in range(3)] == [0, 0, 0]
    assert bucket.reserve(0) == pytest.approx(0.5)  # queued callers wait their turn
    assert bucket.reserve(0) == pytest.approx(1.0)
    assert bucket.wait_time(10) == 0  # refilled, never above capacity
    assert bucket.tokens == 3
    bucket.reserve(10)
    bucket.give_back()
    assert bucket.tokens == 3


def test_token_bucket_rate_over_a_long_run():
    bucket, t, taken = TokenBucket(rate=5, capacity=1, now=0), 0.0, 0
    while t < 100:
        t += bucket.reserve(t)
        taken += 1
    assert taken == pytest.approx(501, abs=2)  # 5/s over 100 s (+ the initial token)


def test_limits_from_kind_defaults_and_connection_settings():
    at = limits_for("autotask", {})
    assert at.concurrency == 3 and at.per_second * 3600 <= 10_000
    assert limits_for("connectwise", {}).concurrency == 4
    own = limits_for("autotask", {"rate_limit_per_hour": 3600, "max_concurrency": 2, "rate_burst": 4})
    assert own == RateLimits(per_second=1.0, burst=4.0, concurrency=2)
    assert limits_for("connectwise", {"rate_limit_per_minute": 120}).per_second == 2.0
    with pytest.raises(ValueError):
        limits_for("connectwise", {"rate_limit_per_second": 0})


async def test_budget_gates_concurrency_and_refuses_past_the_deadline():
    now = [0.0]
    slept: list[float] = []

    async def sleep(s: float) -> None:
        slept.append(s)
        now[0] += s

    budget = ConnectionBudget(RateLimits(per_second=1, burst=1, concurrency=2), clock=lambda: now[0], sleep=sleep)
    async with budget.request():
        pass
    async with budget.request(deadline=5):
        pass
    assert slept == [pytest.approx(1 / SAFETY)]  # a little under the configured rate
    with pytest.raises(BudgetExhausted) as info:
        async with budget.request(deadline=now[0] + 0.5):
            pass
    assert info.value.wait == pytest.approx(1 / SAFETY)
    budget.pause(60)
    assert budget.expected_wait() == pytest.approx(60)

    gate = ConnectionBudget(RateLimits(per_second=1000, burst=1000, concurrency=2))
    inside, peak = 0, 0

    async def one() -> None:
        nonlocal inside, peak
        async with gate.request():
            inside += 1
            peak = max(peak, inside)
            await asyncio.sleep(0.01)
            inside -= 1

    await asyncio.gather(*(one() for _ in range(8)))
    assert peak == 2


# ---------------------------------------------------------------- audit redaction


def test_redaction_removes_secrets_and_file_bodies():
    out = redact({
        "payload": {"text": "see Bearer abcdefghijklmnop and password=hunter2", "minutes": 5},
        "credentials": {"public_key": "pk", "private_key": "sk"},
        "headers": {"Authorization": "Basic Zm9vOmJhcg=="},
        "content": "A" * 5000,
        "raw": b"\x00" * 10,
        "long": "x" * 5000,
    })
    text = str(out)
    assert "abcdefghijklmnop" not in text and "hunter2" not in text and "Zm9vOmJhcg" not in text
    assert out["credentials"] == REDACTED and out["headers"]["Authorization"] == REDACTED
    assert out["content"] == "[5000 characters of file content]" and out["raw"] == "[10 bytes]"
    assert len(out["long"]) < 2100 and out["payload"]["minutes"] == 5
