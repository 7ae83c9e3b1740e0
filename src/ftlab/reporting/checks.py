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

Differences of two points (compare, monotonic) are paired wherever both points were scored on the
same examples (ftlab.reporting.paired): exact McNemar for accuracy with one seed per side, a paired
bootstrap over examples for other metrics, a two-level bootstrap (seeds, then examples) with
several seeds. When the sides share no examples, or a metric has no per-example form, the
difference falls back to se = sqrt(se_a^2 + se_b^2) with Welch's degrees of freedom (normal when
either side's interval came from a bootstrap), and the line says "unpaired" and why.
The comparisons of all checks form one family: their p-values are adjusted together
(report.correction: holm, the default, bonferroni or none), both are shown, and a comparison is
decided (holds/fails) only when its adjusted p-value is below 0.05. Threshold and range checks
compare a point with a fixed bar by its interval and are not part of the family.
Each comparison also gives the smallest difference its seeds and examples detect with 80% power
and, for a compare check's `min_effect`, how many seeds per side that difference needs.
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
    min_effect: float | None = Field(None, gt=0, description="the difference worth detecting: the report says how many seeds it needs")


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


ALPHA = 0.05


def run_checks(agg, checks: list[Any], *, default_split: str, default_evaluator: str, df=None,
               correction: str = "holm") -> list[dict]:
    """Judge each declared check on the aggregated results; one result dict per check.

    `df` (ftlab.results' frame) gives the per-example evidence that pairs comparisons; without it
    every difference is unpaired. Two passes: the first collects every comparison's raw p-value,
    which are then adjusted as one family; the second judges with the adjusted ones."""
    from ftlab.reporting.paired import adjust

    tester = Tester(df)
    for check in checks:  # pass 1: collect the family
        _judge_one(check, agg, default_split, default_evaluator, tester)
    family = list(tester.cache.values())
    for c, p in zip(family, adjust([c.p for c in family], correction)):
        c.p_adjusted = p
    tester.final = True
    size = sum(not math.isnan(c.p) for c in family)
    out = []
    for i, check in enumerate(checks):
        result = {"index": i, **_judge_one(check, agg, default_split, default_evaluator, tester)}
        if result.get("comparisons"):
            result.update(correction=correction, family_size=size)
        out.append(result)
    return out


def _judge_one(check, agg, default_split: str, default_evaluator: str, tester: "Tester") -> dict:
    opts = check_kinds.get(check.kind).model_validate(check.options)
    split, evaluator = opts.split or default_split, opts.evaluator or default_evaluator
    rows = agg[(agg["split"] == split) & (agg["evaluator"] == evaluator) & (agg["metric"] == opts.metric)]
    tester.used = []
    if check.kind in ("monotonic", "compare"):
        status, lines = {"monotonic": _monotonic, "compare": _compare}[check.kind](opts, rows, tester)
    else:
        status, lines = {"threshold": _threshold, "range": _range}[check.kind](opts, rows)
    name = opts.name or f"{check.kind}: {opts.metric} on {split}" + (f" where {_fmt_filter(opts.where)}" if opts.where else "")
    result = {"name": name, "kind": check.kind, "metric": opts.metric, "split": split,
              "evaluator": evaluator, "status": status, "details": lines}
    if check.kind in ("monotonic", "compare"):
        result["comparisons"] = [{"label": label, **c.as_dict()} for label, c in tester.used]
    return result


