"""The report's table columns follow what the evaluators recorded."""

from ftlab.reporting.summary import COLUMNS, columns_for


def test_classification_and_generation_columns():
    assert columns_for({"accuracy", "f1", "auroc", "precision", "recall", "n"}, COLUMNS) == COLUMNS
    assert columns_for({"accuracy", "accuracy_strict", "accuracy_flexible", "n_unparsed_strict", "safety_rate"}, COLUMNS) == (
        "accuracy_strict", "accuracy_flexible", "safety_rate")


def test_an_inspect_only_spec_shows_its_own_metrics_not_missing_columns():
    # seed 004 scores with an inspect task only: its metrics are <scorer>_<metric>
    assert columns_for({"match_accuracy", "match_stderr", "n", "checkpoint", "step"}, COLUMNS) == ("match_accuracy",)
    assert columns_for(set(), COLUMNS) == COLUMNS  # nothing recorded yet: the usual header
