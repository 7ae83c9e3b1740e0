"""Declared checks (`report.checks`), judged on the aggregated results with the seeds' uncertainty.

    report:
      checks:
        - {kind: threshold, metric: accuracy, split: test, min: 0.26, where: {preset: simple}}
        - {kind: monotonic, metric: predicted_positive_rate, split: valid, over: gamma,
           direction: increasing, where: {variant: accept}, anchor: {variant: none}}
        - {kind: compare, metric: accuracy, split: test, a: {kind: trained}, b: {kind: untuned}, op: ">"}
        - {kind: range, metric: predicted_positive_rate, split: valid, span: [0.3, 0.7]}

Every kind takes metric, split (default: the first test split), evaluator (default: the one
eval.select uses) and where (sweep variable -> value or list of values, plus kind/method; kind
defaults to trained). Each sweep point has a mean and a 95% interval (see ftlab.reporting.aggregate).
A check holds when the interval clears the bar, fails when it lies wholly on the wrong side, and
is inconclusive when it straddles it, or when nothing matched. A point without an interval (one
seed, no per-example bootstrap) is judged on its mean and the result says so.
A monotonic check holds when first -> last moves the declared way beyond its interval and no
step's mean goes back (flat steps are allowed: a rate saturating at 1.0); it fails when first ->
last or any step goes the wrong way beyond its interval.
Differences of two points use se = sqrt(se_a^2 + se_b^2) with Welch's degrees of freedom (normal
when either side's interval came from a bootstrap).
"""

from __future__ import annotations

from pathlib import Path

import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ftlab.plugins import Plugins, did_you_mean

check_kinds: Plugins[type] = Plugins("report check kind")
HOLDS, FAILS, INCONCLUSIVE = "holds", "fails", "inconclusive"
FILTER_KEYS = ("kind", "method")
COUNTS = ("n", "n_positive", "n_negative", "n_unparsed")
Scalar = str | int | float | bool


