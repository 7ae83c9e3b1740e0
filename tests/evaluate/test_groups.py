"""Per-group metrics match classification_metrics on each subset; denominators are checked."""

from __future__ import annotations

import pytest

from ftlab.evaluate.groups import MISSING, by_group, check_denominators
from ftlab.evaluate.metrics import classification_metrics


def rec(label, pred, p, **meta):
    return {"label": label, "pred": pred, "probs": {"P": p, "N": 1 - p}, "meta": meta}


RECORDS = [
    rec("P", "P", 0.9, year=2019),
    rec("N", "P", 0.6, year=2019),
    rec("N", "N", 0.2, year="2019"),  # same group as the int: keys are text
    rec("P", "N", 0.4, year=2020),
    rec("P", "P", 0.8, year=2020),
    rec("P", None, 0.5),  # no year at all
    rec("N", "N", 0.1, year=None),
]


def test_groups_equal_metrics_on_each_subset():
    metrics = by_group(RECORDS, "year", positive="P")
    assert list(metrics) == [MISSING, "2019", "2020"]
    sub = RECORDS[:3]
    direct = classification_metrics(
        [r["label"] for r in sub], [r["pred"] for r in sub], positive="P", scores=[r["probs"]["P"] for r in sub]
    )
    assert metrics["2019"] == direct
    assert metrics["2019"]["n"].value == 3 and metrics["2019"]["auroc"].value == 1.0
    assert metrics[MISSING]["n"].value == 2 and metrics[MISSING]["n_unparsed"].value == 1


def test_one_class_group_is_undefined_with_reason():
    metrics = by_group(RECORDS, "year", positive="P")
    only_pos = metrics["2020"]  # seed 000's valid_hem_only situation: no negatives
    assert only_pos["recall"].value == pytest.approx(0.5)
    assert only_pos["auroc"].value is None and "no negatives" in only_pos["auroc"].reason


def test_meta_of_reads_meta_from_elsewhere_and_missing_probs_disable_auroc():
    metas = [{"specialty": "cardio"}, {"specialty": "neuro"}, {}]
    records = [{"index": i, "label": "P", "pred": "P"} for i in range(3)]
    metrics = by_group(records, "specialty", positive="P", meta_of=lambda r: metas[r["index"]])
    assert list(metrics) == [MISSING, "cardio", "neuro"]
    assert metrics["cardio"]["auroc"].reason == "no scores"
    assert by_group([], "year", positive="P") == {}


def test_check_denominators():
    expected = {"gsm8k": 1319, "ailuminate": 240, "gsm8k_small": 263}
    assert check_denominators({"gsm8k": 1319, "ailuminate": 240, "gsm8k_small": 263, "extra": 5}, expected) == []
    assert check_denominators({"gsm8k": 1318, "ailuminate": 240}, expected) == [
        "gsm8k: expected 1319 examples, got 1318",
        "gsm8k_small: expected 263 examples, got none (the split was not evaluated)",
    ]
