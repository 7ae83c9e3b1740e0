"""Where each run stands: its stage tasks' states from the registry and the out dirs."""

from __future__ import annotations

from typing import Any

from ftlab import atomic
from ftlab.contract import layout
from ftlab.graph import Graph
from ftlab.contract import eval_key, is_done, run_key


def status_rows(graph: Graph, registry) -> list[dict[str, Any]]:
    """One row per run, in plan order: its stages' states and its best checkpoint's selection metric."""
    stages = {s["key"]: s for s in registry.stages()}
    select = graph.plan.experiment.eval.select
    rows = []
    for run in graph.plan.runs:
        row: dict[str, Any] = {
            "index": run.index, "name": run.name, "kind": run.kind, "seed": run.seed, "run_id": run.run_id,
            "values": run.values, "stages": {},
        }
        for stage in ("train", "eval") if run.trains else ("eval",):  # by key: a scan per run is quadratic
            task = graph.task(run_key(stage, run.name))
            row["stages"][stage] = task_state(task, stages.get(task.key))
        summary = graph.task(eval_key(run.name)).out_dir / layout.SUMMARY
        best = atomic.read_json(summary) if summary.is_file() and row["stages"]["eval"] == "done" else None
        row["best_checkpoint"] = best["best_checkpoint"] if best else None
        row[f"{select.split}_{select.metric}"] = best["at_best"].get(select.split, {}).get(select.metric) if best else None
        rows.append(row)
    return rows


def task_state(task, record: dict | None) -> str:
    """done | pending | running | interrupted | failed, from the done marker and the registry row."""
    if is_done(task):
        return "done"
    if record is None:
        return "pending"
    if record["identity"] != task.identity:
        return "pending"  # what ran before had other inputs
    if record["status"] == "running":
        return "running" if _alive(record.get("pid")) else "interrupted"
    return record["status"]


def _alive(pid: int | None) -> bool:
    import os

    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
