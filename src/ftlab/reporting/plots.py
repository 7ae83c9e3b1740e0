"""The report's plots (matplotlib, PNG + SVG under report/plots/), chosen from the sweep's shape.

    plots = draw_plots(df, agg, out / "plots", names=[], splits=["valid", "test"], select={...},
                       experiment_dir=out_dir)       # [{"name", "title", "file", "svg", "caption"}]

Plot kinds (report.plots names them; `metric_vs:<metric>` picks the metric):
    metric_vs          metric vs the sweep variable with most values, one line per value of the
                       others, error bars = sd over seeds; controls as dashed lines (seed 002's
                       acceptance_rate_vs_gamma)
    heatmap            mean metric over the first two varying sweep variables
    pr_scatter         precision vs recall of every run's selected checkpoint
    checkpoint_curves  metric vs step, every run, on each split
    loss_curves        training loss vs step (train/log_history.json)
    reliability        reliability diagram of the selected checkpoints (logits calibration_bins)
    confusion          confusion matrix of the best sweep point (on valid) on test, seeds pooled
With no names given: metric_vs (select metric, and predicted_positive_rate) when a sweep variable
takes 2+ values, heatmap when two do, and every other kind whose inputs exist.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ftlab.contract import layout
from ftlab.plugins import Plugins
from ftlab.reporting.summary import point_label

plot_kinds: Plugins[Callable] = Plugins("report plot")


class Canvas:
    """What a plot function draws with: the data, where files go, and a save helper."""

    def __init__(self, df, agg, out: Path, splits: list[str], select: dict, experiment_dir: Path):
        self.df, self.agg, self.out, self.splits, self.select = df, agg, out, splits, select
        self.experiment_dir = experiment_dir
        self.metric = select.get("metric", "accuracy")
        self.evaluator = select.get("evaluator", "logits")
        self.test = next((s for s in splits if s != select.get("split")), splits[0] if splits else None)
        self.variables = [v for v in df.attrs.get("sweep_variables", []) if _trained(df)[v].nunique() > 1]

    def save(self, fig, name: str, title: str, caption: str) -> dict:
        self.out.mkdir(parents=True, exist_ok=True)
        fig.suptitle(title, fontsize=11)
        fig.tight_layout()
        fig.savefig(self.out / f"{name}.png", dpi=110, metadata={"Software": None})
        fig.savefig(self.out / f"{name}.svg", metadata={"Date": None})
        import matplotlib.pyplot as plt

        plt.close(fig)
        return {"name": name, "title": title, "file": f"plots/{name}.png", "svg": f"plots/{name}.svg", "caption": caption}


def draw_plots(df, agg, out: Path, *, names: list[str], splits: list[str], select: dict, experiment_dir: Path) -> list[dict]:
    import matplotlib

    matplotlib.use("Agg")
    matplotlib.rcParams["svg.hashsalt"] = "ftlab"  # stable ids: the same results give the same SVG bytes
    canvas = Canvas(df, agg, out, splits, select, experiment_dir)
    if df.empty:
        return []
    wanted = names or default_plots(canvas)
    drawn = []
    for name in wanted:
        kind, _, arg = name.partition(":")
        draw = plot_kinds.get(kind)
        try:
            result = draw(canvas, arg or None)
        except Exception as e:  # noqa: BLE001 - one plot that cannot be drawn must not cost the tables and checks
            import matplotlib.pyplot as plt

            plt.close("all")
            drawn.append({"name": name, "error": f"{type(e).__name__}: {e}"})
            continue
        drawn += [r for r in (result if isinstance(result, list) else [result]) if r]
    return drawn


def default_plots(c: Canvas) -> list[str]:
    names = []
    if c.variables:
        names.append(f"metric_vs:{c.metric}")
        if c.metric != "predicted_positive_rate" and (c.agg["metric"] == "predicted_positive_rate").any():
            names.append("metric_vs:predicted_positive_rate")
    if len(c.variables) >= 2:
        names.append("heatmap")
    return names + ["pr_scatter", "checkpoint_curves", "loss_curves", "reliability", "confusion"]


def _trained(frame):
    return frame[frame["kind"] == "trained"]


def _rows(c: Canvas, frame, metric: str, split: str | None):
    return frame[(frame["metric"] == metric) & (frame["split"] == split) & (frame["evaluator"] == c.evaluator)]


def _label(row, variables: list[str]) -> str:
    return " ".join(f"{v}={row[v]}" for v in variables) or "all"


def _order(value: Any) -> float:
    try:
        from fractions import Fraction

        return float(Fraction(str(value)))
    except (ValueError, ZeroDivisionError):
        return math.nan


@plot_kinds.register("metric_vs")
def metric_vs(c: Canvas, metric: str | None) -> dict | None:
    import matplotlib.pyplot as plt

    metric = metric or c.metric
    if not c.variables:
        return None
    def is_numeric(v: str) -> bool:
        return all(not math.isnan(_order(x)) for x in _trained(c.agg)[v].dropna().unique())

    # x: a numeric variable with the most values (gamma, lr); lines: the rest (variant).
    x = max(c.variables, key=lambda v: (is_numeric(v), _trained(c.agg)[v].nunique()))
    others = [v for v in c.variables if v != x]
    numeric = is_numeric(x)
    splits = [s for s in c.splits if not _rows(c, c.agg, metric, s).empty]
    if not splits:
        return None
    fig, axes = plt.subplots(1, len(splits), figsize=(5.2 * len(splits), 3.8), squeeze=False)
    for ax, split in zip(axes[0], splits):
        rows = _rows(c, c.agg, metric, split)
        trained = _trained(rows)
        groups = trained.groupby(others, dropna=False, sort=False) if others else [((), trained)]
        categories = sorted(trained[x].dropna().unique(), key=lambda v: (_order(v), str(v)))
        for key, g in groups:
            g = g.assign(_x=[_order(v) if numeric else categories.index(v) for v in g[x]]).sort_values("_x")
            label = " ".join(f"{v}={k}" for v, k in zip(others, key if isinstance(key, tuple) else (key,))) or metric
            ax.errorbar(g["_x"], g["mean"], yerr=g["sd"].fillna(0), marker="o", capsize=3, label=label)
        for kind, style in (("random_init", ":"), ("untuned", "--")):
            ctrl = rows[rows["kind"] == kind]
            if len(ctrl) and not math.isnan(ctrl["mean"].iloc[0]):
                ax.axhline(ctrl["mean"].iloc[0], linestyle=style, color="grey", label=kind)
        if not numeric:
            ax.set_xticks(range(len(categories)), [str(v) for v in categories])
        else:
            ticks = [_order(v) for v in categories]
            if min(ticks) > 0 and max(ticks) / min(ticks) >= 8:  # e.g. learning rates: spread over decades
                ax.set_xscale("log")
                ax.minorticks_off()
            ax.set_xticks(ticks, [str(v) for v in categories])
        ax.set_xlabel(x)
        ax.set_ylabel(metric)
        ax.set_title(split, fontsize=10)
        ax.legend(fontsize=7)
    return c.save(fig, f"{metric}_vs_{x}", f"{metric} vs {x}",
                  f"{metric} at each run's valid-selected checkpoint; points are means over seeds, bars one sd.")


@plot_kinds.register("heatmap")
def heatmap(c: Canvas, metric: str | None) -> dict | None:
    import matplotlib.pyplot as plt
    import numpy as np

    metric = metric or c.metric
    if len(c.variables) < 2 or c.test is None:
        return None
    xv, yv = c.variables[:2]
    rows = _trained(_rows(c, c.agg, metric, c.test))
    if rows.empty:
        return None
    table = rows.groupby([yv, xv], dropna=False)["mean"].mean().unstack(xv)
    table = table.reindex(sorted(table.index, key=lambda v: (_order(v), str(v))))
    table = table[sorted(table.columns, key=lambda v: (_order(v), str(v)))]
    fig, ax = plt.subplots(figsize=(1.1 * len(table.columns) + 2.5, 0.7 * len(table.index) + 2))
    image = ax.imshow(table.to_numpy(dtype=float), cmap="viridis", aspect="auto")
    ax.set_xticks(range(len(table.columns)), [str(v) for v in table.columns])
    ax.set_yticks(range(len(table.index)), [str(v) for v in table.index])
    ax.set_xlabel(xv)
    ax.set_ylabel(yv)
    for (i, j), v in np.ndenumerate(table.to_numpy(dtype=float)):
        ax.text(j, i, "" if math.isnan(v) else f"{v:.2f}", ha="center", va="center", color="white", fontsize=8)
    fig.colorbar(image, ax=ax, label=metric)
    more = f", mean over {', '.join(c.variables[2:])}" if len(c.variables) > 2 else ""
    return c.save(fig, f"heatmap_{metric}_{yv}_{xv}", f"{metric} on {c.test} over {yv} x {xv}",
                  f"Mean over seeds at the selected checkpoint{more}.")


@plot_kinds.register("pr_scatter")
def pr_scatter(c: Canvas, _: str | None) -> dict | None:
    import matplotlib.pyplot as plt

    sel = c.df[c.df["selected"] & (c.df["split"] == c.test) & (c.df["evaluator"] == c.evaluator)]
    wide = sel[sel["metric"].isin(["precision", "recall"])].pivot_table(index=["run", "kind"], columns="metric", values="value")
    if wide.empty or not {"precision", "recall"} <= set(wide.columns):
        return None
    fig, ax = plt.subplots(figsize=(5, 4))
    for kind, g in wide.reset_index().groupby("kind"):
        ax.scatter(g["recall"], g["precision"], label=kind)
        for _, r in g.iterrows():
            ax.annotate(r["run"], (r["recall"], r["precision"]), fontsize=6, alpha=0.7)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_xlim(-0.02, 1.02)
    ax.set_ylim(-0.02, 1.02)
    ax.legend(fontsize=7)
    return c.save(fig, "precision_recall", f"precision vs recall on {c.test}", "Each run's valid-selected checkpoint.")


@plot_kinds.register("checkpoint_curves")
def checkpoint_curves(c: Canvas, metric: str | None) -> dict | None:
    import matplotlib.pyplot as plt

    metric = metric or c.metric
    splits = [s for s in c.splits if not _rows(c, c.df, metric, s).empty]
    if not splits:
        return None
    fig, axes = plt.subplots(1, len(splits), figsize=(5.2 * len(splits), 3.8), squeeze=False)
    for ax, split in zip(axes[0], splits):
        rows = _rows(c, c.df, metric, split)
        for run, g in rows.groupby("run", sort=False):
            g = g.sort_values("step")
            line = ax.plot(g["step"], g["value"], marker=".", label=run)[0]
            chosen = g[g["selected"]]
            ax.scatter(chosen["step"], chosen["value"], s=60, facecolors="none", edgecolors=line.get_color())
        ax.set_xlabel("step")
        ax.set_ylabel(metric)
        ax.set_title(split, fontsize=10)
        ax.legend(fontsize=6, ncol=2)
    return c.save(fig, f"checkpoints_{metric}", f"{metric} per checkpoint",
                  "Every evaluated checkpoint of every run; the circled point is the one selected on valid.")


@plot_kinds.register("loss_curves")
def loss_curves(c: Canvas, _: str | None) -> dict | None:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.8))
    drawn = 0
    for run in c.df["run"].unique():
        path = layout.train_dir(c.experiment_dir, run) / layout.LOG_HISTORY
        if not path.is_file():
            continue
        history = [h for h in json.loads(path.read_text()) if "loss" in h and "step" in h]
        if history:
            ax.plot([h["step"] for h in history], [h["loss"] for h in history], label=run)
            drawn += 1
    if not drawn:
        import matplotlib.pyplot as plt2

        plt2.close(fig)
        return None
    ax.set_xlabel("step")
    ax.set_ylabel("training loss")
    ax.legend(fontsize=6, ncol=2)
    return c.save(fig, "training_loss", "training loss", "Loss logged by the trainer every train.logging_steps steps.")


def _metrics_file(c: Canvas, evidence: str) -> Path:
    return c.experiment_dir / evidence.replace(".jsonl", ".metrics.json")


@plot_kinds.register("reliability")
def reliability(c: Canvas, _: str | None) -> dict | None:
    import matplotlib.pyplot as plt

    sel = c.df[c.df["selected"] & (c.df["split"] == c.test) & (c.df["evaluator"] == "logits") & (c.df["metric"] == "ece")]
    pooled: dict[str, dict[float, list[float]]] = {}  # point -> bin lo -> [count, sum conf, sum positives]
    for _, r in sel.iterrows():
        path = _metrics_file(c, r["evidence"]) if isinstance(r["evidence"], str) else None
        bins = json.loads(path.read_text()).get("details", {}).get("calibration_bins") if path and path.is_file() else None
        point = point_label(r, c.variables)
        for b in bins or []:
            if b["count"]:
                acc = pooled.setdefault(point, {}).setdefault(b["lo"], [0, 0.0, 0.0])
                acc[0] += b["count"]
                acc[1] += b["mean_confidence"] * b["count"]
                acc[2] += b["accuracy"] * b["count"]
    if not pooled:
        return None
    fig, ax = plt.subplots(figsize=(4.8, 4.4))
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfect calibration")
    for point, bins in pooled.items():
        items = sorted(bins.items())
        ax.plot([v[1] / v[0] for _, v in items], [v[2] / v[0] for _, v in items], marker="o", label=point)
    ax.set_xlabel(f"mean predicted P({c.df.attrs.get('positive')})")
    ax.set_ylabel("fraction positive")
    ax.legend(fontsize=6)
    return c.save(fig, "reliability", f"reliability on {c.test}", "Selected checkpoints' calibration bins, seeds pooled per sweep point.")


@plot_kinds.register("confusion")
def confusion(c: Canvas, _: str | None) -> dict | None:
    import matplotlib.pyplot as plt
    import numpy as np

    # The point is chosen on the selection split (valid), never on the split it is shown on.
    chooser = c.select.get("split", c.test)
    best = _trained(_rows(c, c.agg, c.metric, chooser)).sort_values("mean", ascending=not c.select.get("higher_is_better", True))
    if best.empty:
        best = _rows(c, c.agg, c.metric, chooser)
    if best.empty:
        return None
    top = best.iloc[0]
    runs = set(top["runs"])
    sel = c.df[c.df["selected"] & c.df["run"].isin(runs) & (c.df["split"] == c.test) & (c.df["evaluator"] == c.evaluator)]
    pairs = []
    for evidence in sel["evidence"].dropna().unique():
        path = c.experiment_dir / evidence
        if path.is_file():
            pairs += [(r.get("label"), r.get("pred")) for r in map(json.loads, path.read_text().splitlines()) if r.get("label") is not None]  # no labels: a generation task
    if not pairs:
        return None
    labels = sorted({p for p, _ in pairs if p is not None})
    cols = labels + (["unparsed"] if any(q is None or q not in labels for _, q in pairs) else [])
    matrix = np.zeros((len(labels), len(cols)), dtype=int)
    for truth, pred in pairs:
        matrix[labels.index(truth), cols.index(pred if pred in labels else "unparsed")] += 1
    fig, ax = plt.subplots(figsize=(1.2 * len(cols) + 2, 1.1 * len(labels) + 1.8))
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(cols)), cols)
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for (i, j), v in np.ndenumerate(matrix):
        ax.text(j, i, str(v), ha="center", va="center", color="black" if v < matrix.max() / 2 else "white")
    point = point_label(top, c.variables)
    return c.save(fig, "confusion", f"confusion on {c.test}: {point}",
                  f"Best sweep point by mean {c.metric} on {chooser}; its selected checkpoints, {len(runs)} seed(s) pooled.")
