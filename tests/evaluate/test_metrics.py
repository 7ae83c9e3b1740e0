"""Metrics match sklearn where it is defined, and say "undefined" where it would guess 0."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score, roc_auc_score

from ftlab.evaluate.metrics import Metric, classification_metrics, metric_values, select_best

LABELS = ["yes", "no", "maybe"]
KEYS = [
    "accuracy", "precision", "recall", "f1", "auroc", "predicted_positive_rate",
    "n", "n_positive", "n_negative", "n_unparsed",
]


def random_split(seed: int, n: int = 200, decimals: int | None = None):
    rng = np.random.default_rng(seed)
    y_true = [str(x) for x in rng.choice(LABELS, size=n)]
    y_pred = [str(x) for x in rng.choice(LABELS, size=n)]
    scores = rng.random(n)
    if decimals is not None:
        scores = np.round(scores, decimals)  # 200 scores over 11 values: many ties
    return y_true, y_pred, [float(s) for s in scores]


@pytest.mark.parametrize("decimals", [None, 1])
@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_matches_sklearn(seed: int, decimals: int | None) -> None:
    y_true, y_pred, scores = random_split(seed, decimals=decimals)
    m = classification_metrics(y_true, y_pred, positive="yes", scores=scores)
    is_pos = [t == "yes" for t in y_true]
    pred_pos = [p == "yes" for p in y_pred]
    expected = {
        "accuracy": accuracy_score(y_true, y_pred),
        "precision": precision_score(is_pos, pred_pos),
        "recall": recall_score(is_pos, pred_pos),
        "f1": f1_score(is_pos, pred_pos),
        "auroc": roc_auc_score(is_pos, scores),
        "predicted_positive_rate": sum(p == "yes" for p in y_pred) / len(y_pred),
    }
    for name, value in expected.items():
        assert m[name].value == pytest.approx(value, abs=1e-12), name
        assert m[name].reason is None
    assert m["n"].value == 200.0
    assert m["n_positive"].value + m["n_negative"].value == 200.0
    assert m["n_unparsed"].value == 0.0


def test_precision_recall_f1_match_sklearn_pos_label_on_strings() -> None:
    y_true, y_pred, _ = random_split(7)
    m = classification_metrics(y_true, y_pred, positive="no")
    # Binarise as sklearn's one-vs-rest would: pos_label on two-class string labels.
    bt = ["no" if t == "no" else "other" for t in y_true]
    bp = ["no" if p == "no" else "other" for p in y_pred]
    assert m["precision"].value == pytest.approx(precision_score(bt, bp, pos_label="no"), abs=1e-12)
    assert m["recall"].value == pytest.approx(recall_score(bt, bp, pos_label="no"), abs=1e-12)
    assert m["f1"].value == pytest.approx(f1_score(bt, bp, pos_label="no"), abs=1e-12)


def test_keys_in_order() -> None:
    m = classification_metrics(["yes"], ["yes"], positive="yes")
    assert list(m) == KEYS


def test_all_tied_scores_give_half() -> None:
    y_true = ["yes", "no", "yes", "no"]
    m = classification_metrics(y_true, ["yes"] * 4, positive="yes", scores=[0.3] * 4)
    assert m["auroc"].value == pytest.approx(0.5)


def test_no_negatives_auroc_undefined_recall_defined() -> None:
    y_true, y_pred = ["yes", "yes", "yes"], ["yes", "no", "yes"]
    m = classification_metrics(y_true, y_pred, positive="yes", scores=[0.9, 0.1, 0.5])
    assert m["auroc"] == Metric(None, "only one class present (no negatives)")
    assert m["recall"].value == pytest.approx(2 / 3)
    assert m["n_negative"].value == 0.0


def test_no_positives_auroc_and_recall_undefined() -> None:
    m = classification_metrics(["no", "no"], ["yes", "no"], positive="yes", scores=[0.9, 0.1])
    assert m["auroc"] == Metric(None, "only one class present (no positives)")
    assert m["recall"] == Metric(None, "no positive examples in this split")
    assert m["precision"].value == 0.0  # one positive prediction, wrong: a real 0, not undefined


def test_no_positive_predictions_precision_undefined_where_sklearn_says_zero() -> None:
    y_true, y_pred = ["yes", "no", "yes"], ["no", "no", "maybe"]
    m = classification_metrics(y_true, y_pred, positive="yes")
    assert m["precision"] == Metric(None, "no positive predictions")
    assert m["recall"].value == 0.0
    assert m["f1"].value == 0.0  # fn > 0, so F1 is defined and really 0
    assert m["predicted_positive_rate"].value == 0.0
    is_pos = [t == "yes" for t in y_true]
    with pytest.warns(Warning):
        assert precision_score(is_pos, [p == "yes" for p in y_pred]) == 0.0


def test_f1_undefined_without_positives_or_positive_predictions() -> None:
    m = classification_metrics(["no", "maybe"], ["no", "no"], positive="yes")
    assert m["f1"].value is None and m["f1"].reason
    assert m["accuracy"].value == 0.5


def test_empty_split() -> None:
    m = classification_metrics([], [], positive="yes", scores=[])
    for name in ["accuracy", "precision", "recall", "f1", "auroc", "predicted_positive_rate"]:
        assert m[name].value is None and m[name].reason, name
    assert m["accuracy"].reason == "empty split"
    assert m["predicted_positive_rate"].reason == "empty split"
    assert m["n"].value == 0.0


def test_no_scores() -> None:
    m = classification_metrics(["yes", "no"], ["yes", "no"], positive="yes")
    assert m["auroc"] == Metric(None, "no scores")


def test_nan_scores_undefined_not_nan() -> None:
    scores = [float("nan"), 0.1]
    m = classification_metrics(["yes", "no"], ["yes", "no"], positive="yes", scores=scores)
    assert m["auroc"].value is None and m["auroc"].reason


def test_unparsed_predictions_count_as_wrong_and_not_positive() -> None:
    y_true = ["yes", "no", "yes", "no"]
    y_pred = [None, None, "yes", "no"]
    m = classification_metrics(y_true, y_pred, positive="yes")
    assert m["n_unparsed"].value == 2.0
    assert m["accuracy"].value == 0.5  # the None against "no" is still wrong
    assert m["recall"].value == 0.5
    assert m["precision"].value == 1.0
    assert m["predicted_positive_rate"].value == 0.25


def test_length_mismatch_raises() -> None:
    with pytest.raises(ValueError):
        classification_metrics(["yes"], [], positive="yes")
    with pytest.raises(ValueError):
        classification_metrics(["yes", "no"], ["yes", "no"], positive="yes", scores=[0.1])


def test_metric_requires_reason_exactly_when_undefined() -> None:
    with pytest.raises(ValueError):
        Metric(None)
    with pytest.raises(ValueError):
        Metric(0.5, "why")


def test_metric_values_splits_values_and_reasons() -> None:
    m = classification_metrics(["yes", "yes"], ["no", "no"], positive="yes", scores=[0.1, 0.2])
    values, reasons = metric_values(m)
    assert list(values) == KEYS
    assert values["precision"] is None and values["recall"] == 0.0
    assert reasons == {
        "precision": "no positive predictions",
        "auroc": "only one class present (no negatives)",
    }


def test_select_best_picks_max() -> None:
    rows = [{"step": 100, "f1": 0.5}, {"step": 200, "f1": 0.8}, {"step": 300, "f1": 0.7}]
    assert select_best(rows, metric="f1") == rows[1]


def test_select_best_tie_goes_to_earliest_step_regardless_of_order() -> None:
    rows = [{"step": 300, "f1": 0.8}, {"step": 100, "f1": 0.8}, {"step": 200, "f1": 0.6}]
    assert select_best(rows, metric="f1")["step"] == 100


def test_select_best_lower_is_better() -> None:
    rows = [{"step": 1, "loss": 0.4}, {"step": 2, "loss": 0.2}, {"step": 3, "loss": 0.2}]
    assert select_best(rows, metric="loss", higher_is_better=False)["step"] == 2


def test_select_best_skips_undefined() -> None:
    rows = [
        {"step": 1, "auroc": None},
        {"step": 2, "auroc": float("nan")},
        {"step": 3, "auroc": 0.6},
        {"step": 4},
    ]
    assert select_best(rows, metric="auroc")["step"] == 3
    assert select_best(rows[:2] + rows[3:], metric="auroc") is None
    assert select_best([], metric="auroc") is None


def test_select_best_never_picks_step_0_of_a_trained_run_unless_asked() -> None:
    # the untrained base scores best here (a collapsed run); it is still not the run's result
    rows = [{"step": 0, "accuracy": 0.9}, {"step": 10, "accuracy": 0.6}, {"step": 20, "accuracy": 0.7}]
    assert select_best(rows, metric="accuracy")["step"] == 20
    assert select_best(rows, metric="accuracy", include_step_0=True)["step"] == 0
    # an untuned control has only step 0: that is its checkpoint
    assert select_best(rows[:1], metric="accuracy")["step"] == 0
    # a trained run whose checkpoints lack the metric gets no best, not the base
    assert select_best([rows[0], {"step": 10, "accuracy": None}], metric="accuracy") is None


def test_select_best_on_ece_is_lower_is_better_by_default() -> None:
    from ftlab.evaluate.metrics import LOWER_IS_BETTER

    assert "ece" in LOWER_IS_BETTER
    rows = [{"step": 10, "ece": 0.30}, {"step": 20, "ece": 0.05}, {"step": 30, "ece": 0.20}]
    assert select_best(rows, metric="ece")["step"] == 20
    assert select_best(rows, metric="ece", higher_is_better=True)["step"] == 10  # an explicit spec value overrides
    assert select_best([{"step": 1, "f1": 0.2}, {"step": 2, "f1": 0.4}], metric="f1")["step"] == 2


def test_select_final_takes_the_last_checkpoint_whatever_its_score() -> None:
    rows = [{"step": 0, "accuracy": 0.9}, {"step": 20, "accuracy": 0.8}, {"step": 10, "accuracy": 0.95}]
    assert select_best(rows, metric="accuracy", checkpoint="final")["step"] == 20
    assert select_best([{"step": 0, "accuracy": None}], metric="accuracy", checkpoint="final")["step"] == 0  # untuned
    assert select_best([], metric="accuracy", checkpoint="final") is None
