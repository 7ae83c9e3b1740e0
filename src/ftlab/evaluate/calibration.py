"""Expected calibration error (ECE) and the reliability table, top-label (Guo et al. 2017).

    from ftlab.evaluate.calibration import calibration, top_label_calibration

    cal = top_label_calibration(["A", "B"], [{"A": 0.7, "B": 0.3}, {"A": 0.6, "B": 0.4}], n_bins=10)
    cal.ece            # 0.45: confidences .7 (right) and .6 (wrong): (|1 - .7| + |0 - .6|) / 2
    cal.bins[6]        # the bin (0.6, 0.7]: count=1, mean_confidence=0.7, accuracy=1.0
    cal.metric()       # Metric(0.45) for a metrics dict (None, with cal.reason, on an empty split)
    calibration([True, True], [0.1, 0.9])   # binary form: ece 0.4 (the positive-class version gave 0.5)

Definition (Guo, Pleiss, Sun, Weinberger 2017, "On Calibration of Modern Neural Networks", sec. 2):
each example's prediction is its top label (argmax of its probabilities; ties go to the first
label, as ftlab.evaluate.logits.classify decides), its CONFIDENCE is that top probability, and it
is correct when the top label is the true one. In each bin B_m, acc(B_m) is the fraction correct
and conf(B_m) the mean confidence; ECE = sum over bins of |B_m|/n * |acc(B_m) - conf(B_m)|.
(Not the positive-class reliability curve, where "accuracy" is the fraction of positives: on
binary data the two differ whenever a bin holds confident predictions of both classes.)

Binning (the same as sklearn.calibration.calibration_curve(strategy="uniform") applied to
(correct, confidence), which the tests check bin by bin): n_bins equal-width bins with edges
np.linspace(0, 1, n_bins + 1); a confidence c goes to bin number (count of interior edges < c), so
bins are RIGHT-closed, (lo, hi], as Guo et al.'s ((m-1)/M, m/M]; the first bin also holds 0. With
K labels no confidence is below 1/K, so the low bins stay empty (they are still listed).

Plain numpy, like metrics.py: importing sklearn costs ~1 s and the library must run without it.
Run the tests: `.venv/bin/pytest tests/evaluate/test_calibration.py -q`
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ftlab.evaluate.metrics import EMPTY_SPLIT, Metric


@dataclass(frozen=True)
class CalibrationBin:
    """One equal-width confidence bin: its edges, size, mean confidence and fraction correct."""

    lo: float
    hi: float
    count: int
    mean_confidence: float | None  # mean top-label probability; None when the bin is empty
    accuracy: float | None  # fraction whose top label is the true label; None when empty


@dataclass(frozen=True)
class Calibration:
    """ECE over n examples (None with the reason when undefined) and every bin, empty ones too."""

    ece: float | None
    reason: str | None
    n: int
    bins: list[CalibrationBin]

    def metric(self) -> Metric:
        return Metric(self.ece, self.reason)


def top_label_calibration(y_true: Sequence[str], probs: Sequence[Mapping[str, float]], n_bins: int = 10) -> Calibration:
    """Top-label reliability bins and ECE: `probs` holds each example's {label: probability}
    (each in [0, 1]; the top label is the first of the largest), `y_true` its true label."""
    if len(y_true) != len(probs):
        raise ValueError(f"probs has {len(probs)} entries but y_true has {len(y_true)}")
    confidence, correct = [], []
    for i, (label, p) in enumerate(zip(y_true, probs)):
        if not p:
            raise ValueError(f"example {i} has no label probabilities")
        top = max(p, key=p.__getitem__)  # max() keeps the first of equal values: classify's tie rule
        confidence.append(float(p[top]))
        correct.append(top == label)
    return _binned(np.asarray(correct, dtype=bool), np.asarray(confidence, dtype=float), n_bins, "probabilities")


def calibration(is_positive: Sequence[bool], prob_positive: Sequence[float], n_bins: int = 10) -> Calibration:
    """The binary form of top_label_calibration from each example's positive-class probability p:
    confidence max(p, 1 - p), predicted positive when p >= 0.5 (a tie counts as positive)."""
    labels = np.asarray(is_positive, dtype=bool).reshape(-1)
    p = np.asarray(prob_positive, dtype=float).reshape(-1)
    if labels.size != p.size:
        raise ValueError(f"prob_positive has {p.size} entries but is_positive has {labels.size}")
    if not np.all((p >= 0.0) & (p <= 1.0)):
        raise ValueError("prob_positive must lie in [0, 1] (no NaN)")
    return _binned((p >= 0.5) == labels, np.maximum(p, 1.0 - p), n_bins, "prob_positive")


def _binned(correct: np.ndarray, confidence: np.ndarray, n_bins: int, what: str) -> Calibration:
    if isinstance(n_bins, bool) or not isinstance(n_bins, int) or n_bins < 1:
        raise ValueError(f"n_bins must be a positive integer, got {n_bins!r}")
    # Out-of-range or NaN probabilities mean a bug upstream (logits passed as probabilities...):
    # refuse rather than bin them somewhere plausible.
    if not np.all((confidence >= 0.0) & (confidence <= 1.0)):
        raise ValueError(f"{what} must lie in [0, 1] (no NaN)")
    edges = np.linspace(0.0, 1.0, n_bins + 1)  # exactly sklearn's edges, so edge cases agree
    ids = np.searchsorted(edges[1:-1], confidence)  # side="left": c on an edge joins the lower bin
    counts = np.bincount(ids, minlength=n_bins)
    conf_sums = np.bincount(ids, weights=confidence, minlength=n_bins)
    right_sums = np.bincount(ids, weights=correct.astype(float), minlength=n_bins)
    bins = []
    for b in range(n_bins):
        count = int(counts[b])
        mean = float(conf_sums[b] / count) if count else None
        accuracy = float(right_sums[b] / count) if count else None
        bins.append(CalibrationBin(float(edges[b]), float(edges[b + 1]), count, mean, accuracy))
    n = int(correct.size)
    if n == 0:
        return Calibration(None, EMPTY_SPLIT, 0, bins)
    ece = sum(b.count / n * abs(b.accuracy - b.mean_confidence) for b in bins if b.count)  # type: ignore[operator]
    return Calibration(float(ece), None, n, bins)
