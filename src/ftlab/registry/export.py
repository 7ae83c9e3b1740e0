"""Export the registry to results.json: every run with its stages and metrics nested inside.

Usage:
    from ftlab.registry import Registry, export_results
    export_results(Registry(out_dir / "registry.sqlite"), out_dir / "results.json")

results.json is for readers without SQLite (notebooks, other tools). Its shape:
    {"schema_version": 1, "exported_at": "2025-01-01T12:00:00+00:00",
     "runs": [{...run, "stages": [...], "metrics": [...]}],
     "experiment_stages": [...stages not tied to one run, e.g. data preparation...]}
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
    runs = [{**run, "stages": stages_of.get(run["run_id"], []),
             "metrics": metrics_of.get(run["run_id"], [])} for run in registry.runs()]
    write_json(Path(path), {
        "schema_version": SCHEMA_VERSION,
        "exported_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "runs": runs,
        "experiment_stages": stages_of.get(None, []),
    })
