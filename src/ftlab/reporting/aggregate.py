"""Aggregate results over training seeds: one row per sweep point x split x evaluator x metric.

    agg = aggregate(ftlab.results(spec))        # at each run's valid-selected checkpoint

Columns: kind, method, the sweep variables, split, evaluator, metric, mean, sd, n (seeds with a
defined value), ci_low, ci_high, ci_method, se, seeds, runs, undefined_reason. Controls
(random_init, untuned) are their own rows: `kind` is part of the grouping.

The 95% interval is a t-interval over seeds (mean +- t(0.975, n-1) * sd / sqrt(n)) when n >= 2,
clipped to [0, 1] for rates (UNIT_METRICS).
With one seed there is no spread over seeds to measure, so the interval is a percentile bootstrap
over the examples of that run's evidence file (2,000 resamples, fixed seed) for the metrics
computable from its per-example records (accuracy, precision, recall, f1, predicted_positive_rate,
auroc); other metrics get no interval and say so. `se` is the standard error the checks combine
(sd/sqrt(n), or the bootstrap sd).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 0
BOOTSTRAPPABLE = ("accuracy", "precision", "recall", "f1", "predicted_positive_rate", "auroc")
UNIT_METRICS = BOOTSTRAPPABLE + ("ece", "safety_rate")  # t-intervals of these are clipped to [0, 1]


def group_columns(df) -> list[str]:
    """What identifies a sweep point: kind and method, then the sweep variables."""
    return ["kind", "method"] + list(df.attrs.get("sweep_variables", []))


def aggregate(df, *, selected_only: bool = True):
    """Mean/sd/n/95% interval over seeds per sweep point (see the module docstring)."""
    import pandas as pd
    from scipy import stats

    points = group_columns(df)
    keys = points + ["split", "evaluator", "metric"]
    base = df[df["selected"].astype(bool)] if selected_only else df
    out_dir = Path(df.attrs.get("experiment_dir", "."))
    positive = df.attrs.get("positive")
    rows = []
    # dropna=False: a sweep variable a control does not set is NaN and must still group.
    for key, g in base.groupby(keys, dropna=False, sort=False):
        defined = g[g["value"].notna()]
        values = defined["value"].to_numpy(dtype=float)
        n = len(values)
        row: dict[str, Any] = dict(zip(keys, key))
        row.update(n=n, seeds=sorted(int(s) for s in g["seed"].dropna()), runs=list(g["run"]),
                   mean=math.nan, sd=math.nan, se=math.nan, ci_low=math.nan, ci_high=math.nan,
                   ci_method=None, undefined_reason=None)
        if n == 0:
            reasons = [r for r in g["undefined_reason"] if isinstance(r, str)]
            row["undefined_reason"] = reasons[0] if reasons else "no value"
        elif n == 1:
            row["mean"] = float(values[0])
            interval = None
            if row["metric"] in BOOTSTRAPPABLE and isinstance(defined["evidence"].iloc[0], str):
                interval = bootstrap_interval(out_dir / defined["evidence"].iloc[0], row["metric"], positive)
            if interval:
                row["ci_low"], row["ci_high"], row["se"] = interval
                row["ci_method"] = "bootstrap over examples (1 seed)"
            else:
                row["ci_method"] = "none (1 seed, no per-example bootstrap for this metric)"
        else:
            mean, sd = float(values.mean()), float(values.std(ddof=1))
            se = sd / math.sqrt(n)
            half = float(stats.t.ppf(0.975, n - 1)) * se
            lo, hi = mean - half, mean + half
            if row["metric"] in UNIT_METRICS:  # a rate cannot leave [0, 1]: two seeds' t-interval often would
                lo, hi = max(lo, 0.0), min(hi, 1.0)
            row.update(mean=mean, sd=sd, se=se, ci_low=lo, ci_high=hi, ci_method=f"t over {n} seeds")
        rows.append(row)
    cols = keys + ["mean", "sd", "n", "ci_low", "ci_high", "ci_method", "se", "seeds", "runs", "undefined_reason"]
    agg = pd.DataFrame(rows, columns=cols)
    agg.attrs.update(df.attrs)
    return agg


def bootstrap_interval(evidence: Path, metric: str, positive: str | None) -> tuple[float, float, float] | None:
    """(2.5%, 97.5%, sd) of `metric` over bootstrap resamples of the evidence's examples, or None."""
    records = evidence_records(evidence)
    if not records or positive is None or any("label" not in r or "pred" not in r for r in records):
        return None
    y = np.array([r["label"] == positive for r in records])
    p = np.array([r["pred"] == positive for r in records])
    correct = np.array([r["pred"] is not None and r["pred"] == r["label"] for r in records])
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    idx = rng.integers(0, len(records), size=(BOOTSTRAP_RESAMPLES, len(records)))
    ys, ps = y[idx], p[idx]
    tp = (ys & ps).sum(1).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        if metric == "accuracy":
            values = correct[idx].mean(1)
        elif metric == "predicted_positive_rate":
            values = ps.mean(1)
        elif metric == "precision":
            values = tp / ps.sum(1)
        elif metric == "recall":
            values = tp / ys.sum(1)
        elif metric == "f1":
            values = 2 * tp / (ys.sum(1) + ps.sum(1))
        elif metric == "auroc":
            if not all(isinstance(r.get("probs"), dict) and positive in r["probs"] for r in records):
                return None
            from scipy.stats import rankdata

            s = np.array([float(r["probs"][positive]) for r in records])[idx]
            ranks = rankdata(s, axis=1)  # ties get average ranks, as AUROC's Mann-Whitney form needs
            npos, nneg = ys.sum(1), (~ys).sum(1)
            values = ((ranks * ys).sum(1) - npos * (npos + 1) / 2) / (npos * nneg)
        else:
            return None
    values = values[np.isfinite(values)]  # resamples that drew one class only have no precision/AUROC
    if len(values) < BOOTSTRAP_RESAMPLES / 2:
        return None
    lo, hi = np.percentile(values, [2.5, 97.5])
    return float(lo), float(hi), float(values.std(ddof=1))


def evidence_records(path: Path) -> list[dict]:
    """An evidence JSONL file's records; none when it is missing or unreadable (the caller falls back)."""
    try:
        with open(path) as f:
            return [json.loads(line) for line in f if line.strip()]
    except (OSError, json.JSONDecodeError):
        return []
