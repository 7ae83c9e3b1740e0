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


def test_a_task_with_more_than_two_labels_says_which_label_precision_scores(tmp_path):
    # a 3-class summary once showed "precision 1.000" with no word of which class it was about
    import pandas as pd

    from ftlab.graph import build_graph
    from ftlab.spec.plan import load_plan
    from ftlab.reporting.summary import render_aggregated

    data = tmp_path / "d.jsonl"
    data.write_text("".join(f'{{"prompt": "What is a {a}?", "completion": "{y}"}}\n'
                            for a, y in [("dog", "mammal"), ("owl", "bird"), ("cod", "fish")] * 4))
    spec = tmp_path / "spec.yaml"
    spec.write_text(f"""name: animals
output_dir: out
model: {{tiny: {{hidden_size: 32, num_layers: 1, num_heads: 2, num_kv_heads: 1, intermediate_size: 64, vocab_size: 400}}}}
task: {{labels: [mammal, bird, fish]}}
datasets:
  - {{name: train, role: train, path: {data}}}
  - {{name: valid, role: valid, path: {data}}}
method: {{name: full}}
""")
    report = next(t for t in build_graph(load_plan(spec)).tasks if t.stage == "report")
    assert report.inputs.one_vs_rest == "mammal"
    agg = pd.DataFrame(columns=["kind", "method", "split", "metric", "mean", "sd", "n", "seeds"])
    assert "'mammal' against the other labels" in render_aggregated(agg, ["valid"], report.inputs.one_vs_rest)
    assert "against the other labels" not in render_aggregated(agg, ["valid"])
    two = spec.read_text().replace("[mammal, bird, fish]", "[mammal, bird]")
    spec.write_text(two)
    data.write_text(data.read_text().replace("fish", "bird"))
    report = next(t for t in build_graph(load_plan(spec)).tasks if t.stage == "report")
    assert report.inputs.one_vs_rest is None  # a binary task keeps its report identity
