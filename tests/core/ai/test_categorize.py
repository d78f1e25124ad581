"""Pure categorisation: training, top-3 probabilities, the confidence gate, cold start."""

from __future__ import annotations

import random

import pytest

from core.ai import categorize
from core.ai.categorize import Prediction, Thresholds, decide
from core.ai.text import normalise

WORDS = {
    "Access": ["password reset", "account locked", "cannot login", "mfa token", "access denied"],
    "Hardware": ["laptop screen broken", "printer jam", "keyboard not working", "docking station", "monitor flicker"],
    "Purchase": ["purchase order", "new licence quote", "buy laptop", "invoice approval", "order headset"],
}


def corpus(n_per_class: int, seed: int = 1) -> tuple[list[str], list[str]]:
    rnd = random.Random(seed)
    texts, labels = [], []
    for label, phrases in WORDS.items():
        for _ in range(n_per_class):
            texts.append(f"{rnd.choice(phrases)} {rnd.choice(phrases)} user {rnd.randint(1, 99)}")
            labels.append(label)
    return texts, labels


def test_normalise_drops_case_punctuation_and_stop_words():
    assert normalise("Hello, the PRINTER is jammed!! Please help.") == "printer jammed help"


def test_top3_has_probabilities_that_rank_the_right_category_first():
    texts, labels = corpus(120)  # 360 tickets: past the cold start
    model = categorize.train(texts, labels)
    assert not model.cold and model.trained_on == 360
    assert model.holdout_accuracy is not None and model.holdout_accuracy > 0.9 and model.holdout_size == 72
    top = model.top("my password reset failed and the account locked")
    assert [p.label for p in top][0] == "Access"
    assert len(top) == 3 and top[0].probability > top[1].probability >= top[2].probability
    assert abs(sum(p.probability for p in top) - 1.0) < 1e-6  # 3 classes: top-3 is the whole distribution


def test_small_history_is_cold_and_only_says_low_confidence():
    texts, labels = corpus(10)  # 30 tickets, 10 per category
    model = categorize.train(texts, labels)
    assert model.cold
    d = decide(model.top("printer jam"), current=None, set_by_technician=False, cold=model.cold,
               thresholds=Thresholds(), auto_apply=True)
    assert d.action == "low_confidence" and d.confidence_word == "low confidence"


def test_too_little_data_is_refused_with_what_to_do():
    with pytest.raises(categorize.NotEnoughData, match="at least 20 in 2 or more categories"):
        categorize.train(["printer"] * 30, ["Hardware"] * 30)
    with pytest.raises(categorize.NotEnoughData, match="Close more tickets"):
        categorize.train(["a", "b"], ["x", "y"])


def test_tiny_categories_still_train():
    texts, labels = corpus(12)
    texts += ["order toner", "order chairs"]
    labels += ["Facilities", "Facilities"]  # 2 examples: calibration folds impossible
    model = categorize.train(texts, labels)
    assert "Facilities" in model.labels


TOP = (Prediction("Access", 0.9), Prediction("Hardware", 0.07), Prediction("Purchase", 0.03))
WEAK = (Prediction("Access", 0.6), Prediction("Hardware", 0.3), Prediction("Purchase", 0.1))


def gate(top=TOP, **kw):
    args = dict(current=None, set_by_technician=False, cold=False, thresholds=Thresholds(), auto_apply=True)
    args.update(kw)
    return decide(top, **args)


def test_fills_an_empty_category_only_above_the_fill_threshold():
    assert gate().action == "apply"
    assert gate(WEAK).action == "suggest" and "below the threshold 0.80" in gate(WEAK).reason
    assert gate(thresholds=Thresholds(fill=0.95)).action == "suggest"


def test_never_overrides_a_technician():
    d = gate(current="Hardware", set_by_technician=True)
    assert d.action == "suggest" and d.label == "Access" and "technician" in d.reason


def test_changes_a_non_technician_value_only_above_the_change_threshold():
    assert gate(current="Hardware").action == "apply"  # 0.9 >= 0.85
    assert gate(current="Hardware", thresholds=Thresholds(change=0.95)).action == "suggest"
    assert gate(current="Access").action == "keep"


def test_auto_apply_off_suggests_and_excluded_categories_are_never_offered():
    assert gate(auto_apply=False).action == "suggest"
    d = gate(excluded=frozenset({"Access"}))
    assert d.label == "Hardware" and d.action == "suggest"  # 0.07 is far below 0.80
    assert gate(excluded=frozenset({"Access", "Hardware", "Purchase"})).action == "none"


def test_thresholds_are_validated():
    with pytest.raises(ValueError, match="at most 1"):
        Thresholds(fill=1.5)


def test_two_step_picks_the_category_first_then_a_subcategory_inside_it_only_when_sure():
    from core.ai.categorize import decide_two_step

    preds = [Prediction("Hardware › Printer", 0.50), Prediction("Hardware › Laptop", 0.40),
             Prediction("Software › Printer driver", 0.10)]
    t = Thresholds(0.8, 0.85)
    # Hardware is 0.90 in total: applied; but neither of its subcategories reaches 0.80: the category alone.
    d = decide_two_step(preds, current=None, set_by_technician=False, cold=False, thresholds=t, auto_apply=True)
    assert d.action == "apply" and d.label == "Hardware" and abs(d.confidence - 0.90) < 1e-9
    assert "category only" in d.reason
    sure = [Prediction("Hardware › Printer", 0.86), Prediction("Hardware › Laptop", 0.04),
            Prediction("Software › Printer driver", 0.10)]
    d = decide_two_step(sure, current=None, set_by_technician=False, cold=False, thresholds=t, auto_apply=True)
    assert d.action == "apply" and d.label == "Hardware › Printer" and d.confidence == 0.86
    # A subcategory is never taken from another category, however likely on its own.
    odd = [Prediction("Software › Outlook", 0.45), Prediction("Hardware › Printer", 0.30),
           Prediction("Hardware › Laptop", 0.25)]
    d = decide_two_step(odd, current=None, set_by_technician=False, cold=False, thresholds=t, auto_apply=True)
    assert d.action == "suggest" and d.label == "Hardware › Printer"  # Hardware 0.55 wins step one
    # A technician's category stays; below the threshold nothing is applied.
    d = decide_two_step(sure, current="Software › Outlook", set_by_technician=True, cold=False, thresholds=t,
                        auto_apply=True)
    assert d.action == "suggest"
    d = decide_two_step(preds, current=None, set_by_technician=False, cold=False, thresholds=Thresholds(0.95, 0.95),
                        auto_apply=True)
    assert d.action == "suggest"
