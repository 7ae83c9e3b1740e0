"""The report on a finished tiny experiment: results(), aggregation, checks, CLI, exports, HTML."""

from __future__ import annotations

import json
import math
import os
import sqlite3
import statistics
from pathlib import Path

import pytest

import ftlab
from ftlab.cli import main
from tests.reporting.conftest import CHECKS, FAILING, write_experiment

pytestmark = pytest.mark.slow


def test_results_rows_and_columns(finished):
    df = ftlab.results(finished)
    out = finished.parent / "out"
    for col in ("run_id", "run", "kind", "method", "seed", "lr", "checkpoint", "step", "epoch", "selected",
                "split", "evaluator", "metric", "value", "undefined_reason", "evidence"):
        assert col in df.columns, col
    assert df.attrs["sweep_variables"] == ["lr"]
    assert set(df["kind"]) == {"trained", "untuned"}
    # Same rows as the registry's metrics table: one per run x checkpoint x split x evaluator x metric.
    with sqlite3.connect(out / "registry.sqlite") as conn:
        (count,) = conn.execute("SELECT COUNT(*) FROM metrics").fetchone()
    assert len(df) == count
    assert not df.duplicated(["run_id", "checkpoint", "split", "evaluator", "metric"]).any()
    # Exactly one selected checkpoint per run, and it is the one eval/summary.json names.
    for run, g in df.groupby("run"):
        best = json.loads((out / "runs" / run / "eval" / "summary.json").read_text())["best_checkpoint"]
        assert set(g[g["selected"]]["checkpoint"]) == {best}
    assert set(df[df["kind"] == "trained"]["lr"]) == {0.003, 0.001}
    assert (df[df["checkpoint"] != "step_0"]["epoch"] > 0).all()
    assert ftlab.results(out).shape == df.shape  # the output directory works as well as the spec


def test_aggregated_means_match_the_registry(finished):
    from ftlab.reporting.aggregate import aggregate

    agg = aggregate(ftlab.results(finished))
    out = finished.parent / "out"
    conn = sqlite3.connect(out / "registry.sqlite")
    runs = {rid: (name, json.loads(sweep)["lr"], kind) for rid, name, sweep, kind in conn.execute("SELECT run_id, name, sweep, kind FROM runs")}
    by_lr: dict[float, list[float]] = {}
    for rid, (name, lr, kind) in runs.items():
        if kind != "sweep":
            continue
        best = json.loads((out / "runs" / name / "eval" / "summary.json").read_text())["best_checkpoint"]
        (value,) = conn.execute("SELECT value FROM metrics WHERE run_id=? AND checkpoint=? AND split='test' AND metric='auroc'", (rid, best)).fetchone()
        by_lr.setdefault(lr, []).append(value)
    for lr, values in by_lr.items():
        row = agg[(agg["lr"] == lr) & (agg["kind"] == "trained") & (agg["split"] == "test") & (agg["metric"] == "auroc")].iloc[0]
        assert row["n"] == 2 and row["mean"] == pytest.approx(statistics.mean(values))
        assert row["sd"] > 0  # the seeds selected different checkpoints: a real spread to aggregate
        assert row["sd"] == pytest.approx(statistics.stdev(values))
        # t(0.975, 1) = 12.706: two seeds give a wide interval, as they should.
        half = 12.7062047 * statistics.stdev(values) / math.sqrt(2)
        assert row["ci_low"] == pytest.approx(max(row["mean"] - half, 0.0))  # AUROC stays in [0, 1]
        assert row["ci_high"] == pytest.approx(min(row["mean"] + half, 1.0))
    untuned = agg[(agg["kind"] == "untuned") & (agg["split"] == "test") & (agg["metric"] == "accuracy")].iloc[0]
    assert untuned["n"] == 1 and "bootstrap" in untuned["ci_method"]
    assert untuned["ci_low"] <= untuned["mean"] <= untuned["ci_high"] and untuned["ci_low"] < untuned["ci_high"]


def test_positives_only_split_shows_recall_and_marks_the_rest_not_meaningful(finished):
    from ftlab.reporting.aggregate import aggregate

    df = ftlab.results(finished)
    pos = df[(df["split"] == "pos_only") & df["selected"]]
    assert (pos[pos["metric"] == "n_negative"]["value"] == 0).all()
    for metric in ("precision", "f1", "auroc"):
        rows = pos[pos["metric"] == metric]
        assert rows["value"].isna().all() and rows["undefined_reason"].str.startswith("not meaningful").all()
    assert pos[pos["metric"] == "recall"]["value"].notna().all()
    agg = aggregate(df)
    assert agg[(agg["split"] == "pos_only") & (agg["metric"] == "precision")]["mean"].isna().all()
    summary = (finished.parent / "out" / "report" / "summary.txt").read_text()
    header, first = summary.splitlines()[0], summary.splitlines()[2]
    cells = dict(zip(_columns(header), _columns(first)))
    assert cells["pos_only precision"] == "n/m" and cells["pos_only f1"] == "n/m" and cells["pos_only auroc"] == "n/m"
    assert cells["pos_only recall"][0].isdigit()


def _columns(line: str) -> list[str]:
    return [c.strip() for c in line.split("  ") if c.strip()]


