"""Escalation risk: which open tickets are likely to miss their SLA, from what is known while they are open.

Pure logic: a one-hot + logistic-regression model over feature dicts (`ticket_features` builds one from
what a ticket shows now), scores, the top contributing features of one score (the "why" shown beside a
flag), and precision/recall at an alert budget (the share of open tickets a team is willing to review).

Only open-time facts go in: priority, customer, category, contact channel, hour and weekday opened (on the clock
`opened_at` carries: the caller gives it in the workspace's zone),
reassignments and reopenings so far, hours since the last update, queue load, the requester's earlier
tickets. Outcomes (made SLA, close codes, final counts) never do: they leak the answer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np

Features = Mapping[str, str | float]


def ticket_features(*, priority: str, customer: str | None, category: str | None, channel: str | None,
                    opened_at: datetime, reassignments: int = 0, reopenings: int = 0,
                    hours_since_update: float = 0.0, queue_load: int = 0, requester_history: int = 0) -> dict:
    """The feature dict of one open ticket (strings are one-hot; numbers are squashed with log1p)."""
    return {
        "priority": str(priority), "customer": str(customer or "?"), "category": str(category or "?"),
        "channel": str(channel or "?"), "hour": f"h{opened_at.hour:02d}", "weekday": f"d{opened_at.weekday()}",
        "reassignments": float(np.log1p(max(0, reassignments))), "reopenings": float(np.log1p(max(0, reopenings))),
        "hours_since_update": float(np.log1p(max(0.0, hours_since_update))),
        "queue_load": float(np.log1p(max(0, queue_load))), "requester_history": float(np.log1p(max(0, requester_history))),
    }


@dataclass
class RiskModel:
    vectorizer: Any
    classifier: Any
    trained_on: int
    base_rate: float
    # The zone whose clock "hour" and "weekday" were read in (the workspace's when trained); scoring reads them in
    # the same zone. Models pickled before it existed get this class default: they learned UTC hours.
    zone: str = "UTC"

    def score(self, rows: Sequence[Features]) -> np.ndarray:
        """Probability of escalation (SLA miss) per row."""
        return np.asarray(self.classifier.predict_proba(self.vectorizer.transform(list(rows)))[:, 1])

    def reasons(self, row: Features, k: int = 3) -> list[tuple[str, float]]:
        """The k features that push this row's risk up the most (name, log-odds contribution)."""
        x = self.vectorizer.transform([row])
        contrib = x.toarray()[0] * self.classifier.coef_[0]
        names = self.vectorizer.get_feature_names_out()
        order = np.argsort(-contrib)[:k]
        return [(str(names[i]), round(float(contrib[i]), 3)) for i in order if contrib[i] > 0]


    def reasons_many(self, rows: Sequence[Features], k: int = 3) -> list[list[tuple[str, float]]]:
        """`reasons` for many rows at once (one sparse product instead of a dense row each)."""
        x = self.vectorizer.transform(list(rows)).tocsr().multiply(self.classifier.coef_[0]).tocsr()
        names = self.vectorizer.get_feature_names_out()
        out = []
        for i in range(x.shape[0]):
            start, end = x.indptr[i], x.indptr[i + 1]
            cols, vals = x.indices[start:end], x.data[start:end]
            order = np.argsort(-vals)[:k]
            out.append([(str(names[cols[j]]), round(float(vals[j]), 3)) for j in order if vals[j] > 0])
        return out


def train(rows: Sequence[Features], labels: Sequence[bool], *, c: float = 0.3, seed: int = 0) -> RiskModel:
    """Fit the risk model; `labels` are True for tickets that escalated (missed their SLA)."""
    from sklearn.feature_extraction import DictVectorizer
    from sklearn.linear_model import LogisticRegression

    y = np.asarray(labels, dtype=bool)
    if len(rows) != len(y) or y.all() or not y.any():
        raise ValueError("training needs both escalated and non-escalated tickets, one label per row")
    vec = DictVectorizer(sparse=True)
    clf = LogisticRegression(C=c, max_iter=1000, random_state=seed)
    clf.fit(vec.fit_transform(list(rows)), y)
    return RiskModel(vec, clf, len(rows), float(y.mean()))


def at_budget(scores: np.ndarray, labels: Sequence[bool], budget: float = 0.10,
              rng: np.random.Generator | None = None) -> dict[str, float]:
    """Precision and recall when only the top `budget` share of tickets by score is flagged (ties broken
    at random with `rng`, so a coarse score such as priority alone is not flattered by the order of rows)."""
    y = np.asarray(labels, dtype=bool)
    n = max(1, int(round(len(y) * budget)))
    jitter = (rng or np.random.default_rng(0)).random(len(y)) * 1e-9
    top = np.argsort(-(np.asarray(scores, dtype=float) + jitter))[:n]
    hit = int(y[top].sum())
    return {"flagged": n, "precision": round(hit / n, 4), "recall": round(hit / max(1, int(y.sum())), 4)}
