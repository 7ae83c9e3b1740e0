"""Check kinds on hand-made aggregated rows (no training): holds, fails and inconclusive, with numbers."""

from __future__ import annotations

import pytest

from ftlab.errors import SpecError
from ftlab.reporting.checks import run_checks
from ftlab.spec.schema import CheckSpec


def _agg(points):
    """points: [(kind, variant, gamma, mean, sd, n)] -> an aggregated frame on valid/ppr."""
    import math

    import pandas as pd

    rows = []
    for kind, variant, gamma, mean, sd, n in points:
        se = sd / math.sqrt(n) if n > 1 else sd
        half = 2.0 * se if n > 1 else 1.96 * sd
        rows.append({"kind": kind, "method": "full", "variant": variant, "gamma": gamma, "split": "valid",
                     "evaluator": "logits", "metric": "ppr", "mean": mean, "sd": sd if n > 1 else math.nan,
                     "n": n, "ci_low": mean - half, "ci_high": mean + half, "se": se,
                     "ci_method": f"t over {n} seeds" if n > 1 else "bootstrap over examples (1 seed)",
                     "seeds": list(range(n)), "runs": [f"{variant}{gamma}_s{i}" for i in range(n)], "undefined_reason": None})
    agg = pd.DataFrame(rows)
    agg.attrs["sweep_variables"] = ["variant", "gamma"]
    return agg


def _run(agg, **check):
    return run_checks(agg, [CheckSpec(**check)], default_split="valid", default_evaluator="logits")[0]


RISING = [("trained", "none", 1, 0.40, 0.01, 3), ("trained", "accept", 2, 0.50, 0.01, 3), ("trained", "accept", 4, 0.62, 0.01, 3),
          ("trained", "reject", 2, 0.30, 0.01, 3), ("trained", "reject", 4, 0.20, 0.01, 3)]


def test_monotonic_within_a_variant_with_the_baseline_as_anchor():
    agg = _agg(RISING)
    up = _run(agg, kind="monotonic", metric="ppr", over="gamma", where={"variant": "accept"}, anchor={"variant": "none"})
    assert up["status"] == "holds" and "gamma=1" in up["details"][0] and "+0.120" in up["details"][0]
    down = _run(agg, kind="monotonic", metric="ppr", over="gamma", direction="decreasing", where={"variant": "reject"}, anchor={"variant": "none"})
    assert down["status"] == "holds"
    wrong = _run(agg, kind="monotonic", metric="ppr", over="gamma", direction="decreasing", where={"variant": "accept"})
    assert wrong["status"] == "fails"


def test_monotonic_is_inconclusive_when_seeds_disagree():
    noisy = _agg([("trained", "accept", 2, 0.50, 0.20, 2), ("trained", "accept", 4, 0.55, 0.20, 2)])
    assert _run(noisy, kind="monotonic", metric="ppr", over="gamma")["status"] == "inconclusive"


def test_threshold_compare_range():
    agg = _agg(RISING + [("untuned", None, None, 0.10, 0.02, 1)])
    assert _run(agg, kind="threshold", metric="ppr", min=0.1)["status"] == "holds"
    assert _run(agg, kind="threshold", metric="ppr", min=0.45, where={"variant": "accept"})["status"] == "holds"
    failed = _run(agg, kind="threshold", metric="ppr", min=0.45)
    assert failed["status"] == "fails" and any("0.200" in d and "fails" in d for d in failed["details"])
    assert _run(agg, kind="threshold", metric="ppr", min=0.5, where={"variant": "accept", "gamma": 2})["status"] == "inconclusive"
    beat = _run(agg, kind="compare", metric="ppr", a={"variant": "accept", "gamma": 4}, b={"kind": "untuned"})
    assert beat["status"] == "holds" and "+0.520" in beat["details"][0]
    assert _run(agg, kind="compare", metric="ppr", a={"kind": "untuned"}, b={"variant": "accept", "gamma": 4})["status"] == "fails"
    assert _run(agg, kind="range", metric="ppr", span=[0.3, 0.6])["status"] == "holds"
    assert _run(agg, kind="range", metric="ppr", span=[0.1, 0.7])["status"] == "fails"
    assert _run(agg, kind="range", metric="ppr", within=[0.0, 1.0])["status"] == "holds"
    assert _run(agg, kind="threshold", metric="ppr", min=0.1, where={"variant": "nosuch"})["status"] == "inconclusive"


def test_spec_problems_are_reported_with_paths(tmp_path):
    from ftlab.spec.plan import load_plan
    from tests.conftest import write_spec

    spec = write_spec(tmp_path, sweep="[{grid: {lr: [0.1, 0.2]}}]")
    spec.write_text(spec.read_text() + """report:
  checks:
    - {kind: treshold, metric: accuracy, min: 0.5}
    - {kind: monotonic, metric: acuracy, over: gama, where: {lrr: 1}}
    - {kind: range, metric: accuracy, span: [0.1, 0.2], colour: red}
    - {kind: threshold, metric: accuracy, split: tst}
  plots: [heatmapp]
""")
    with pytest.raises(SpecError) as err:
        load_plan(spec)
    text = str(err.value)
    for expected in ("report.checks[0].kind: unknown check kind 'treshold'. Did you mean 'threshold'?",
                     "report.checks[1].metric: no evaluator of this spec records 'acuracy'. Did you mean 'accuracy'?",
                     "report.checks[1].over: 'gama' is not a sweep variable",
                     "report.checks[1].where.lrr: 'lrr' is not a sweep variable. Did you mean 'lr'?",
                     "report.checks[2].colour: unknown option 'colour' for a range check",
                     "report.checks[3].split: no dataset named 'tst'. Did you mean 'test'?",
                     "report.checks[3]: a threshold check needs 'min' and/or 'max'",
                     "report.plots[0]: unknown report plot 'heatmapp'. Did you mean 'heatmap'?"):
        assert expected in text, (expected, text)