class Common(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str | None = Field(None, description="label in the report (default: generated)")
    metric: str
    split: str | None = None
    evaluator: str | None = None
    where: dict[str, Scalar | list[Scalar]] = Field(default_factory=dict)


@check_kinds.register("threshold")
class Threshold(Common):
    """Every matching sweep point has metric >= min (and/or <= max)."""

    min: float | None = None
    max: float | None = None


@check_kinds.register("monotonic")
class Monotonic(Common):
    """Within each group of the other sweep variables, the metric rises (falls) with `over`."""

    over: str
    direction: Literal["increasing", "decreasing"] = "increasing"
    anchor: dict[str, Scalar] | None = Field(None, description="a point added to every group, e.g. the gamma-1 baseline")


@check_kinds.register("compare")
class Compare(Common):
    """The point matching `a` beats the point matching `b` by more than `margin`."""

    a: dict[str, Scalar | list[Scalar]]
    b: dict[str, Scalar | list[Scalar]]
    op: Literal[">", "<"] = ">"
    margin: float = 0.0


@check_kinds.register("range")
class Range(Common):
    """`span: [lo, hi]`: the points' values reach below lo and above hi; `within`: all inside."""

    span: tuple[float, float] | None = None
    within: tuple[float, float] | None = None


# ---- validation at spec load


def report_problems(exp, problems) -> None:
    """Check kinds, options and split names of report.checks (called from spec cross_checks)."""
    _plot_problems(exp, problems)
    recorded = _recorded_metrics(exp)
    splits = [d.name for d in exp.datasets]
    for i, check in enumerate(exp.report.checks):
        at = ("report", "checks", i)
        if check.kind not in check_kinds:
            problems.add(at + ("kind",), f"unknown check kind '{check.kind}'.{did_you_mean(check.kind, check_kinds.names())}"
                         f" Available: {', '.join(check_kinds.names())}")
            continue
        model = check_kinds.get(check.kind)
        try:
            opts = model.model_validate(check.options)
        except ValidationError as err:
            for e in err.errors():
                loc = tuple(e["loc"])
                if e["type"] == "extra_forbidden":
                    key = str(loc[-1])
                    problems.add(at + loc, f"unknown option '{key}' for a {check.kind} check.{did_you_mean(key, model.model_fields)}"
                                 f" Allowed: {', '.join(f for f in model.model_fields)}")
                elif e["type"] == "missing":
                    problems.add(at + loc, f"a {check.kind} check needs '{loc[-1]}'")
                else:
                    problems.add(at + loc, e["msg"])
            continue
        if opts.split is not None and opts.split not in splits:
            problems.add(at + ("split",), f"no dataset named '{opts.split}'.{did_you_mean(opts.split, splits)}")
        # An evaluator that knows its metrics only after running (inspect: its scorers') leaves this open.
        if recorded is not None and opts.metric not in recorded:
            known = sorted(recorded)
            problems.add(at + ("metric",), f"no evaluator of this spec records '{opts.metric}'.{did_you_mean(opts.metric, known)} Known: {', '.join(known)}")
        if isinstance(opts, Threshold) and opts.min is None and opts.max is None:
            problems.add(at, "a threshold check needs 'min' and/or 'max'")
        if isinstance(opts, Range) and (opts.span is None) == (opts.within is None):
            problems.add(at, "a range check needs exactly one of 'span: [lo, hi]' or 'within: [lo, hi]'")


def _recorded_metrics(exp) -> set[str] | None:
    """Every metric the spec's evaluators record (ftlab.evaluate.base produces), or None when one cannot say."""
    from ftlab.errors import FtlabError
    from ftlab.evaluate.evaluators import evaluators, produced_metrics, resolve_options

    out: set[str] = set(COUNTS)
    for ev in exp.eval.evaluators:
        if ev.name not in evaluators:
            return None  # reported by the evaluator checks
        try:
            options, found = resolve_options(ev.name, ev.options, Path("."), exp.task)
            metrics = None if found else produced_metrics(ev.name, options, exp.task)
        except FtlabError:
            metrics = None
        if metrics is None:
            return None
        out |= metrics
    return out


def _plot_problems(exp, problems) -> None:
    from ftlab.reporting.plots import plot_kinds  # matplotlib loads only when drawing

    for i, name in enumerate(exp.report.plots):
        kind = name.partition(":")[0]
        if kind not in plot_kinds:
            problems.add(("report", "plots", i), f"unknown report plot '{kind}'.{did_you_mean(kind, plot_kinds.names())}"
                         f" Available: {', '.join(plot_kinds.names())}")


def report_variable_problems(exp, variables: set[str], problems) -> None:
    """Sweep variables named by checks must exist (called from load_plan, which knows the sweep)."""
    known = sorted(set(variables) | set(FILTER_KEYS))
    for i, check in enumerate(exp.report.checks):
        if check.kind not in check_kinds:
            continue
        opts = check.options
        where = opts.get("where")
        named = [("where", k) for k in where] if isinstance(where, dict) else []  # a wrong type: reported by its model
        named += [(side, k) for side in ("a", "b", "anchor") if isinstance(opts.get(side), dict) for k in opts[side]]
        over = opts.get("over")
        if isinstance(over, str) and over not in variables:
            problems.add(("report", "checks", i, "over"), f"'{over}' is not a sweep variable."
                         f"{did_you_mean(over, sorted(variables))} Sweep variables: {', '.join(sorted(variables)) or '(none)'}")
        for field, key in named:
            if key not in known:
                problems.add(("report", "checks", i, field, key), f"'{key}' is not a sweep variable.{did_you_mean(key, known)}"
                             f" Use one of: {', '.join(known)}")


# ---- evaluation


def run_checks(agg, checks: list[Any], *, default_split: str, default_evaluator: str) -> list[dict]:
    """Judge each declared check on the aggregated results; one result dict per check."""
    out = []
    for i, check in enumerate(checks):
        opts = check_kinds.get(check.kind).model_validate(check.options)
        split, evaluator = opts.split or default_split, opts.evaluator or default_evaluator
        rows = agg[(agg["split"] == split) & (agg["evaluator"] == evaluator) & (agg["metric"] == opts.metric)]
        judge = {"threshold": _threshold, "monotonic": _monotonic, "compare": _compare, "range": _range}[check.kind]
        status, lines = judge(opts, rows)
        name = opts.name or f"{check.kind}: {opts.metric} on {split}" + (f" where {_fmt_filter(opts.where)}" if opts.where else "")
        out.append({"index": i, "name": name, "kind": check.kind, "metric": opts.metric, "split": split,
                    "evaluator": evaluator, "status": status, "details": lines})
    return out


def _match(rows, where: dict, default_kind: str | None = "trained"):
    where = dict(where)
    if default_kind and "kind" not in where:
        where["kind"] = default_kind
    mask = [True] * len(rows)
    for key, wanted in where.items():
        col = rows.attrs.get("column_of", {}).get(key, key)
        if col not in rows.columns:
            return rows.iloc[0:0]
        options = wanted if isinstance(wanted, list) else [wanted]
        mask = [m and any(_same(v, o) for o in options) for m, v in zip(mask, rows[col])]
    return rows[_mask(mask)]


def _mask(flags: list[bool]):
    """A boolean row mask even when empty (an empty list would select columns instead)."""
    import numpy as np

    return np.array(flags, dtype=bool)


def _same(value: Any, wanted: Any) -> bool:
    if value == wanted:
        return True
    try:
        return math.isclose(float(value), float(wanted))
    except (TypeError, ValueError):
        return str(value) == str(wanted)


def _point(row, variables: list[str]) -> str:
    from ftlab.reporting.summary import point_label

    return point_label(row, variables)


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def _num(row) -> str:
    if _missing(row["mean"]):
        return f"undefined ({row['undefined_reason']})"
    ci = "" if _missing(row["ci_low"]) else f" [{row['ci_low']:.3f}, {row['ci_high']:.3f}]"
    sd = "" if _missing(row["sd"]) else f" sd {row['sd']:.3f}"
    return f"{row['mean']:.3f}{ci}{sd} n={row['n']}"


def _vs_bar(row, bar: float, above: bool) -> str:
    """holds/fails/inconclusive for `value >= bar` (above) or `value <= bar`, with the interval."""
    if _missing(row["mean"]):
        return INCONCLUSIVE
    lo, hi = (row["mean"], row["mean"]) if _missing(row["ci_low"]) else (row["ci_low"], row["ci_high"])
    if above:
        return HOLDS if lo >= bar else FAILS if hi < bar else INCONCLUSIVE
    return HOLDS if hi <= bar else FAILS if lo > bar else INCONCLUSIVE


def _combine(statuses: list[str]) -> str:
    if not statuses:
        return INCONCLUSIVE
    if FAILS in statuses:
        return FAILS
    return HOLDS if all(s == HOLDS for s in statuses) else INCONCLUSIVE


def _variables(rows) -> list[str]:
    return list(rows.attrs.get("sweep_variables", []))


def _threshold(opts: Threshold, rows) -> tuple[str, list[str]]:
    matched = _match(rows, opts.where)
    if matched.empty:
        return INCONCLUSIVE, ["no results match"]
    statuses, lines = [], []
    for _, r in matched.iterrows():
        parts = []
        if opts.min is not None:
            parts.append(_vs_bar(r, opts.min, above=True))
        if opts.max is not None:
            parts.append(_vs_bar(r, opts.max, above=False))
        s = _combine(parts)
        statuses.append(s)
        bar = " and ".join(x for x in (f">= {opts.min:g}" if opts.min is not None else "", f"<= {opts.max:g}" if opts.max is not None else "") if x)
        lines.append(f"{_point(r, _variables(rows)) or 'all'}: {_num(r)} vs {bar}: {s}{_estimate_note(r)}")
    return _combine(statuses), lines


def _estimate_note(r) -> str:
    return " (point estimate only: no interval)" if not _missing(r["mean"]) and _missing(r["ci_low"]) else ""


def difference(a, b) -> tuple[float, float, float, str]:
    """(a - b, 95% low, 95% high, method) from the two points' means and standard errors."""
    from scipy import stats

    d = float(a["mean"] - b["mean"])
    if _missing(a["se"]) or _missing(b["se"]):
        return d, math.nan, math.nan, "point estimates"
    se = math.sqrt(a["se"] ** 2 + b["se"] ** 2)
    if se == 0:
        return d, d, d, "no spread over seeds"
    if a["n"] >= 2 and b["n"] >= 2 and "bootstrap" not in str(a["ci_method"]) + str(b["ci_method"]):
        # Welch-Satterthwaite degrees of freedom for two means with unequal variances.
        va, vb = a["se"] ** 2, b["se"] ** 2
        dof = (va + vb) ** 2 / (va ** 2 / (a["n"] - 1) + vb ** 2 / (b["n"] - 1))
        q, method = float(stats.t.ppf(0.975, dof)), f"Welch t, df {dof:.1f}"
    else:
        q, method = 1.959964, "normal (bootstrap se)"
    return d, d - q * se, d + q * se, method


def _signed(d: float, lo: float, hi: float, sign: int) -> str:
    """Status of `sign * difference > 0` given its interval (point estimate when no interval)."""
    if math.isnan(d):
        return INCONCLUSIVE
    if math.isnan(lo) or lo == hi:  # point estimates, or seeds that agree exactly: the sign decides
        return HOLDS if sign * d > 0 else FAILS
    lo, hi = sorted((sign * lo, sign * hi))
    return HOLDS if lo > 0 else FAILS if hi < 0 else INCONCLUSIVE


def _reversed(d: float, lo: float, hi: float, sign: int) -> bool:
    if math.isnan(lo) or lo == hi:
        return sign * d < 0
    return max(sign * lo, sign * hi) < 0


def _fmt_diff(d: float, lo: float, hi: float, method: str) -> str:
    return f"{d:+.3f}" + ("" if math.isnan(lo) else f" [{lo:+.3f}, {hi:+.3f}] ({method})")


def _monotonic(opts: Monotonic, rows) -> tuple[str, list[str]]:
    over = rows.attrs.get("column_of", {}).get(opts.over, opts.over)
    matched = _match(rows, opts.where)
    anchors = _match(rows, opts.anchor, default_kind="trained") if opts.anchor else rows.iloc[0:0]
    if matched.empty:
        return INCONCLUSIVE, ["no results match"]
    others = [v for v in _variables(rows) if v != over and v not in opts.where and matched[v].nunique(dropna=False) > 1]
    sign = 1 if opts.direction == "increasing" else -1
    statuses, lines = [], []
    groups = matched.groupby(others, dropna=False, sort=False) if others else [((), matched)]
    for key, g in groups:
        key = key if isinstance(key, tuple) else (key,)
        label = " ".join(f"{v}={k}" for v, k in zip(others, key)) or _fmt_filter(opts.where) or "all"
        # The anchor joins the groups it agrees with (e.g. the gamma-1 run of the same train balance).
        fits = [all(_same(a[v], k) for v, k in zip(others, key)) and not any(_same(a[over], x) for x in g[over])
                for _, a in anchors.iterrows()]
        extra = anchors[_mask(fits)]
        series = sorted([r for _, r in g.iterrows()] + [r for _, r in extra.iterrows()], key=lambda r: _order(r[over]))
        if len(series) < 2:
            statuses.append(INCONCLUSIVE)
            lines.append(f"{label}: only {len(series)} point(s) along {opts.over}: inconclusive")
            continue
        steps = [difference(b, a) for a, b in zip(series, series[1:])]
        end = difference(series[-1], series[0])
        end_status = _signed(*end[:3], sign)
        # Steps may be flat (a rate saturating at 1.0 with gamma still "rises"), never reversed;
        # first -> last must move the declared way. Reversed = the step's interval lies wholly
        # on the wrong side (for point estimates: its sign is wrong).
        if end_status == FAILS or any(_reversed(*st[:3], sign) for st in steps):
            status = FAILS
        elif end_status == HOLDS and all(sign * st[0] >= 0 for st in steps):
            status = HOLDS
        else:
            status = INCONCLUSIVE
        statuses.append(status)
        values = ", ".join(f"{opts.over}={r[over]}: {_num(r)}" for r in series)
        diffs = "; ".join(f"{a[over]}->{b[over]} {_fmt_diff(*s)}" for a, b, s in zip(series, series[1:], steps))
        lines.append(f"{label}: {opts.direction} with {opts.over}: {status}. {values}. Steps: {diffs}. "
                     f"First->last {_fmt_diff(*end)}")
    return _combine(statuses), lines


def _order(value: Any) -> tuple:
    try:
        from fractions import Fraction

        return (0, float(Fraction(str(value))))
    except (ValueError, ZeroDivisionError):
        return (1, str(value))


def _compare(opts: Compare, rows) -> tuple[str, list[str]]:
    a_rows, b_rows = _match(rows, {**opts.where, **opts.a}), _match(rows, {**opts.where, **opts.b})
    if a_rows.empty or b_rows.empty:
        return INCONCLUSIVE, [f"no results match {'a' if a_rows.empty else 'b'}"]
    if len(b_rows) > 1:
        return INCONCLUSIVE, [f"b matches {len(b_rows)} sweep points; name one ({', '.join(_point(r, _variables(rows)) for _, r in b_rows.iterrows())})"]
    b = b_rows.iloc[0]
    sign = 1 if opts.op == ">" else -1
    statuses, lines = [], []
    for _, a in a_rows.iterrows():
        d, lo, hi, method = difference(a, b)
        shift = sign * opts.margin
        status = _signed(d - shift, lo - shift, hi - shift, sign)
        statuses.append(status)
        lines.append(f"{_point(a, _variables(rows)) or 'a'} ({_num(a)}) {opts.op} {_point(b, _variables(rows)) or 'b'} ({_num(b)})"
                     f"{f' by {opts.margin:g}' if opts.margin else ''}: difference {_fmt_diff(d, lo, hi, method)}: {status}")
    return _combine(statuses), lines


def _range(opts: Range, rows) -> tuple[str, list[str]]:
    matched = _match(rows, opts.where)
    matched = matched[_mask([not _missing(m) for m in matched["mean"]])]
    if matched.empty:
        return INCONCLUSIVE, ["no results match"]
    lo_col = [r["mean"] if _missing(r["ci_low"]) else r["ci_low"] for _, r in matched.iterrows()]
    hi_col = [r["mean"] if _missing(r["ci_high"]) else r["ci_high"] for _, r in matched.iterrows()]
    means = list(matched["mean"])
    values = ", ".join(f"{_point(r, _variables(rows)) or 'all'}: {_num(r)}" for _, r in matched.iterrows())
    if opts.span is not None:
        lo, hi = opts.span
        reach_lo = HOLDS if min(hi_col) <= lo else FAILS if min(lo_col) > lo else INCONCLUSIVE
        reach_hi = HOLDS if max(lo_col) >= hi else FAILS if max(hi_col) < hi else INCONCLUSIVE
        status = _combine([reach_lo, reach_hi])
        return status, [f"values span {min(means):.3f}..{max(means):.3f}; need at least {lo:g}..{hi:g}: "
                        f"low end {reach_lo}, high end {reach_hi}", values]
    lo, hi = opts.within
    statuses = [HOLDS if lo <= a and b <= hi else FAILS if b < lo or a > hi else INCONCLUSIVE for a, b in zip(lo_col, hi_col)]
    status = _combine(statuses)
    return status, [f"every value within {lo:g}..{hi:g}: {status}", values]


def _fmt_filter(where: dict) -> str:
    return " ".join(f"{k}={v}" for k, v in where.items())