class Tester:
    """Computes (and caches) each comparison once; `final` switches verdicts to adjusted p-values."""

    def __init__(self, df=None):
        self.df, self.cache, self.sides, self.final, self.used = df, {}, {}, False, []

    def compare(self, a, b, null: float = 0.0, label: str = "", min_effect: float | None = None):
        from ftlab.reporting.paired import minimal_detectable, seeds_needed

        key = tuple((tuple(r["runs"]), r["split"], r["evaluator"], r["metric"], str(r["mean"]), str(r["se"])) for r in (a, b)) + (null,)
        if key not in self.cache:
            c = self._paired(a, b, null)
            c.mde = minimal_detectable(c.se, c.dof)
            if c.paired:
                c.unpaired = unpaired(a, b, null)
                c.unpaired_p = c.unpaired.p
            self.cache[key] = c
        c = self.cache[key]
        if min_effect is not None and c.seeds_needed is None:
            c.seeds_needed = seeds_needed(c.parts, min_effect) if c.parts else "unknown: needs per-example evidence (paired)"
        self.used.append((label, c))
        return c

    def _paired(self, a, b, null: float):
        from ftlab.reporting.paired import compare_sides, shared

        if _missing(a["mean"]) or _missing(b["mean"]):
            return unpaired(a, b, null)
        if self.df is None or self.df.empty:
            return unpaired(a, b, null, "no per-example evidence given")
        sides = [self._side(r) for r in (a, b)]
        why = next((f"{n}: {s}" for n, s in zip("ab", sides) if isinstance(s, str)), None)
        joined = why or shared(*sides)
        if isinstance(joined, str):
            return unpaired(a, b, null, joined)
        side_a, side_b, subset = joined
        c = compare_sides(side_a, side_b, null=null, metric=a["metric"],
                          untrained=(a["kind"] == "untuned", b["kind"] == "untuned"))
        if subset:
            c.method = f"{c.method}, {subset}"
        return c

    def _side(self, row):
        """A point's per-example evidence, read once per report (a monotonic step and first->last share points)."""
        from ftlab.reporting.paired import load_side

        paths = self._evidence(row)
        key = (tuple(map(str, paths)), row["metric"])
        if key not in self.sides:
            self.sides[key] = load_side(paths, row["metric"], self.df.attrs.get("positive"))
        return self.sides[key]

    def _evidence(self, row) -> list[Path]:
        df = self.df
        hit = df[df["selected"].astype(bool) & df["run"].isin(list(row["runs"])) & (df["split"] == row["split"])
                 & (df["evaluator"] == row["evaluator"]) & (df["metric"] == row["metric"]) & df["value"].notna()]
        base = Path(df.attrs.get("experiment_dir", "."))
        paths = [e for e in hit["evidence"] if isinstance(e, str)]
        return [base / e for e in paths] if len(paths) == len(hit) else []


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
    """(a - b, 95% low, 95% high, method) from the two points' means and standard errors (unpaired)."""
    c = unpaired(a, b)
    return c.effect, c.low, c.high, c.method


def unpaired(a, b, null: float = 0.0, why: str | None = None):
    """a - b as two independent points: se = sqrt(se_a^2 + se_b^2), Welch t (normal for bootstrap se's)."""
    from scipy import stats

    from ftlab.reporting.paired import Comparison

    d = float(a["mean"] - b["mean"])
    prefix = f"unpaired ({why}): " if why else ""
    if _missing(a["se"]) or _missing(b["se"]):
        return Comparison(d, math.nan, math.nan, math.nan, prefix + "point estimates", False, null)
    se = math.sqrt(a["se"] ** 2 + b["se"] ** 2)
    seeds = (int(a["n"]), int(b["n"]))
    if se == 0:
        return Comparison(d, d, d, math.nan, prefix + "no spread over seeds", False, null, seeds=seeds, se=0.0)
    t = (d - null) / se
    if a["n"] >= 2 and b["n"] >= 2 and "bootstrap" not in str(a["ci_method"]) + str(b["ci_method"]):
        # Welch-Satterthwaite degrees of freedom for two means with unequal variances.
        va, vb = a["se"] ** 2, b["se"] ** 2
        dof = (va + vb) ** 2 / (va ** 2 / (a["n"] - 1) + vb ** 2 / (b["n"] - 1))
        q, method, p = float(stats.t.ppf(0.975, dof)), f"Welch t, df {dof:.1f}", float(2 * stats.t.sf(abs(t), dof))
    else:
        q, method, p, dof = 1.959964, "normal (bootstrap se)", float(2 * stats.norm.sf(abs(t))), math.inf
    return Comparison(d, d - q * se, d + q * se, p, prefix + method, False, null, seeds=seeds, se=se, dof=dof)


def _p(c, final: bool) -> float:
    return c.p_adjusted if final and not math.isnan(c.p_adjusted) else c.p


def _verdict(c, sign: int, final: bool) -> str:
    """holds/fails/inconclusive for `sign * (a - b - null) > 0`: decided when the (adjusted) p < ALPHA."""
    if math.isnan(c.effect):
        return INCONCLUSIVE
    d, p = c.effect - c.null, _p(c, final)
    if math.isnan(p):  # point estimates, or seeds that agree exactly: the sign decides
        return HOLDS if sign * d > 0 else FAILS
    if p >= ALPHA:
        return INCONCLUSIVE
    return HOLDS if sign * d > 0 else FAILS


def _reversed(c, sign: int, final: bool) -> bool:
    """The step went the wrong way: with p < ALPHA, or (no p-value) by its sign; flat is not reversed."""
    if math.isnan(c.effect):
        return False
    p = _p(c, final)
    if math.isnan(p):
        return sign * c.effect < 0
    return p < ALPHA and sign * c.effect < 0


