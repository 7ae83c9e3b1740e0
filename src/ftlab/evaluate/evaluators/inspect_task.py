"""`inspect`: an inspect-ai task run on each checkpoint through inspect's hf provider (ftlab.evaluate.inspect_bridge)."""

from __future__ import annotations

import hashlib
import importlib.util
import json
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator

from ftlab.evaluate.base import EvalInput, Options, evaluators
from ftlab.evaluate.inspect_bridge import INSTALL_HINT, _log_root, require_inspect, run_inspect, sample_records, score_metrics, split_task
from ftlab.evaluate.metrics import Metric


@evaluators.register("inspect")
class InspectEvaluator:
    """An inspect-ai task run on the checkpoint through inspect's `hf` provider; its scores are the metrics."""

    name, version = "inspect", 1

    class Options(Options):
        task: str = Field(description="inspect task file, optionally with @task_name (relative to the spec)")
        task_args: dict[str, str | int | float | bool] = Field(
            default_factory=dict, description="task parameters (inspect's -T), passed verbatim; data_path is relative to the spec"
        )
        model_args: dict[str, Any] = Field(
            default_factory=dict, description="hf provider arguments (inspect's -M), e.g. batch_size, do_sample, device"
        )
        limit: int | None = Field(None, gt=0, description="score only the first N samples")
        seed: int = Field(0, description="inspect's --seed (sampling is on unless model_args sets do_sample: false)")
        log_level: str = Field("warning", pattern="^(debug|trace|http|info|warning|error|critical)$")
        log_dir: str | None = Field(None, description="where inspect logs go (relative to the spec); default: a temp dir")
        task_hash: str | None = Field(None, description="set by ftlab: hash of the task and data_path files, so editing them re-scores")

        @field_validator("model_args")
        @classmethod
        def _model_path_is_ours(cls, value: dict[str, Any]) -> dict[str, Any]:
            if "model_path" in value:
                raise ValueError("model_path is set by ftlab to the checkpoint being scored")
            return value

    def __init__(self) -> None:
        # One instance serves one checkpoint (see evaluate/stage.py): its splits share one inspect run.
        self._runs: dict[str, list[dict[str, Any]]] = {}
        self._metrics: dict[int, dict[str, Metric]] = {}

    def run(self, inp: EvalInput) -> list[dict[str, Any]]:
        require_inspect()
        key = json.dumps([id(inp.model), inp.options], sort_keys=True)
        if key not in self._runs:
            log = run_inspect(inp.model, inp.tokenizer, inp.options, _log_root(inp))
            records = sample_records(log)
            self._metrics[id(records)] = score_metrics(log)
            self._runs[key] = records
        return self._runs[key]

    def metrics(self, records, inp) -> dict[str, Metric]:
        if id(records) in self._metrics:
            return self._metrics[id(records)]
        if not records:
            return {"n": Metric(0.0)}
        return score_metrics(json.loads(Path(records[0]["log"]).read_text()))

    def details(self, records, inp) -> dict[str, Any]:
        """Kept in the metrics file (evaluate/stage.py): where inspect's log of this run lies."""
        return {"inspect_log": records[0]["log"] if records else None}

    @staticmethod
    def resolve(options: dict[str, Any], base_dir: Path, problems: list) -> dict[str, Any]:
        """Task file, data_path and log_dir made absolute; task_hash follows the task and data files' content."""
        if importlib.util.find_spec("inspect_ai") is None:
            problems.append((("name",), f"the inspect evaluator needs inspect-ai, which is not installed: {INSTALL_HINT}"))
        files = []
        if isinstance(options.get("task"), str):
            path, task_name = split_task(options["task"])
            path = (base_dir / path).resolve()
            options["task"] = str(path) + (f"@{task_name}" if task_name else "")
            files.append((("task",), path))
        args = options.get("task_args")
        if isinstance(args, dict) and isinstance(args.get("data_path"), str) and "://" not in args["data_path"]:  # not hf://, s3://
            args = options["task_args"] = dict(args)
            args["data_path"] = str((base_dir / args["data_path"]).resolve())
            files.append((("task_args", "data_path"), Path(args["data_path"])))
        if isinstance(options.get("log_dir"), str):
            options["log_dir"] = str((base_dir / options["log_dir"]).resolve())
        digest = hashlib.sha256()
        for key, path in files:
            if path.is_file():
                digest.update(path.read_bytes())
            elif not path.exists():
                problems.append((key, f"not found: {str(path)[:200]}"))
        options["task_hash"] = digest.hexdigest()[:16]
        return options
