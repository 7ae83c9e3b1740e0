"""Top-label ECE (Guo et al. 2017): hand computations, sklearn's calibration_curve bin by bin, edges, and the undefined case."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.calibration import calibration_curve

from ftlab.evaluate.calibration import calibration, top_label_calibration
from ftlab.evaluate.metrics import Metric


def test_hand_computed_top_label_ece():
    # Guo et al.: confidence = top probability, correct = top label is the true label. 5 bins.
    #   A  {.58, .30, .12} -> top A .58, right | bin (.4, .6]
    #   B  {.45, .44, .11} -> top A .45, wrong | bin (.4, .6]: mean conf .515, acc .5 -> 2/4 * .015
    #   C  {.10, .15, .75} -> top C .75, right | bin (.6, .8]: 1/4 * |1 - .75| = .0625
    #   A  {.05, .90, .05} -> top B .90, wrong | bin (.8, 1]: 1/4 * |0 - .9|  = .225
    labels = ["A", "B", "C", "A"]
    probs = [
        {"A": 0.58, "B": 0.30, "C": 0.12},
        {"A": 0.45, "B": 0.44, "C": 0.11},
        {"A": 0.10, "B": 0.15, "C": 0.75},
        {"A": 0.05, "B": 0.90, "C": 0.05},
    ]
    cal = top_label_calibration(labels, probs, n_bins=5)
    assert cal.ece == pytest.approx(2 / 4 * 0.015 + 0.0625 + 0.225)
    assert cal.n == 4 and cal.reason is None and [b.count for b in cal.bins] == [0, 0, 2, 1, 1]
    assert cal.bins[2].mean_confidence == pytest.approx(0.515) and cal.bins[2].accuracy == 0.5
    assert cal.metric() == Metric(cal.ece)
    # ties go to the first label, as classify decides: B's .5 loses to A's .5
    assert top_label_calibration(["B"], [{"A": 0.5, "B": 0.5}]).bins[4].accuracy == 0.0


def test_binary_form_is_top_label_not_the_positive_class_curve():
    # Both positive, p = .1 and .9: top-label confidences .9 and .9, one right -> |.5 - .9| = .4.
    # The positive-class curve (the old definition) put them in two bins: (.9 + .1) / 2 = .5.
    cal = calibration([True, True], [0.1, 0.9])
    assert cal.ece == pytest.approx(0.4)
    assert [b.count for b in cal.bins] == [0] * 8 + [2, 0]
    # the binary form equals the general one on {positive: p, negative: 1 - p}
    general = top_label_calibration(["P", "P"], [{"P": 0.1, "N": 0.9}, {"P": 0.9, "N": 0.1}])
    assert general.ece == pytest.approx(cal.ece)
    # ... and on data where the old and new definitions agree per example (one per bin)
    assert calibration([True, False, True], [0.9, 0.2, 0.6]).ece == pytest.approx((0.1 + 0.2 + 0.4) / 3)


def test_perfectly_calibrated_bins_give_zero():
    # confidences .75 each, 3 of 4 right
    cal = calibration([True, True, True, False], [0.75, 0.75, 0.75, 0.75])
    assert cal.ece == pytest.approx(0.0)


@pytest.mark.parametrize("n_bins", [1, 5, 10, 15])
def test_bins_agree_with_sklearn(n_bins):
    rng = np.random.default_rng(0)
    probs = rng.random(500)
    # Confidences exactly on edges, and 0.5 and 1, are where binning conventions disagree.
    probs[:12] = [0.0, 1.0, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9, 0.25, 0.75, 1 / 3, 2 / 3]
    labels = rng.random(500) < probs
    cal = calibration(labels.tolist(), probs.tolist(), n_bins=n_bins)
    confidence = np.maximum(probs, 1 - probs)
    correct = (probs >= 0.5) == labels
    frac_right, mean_conf = calibration_curve(correct, confidence, n_bins=n_bins, strategy="uniform")
    nonempty = [b for b in cal.bins if b.count]
    assert [b.accuracy for b in nonempty] == pytest.approx(frac_right.tolist(), abs=1e-12)
    assert [b.mean_confidence for b in nonempty] == pytest.approx(mean_conf.tolist(), abs=1e-12)
    assert sum(b.count for b in cal.bins) == 500 and len(cal.bins) == n_bins


def test_edges_are_right_closed():
    # top-label confidences .5 (p = .5), .6, .6 (p = .4), .60001, 1 (p = 0 and p = 1)
    cal = calibration([True, True, False, True, True, False], [0.5, 0.6, 0.4, 0.60001, 1.0, 0.0], n_bins=10)
    assert [b.count for b in cal.bins] == [0, 0, 0, 0, 1, 2, 1, 0, 0, 2]
    assert cal.bins[7].mean_confidence is None and cal.bins[7].accuracy is None


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


def test_bad_label_probabilities_are_refused():
    with pytest.raises(ValueError, match="has 1 entries but y_true has 2"):
        top_label_calibration(["A", "B"], [{"A": 1.0}])
    with pytest.raises(ValueError, match="example 0 has no label probabilities"):
        top_label_calibration(["A"], [{}])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        top_label_calibration(["A"], [{"A": 3.0, "B": -2.0}])