def _fmt_diff(c, sign: int = 1) -> str:
    text = f"{c.effect:+.3f}"
    if math.isnan(c.low):
        return text + f" ({c.method})"
    text += f" [{c.low:+.3f}, {c.high:+.3f}] ({c.method})"
    if not math.isnan(c.p):
        text += f", p {c.p:.3g}" + ("" if math.isnan(c.p_adjusted) else f", adjusted {c.p_adjusted:.3g}")
    if not math.isnan(c.mde):
        text += f", detectable at 80% power: {c.mde:.3f}"
    if c.seeds_needed:
        text += f", seeds for min_effect: {c.seeds_needed}"
    return text + _undecided_note(c, sign)


def _undecided_note(c, sign: int) -> str:
    """Why the unpaired difference of seed means would decide a comparison that pairing leaves
    open or decides otherwise (the reverse of what pairing should do: never silently)."""
    c.note = ""
    u = getattr(c, "unpaired", None)
    if not c.paired or u is None:
        return ""
    before, now = _verdict(u, sign, False), _verdict(c, sign, True)
    if before == INCONCLUSIVE or before == now:
        return ""
    raw = _verdict(c, sign, False)
    why = ("the family correction raises its p" if raw == before else
           "the paired test counts the test examples' variance as well as the seeds'")
    said = f"p {u.p:.3g}" if not math.isnan(u.p) else "by the sign of the seed means, which do not vary"
    c.note = f"the unpaired seed means would say {before} ({said}); {now} here because {why}"
    return f"; note: {c.note}"


def _monotonic(opts: Monotonic, rows, tester: Tester | None = None) -> tuple[str, list[str]]:
    tester = tester or Tester()
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
        steps = [tester.compare(b, a, label=f"{label}: {opts.over} {a[over]}->{b[over]}") for a, b in zip(series, series[1:])]
        # one step is its own first->last: compared (and listed, and counted in the family) once
        end = steps[0] if len(steps) == 1 else tester.compare(series[-1], series[0], label=f"{label}: first->last")
        end_status = _verdict(end, sign, tester.final)
        # Steps may be flat (a rate saturating at 1.0 with gamma still "rises"), never reversed;
        # first -> last must move the declared way. Reversed = the step goes the wrong way with an
        # adjusted p below 0.05 (for point estimates: its sign is wrong).
        if end_status == FAILS or any(_reversed(st, sign, tester.final) for st in steps):
            status = FAILS
        elif end_status == HOLDS and all(sign * st.effect >= 0 for st in steps):
            status = HOLDS
        else:
            status = INCONCLUSIVE
        statuses.append(status)
        values = ", ".join(f"{opts.over}={r[over]}: {_num(r)}" for r in series)
        diffs = "; ".join(f"{a[over]}->{b[over]} {_fmt_diff(s, sign)}" for a, b, s in zip(series, series[1:], steps))
        lines.append(f"{label}: {opts.direction} with {opts.over}: {status}. {values}. Steps: {diffs}. "
                     f"First->last {_fmt_diff(end, sign)}")
    return _combine(statuses), lines


def _order(value: Any) -> tuple:
    try:
        from fractions import Fraction

        return (0, float(Fraction(str(value))))
    except (ValueError, ZeroDivisionError):
        return (1, str(value))


def _compare(opts: Compare, rows, tester: Tester | None = None) -> tuple[str, list[str]]:
    tester = tester or Tester()
    a_rows, b_rows = _match(rows, {**opts.where, **opts.a}), _match(rows, {**opts.where, **opts.b})
    if a_rows.empty or b_rows.empty:
        return INCONCLUSIVE, [f"no results match {'a' if a_rows.empty else 'b'}"]
    if len(b_rows) > 1:
        return INCONCLUSIVE, [f"b matches {len(b_rows)} sweep points; name one ({', '.join(_point(r, _variables(rows)) for _, r in b_rows.iterrows())})"]
    b = b_rows.iloc[0]
    sign = 1 if opts.op == ">" else -1
    statuses, lines = [], []
    for _, a in a_rows.iterrows():
        pa, pb = _point(a, _variables(rows)) or "a", _point(b, _variables(rows)) or "b"
        c = tester.compare(a, b, null=sign * opts.margin, label=f"{pa} {opts.op} {pb}", min_effect=opts.min_effect)
        status = _verdict(c, sign, tester.final)
        statuses.append(status)
        lines.append(f"{pa} ({_num(a)}) {opts.op} {pb} ({_num(b)})"
                     f"{f' by {opts.margin:g}' if opts.margin else ''}: difference {_fmt_diff(c, sign)}: {status}")
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

