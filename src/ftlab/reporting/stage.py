"""Report stage: the experiment's results as data, aggregated over seeds, checked, drawn and exported.

Writes under <output_dir>/report/:
    summary.txt / summary.json   the aggregated table (mean ± sd over seeds) and each run's best checkpoint
    results.csv                  ftlab.results() as CSV (one row per run x checkpoint x split x evaluator x metric)
    aggregated.csv               mean, sd, n and 95% interval per sweep point at the selected checkpoint
    checks.json                  report.checks judged: holds / fails / inconclusive with the numbers; each
                                 compare/monotonic comparison with its method, effect, interval, raw and
                                 adjusted p-value, detectable difference (ftlab.reporting.paired)
    plots/*.png, plots/*.svg     chosen from the sweep's shape (ftlab.reporting.plots)
    index.html                   one self-contained page of all of the above (ftlab.reporting.html)
and <output_dir>/results.json (the registry, per run with stages and metrics).
"""

from __future__ import annotations

from pathlib import Path
from ftlab import atomic
from ftlab.registry import export_results
from ftlab.reporting.summary import render_aggregated, render_table, summary_rows
from ftlab.contract.task import StageContext, StageResult
from ftlab.contract.inputs import ReportInputs


def run_report(inputs: ReportInputs, ctx: StageContext) -> StageResult:
    from ftlab.reporting.aggregate import aggregate
    from ftlab.reporting.checks import run_checks
    from ftlab.reporting.results import results_frame

    out = Path(ctx.out_dir)
    splits = inputs.splits
    rows = summary_rows(inputs.evals)
    df = results_frame(ctx.registry.runs(), ctx.registry.metrics(), Path(ctx.experiment_dir), only=set(inputs.run_ids) or None, variables=inputs.variables)
    agg = aggregate(df)
    spec = inputs.report
    select = inputs.select
    default_split = next((s for s in splits if s != select.split), splits[0] if splits else "test")
    checks = run_checks(agg, list(spec.checks), default_split=default_split, default_evaluator=select.evaluator,
                        df=df, correction=spec.correction)
    text = render_aggregated(agg, splits, inputs.one_vs_rest) + "\n\nper run (best valid checkpoint):\n" + render_table(rows, splits)
    if inputs.curations:  # seed 003: what each curation filter dropped, and why
        from ftlab.reporting.curation import render_curation

        text += "\n\ncuration (examples each filter dropped):\n" + render_curation(inputs.curations)
    if checks:
        from ftlab.reporting.summary import render_checks

        text += "\n\n" + render_checks(checks)
    atomic.write_text(out / "summary.txt", text + "\n")
    atomic.write_json(out / "summary.json", rows)
    _write_csv(df, out / "results.csv")
    _write_csv(agg, out / "aggregated.csv")
    atomic.write_json(out / "checks.json", checks)
    export_results(ctx.registry, Path(ctx.experiment_dir) / "results.json")
    plots = _plots(df, agg, out, inputs)
    from ftlab.reporting.html import write_html

    write_html(out / "index.html", df=df, agg=agg, checks=checks, plots=plots, rows=rows, inputs=inputs,
               registry=ctx.registry, experiment_dir=Path(ctx.experiment_dir))
    for p in plots:
        if "error" in p:
            atomic.write_text(out / "summary.txt", (out / "summary.txt").read_text() + f"plot {p['name']} not drawn: {p['error']}\n")
    failed = sum(c["status"] == "fails" for c in checks)
    return StageResult({"summary": "summary.txt", "html": "index.html", "results": "../results.json", "runs": len(rows),
                        "checks": len(checks), "checks_failed": failed, "plots": [p["file"] for p in plots if "file" in p]})


def _plots(df, agg, out: Path, inputs: ReportInputs) -> list[dict]:
    from ftlab.reporting.plots import draw_plots

    return draw_plots(df, agg, out / "plots", names=list(inputs.report.plots), splits=inputs.splits,
                      select=inputs.select.model_dump(), experiment_dir=Path(df.attrs["experiment_dir"]))


def _write_csv(frame, path: Path) -> None:
    atomic.write_text(path, frame.to_csv(index=False))
