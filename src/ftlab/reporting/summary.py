"""The experiment summary: best valid checkpoint per run and its metrics on every split.

    rows = summary_rows(eval_dirs)      # from each run's eval/summary.json
    print(render_table(rows, splits))
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ftlab import atomic
from ftlab.contract import layout
from ftlab.reporting.results import meaningless

COLUMNS = ("accuracy", "f1", "auroc")


def summary_rows(evals: dict[str, str]) -> list[dict[str, Any]]:
    """One row per run (in plan order) from its eval/summary.json; runs not evaluated yet are marked."""
    rows = []
    for name, eval_dir in evals.items():
        path = Path(eval_dir) / layout.SUMMARY
        if not path.is_file():
            rows.append({"run": name, "status": "not evaluated"})
            continue
        s = atomic.read_json(path)
        rows.append({"run": name, "status": "done", "best_checkpoint": s["best_checkpoint"], "at_best": s["at_best"],
                     "at_best_by_evaluator": s.get("at_best_by_evaluator", {})})
    return rows


# A generation task's evaluators record these instead of the classification columns.
GENERATION_COLUMNS = ("accuracy_strict", "accuracy_flexible", "safety_rate")


def columns_for(present: set[str], default: tuple[str, ...]) -> tuple[str, ...]:
    """The default columns when the task records them (classification), else the generation ones
    present, else whatever the evaluators recorded (an inspect task's `match_accuracy`), counts and
    standard errors aside: a column of "missing" under names no evaluator writes says nothing."""
    if any(c in present for c in ("f1", "auroc", "precision")):
        return default
    found = tuple(c for c in GENERATION_COLUMNS if c in present)
    if "accuracy_strict" not in found and "accuracy" in present:
        found = ("accuracy",) + found
    own = tuple(sorted(c for c in present - {"n", "checkpoint", "step", "epoch"} if not c.startswith("n_") and not c.endswith("_stderr")))
    return found or own or default


def render_table(rows: list[dict[str, Any]], splits: list[str]) -> str:
    """Plain-text table; undefined metrics print as 'undef', never as 0."""
    present = {m for r in rows if r.get("status") == "done" for v in r["at_best"].values() for m in v}
    present |= {m for r in rows if r.get("status") == "done" for by in (r.get("at_best_by_evaluator") or {}).values()
                for v in by.values() for m in v}
    columns = columns_for(present, COLUMNS)
    header = ["run", "best ckpt"] + [f"{s} {c}" for s in splits for c in columns]
    body = []
    for r in rows:
        if r["status"] != "done":
            body.append([r["run"], r["status"]] + [""] * (len(header) - 2))
            continue
        cells = [r["run"], str(r["best_checkpoint"])]
        for s in splits:
            values = {}
            for by in (r.get("at_best_by_evaluator") or {}).values():  # a judge's safety_rate beside generate's accuracy
                values |= by.get(s, {})
            values |= r["at_best"].get(s, {})
            cells += [NOT_MEANINGFUL if meaningless(c, values) else _fmt(values.get(c, "missing")) for c in columns]
        body.append(cells)
    return table(header, body)


def table(header: list[str], body: list[list[Any]]) -> str:
    """Left-aligned plain-text columns with a rule under the header."""
    widths = [max(len(str(x)) for x in col) for col in zip(header, *body)]

    def line(cells: list[Any]) -> str:
        return "  ".join(str(c).ljust(w) for c, w in zip(cells, widths)).rstrip()

    return "\n".join([line(header), line(["-" * w for w in widths])] + [line(b) for b in body])


def _fmt(value: Any) -> str:
    if value is None:
        return "undef"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


# The aggregated table's metrics; a split with no negatives shows recall and "n/m" for the rest.
AGG_METRICS = ("accuracy", "precision", "recall", "f1", "auroc")
NOT_MEANINGFUL = "n/m"


def point_label(row: dict[str, Any], variables: list[str]) -> str:
    """'lr=0.003', 'random_init lr=0.003', 'untuned': how a sweep point is named in tables."""
    parts = [f"{v}={row[v]}" for v in variables if v in row and not _nan(row[v])]
    head = [] if row["kind"] == "trained" else [row["kind"]]
    if row["kind"] == "baseline":  # which classical model (ftlab.baselines): kind alone names three rows alike
        head.append(str(row.get("method")))
    return " ".join(head + (parts if row["kind"] != "untuned" else [])) or "all"


def aggregated_table(agg, splits: list[str], metrics: tuple[str, ...] = AGG_METRICS) -> tuple[list[str], list[list[str]]]:
    """Header and body of the mean +- sd table: one line per sweep point, metrics per split."""
    variables = list(agg.attrs.get("sweep_variables", []))
    if metrics == AGG_METRICS and "metric" in agg:
        metrics = columns_for(set(agg["metric"]), AGG_METRICS)
    points = ["kind", "method"] + variables
    header = ["point", "seeds"] + [f"{s} {m}" for s in splits for m in metrics]
    body = []
    for _, g in agg.groupby(points, dropna=False, sort=False):
        first = g.iloc[0].to_dict()
        cells = [point_label(first, variables), str(max(len(x) for x in g["seeds"]))]
        for s in splits:
            for m in metrics:
                hit = g[(g["split"] == s) & (g["metric"] == m)]
                cells.append(mean_sd(hit.iloc[0].to_dict()) if len(hit) else "missing")
        body.append(cells)
    return header, body


def mean_sd(row: dict[str, Any]) -> str:
    """'0.812 ± 0.014' over seeds, '0.812' for one seed, 'n/m' / 'undef' without a value."""
    if _nan(row["mean"]):
        reason = row.get("undefined_reason") or ""
        return NOT_MEANINGFUL if reason.startswith("not meaningful") else "undef"
    text = f"{row['mean']:.3f}" + ("" if _nan(row["sd"]) else f" ± {row['sd']:.3f}")
    seeds = len(row.get("seeds") or [])
    return text + (f" (n={row['n']})" if seeds and row["n"] < seeds else "")  # some seeds left it undefined


def render_aggregated(agg, splits: list[str], one_vs_rest: str | None = None) -> str:
    header, body = aggregated_table(agg, splits)
    cells = {c for row in body for c in row}
    legend = "mean ± sd over seeds at each run's valid-selected checkpoint"
    if NOT_MEANINGFUL in cells:  # only the marks the table uses (a generation task has no negatives to speak of)
        legend += (f"; {NOT_MEANINGFUL} = not meaningful "
                   "(a split without negatives has no false positives: only recall says something)")
    if "undef" in cells:
        legend += "; undef = undefined"
    if one_vs_rest is not None:
        legend += (f"\nprecision, recall, f1 and auroc are {one_vs_rest!r} against the other labels "
                   "(task.positive; the first label when unset); accuracy counts every label")
    return table(header, body) + "\n" + legend


def _nan(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value)


def render_checks(checks: list[dict]) -> str:
    """summary.txt's checks: one line per check, then one per comparison (effect, interval, method, p raw and adjusted)."""
    from ftlab.reporting.checks import ALPHA

    lines = ["checks:"]
    family = next((c for c in checks if c.get("comparisons")), None)
    if family:
        lines[0] = (f"checks (p-values adjusted by {family['correction']} over the {family['family_size']} comparisons"
                    f" with a p-value; a comparison decides only when adjusted p < {ALPHA:g}):")
    for c in checks:
        lines.append(f"  [{c['status']}] {c['name']}")
        for x in c.get("comparisons") or []:
            lines.append("      " + comparison_text(x))
    return "\n".join(lines)


def comparison_text(x: dict) -> str:
    """'accept gamma=4 > untuned: +0.120 [+0.080, +0.160] p 0.001 (holm 0.004), exact McNemar (...)'."""
    f = lambda v, spec: "n/a" if v is None else format(v, spec)  # noqa: E731
    text = f"{x['label']}: {f(x['effect'], '+.3f')}"
    if x.get("low") is not None:
        text += f" [{f(x['low'], '+.3f')}, {f(x['high'], '+.3f')}]"
    if x.get("p") is not None:
        text += f" p {x['p']:.3g} (adjusted {f(x.get('p_adjusted'), '.3g')})"
    text += f", {x['method']}"
    if x.get("mde") is not None:
        text += f"; detectable at 80% power: {x['mde']:.3f}"
    if x.get("seeds_needed"):
        text += f"; seeds for min_effect: {x['seeds_needed']}"
    if x.get("note"):
        text += f"; note: {x['note']}"
    return text
