"""Escalation risk model: learns open-time signals, explains a score, precision/recall at an alert budget."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import numpy as np
import pytest

from core.ai import escalation as risk


def rows(n: int, seed: int = 3) -> tuple[list[dict], list[bool]]:
    rnd = random.Random(seed)
    out, labels = [], []
    for i in range(n):
        prio = rnd.choice(["critical", "high", "medium", "low"])
        reassigned = rnd.choice([0, 0, 1, 3])
        out.append(risk.ticket_features(priority=prio, customer=f"c{i % 5}", category="Access", channel="email",
                                        opened_at=datetime(2026, 3, 2, 9, tzinfo=UTC), reassignments=reassigned,
                                        queue_load=rnd.randint(0, 40)))
        labels.append(reassigned >= 3 or rnd.random() < 0.05)
    return out, labels


def test_learns_the_signal_and_names_it_as_the_reason():
    train_rows, train_y = rows(400)
    model = risk.train(train_rows, train_y)
    test_rows, test_y = rows(200, seed=9)
    scores = model.score(test_rows)
    from sklearn.metrics import roc_auc_score

    assert roc_auc_score(test_y, scores) > 0.85
    riskiest = test_rows[int(np.argmax(scores))]
    assert model.reasons(riskiest)[0][0] == "reassignments"


def test_at_budget_counts_flagged_precision_and_recall():
    scores = np.array([0.9, 0.8, 0.1, 0.2, 0.3, 0.05, 0.0, 0.4, 0.6, 0.7])
    labels = [True, False, True, False, False, False, False, False, False, False]
    assert risk.at_budget(scores, labels, 0.2) == {"flagged": 2, "precision": 0.5, "recall": 0.5}


def test_one_class_only_is_refused():
    r, _ = rows(30)
    with pytest.raises(ValueError, match="both escalated and non-escalated"):
        risk.train(r, [False] * 30)


def test_reasons_for_many_rows_match_one_at_a_time():
    from datetime import UTC, datetime

    from core.ai import escalation as esc

    rows = [esc.ticket_features(priority=p, customer=c, category=None, channel="email",
                                opened_at=datetime(2026, 3, 2, h, tzinfo=UTC), reassignments=r)
            for p, c, h, r in (("critical", "A", 3, 2), ("low", "B", 10, 0), ("high", "A", 22, 5), ("low", "B", 9, 0))]
    model = esc.train(rows * 5, [True, False, True, False] * 5)
    assert model.reasons_many(rows, 3) == [model.reasons(r, 3) for r in rows]
    assert model.reasons_many(rows, 3)[0]  # the risky row has reasons
