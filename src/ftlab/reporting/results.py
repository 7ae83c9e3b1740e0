"""An experiment's results as one long DataFrame: the registry's metrics joined with its runs.

    import ftlab
    df = ftlab.results("examples/quickstart.yaml")      # or the experiment's output directory (ftlab.api)
    df[(df.selected) & (df.split == "test") & (df.metric == "accuracy")]

One row per run x checkpoint x split x evaluator x metric (the shape of inspect-ai's log
dataframes). Columns: run_id, run, index, kind (trained / random_init / untuned / baseline), method
(a baseline's: its scikit-learn model), seed,
one column per sweep variable, checkpoint, step, epoch, selected (the checkpoint the spec's
eval.select picked on valid), split, evaluator, metric, value, undefined_reason, evidence.
`df.attrs` carries "sweep_variables", "experiment_dir" and "positive" (the positive label).

An undefined metric has value NaN and says why in undefined_reason. A split with no negatives
(seed 000's positives-only valid_hem_only) has no false positives to count, so its precision, F1
and AUROC are marked not meaningful here (the evaluator's "precision 1.0" is kept in
recorded_value); recall is still meaningful. Likewise recall, F1 and AUROC without positives.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from ftlab import atomic
from ftlab.contract import layout
from ftlab.errors import RegistryError

# The plan calls trained sweep runs "sweep"; the report says what they are.
KIND_NAMES = {"sweep": "trained"}
FIXED_COLUMNS = (
    "run_id", "run", "index", "kind", "method", "seed", "checkpoint", "step", "epoch", "selected",
    "split", "evaluator", "metric", "value", "undefined_reason", "recorded_value", "evidence",
)
# Metrics that need both classes present: what each loses when one class is absent.
NEEDS_NEGATIVES = ("precision", "f1", "auroc")
NEEDS_POSITIVES = ("recall", "f1", "auroc", "precision")


def experiment_dir(spec_or_dir: str | Path) -> Path:
    """The output directory of a spec file, or the directory itself (it holds registry.sqlite)."""
    path = Path(spec_or_dir)
    if path.is_dir():
        if not (path / "registry.sqlite").is_file():
            raise RegistryError(f"{path} has no registry.sqlite: give an experiment's output directory or its spec file.")
        return path.resolve()
    if not path.is_file():
        raise RegistryError(f"{path} is neither a spec file nor an experiment directory.")
    from ftlab.spec.plan import load_plan

    return load_plan(path).output_dir


def results_frame(runs: list[dict], metrics: list[dict], out: Path, *, only: set[str] | None = None,
                  variables: list[str] | None = None):
    """The DataFrame from registry rows; `only` keeps those run ids (None: every recorded run);
    `variables` gives the sweep variables' order (the registry stores them sorted)."""
    import pandas as pd

    if only is not None:
        runs = [r for r in runs if r["run_id"] in only]

    found = list(dict.fromkeys(k for r in runs for k in r["sweep"]))
    variables = [v for v in variables or [] if v in found] + [v for v in found if v not in (variables or [])]
    column_of = {v: (f"sweep_{v}" if v in FIXED_COLUMNS else v) for v in variables}
    info: dict[str, dict[str, Any]] = {}
    for r in runs:
        summary_path = layout.eval_dir(out, r["name"]) / layout.SUMMARY
        summary = atomic.read_json(summary_path) if summary_path.is_file() else {}
        epochs = {}
        ckpts = layout.train_dir(out, r["name"]) / layout.MANIFEST
        if ckpts.is_file():
            epochs = {c["name"]: c.get("epoch") for c in atomic.read_json(ckpts)}
        info[r["run_id"]] = {
            "run": r["name"], "index": r["index"], "kind": KIND_NAMES.get(r["kind"], r["kind"]),
            "method": r["config"].get("method", {}).get("name") if r["kind"] != "untuned" else "none",
            "seed": r["seed"], "sweep": r["sweep"], "best": summary.get("best_checkpoint"), "epochs": epochs,
            "positive": (r["config"].get("task") or {}).get("positive") or ((r["config"].get("task") or {}).get("labels") or [None])[0],
        }
    counts: dict[tuple, dict[str, float]] = {}
    for m in metrics:
        if m["metric"] in ("n_positive", "n_negative") and m["value"] is not None:
            counts.setdefault((m["run_id"], m["checkpoint"], m["split"], m["evaluator"]), {})[m["metric"]] = m["value"]
    rows = []
    for m in metrics:
        run = info.get(m["run_id"])
        if run is None:
            continue  # a metric of a run the registry does not know (hand-edited registry)
        value, reason, recorded = m["value"], m["undefined_reason"], m["value"]
        reason2 = meaningless(m["metric"], counts.get((m["run_id"], m["checkpoint"], m["split"], m["evaluator"]), {}))
        if reason2:  # even where the evaluator already gave its own reason: this one is the point
            value, reason = None, reason2 if reason is None else f"{reason2} ({reason})"
        epoch = run["epochs"].get(m["checkpoint"], 0.0 if m["step"] == 0 else None)
        row = {
            "run_id": m["run_id"], "run": run["run"], "index": run["index"], "kind": run["kind"],
            "method": run["method"], "seed": run["seed"],
            **{column_of[v]: run["sweep"].get(v) for v in variables},
            "checkpoint": m["checkpoint"], "step": m["step"], "epoch": math.nan if epoch is None else epoch,
            "selected": m["checkpoint"] == run["best"], "split": m["split"], "evaluator": m["evaluator"],
            "metric": m["metric"], "value": math.nan if value is None else float(value),
            "undefined_reason": reason, "recorded_value": math.nan if recorded is None else float(recorded),
            "evidence": m["evidence"],
        }
        rows.append(row)
    columns = list(FIXED_COLUMNS[:6]) + [column_of[v] for v in variables] + list(FIXED_COLUMNS[6:])
    df = pd.DataFrame(rows, columns=columns)
    # Typed even when empty (an experiment not evaluated yet), so filters on them keep working.
    df = df.astype({"selected": bool, "value": float, "recorded_value": float, "epoch": float})
    df = df.sort_values(["index", "step", "checkpoint", "split", "evaluator", "metric"], kind="stable").reset_index(drop=True)
    df.attrs["sweep_variables"] = [column_of[v] for v in variables]
    df.attrs["column_of"] = column_of
    df.attrs["experiment_dir"] = str(out)
    df.attrs["positive"] = next((r["positive"] for r in info.values()), None)
    df.attrs["runs"] = {rid: {k: v for k, v in r.items() if k != "epochs"} for rid, r in info.items()}
    return df


def meaningless(metric: str, counts: dict[str, float]) -> str | None:
    """Why `metric` says nothing on a split whose class counts are `counts`, or None."""
    if counts.get("n_negative") == 0 and metric in NEEDS_NEGATIVES:
        return "not meaningful: the split has no negatives (only recall is)"
    if counts.get("n_positive") == 0 and metric in NEEDS_POSITIVES:
        return "not meaningful: the split has no positives"
    return None
