"""Ticket categorisation: one TF-IDF + calibrated linear model per workspace, and the confidence gate.

Pure logic: `train` fits on (text, label) pairs, `CategoryModel.top` scores a text, `decide` turns a score
into what may happen (apply, suggest, keep, low confidence). No database, chat or PSA code here.

The gate copies what MSP tools do (reference/ai.md §5): fill an empty category only above the admin's
threshold (default 0.80), change an existing one only above a higher one (0.85), never change a value a
technician chose, and say "low confidence" on a cold start (fewer than `COLD_START` labelled tickets)
instead of guessing.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from core.ai.text import normalise

COLD_START = 300  # fewer labelled tickets than this: suggestions only, marked low confidence
MIN_TRAINING = 20  # fewer than this (or one category only): no model at all
HOLDOUT_MIN = 50  # held-out accuracy is measured only from this many tickets up


class NotEnoughData(ValueError):
    """Too few labelled tickets to train; the message says how many there are and how many are needed."""


@dataclass(frozen=True, slots=True)
class Prediction:
    label: str
    probability: float


@dataclass
class CategoryModel:
    """A trained categoriser: vectoriser, classifier, labels, and what it was trained on."""

    vectorizer: Any
    classifier: Any
    labels: tuple[str, ...]
    trained_on: int
    class_counts: dict[str, int] = field(default_factory=dict)
    holdout_accuracy: float | None = None
    holdout_size: int = 0

    @property
    def cold(self) -> bool:
        return self.trained_on < COLD_START

    def top(self, text: str, k: int = 3) -> list[Prediction]:
        """The k most likely categories of one ticket text, with probabilities (highest first)."""
        return self.top_many([text], k)[0]

    def top_many(self, texts: Sequence[str], k: int = 3) -> list[list[Prediction]]:
        probs = self.probabilities(texts)
        out = []
        for row in probs:
            idx = np.argsort(-row)[:k]
            out.append([Prediction(self.labels[i], float(row[i])) for i in idx])
        return out

    def probabilities(self, texts: Sequence[str]) -> np.ndarray:
        """Class probabilities, one row per text, columns in `labels` order."""
        x = self.vectorizer.transform([normalise(t) for t in texts])
        return np.asarray(self.classifier.predict_proba(x))

    def summary(self) -> dict[str, Any]:
        return {"trained_on": self.trained_on, "labels": list(self.labels), "cold": self.cold,
                "holdout_accuracy": self.holdout_accuracy, "holdout_size": self.holdout_size,
                "class_counts": dict(self.class_counts)}


def make_pipeline(min_class_count: int, seed: int = 0) -> tuple[Any, Any]:
    """A fresh (vectoriser, classifier) pair: word 1-2 grams with sublinear tf, then a linear SVM whose
    scores are calibrated to probabilities (3-fold sigmoid). As accurate as the plain SVM baseline and
    ~4x faster to fit than multinomial logistic regression at 40k tickets (bench/ai_eval.py). With a
    category of fewer than 3 tickets, calibration folds are impossible: logistic regression instead."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.svm import LinearSVC

    vec = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1, max_features=400_000, dtype=np.float32)
    clf: Any
    if min_class_count >= 3:
        clf = CalibratedClassifierCV(LinearSVC(C=0.5, random_state=seed), cv=3, method="sigmoid")
    else:
        clf = LogisticRegression(C=10.0, max_iter=300, random_state=seed)
    return vec, clf


def fit(texts: Sequence[str], labels: Sequence[str], seed: int = 0) -> CategoryModel:
    """Fit on already-chosen examples (no held-out measurement); see `train` for the checked entry point."""
    counts = Counter(labels)
    vec, clf = make_pipeline(min(counts.values()), seed)
    x = vec.fit_transform([normalise(t) for t in texts])
    clf.fit(x, list(labels))
    return CategoryModel(vec, clf, tuple(str(c) for c in clf.classes_), len(texts), dict(counts))


def train(texts: Sequence[str], labels: Sequence[str], *, seed: int = 0) -> CategoryModel:
    """Train a workspace's model from its labelled tickets, measuring accuracy on a stratified 20% held out
    first (when there are enough tickets), then refitting on everything."""
    if len(texts) != len(labels):
        raise ValueError("texts and labels differ in length")
    counts = Counter(labels)
    if len(texts) < MIN_TRAINING or len(counts) < 2:
        raise NotEnoughData(
            f"{len(texts)} labelled tickets in {len(counts)} categories; at least {MIN_TRAINING} in 2 or more "
            "categories are needed. Close more tickets with a category (type) set, then train again.")
    accuracy, holdout = None, 0
    if len(texts) >= HOLDOUT_MIN and min(counts.values()) >= 2:
        from sklearn.model_selection import train_test_split

        idx = np.arange(len(texts))
        n_test = max(len(counts), int(round(len(texts) * 0.2)))
        tr, te = train_test_split(idx, test_size=n_test, stratify=list(labels), random_state=seed)
        m = fit([texts[i] for i in tr], [labels[i] for i in tr], seed)
        pred = [p[0].label for p in m.top_many([texts[i] for i in te], 1)]
        accuracy = float(np.mean([p == labels[i] for p, i in zip(pred, te, strict=True)]))
        holdout = len(te)
    model = fit(texts, labels, seed)
    model.holdout_accuracy, model.holdout_size = accuracy, holdout
    return model


