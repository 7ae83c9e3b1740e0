"""The inspect evaluator: an inspect-ai task run on every checkpoint, its scores and log kept.

The end-to-end test runs inspect twice (step_0 = the full base model, epoch_0 = a LoRA adapter),
each in a child process that spends ~15 s importing torch, transformers and peft: ~50 s in all.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

import ftlab
from ftlab.errors import SpecError, StageError
from ftlab.evaluate.evaluators import evaluators
from ftlab.evaluate.inspect_bridge import require_inspect, score_metrics, split_task
from ftlab.registry import Registry
from ftlab.spec.plan import load_plan
from tests.conftest import FIXTURES, write_spec

pytest.importorskip("inspect_ai")

# Would break a shell (quotes, $(), backticks, a newline) and inspect's -T parsing (YAML: "a: b"
# is a mapping, {x} a flow mapping, commas split into a list); it must reach the model unchanged.
NASTY = 'He said "hi" $(touch pwned) `id`\nline two, a: b {x}'

INSPECT = """
  evaluators:
    - {name: logits}
    - name: inspect
      splits: [valid]
      task: inspect/tiny_task.py@tiny_qa
      log_dir: inspect-logs
      model_args: {do_sample: false}
      task_args:
        data_path: inspect/tiny_qa.json
        prompt: "Q: {prompt}"
        system_prompt: %s
"""


def _spec_with_inspect(tmp_path: Path, **kwargs) -> Path:
    shutil.copytree(FIXTURES / "inspect", tmp_path / "inspect")
    spec = write_spec(tmp_path, **kwargs)
    block = INSPECT % json.dumps(NASTY)  # a JSON string is a YAML string
    spec.write_text(spec.read_text().replace("eval: {batch_size: 32}", "eval:\n  batch_size: 32" + block))
    return spec


@pytest.mark.slow
def test_inspect_runs_on_every_checkpoint_and_keeps_its_log(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # nothing may land in the working directory either
    spec = _spec_with_inspect(tmp_path, method="lora", save_steps=100)
    assert ftlab.run(spec).ok
    rows = Registry(tmp_path / "out" / "registry.sqlite").metrics()
    checkpoints = {m["checkpoint"] for m in rows if m["evaluator"] == "logits"}
    assert checkpoints == {"step_0", "epoch_0"}
    inspect_rows = [m for m in rows if m["evaluator"] == "inspect"]
    for ckpt in checkpoints:
        got = {m["metric"]: m["value"] for m in inspect_rows if m["checkpoint"] == ckpt and m["split"] == "valid"}
        assert set(got) == {"match_accuracy", "match_stderr", "n"} and got["n"] == 4, ckpt
        assert 0 <= got["match_accuracy"] <= 1
    assert not any(m["split"] == "test" for m in inspect_rows)  # filed only where `splits` says

    model_paths = set()
    for ckpt in checkpoints:
        evidence = tmp_path / "out" / next(m["evidence"] for m in inspect_rows if m["checkpoint"] == ckpt)
        records = [json.loads(line) for line in evidence.read_text().splitlines()]
        assert [r["id"] for r in records] == ["q1", "q2", "q3", "q4"]
        assert all({"input", "target", "output", "scores", "log"} <= set(r) for r in records)
        assert records[0]["scores"]["match"]["value"] in ("C", "I")
        log_path = Path(records[0]["log"])
        saved = json.loads(evidence.with_name("valid.metrics.json").read_text())
        assert saved["details"]["inspect_log"] == str(log_path)  # the metrics file names the log too
        assert log_path.is_file() and log_path.is_relative_to(tmp_path / "inspect-logs")
        log = json.loads(log_path.read_text())
        assert log["status"] == "success"
        assert log["eval"]["task_args"]["system_prompt"] == NASTY
        assert log["eval"]["task_args"]["data_path"] == str((tmp_path / "inspect" / "tiny_qa.json").resolve())
        assert log["samples"][0]["messages"][0] == {"id": log["samples"][0]["messages"][0]["id"], "role": "system", "content": NASTY}
        assert log["samples"][0]["messages"][1]["content"] == "Q: 2 + 2 ="
        model_paths.add(log["eval"]["model_args"]["model_path"])
        assert log["eval"]["model_args"]["dtype"] == "float32"
    assert len(model_paths) == 2  # the base's own dir at step 0, a saved adapter at epoch 0
    assert not (tmp_path / "pwned").exists() and not (tmp_path / "logs").exists()


def test_spec_paths_are_resolved_and_checked(tmp_path: Path):
    spec = _spec_with_inspect(tmp_path)
    exp = load_plan(spec).runs[0].config
    ev = exp.eval.evaluators[1]
    from ftlab.evaluate.evaluators import resolve_options

    options, problems = resolve_options(ev.name, ev.options, tmp_path, exp.task)
    assert problems == []
    assert options["task"] == f"{(tmp_path / 'inspect' / 'tiny_task.py').resolve()}@tiny_qa"
    assert options["task_args"]["system_prompt"] == NASTY
    before = options["task_hash"]
    (tmp_path / "inspect" / "tiny_qa.json").write_text("[]")
    assert resolve_options(ev.name, ev.options, tmp_path, exp.task)[0]["task_hash"] != before  # edits re-score

    spec.write_text(spec.read_text().replace("inspect/tiny_task.py", "inspect/nope.py").replace("{do_sample: false}", "{model_path: x}"))
    with pytest.raises(SpecError) as info:
        load_plan(spec)
    assert "eval.evaluators[1].task: not found:" in str(info.value)
    assert "model_path is set by ftlab" in str(info.value)


def test_missing_inspect_is_a_clear_error(tmp_path: Path, monkeypatch):
    spec = _spec_with_inspect(tmp_path)
    monkeypatch.setitem(sys.modules, "inspect_ai", None)  # import inspect_ai now fails
    with pytest.raises(StageError, match=r"pip install 'ftlab\[inspect\]'"):
        require_inspect()
    with pytest.raises(StageError, match=r"pip install 'ftlab\[inspect\]'"):
        evaluators.get("inspect")().run(None)
    with pytest.raises(SpecError, match=r"eval.evaluators\[1\].name: the inspect evaluator needs inspect-ai.*ftlab\[inspect\]"):
        load_plan(spec)


def test_task_names_and_metric_names():
    assert split_task("evals/qa.py@qa") == ("evals/qa.py", "qa")
    assert split_task("evals/qa.py") == ("evals/qa.py", None)
    assert split_task("me@host/qa.py") == ("me@host/qa.py", None)
    log = {"results": {"completed_samples": 1, "scores": [
        {"name": "match", "metrics": {"accuracy": {"name": "accuracy", "value": 1.0}, "stderr": {"name": "stderr", "value": float("nan")}}},
    ]}}
    got = score_metrics(log)
    assert got["match_accuracy"].value == 1.0 and got["n"].value == 1.0
    assert got["match_stderr"].value is None and got["match_stderr"].reason  # NaN is "undefined", not 0
    assert score_metrics({"results": {"completed_samples": 0, "scores": []}})["n"].value == 0.0


def test_the_inspect_process_runs_with_the_hub_offline_unless_told_otherwise():
    # inspect's post-run model-info lookup asks the hub for a repo named "local" (5 retries, ~45 s
    # a checkpoint without internet); offline it fails at once. An explicit choice is kept.
    from ftlab.evaluate.inspect_bridge import child_env

    assert child_env({"PATH": "/bin"}) == {"PATH": "/bin", "HF_HUB_OFFLINE": "1"}
    assert child_env({"HF_HUB_OFFLINE": "0"})["HF_HUB_OFFLINE"] == "0"