def test_monotonic_groups_by_the_other_variables_and_anchors_per_group():
    import pandas as pd

    frames = []
    for frac, base, step in (("1/4", 0.45, 0.1), ("1/8", 0.05, -0.02)):  # 1/8: accept lowers ppr -> fails there
        agg = _agg([("trained", "none", 1, base, 0.01, 3), ("trained", "accept", 2, base + step, 0.01, 3),
                    ("trained", "accept", 4, base + 2 * step, 0.01, 3)])
        frames.append(agg.assign(frac=frac))
    agg = pd.concat(frames, ignore_index=True)
    agg.attrs["sweep_variables"] = ["variant", "gamma", "frac"]
    result = _run(agg, kind="monotonic", metric="ppr", over="gamma", where={"variant": "accept"}, anchor={"variant": "none"})
    assert result["status"] == "fails" and len(result["details"]) == 2
    assert result["details"][0].startswith("frac=1/4") and ": holds." in result["details"][0]
    assert result["details"][1].startswith("frac=1/8") and ": fails." in result["details"][1]
    assert result["details"][0].count("gamma=1:") == 1  # the group's own baseline, not the other balance's


def test_monotonic_allows_a_saturated_flat_step_but_not_a_flat_series():
    saturated = _agg([("trained", "accept", 1, 0.40, 0.01, 3), ("trained", "accept", 2, 1.0, 0.0, 3), ("trained", "accept", 8, 1.0, 0.0, 3)])
    assert _run(saturated, kind="monotonic", metric="ppr", over="gamma")["status"] == "holds"
    flat = _agg([("trained", "accept", 2, 1.0, 0.0, 3), ("trained", "accept", 8, 1.0, 0.0, 3)])
    assert _run(flat, kind="monotonic", metric="ppr", over="gamma")["status"] == "fails"


def test_nothing_evaluated_yet_gives_empty_tables_and_inconclusive_checks(tmp_path):
    from ftlab.registry import Registry
    from ftlab.reporting.aggregate import aggregate
    from ftlab.reporting.html import write_html
    from ftlab.reporting.plots import draw_plots
    from ftlab.reporting.results import results_frame
    from ftlab.spec.schema import Report
    from ftlab.contract.inputs import ReportInputs, Selection

    reg = Registry(tmp_path / "registry.sqlite")
    reg.upsert_run("r1-a", index=0, name="lr0.1", kind="sweep", seed=0, sweep={"lr": 0.1}, config={"method": {"name": "full"}})
    df = results_frame(reg.runs(), reg.metrics(), tmp_path)
    agg = aggregate(df)
    assert df.empty and agg.empty
    checks = [CheckSpec(kind=k, metric="accuracy", **extra) for k, extra in
              (("threshold", {"min": 0.5}), ("monotonic", {"over": "lr"}), ("range", {"span": [0.1, 0.2]}),
               ("compare", {"a": {"kind": "trained"}, "b": {"kind": "untuned"}}))]
    results = run_checks(agg, checks, default_split="test", default_evaluator="logits")
    assert [r["status"] for r in results] == ["inconclusive"] * 4 and results[0]["details"] == ["no results match"]
    assert draw_plots(df, agg, tmp_path / "plots", names=[], splits=["valid", "test"], select={}, experiment_dir=tmp_path) == []
    write_html(tmp_path / "index.html", df=df, agg=agg, checks=results, plots=[], rows=[], inputs=ReportInputs(
        evals={}, splits=["valid", "test"], report=Report(), spec="", name="", run_ids=[], variables=[],
        select=Selection(split="valid", metric="accuracy", evaluator="logits", higher_is_better=True)),
               registry=reg, experiment_dir=tmp_path)
    assert "no results match" in (tmp_path / "index.html").read_text()


def test_correction_and_min_effect_are_validated_with_their_paths(tmp_path):
    from ftlab.spec.plan import load_plan
    from tests.conftest import write_spec

    spec = write_spec(tmp_path, sweep="[{grid: {lr: [0.1, 0.2]}}]")
    spec.write_text(spec.read_text() + """report:
  correction: holmm
  checks:
    - {kind: compare, metric: accuracy, a: {lr: 0.1}, b: {lr: 0.2}, min_effect: -0.02}
""")
    with pytest.raises(SpecError) as err:
        load_plan(spec)
    text = str(err.value)
    assert "report.correction" in text and "holm" in text, text
    assert "report.checks[0].min_effect" in text, text
