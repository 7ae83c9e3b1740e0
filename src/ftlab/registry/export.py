"""Export the registry to results.json: every run with its stages and metrics nested inside.

Usage:
    from ftlab.registry import Registry, export_results
    export_results(Registry(out_dir / "registry.sqlite"), out_dir / "results.json")

results.json is for readers without SQLite (notebooks, other tools). Its shape:
    {"schema_version": 1, "exported_at": "2025-01-01T12:00:00+00:00",
     "runs": [{...run, "status": "done", "stages": [...], "metrics": [...],
               "by_stage": {"train": {"status", "config", "outputs", "seconds", "attempt", "error"}, "eval": {...}},
               "selected_checkpoint": "step_40",
               "selected": {"test": {"logits": {"accuracy": 0.81, "f1": null}}},
               "undefined": {"test": {"logits": {"f1": "no positive labels in split"}}}}],
     "experiment_stages": [...stages not tied to one run, e.g. data preparation...]}
A run's status is failed if a stage failed, running if one runs, done when every stage is done,
else pending. `by_stage` is seed 003's per-stage view (config and results of each stage);
`selected` holds the metrics of the checkpoint the eval stage selected on valid.
An undefined metric has "value": null and its "undefined_reason".
Stages and metrics whose run_id names no recorded run are left out; the planner records every
run before any stage of it starts, so such rows only come from a hand-edited registry.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from ftlab.atomic import write_json
from ftlab.registry.store import SCHEMA_VERSION, Registry


def export_results(registry: Registry, path: Path) -> None:
    """Write the whole registry to `path` atomically (readers never see half a file)."""
    # Grouped in one pass rather than filtered once per run, so the cost stays linear in rows
    # (100 runs x 20 checkpoints x 10 metrics = 20k metric rows).
    stages_of: dict[str | None, list[dict]] = {}
    for stage in registry.stages():
        stages_of.setdefault(stage["run_id"], []).append(stage)
    metrics_of: dict[str, list[dict]] = {}
    for metric in registry.metrics():
        metrics_of.setdefault(metric["run_id"], []).append(metric)
    runs = [_run_entry(run, stages_of.get(run["run_id"], []), metrics_of.get(run["run_id"], []))
            for run in registry.runs()]
    write_json(Path(path), {
        "schema_version": SCHEMA_VERSION,
        "exported_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "runs": runs,
        "experiment_stages": stages_of.get(None, []),
    })


def _run_entry(run: dict, stages: list[dict], metrics: list[dict]) -> dict:
    # A part of a task run on its own (eval/<run>@<checkpoint>, a SLURM checkpoint eval) is listed
    # but does not speak for the run: its whole task (eval/<run>) selects and summarises.
    whole = [s for s in stages if "@" not in s["key"]]
    statuses = {s["status"] for s in whole}
    status = ("failed" if "failed" in statuses else "running" if "running" in statuses
              else "done" if whole and statuses == {"done"} and any(s["stage"] == "eval" for s in whole) else "pending")
    by_stage = {s["stage"]: {k: s[k] for k in ("status", "config", "outputs", "seconds", "attempt", "error")} for s in whole}
    best = (by_stage.get("eval", {}).get("outputs") or {}).get("best_checkpoint")
    selected: dict = {}
    undefined: dict = {}
    for m in metrics:
        if best is not None and m["checkpoint"] == best:
            selected.setdefault(m["split"], {}).setdefault(m["evaluator"], {})[m["metric"]] = m["value"]
            if m["undefined_reason"] is not None:
                undefined.setdefault(m["split"], {}).setdefault(m["evaluator"], {})[m["metric"]] = m["undefined_reason"]
    return {**run, "status": status, "stages": stages, "metrics": metrics, "by_stage": by_stage,
            "selected_checkpoint": best, "selected": selected, "undefined": undefined}
