"""Export an experiment into a local MLflow file store (`ftlab export mlflow SPEC --tracking-uri DIR`).

One MLflow run per ftlab run: params = the effective config flattened (train.learning_rate, ...)
plus sweep values and seed; metrics = every recorded eval metric as "<split>/<evaluator>/<metric>"
at its checkpoint's step, the selected checkpoint's again as "selected/<split>/<evaluator>/<metric>",
and the trainer's log history ("train/loss", ...) per step; artifacts = the run's eval/summary.json
and train/log_history.json. One more run, "<experiment>/report" (tag ftlab.kind=report), holds the
report directory (index.html, plots, CSVs, checks.json). Tags ftlab.run_id / ftlab.kind / ftlab.seed
link back. Exporting again replaces the earlier export's runs (they are deleted, then written anew).

MLflow 3.x keeps the file store in maintenance mode and refuses it unless MLFLOW_ALLOW_FILE_STORE
is true; ftlab sets that for its own export (the point is a store that is just a folder).
Undefined metrics are left out (MLflow has no "undefined"; NaN would plot as a gap or a zero).
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ftlab.contract import layout
from ftlab.errors import FtlabError

MAX_PARAM_CHARS = 6000  # MLflow's limit on a param value
BATCH = 1000  # MLflow's limit on metrics per log_batch call (params: 100)


@dataclass
class Exported:
    uri: str
    experiment: str
    runs: int
    metrics: int
    artifacts: int


def tracking_uri(target: str | Path) -> str:
    """A local directory or file: URI is created here, so one that cannot be (read-only, under a
    file, no permission) is one clear FtlabError rather than MLflow's traceback midway."""
    from urllib.parse import unquote, urlparse

    text = str(target)
    if text.startswith("file:"):
        path = Path(unquote(urlparse(text).path))
    elif "://" in text:
        return text  # a tracking server: MLflow reports its own connection errors
    else:
        path = Path(text)
    try:
        path = path.resolve()
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise FtlabError(
            f"--tracking-uri {text}: cannot create the directory {path} ({e.strerror or e}); "
            "give a directory you can write to"
        ) from None
    return path.as_uri() if not text.startswith("file:") else text


def export_mlflow(graph, registry, target: str | Path, *, experiment: str | None = None) -> Exported:
    os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    try:
        from mlflow.entities import Metric, Param, RunTag
        from mlflow.tracking import MlflowClient
    except ImportError as e:
        raise FtlabError("MLflow is not installed: pip install 'ftlab[mlflow]' (pins mlflow-skinny).") from e
    from ftlab.reporting.results import results_frame

    out = graph.plan.output_dir
    if not registry.runs():
        raise FtlabError(f"Nothing to export: {out} has no recorded runs yet. Run the experiment first (ftlab run SPEC).")
    uri = tracking_uri(target)
    name = experiment or graph.plan.experiment.name
    client = MlflowClient(tracking_uri=uri)
    found = client.get_experiment_by_name(name)
    exp_id = found.experiment_id if found else client.create_experiment(name)
    for old in client.search_runs([exp_id], filter_string="tags.`ftlab.kind` != ''", max_results=50000):
        client.delete_run(old.info.run_id)

    planned = {r.run_id for r in graph.plan.runs}
    runs = [r for r in registry.runs() if r["run_id"] in planned]
    df = results_frame(runs, registry.metrics(), out)
    stamp = int(time.time() * 1000)
    n_metrics = n_artifacts = 0
    for r in runs:
        tags = {"ftlab.run_id": r["run_id"], "ftlab.kind": r["kind"], "ftlab.seed": str(r["seed"]),
                "ftlab.index": str(r["index"]), "mlflow.runName": r["name"]}
        rows = df[df["run_id"] == r["run_id"]]
        selected = rows[rows["selected"]]["checkpoint"].unique()
        if len(selected):
            tags["ftlab.selected_checkpoint"] = str(selected[0])
        run = client.create_run(exp_id, run_name=r["name"], tags=tags)
        rid = run.info.run_id
        params = {**flatten(r["config"]), **{f"sweep.{k}": v for k, v in r["sweep"].items()}, "seed": r["seed"], "kind": r["kind"]}
        plist = [Param(k[:250], str(v)[:MAX_PARAM_CHARS]) for k, v in sorted(params.items())]
        for i in range(0, len(plist), 100):
            client.log_batch(rid, params=plist[i:i + 100])
        metrics = []
        for m in rows.itertuples():
            if math.isnan(m.value):
                continue
            key = f"{m.split}/{m.evaluator}/{m.metric}"
            metrics.append(Metric(key, float(m.value), stamp, int(m.step)))
            if m.selected:
                metrics.append(Metric(f"selected/{key}", float(m.value), stamp, int(m.step)))
        history = layout.train_dir(out, r["name"]) / layout.LOG_HISTORY
        if history.is_file():
            for h in json.loads(history.read_text()):
                for k, v in h.items():
                    if k not in ("step", "epoch") and isinstance(v, (int, float)) and math.isfinite(v) and "step" in h:
                        metrics.append(Metric(f"train/{k}", float(v), stamp, int(h["step"])))
        for i in range(0, len(metrics), BATCH):
            client.log_batch(rid, metrics=metrics[i:i + BATCH])
        n_metrics += len(metrics)
        for extra, where in ((layout.eval_dir(out, r["name"]) / layout.SUMMARY, "eval"), (history, "train")):
            if extra.is_file():
                client.log_artifact(rid, str(extra), where)
                n_artifacts += 1
        client.set_terminated(rid, "FINISHED")

    report_dir = out / "report"
    if (report_dir / "index.html").is_file():
        run = client.create_run(exp_id, run_name=f"{name}/report", tags={"ftlab.kind": "report"})
        client.log_artifacts(run.info.run_id, str(report_dir), "report")
        n_artifacts += sum(1 for p in report_dir.rglob("*") if p.is_file() and not p.name.startswith("_"))
        client.set_terminated(run.info.run_id, "FINISHED")
    return Exported(uri=uri, experiment=name, runs=len(runs), metrics=n_metrics, artifacts=n_artifacts)


def flatten(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"train": {"learning_rate": 1e-4}} -> {"train.learning_rate": 1e-4}; lists stay one JSON value."""
    flat: dict[str, Any] = {}
    for k, v in config.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            flat.update(flatten(v, key + "."))
        else:
            flat[key] = json.dumps(v) if isinstance(v, (list, dict)) else v
    return flat
