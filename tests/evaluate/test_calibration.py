"""ECE: a hand computation, sklearn's calibration_curve bin by bin, edges, and the undefined case."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.calibration import calibration_curve

from ftlab.evaluate.calibration import calibration
from ftlab.evaluate.metrics import Metric


def test_hand_computed_ece():
    # Bin [0, .5]: probs .1, .3 (mean .2), 1 of 2 positive (.5) -> |.5 - .2| = .3, weight 2/5.
    # Bin (.5, 1]: probs .6, .8, 1.0 (mean .8), 3 of 3 positive (1.0) -> .2, weight 3/5.
    cal = calibration([True, False, True, True, True], [0.1, 0.3, 0.6, 0.8, 1.0], n_bins=2)
    assert cal.ece == pytest.approx(2 / 5 * 0.3 + 3 / 5 * 0.2)
    assert cal.n == 5 and cal.reason is None
    low, high = cal.bins
    assert (low.lo, low.hi, low.count) == (0.0, 0.5, 2)
    assert low.mean_confidence == pytest.approx(0.2) and low.accuracy == pytest.approx(0.5)
    assert (high.lo, high.hi, high.count) == (0.5, 1.0, 3)
    assert high.mean_confidence == pytest.approx(0.8) and high.accuracy == 1.0
    assert cal.metric() == Metric(cal.ece)


def test_perfectly_calibrated_bins_give_zero():
    cal = calibration([True, False, True, False], [0.5, 0.5, 0.5, 0.5])
    assert cal.ece == pytest.approx(0.0)


@pytest.mark.parametrize("n_bins", [1, 5, 10, 15])
def test_bins_agree_with_sklearn(n_bins):
    rng = np.random.default_rng(0)
    probs = rng.random(500)
    # Probabilities exactly on edges, and 0 and 1, are where binning conventions disagree.
    probs[:12] = [0.0, 1.0, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9, 0.25, 0.75, 1 / 3, 2 / 3]
    labels = rng.random(500) < probs
    cal = calibration(labels.tolist(), probs.tolist(), n_bins=n_bins)
    frac_pos, mean_pred = calibration_curve(labels, probs, n_bins=n_bins, strategy="uniform")
    nonempty = [b for b in cal.bins if b.count]
    assert [b.accuracy for b in nonempty] == pytest.approx(frac_pos.tolist(), abs=1e-12)
    assert [b.mean_confidence for b in nonempty] == pytest.approx(mean_pred.tolist(), abs=1e-12)
    assert sum(b.count for b in cal.bins) == 500 and len(cal.bins) == n_bins


def test_edges_are_right_closed_and_zero_is_in_the_first_bin():
    cal = calibration([True, True, True, True], [0.0, 0.1, 0.10001, 1.0], n_bins=10)
    assert [b.count for b in cal.bins] == [2, 1, 0, 0, 0, 0, 0, 0, 0, 1]
    assert cal.bins[2].mean_confidence is None and cal.bins[2].accuracy is None


def test_empty_split_is_undefined_not_zero():
    cal = calibration([], [])
    assert cal.ece is None and cal.reason == "empty split" and cal.n == 0
    assert len(cal.bins) == 10 and all(b.count == 0 for b in cal.bins)
    assert cal.metric() == Metric(None, "empty split")


@pytest.mark.parametrize(
    ("labels", "probs", "n_bins", "message"),
    [
        ([True], [1.2], 10, r"\[0, 1\]"),
        ([True], [float("nan")], 10, r"\[0, 1\]"),
        ([True, False], [0.5], 10, "has 1 entries"),
        ([True], [0.5], 0, "positive integer"),
    ],
)
def test_bad_input_is_refused(labels, probs, n_bins, message):
    with pytest.raises(ValueError, match=message):
        calibration(labels, probs, n_bins=n_bins)