@dataclass(frozen=True, slots=True)
class Thresholds:
    fill: float = 0.80  # apply to a ticket without a category
    change: float = 0.85  # replace a category that no technician chose

    def __post_init__(self) -> None:
        for name in ("fill", "change"):
            v = getattr(self, name)
            if not 0.0 < v <= 1.0:
                raise ValueError(f"threshold {name} must be above 0 and at most 1 (got {v})")


Action = Literal["apply", "suggest", "keep", "low_confidence", "none"]


@dataclass(frozen=True, slots=True)
class CategoryDecision:
    """What may be done with a ticket's category, and why (shown beside the suggestion)."""

    action: Action
    label: str | None
    confidence: float
    top: tuple[Prediction, ...]
    reason: str

    @property
    def confidence_word(self) -> str:
        if self.action == "low_confidence":
            return "low confidence"
        return "high" if self.confidence >= 0.8 else "medium" if self.confidence >= 0.5 else "low"


def decide(top: Sequence[Prediction], *, current: str | None, set_by_technician: bool, cold: bool,
           thresholds: Thresholds, auto_apply: bool, excluded: frozenset[str] = frozenset()) -> CategoryDecision:
    """The gate: whether the best category is applied, offered, or not worth saying."""
    shown = tuple(p for p in top if p.label not in excluded)
    if not shown:
        return CategoryDecision("none", None, 0.0, (), "every likely category is excluded by the admin")
    best = shown[0]
    if cold:
        return CategoryDecision("low_confidence", best.label, best.probability, shown,
                                f"low confidence: the model learned from fewer than {COLD_START} tickets")
    if current is not None and best.label == current:
        return CategoryDecision("keep", current, best.probability, shown, "the ticket already has this category")
    if current is not None and set_by_technician:
        return CategoryDecision("suggest", best.label, best.probability, shown,
                                "a technician chose the current category; offered only")
    need = thresholds.change if current is not None else thresholds.fill
    if auto_apply and best.probability >= need:
        return CategoryDecision("apply", best.label, best.probability, shown,
                                f"confidence {best.probability:.2f} is at least the threshold {need:.2f}")
    why = "automatic apply is off" if not auto_apply else \
        f"confidence {best.probability:.2f} is below the threshold {need:.2f}"
    return CategoryDecision("suggest", best.label, best.probability, shown, why)


# ---------------------------------------------------------------- two levels (PSA category › subcategory)

SEP = " › "  # a two-level label: "Hardware › Printer" (as the card shows the PSA's pair)


def split(label: str) -> tuple[str, str | None]:
    """("Hardware", "Printer") of "Hardware › Printer"; ("Hardware", None) of "Hardware"."""
    top, _, sub = label.partition(SEP)
    return top, (sub or None)


def decide_two_step(preds: Sequence[Prediction], *, current: str | None, set_by_technician: bool, cold: bool,
                    thresholds: Thresholds, auto_apply: bool, excluded: frozenset[str] = frozenset()
                    ) -> CategoryDecision:
    """The gate for a PSA whose categories nest (Autotask issue type › sub-issue type), in two steps, so no
    invalid pair is ever chosen: first the category, on the summed probability of its labels (the usual
    gate); then, inside that category only, its best subcategory, kept only when the pair's own probability
    also clears the same threshold; otherwise the category alone (its subcategory left empty).
    `preds` covers every label the model knows; `excluded` may name categories or whole pairs."""
    totals: dict[str, float] = {}
    for p in preds:
        top = split(p.label)[0]
        totals[top] = totals.get(top, 0.0) + p.probability
    tops = [Prediction(k, v) for k, v in sorted(totals.items(), key=lambda kv: -kv[1])]
    current_top = split(current)[0] if current else None
    step1 = decide(tops[:3], current=current_top, set_by_technician=set_by_technician, cold=cold,
                   thresholds=thresholds, auto_apply=auto_apply, excluded=excluded)
    if step1.label is None or step1.action in ("none", "keep"):
        return step1
    subs = sorted((p for p in preds if split(p.label)[0] == step1.label and split(p.label)[1] is not None
                   and p.label not in excluded), key=lambda p: -p.probability)
    need = thresholds.change if current is not None else thresholds.fill
    if subs and (subs[0].probability >= need or (step1.action != "apply" and subs[0].probability >= step1.confidence / 2)):
        best = subs[0]
        reason = step1.reason + f"; subcategory {split(best.label)[1]} at {best.probability:.2f}"
        return CategoryDecision(step1.action, best.label, best.probability if step1.action == "apply"
                                else step1.confidence, step1.top, reason)
    if subs:
        reason = step1.reason + f"; no subcategory is sure enough (best {subs[0].probability:.2f}), category only"
        return CategoryDecision(step1.action, step1.label, step1.confidence, step1.top, reason)
    return step1