def test_report_check_exits_nonzero_on_a_failing_check(tmp_path, finished, capsys):
    out = finished.parent / "out"
    failing = write_experiment(tmp_path, CHECKS + FAILING)
    failing.write_text(failing.read_text().replace("output_dir: out", f"output_dir: {out}"))
    assert main(["report", str(failing), "--check"]) == 1
    assert "impossible bar" in capsys.readouterr().err
    checks = {c["name"]: c for c in json.loads((out / "report" / "checks.json").read_text())}
    assert checks["impossible bar"]["status"] == "fails" and "0.999" in checks["impossible bar"]["details"][0]
    assert checks["accuracy is a rate"]["status"] == "holds"
    assert main(["report", str(finished), "--check"]) == 0  # the spec's own checks hold


def test_results_json_and_csv(finished):
    import pandas as pd

    out = finished.parent / "out"
    data = json.loads((out / "results.json").read_text())
    run = next(r for r in data["runs"] if r["kind"] == "sweep")
    assert {"stages", "metrics", "config", "status"} <= set(run)
    assert {s["stage"] for s in run["stages"]} == {"train", "eval"} and run["status"] == "done"
    assert run["selected_checkpoint"] and run["selected"]["test"]["logits"]["accuracy"] is not None
    csv = pd.read_csv(out / "report" / "results.csv")
    assert len(csv) == len(ftlab.results(out))


def test_mlflow_export_reads_back(finished, tmp_path):
    os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    from mlflow.tracking import MlflowClient

    store = tmp_path / "mlruns"
    for _ in range(2):  # a second export replaces the first, it does not duplicate runs
        assert ftlab.export_mlflow(finished, store).runs == 5  # 4 trained + untuned (the report has its own run)
    client = MlflowClient(tracking_uri=store.as_uri())
    exp = client.get_experiment_by_name("reptiny")
    runs = client.search_runs([exp.experiment_id])
    by_name = {r.info.run_name: r for r in runs}
    assert len(runs) == 6  # 4 trained + untuned + the report run
    r = by_name["lr0.003_s0"]
    assert r.data.params["train.learning_rate"] == "0.003" and r.data.tags["ftlab.kind"] == "sweep"
    df = ftlab.results(finished)
    mine = df[(df["run"] == "lr0.003_s0") & (df["split"] == "valid") & (df["metric"] == "accuracy")]
    history = client.get_metric_history(r.info.run_id, "valid/logits/accuracy")
    assert sorted((m.step, m.value) for m in history) == sorted(zip(mine["step"], mine["value"]))
    assert len(client.get_metric_history(r.info.run_id, "train/loss")) >= 3
    report_run = by_name["reptiny/report"]
    names = {a.path for a in client.list_artifacts(report_run.info.run_id, "report")}
    assert "report/index.html" in names and "report/plots" in names


def test_plots_follow_the_sweep(finished):
    plots = finished.parent / "out" / "report" / "plots"
    for name in ("auroc_vs_lr", "predicted_positive_rate_vs_lr", "precision_recall", "checkpoints_auroc",
                 "training_loss", "reliability", "confusion"):
        assert (plots / f"{name}.png").stat().st_size > 5000, name
        assert (plots / f"{name}.svg").read_text().startswith("<?xml")
    assert "not drawn" not in (plots.parent / "summary.txt").read_text()
    assert not list(plots.glob("heatmap*"))  # one sweep variable: nothing to put on a second axis


PAIRED = """    - {kind: compare, metric: accuracy, split: test, a: {lr: 0.003}, b: {kind: untuned}, name: tuned vs untuned, min_effect: 0.05}
    - {kind: monotonic, metric: accuracy, split: test, over: lr, direction: decreasing, name: slower is worse}
"""


def test_compare_and_monotonic_are_paired_over_the_shared_test_examples(tmp_path, finished):
    out = finished.parent / "out"
    spec = write_experiment(tmp_path, CHECKS + PAIRED)
    spec.write_text(spec.read_text().replace("output_dir: out", f"output_dir: {out}"))
    assert main(["report", str(spec)]) == 0
    checks = {c["name"]: c for c in json.loads((out / "report" / "checks.json").read_text())}
    tuned = checks["tuned vs untuned"]
    c = tuned["comparisons"][0]
    # 2 seeds of lr=0.003 against the one untuned run, on the same 40 test examples.
    assert c["paired"] and "two-level bootstrap: 2 vs 1 seeds, then 40 shared examples" in c["method"], c
    assert c["p_adjusted"] >= c["p"] and tuned["correction"] == "holm"
    # lr 0.001 -> 0.003 is both the one step and first -> last: one comparison, counted once.
    assert tuned["family_size"] == 2 and checks["slower is worse"]["family_size"] == 2
    assert c["seeds_needed"] and not c["seeds_needed"].startswith("unknown")  # untuned: no seed variance
    slower = checks["slower is worse"]["comparisons"]
    assert len(slower) == 1 and all(x["paired"] and "2 vs 2 seeds" in x["method"] for x in slower)  # its one step is listed once
    text = (out / "report" / "summary.txt").read_text()
    assert "p-values adjusted by holm over the 2 comparisons" in text and "two-level bootstrap" in text
    assert "adjusted" in (out / "report" / "index.html").read_text()
    assert main(["report", str(finished)]) == 0  # back to the spec's own checks for the other tests


def test_plan_prints_the_seeds_a_min_effect_needs_from_a_pilot(tmp_path, finished, capsys):
    out = finished.parent / "out"
    spec = write_experiment(tmp_path, CHECKS + PAIRED)
    assert main(["plan", str(spec), "--pilot", str(out)]) == 0
    text = capsys.readouterr().out
    assert "seeds, from the pilot" in text and "tuned vs untuned: lr=0.003 > untuned: pilot effect" in text, text
    assert "detectable at 80% power with 2 vs 1 seeds" in text and "seeds for min_effect:" in text
