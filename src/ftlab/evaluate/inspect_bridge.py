"""Running an inspect-ai task file on a checkpoint (seed 004); the evaluator is evaluators/inspect_task.py.

    eval:
      evaluators:
        - name: inspect
          splits: [valid]             # only where the metrics are filed: inspect reads its own dataset
          task: evals/qa.py@qa        # relative to the spec; "@name" picks one task of the file
          task_args: {data_path: data/qa.json, prompt: "{input}", system_prompt: ""}

Per checkpoint this runs `python -m inspect_ai eval TASK --model hf/local` in a subprocess (inspect
keeps global state: logging, an event loop, .env loading; a child process also frees the model it
loads). Task and model arguments travel as JSON files (`--task-config`, `--model-config`), never as
`-T k=v`: inspect YAML-parses those and splits them on commas, so `prompt="{input}"` would arrive as
a dict and "a, b" as a list. The evaluator's metrics are inspect's, named `<scorer>_<metric>`
(`match_accuracy`, `match_stderr`); each evidence record is one sample (input, target, output,
scores) and names the inspect log it came from.

What inspect loads: a full-model checkpoint is passed by its own directory; a PEFT adapter is saved
with the tokenizer into a scratch directory that transformers loads as base + adapter. The dtype and
a QLoRA base's 4-bit quantization are passed along, so inspect scores the weights ftlab trained.
inspect loads its own copy: while it runs, the checkpoint is in memory twice.

Run the tests: `.venv/bin/pytest tests/evaluate/test_inspect_bridge.py -q` (each inspect process
spends ~10 s importing torch, transformers and peft; see child_env for the ~45 s it no longer waits).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from ftlab.errors import StageError
from ftlab.evaluate.base import EvalInput
from ftlab.evaluate.metrics import EMPTY_SPLIT, Metric

INSTALL_HINT = "pip install 'ftlab[inspect]'"


def require_inspect() -> None:
    """A clear error, naming the extra, when inspect-ai is not installed."""
    try:
        found = importlib.util.find_spec("inspect_ai") is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        raise StageError(f"the inspect evaluator needs inspect-ai, which is not installed: {INSTALL_HINT}")


def split_task(task: str) -> tuple[str, str | None]:
    """"path/to/task.py@name" -> ("path/to/task.py", "name"); no "@name" -> (task, None)."""
    head, at, name = task.rpartition("@")
    return (head, name) if at and name and "/" not in name else (task, None)


def _log_root(inp: EvalInput) -> Path:
    """The log_dir option when given, else beside the evidence (<eval>/<ckpt>/inspect/logs), else a temp dir."""
    if inp.options["log_dir"]:
        return Path(inp.options["log_dir"])
    if inp.out_dir is not None:
        return Path(inp.out_dir) / "logs"
    return Path(tempfile.gettempdir()) / "ftlab-inspect"


def run_inspect(model, tokenizer, options: dict[str, Any], log_root: Path) -> dict[str, Any]:
    """Run the task on `model` in a child process; the parsed JSON log (its path added as "_path")."""
    log_root.mkdir(parents=True, exist_ok=True)
    run_dir = Path(tempfile.mkdtemp(prefix="run-", dir=log_root))  # one per run: its logs/ holds exactly one log
    with tempfile.TemporaryDirectory(prefix="ftlab-inspect-model-") as scratch:
        model_args = checkpoint_args(model, tokenizer, Path(scratch)) | options["model_args"]
        (run_dir / "task_args.json").write_text(json.dumps(options["task_args"], indent=1))
        (run_dir / "model_args.json").write_text(json.dumps(model_args, indent=1))
        argv = [
            sys.executable, "-m", "inspect_ai", "eval", options["task"], "--model", "hf/local",
            "--task-config", str(run_dir / "task_args.json"), "--model-config", str(run_dir / "model_args.json"),
            "--log-dir", str(run_dir / "logs"), "--log-format", "json", "--display", "none",
            "--log-level", options["log_level"], "--seed", str(options["seed"]),
        ] + (["--limit", str(options["limit"])] if options["limit"] else [])
        done = subprocess.run(argv, capture_output=True, text=True, env=child_env())  # a list, no shell: arguments arrive intact
    logs = sorted((run_dir / "logs").glob("*.json"))
    if not logs:
        tail = (done.stderr or done.stdout)[-2000:]
        raise StageError(f"inspect eval wrote no log (exit {done.returncode}); its output ends:\n{tail}")
    log = json.loads(logs[-1].read_text())
    if done.returncode != 0 or log.get("status") != "success":
        message = (log.get("error") or {}).get("message") or (done.stderr or "")[-2000:]
        raise StageError(f"inspect eval ended with status {log.get('status')} (exit {done.returncode}): {message}\nlog: {logs[-1]}")
    log["_path"] = str(logs[-1])
    return log


def child_env(environ: dict[str, str] | None = None) -> dict[str, str]:
    """The inspect process's environment: the hub offline unless the caller chose otherwise.

    After a run, inspect looks up "model info" for the string "hf/local" by building the hf provider
    without its model_args, so transformers asks the hub for a repo named "local": five retries with
    backoff, ~45 s per checkpoint on a machine without internet (every checkpoint ftlab scores is a
    local directory). HF_HUB_OFFLINE=1 makes that lookup fail at once. A task that downloads its
    dataset from the hub needs `HF_HUB_OFFLINE=0` set in ftlab's environment, which is passed on.
    """
    env = dict(os.environ if environ is None else environ)
    env.setdefault("HF_HUB_OFFLINE", "1")
    return env


def checkpoint_args(model, tokenizer, scratch: Path) -> dict[str, Any]:
    """hf provider arguments that load the same weights at the same precision as `model`."""
    from peft import PeftModel

    if isinstance(model, PeftModel):
        # PeftModel keeps no record of its adapter dir; the adapter is small (MBs), so save it again
        model.save_pretrained(scratch)
        tokenizer.save_pretrained(scratch)
        path, base = str(scratch), model.get_base_model()
    elif (Path(getattr(model, "name_or_path", "")) / "config.json").is_file():
        path, base = model.name_or_path, model  # loaded from that directory: use it, no copy
    else:
        model.save_pretrained(scratch)
        tokenizer.save_pretrained(scratch)
        path, base = str(scratch), model
    args: dict[str, Any] = {"model_path": path, "dtype": str(base.dtype).removeprefix("torch.")}
    quantization = getattr(base.config, "quantization_config", None)
    if quantization is not None:  # a QLoRA base is scored in 4 bits, as ftlab's own evaluators do
        args["quantization_config"] = json.loads(quantization.to_json_string())
    return args


def sample_records(log: dict[str, Any]) -> list[dict[str, Any]]:
    """One evidence record per sample and epoch: what went in, what came out, each scorer's verdict."""
    records = []
    for index, sample in enumerate(log.get("samples") or []):
        output = sample.get("output") or {}
        records.append({
            "index": index,
            "id": sample.get("id"),
            "epoch": sample.get("epoch"),
            "input": sample.get("input"),
            "target": sample.get("target"),
            "output": output.get("completion"),
            "scores": {
                name: {k: score.get(k) for k in ("value", "answer", "explanation")}
                for name, score in (sample.get("scores") or {}).items()
            },
            "error": (sample.get("error") or {}).get("message"),
            "log": log["_path"],
        })
    return records


def score_metrics(log: dict[str, Any]) -> dict[str, Metric]:
    """inspect's aggregate metrics as `<scorer>_<metric>`, plus the number of samples scored."""
    results = log.get("results") or {}
    out = {"n": Metric(float(results.get("completed_samples", 0)))}
    for score in results.get("scores") or []:
        for metric in (score.get("metrics") or {}).values():
            value = metric.get("value")
            ok = isinstance(value, (int, float)) and value == value  # NaN: inspect's stderr of a single sample
            out[f"{score['name']}_{metric['name']}"] = Metric(float(value)) if ok else Metric(None, "inspect reported no value")
    if not out["n"].value:
        return {k: (m if k == "n" else Metric(None, EMPTY_SPLIT)) for k, m in out.items()}
    return out
