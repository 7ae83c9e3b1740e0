"""How many seeds a spec's compare checks need, judged on a pilot experiment's results.

    ftlab plan spec.yaml --pilot runs/pilot        # the pilot: an output directory with registry.sqlite

    from ftlab.reporting.power import pilot_power
    rows = pilot_power(ftlab.results("runs/pilot"), report_inputs)

The spec's checks are judged on the pilot's results exactly as the report stage would (paired,
one family, ftlab.reporting.checks); for each compare comparison the row gives the difference the
pilot's seeds and examples detect at 80% power and, for a check's `min_effect`, the seeds per side
that difference needs (ftlab.reporting.paired.seeds_needed). A pilot with one seed on a trained side
cannot say how much seeds vary; the row says so rather than guessing.
"""

from __future__ import annotations


def pilot_power(df, inputs) -> list[dict]:
    """One row per comparison of the spec's compare and monotonic checks on the pilot's results."""
    from ftlab.reporting.aggregate import aggregate
    from ftlab.reporting.checks import run_checks

    select = inputs.select
    splits = inputs.splits
    default_split = next((s for s in splits if s != select.split), splits[0] if splits else "test")
    checks = run_checks(aggregate(df), list(inputs.report.checks), default_split=default_split,
                        default_evaluator=select.evaluator, df=df, correction=inputs.report.correction)
    rows = []
    for check in checks:
        for c in check.get("comparisons") or []:
            rows.append({"check": check["name"], "comparison": c["label"], "effect": c["effect"], "method": c["method"],
                         "mde": c["mde"], "seeds": c["seeds"], "seeds_needed": c["seeds_needed"]})
    return rows


def render_power(rows: list[dict]) -> list[str]:
    """Plain lines for `ftlab plan --pilot`."""
    if not rows:
        return ["no compare or monotonic check matched the pilot's results"]
    def f(v, spec=".3f"):
        return "n/a" if v is None else format(v, spec)

    out = []
    for r in rows:
        line = (f"{r['check']}: {r['comparison']}: pilot effect {f(r['effect'], '+.3f')}, "
                f"detectable at 80% power with {r['seeds'][0]} vs {r['seeds'][1]} seeds: {f(r['mde'])}")
        if r["seeds_needed"]:
            line += f"; seeds for min_effect: {r['seeds_needed']}"
        out.append(line + f" ({r['method']})")
    return out
