"""Durations people type into SLA policies: odd digits, endless digits and non-finite numbers are a PolicyError in
words (shown as the refusal), never Python's own message or a crash."""

from __future__ import annotations

import pytest

from core.sla.policies import PolicyError, parse_duration


@pytest.mark.parametrize("value", ["²", "²h", "1" * 5000, "1" * 5000 + "h", float("inf"), float("nan"), "٣h"])
def test_odd_durations_are_refused_in_words(value):
    with pytest.raises(PolicyError) as e:
        parse_duration(value)
    assert "duration" in str(e.value) or "out of range" in str(e.value)
    assert "int()" not in str(e.value) and "limit" not in str(e.value)


def test_plain_durations_still_work():
    assert [parse_duration(v) for v in ("900", "15m", "4h", "1h30m", "3d", 60, 1.5e3)] == \
        [900, 900, 14_400, 5400, 259_200, 60, 1500]
