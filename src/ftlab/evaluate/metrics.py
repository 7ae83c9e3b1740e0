"""Binary (one-vs-rest) classification metrics that say "undefined" instead of inventing a 0.

sklearn returns 0.0 (with a warning) for precision when nothing is predicted positive, and NaN or
an exception for AUROC on a one-class split. In a sweep table both read as "the model is bad", when
the truth is "this split cannot measure it". Here every such case is `Metric(None, reason)`.

Plain numpy on purpose: importing sklearn costs ~1 s and the library must run without it. The tests
check every value against sklearn to 1e-12.

Run the tests: `.venv/bin/pytest tests/evaluate/test_metrics.py -q`
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Metric:
    """One metric value, or None with the reason it is undefined on this split."""

    value: float | None
    reason: str | None = None  # set exactly when value is None: why it is undefined

    def __post_init__(self) -> None:
        if (self.value is None) != (self.reason is not None):
            raise ValueError("Metric.reason must be set exactly when value is None")


EMPTY_SPLIT = "empty split"


def _ratio(numerator: float, denominator: float, reason: str) -> Metric:
    """numerator/denominator, undefined (with `reason`) when the denominator is 0 or it is NaN."""
    if denominator == 0:
        return Metric(None, reason)
    value = numerator / denominator
    return Metric(None, reason) if math.isnan(value) else Metric(value)


def _average_ranks(scores: np.ndarray) -> np.ndarray:
    """1-based ranks; tied scores share the mean of the ranks they span (rankdata "average")."""
    _, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    last_rank = np.cumsum(counts)  # rank of the last member of each tie group
    mean_rank = last_rank - (counts - 1) / 2.0
    return mean_rank[inverse]


def auroc(is_positive: Sequence[bool], scores: Sequence[float] | None) -> Metric:
    """Area under the ROC curve, higher score = more positive.

    Uses the Mann-Whitney U statistic with average ranks for ties, which equals the trapezoidal
    area sklearn.metrics.roc_auc_score computes: a tied positive/negative pair counts 1/2.
    """
    if scores is None:
        return Metric(None, "no scores")
    labels = np.asarray(is_positive, dtype=bool)
    values = np.asarray(scores, dtype=float)
    if values.shape != labels.shape:
        raise ValueError(f"scores has {values.size} entries but y_true has {labels.size}")
    if labels.size == 0:
        return Metric(None, EMPTY_SPLIT)
    if not np.all(np.isfinite(values)):
        return Metric(None, "scores contain NaN or infinity")
    n_pos = int(labels.sum())
    n_neg = int(labels.size - n_pos)
    if n_neg == 0:
        return Metric(None, "only one class present (no negatives)")
    if n_pos == 0:
        return Metric(None, "only one class present (no positives)")
    rank_sum = float(_average_ranks(values)[labels].sum())
    u_statistic = rank_sum - n_pos * (n_pos + 1) / 2.0
    return _ratio(u_statistic, float(n_pos * n_neg), "only one class present")


# What classification_metrics records (evaluators declare what they produce: ftlab.evaluate.base).
CLASSIFICATION_METRICS = (
    "accuracy", "precision", "recall", "f1", "auroc", "predicted_positive_rate",
    "n", "n_positive", "n_negative", "n_unparsed",
)


def classification_metrics(
    y_true: Sequence[str],
    y_pred: Sequence[str | None],
    *,
    positive: str,
    scores: Sequence[float] | None = None,
) -> dict[str, Metric]:
    """Accuracy, precision, recall, F1, AUROC and counts for `positive` vs every other label.

    A None prediction (the answer could not be parsed) counts as "not positive" for precision,
    recall and the predicted-positive rate, and as wrong for accuracy: an unparseable answer is
    never a correct one. Their number is reported as `n_unparsed`.
    """
    if len(y_true) != len(y_pred):
        raise ValueError(f"y_true has {len(y_true)} entries but y_pred has {len(y_pred)}")
    n = len(y_true)
    true_pos = [label == positive for label in y_true]
    pred_pos = [label == positive for label in y_pred]
    tp = sum(t and p for t, p in zip(true_pos, pred_pos))
    fp = sum(p and not t for t, p in zip(true_pos, pred_pos))
    fn = sum(t and not p for t, p in zip(true_pos, pred_pos))
    correct = sum(p is not None and p == t for t, p in zip(y_true, y_pred))
    n_positive = sum(true_pos)
    n_unparsed = sum(p is None for p in y_pred)
    return {
        "accuracy": _ratio(correct, n, EMPTY_SPLIT),
        "precision": _ratio(tp, tp + fp, "no positive predictions"),
        "recall": _ratio(tp, tp + fn, "no positive examples in this split"),
        "f1": _ratio(2 * tp, 2 * tp + fp + fn, "no positive examples and no positive predictions"),
        "auroc": auroc(true_pos, scores),
        "predicted_positive_rate": _ratio(sum(pred_pos), n, EMPTY_SPLIT),
        "n": Metric(float(n)),
        "n_positive": Metric(float(n_positive)),
        "n_negative": Metric(float(n - n_positive)),
        "n_unparsed": Metric(float(n_unparsed)),
    }


def metric_values(metrics: dict[str, Metric]) -> tuple[dict[str, float | None], dict[str, str]]:
    """Split metrics into {name: value or None} and {name: reason} for the undefined ones."""
    values = {name: m.value for name, m in metrics.items()}
    reasons = {name: m.reason for name, m in metrics.items() if m.reason is not None}
    return values, reasons


def _defined(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and not math.isnan(value)


# Metrics where a smaller value is better; select_best reads this when the spec gives no direction.
# A new lower-is-better metric (a loss, Brier score...) joins here.
LOWER_IS_BETTER = frozenset({"ece"})


def select_best(
    rows: list[dict[str, Any]],
    *,
    metric: str,
    higher_is_better: bool | None = None,
    include_step_0: bool = False,
    checkpoint: str | None = None,
) -> dict[str, Any] | None:
    """The row (a dict with "step" and metric values) with the best defined value of `metric`.

    Direction: `higher_is_better` when given (the spec's override), else lower for the metrics in
    LOWER_IS_BETTER (ECE) and higher for every other. Ties go to the earlier step: fewer training
    steps at the same score means less chance of overfitting and less compute to reproduce, and it
    makes the choice independent of row order. Rows where the metric is missing, None or NaN are
    skipped; None when no row has a value.

    Step 0 is the untrained base (or a random-init control's fresh weights): scored as the
    baseline, but not a trained run's result, so it is a candidate only with include_step_0 or
    when it is the only checkpoint (an untuned control). A trained run whose checkpoints all lack
    the metric gets None, never step 0.

    checkpoint="final": the last row (the highest step) whatever its score: the spec chose the
    final model (seed 002), and no split chooses.
    """
    if checkpoint == "final":
        return max(rows, key=lambda row: row["step"]) if rows else None
    if not include_step_0 and any(row["step"] != 0 for row in rows):
        rows = [row for row in rows if row["step"] != 0]
    candidates = [row for row in rows if _defined(row.get(metric))]
    if not candidates:
        return None
    if higher_is_better is None:
        higher_is_better = metric not in LOWER_IS_BETTER
    sign = 1.0 if higher_is_better else -1.0
    # min over (-sign*value, step): best value first, then smallest step.
    return min(candidates, key=lambda row: (-sign * float(row[metric]), row["step"]))
