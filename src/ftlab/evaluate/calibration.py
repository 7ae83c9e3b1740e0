"""Expected calibration error (ECE) and the reliability table of binary positive-class probabilities.

    from ftlab.evaluate.calibration import calibration

    cal = calibration([True, False, True], [0.9, 0.2, 0.6], n_bins=10)
    cal.ece            # 0.2333...  (None, with cal.reason, on an empty split)
    cal.bins[9]        # CalibrationBin(lo=0.9, hi=1.0, count=0, mean_confidence=None, accuracy=None)
    cal.metric()       # Metric(0.2333...) for a metrics dict

Binning (the same as sklearn.calibration.calibration_curve(strategy="uniform"), which the tests
check bin by bin): n_bins equal-width bins with edges np.linspace(0, 1, n_bins + 1); a probability
p goes to bin number (count of interior edges < p), so bins are RIGHT-closed, (lo, hi], and the
first bin also holds p = 0: [0, 0.1], (0.1, 0.2], ..., (0.9, 1]. (numpy.histogram closes bins on
the left instead; only probabilities exactly on an edge differ, and agreeing with sklearn lets a
reader re-check our numbers with it.)

"Confidence" here is the predicted probability of the POSITIVE class (a reliability diagram's
x axis), not max(p, 1 - p); "accuracy" is the observed fraction of positives in the bin.
ECE = sum over bins of count/n * |accuracy - mean_confidence| (Naeini et al. 2015; Guo et al. 2017).

Plain numpy, like metrics.py: importing sklearn costs ~1 s and the library must run without it.
Run the tests: `.venv/bin/pytest tests/evaluate/test_calibration.py -q`
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ftlab.evaluate.metrics import EMPTY_SPLIT, Metric


@dataclass(frozen=True)
class CalibrationBin:
    """One equal-width bin: its edges, size, mean predicted probability and fraction positive."""

    lo: float
    hi: float
    count: int
    mean_confidence: float | None  # None when the bin is empty
    accuracy: float | None  # fraction of positives among the bin's examples; None when empty


@dataclass(frozen=True)
class Calibration:
    """ECE over n examples (None with the reason when undefined) and every bin, empty ones too."""

    ece: float | None
    reason: str | None
    n: int
    bins: list[CalibrationBin]

    def metric(self) -> Metric:
        return Metric(self.ece, self.reason)


def calibration(is_positive: Sequence[bool], prob_positive: Sequence[float], n_bins: int = 10) -> Calibration:
    """Reliability bins and ECE of `prob_positive` (each in [0, 1]) against the true labels."""
    if isinstance(n_bins, bool) or not isinstance(n_bins, int) or n_bins < 1:
        raise ValueError(f"n_bins must be a positive integer, got {n_bins!r}")
    labels = np.asarray(is_positive, dtype=bool).reshape(-1)
    probs = np.asarray(prob_positive, dtype=float).reshape(-1)
    if labels.size != probs.size:
        raise ValueError(f"prob_positive has {probs.size} entries but is_positive has {labels.size}")
    # Out-of-range or NaN probabilities mean a bug upstream (logits passed as probabilities...):
    # refuse rather than bin them somewhere plausible.
    if not np.all((probs >= 0.0) & (probs <= 1.0)):
        raise ValueError("prob_positive must lie in [0, 1] (no NaN)")
    edges = np.linspace(0.0, 1.0, n_bins + 1)  # exactly sklearn's edges, so edge cases agree
    ids = np.searchsorted(edges[1:-1], probs)  # side="left": p on an edge joins the lower bin
    counts = np.bincount(ids, minlength=n_bins)
    prob_sums = np.bincount(ids, weights=probs, minlength=n_bins)
    pos_sums = np.bincount(ids, weights=labels.astype(float), minlength=n_bins)
    bins = []
    for b in range(n_bins):
        count = int(counts[b])
        mean = float(prob_sums[b] / count) if count else None
        accuracy = float(pos_sums[b] / count) if count else None
        bins.append(CalibrationBin(float(edges[b]), float(edges[b + 1]), count, mean, accuracy))
    n = int(labels.size)
    if n == 0:
        return Calibration(None, EMPTY_SPLIT, 0, bins)
    ece = sum(b.count / n * abs(b.accuracy - b.mean_confidence) for b in bins if b.count)  # type: ignore[operator]
    return Calibration(float(ece), None, n, bins)
