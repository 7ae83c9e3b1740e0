"""Report stage: the summary table (best valid checkpoint per run, its metrics on every split)
and results.json, the registry exported for people who want files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ftlab import atomic
from ftlab.registry import export_results
from ftlab.report.summary import render_table, summary_rows


def run_report(task, ctx) -> dict[str, Any]:
    out = Path(task.out_dir)
    rows = summary_rows(task.inputs["evals"])
    table = render_table(rows, task.inputs["splits"])
    atomic.write_text(out / "summary.txt", table + "\n")
    atomic.write_json(out / "summary.json", rows)
    export_results(ctx.registry, ctx.experiment_dir / "results.json")
    return {"summary": "summary.txt", "results": "../results.json", "runs": len(rows)}

