"""A changed identity field re-runs its stage; a changed runtime field does not (the local runner)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import ftlab
from tests.conftest import write_spec


def _states(spec: Path, capsys) -> dict[str, str]:
    return {key.split("-")[0]: state for key, state in ftlab.run(spec, dry_run=True).planned}


def test_data_task_follows_content_not_where_the_experiment_lives(tmp_path: Path, capsys):
    rows = [{"prompt": f"q{i}", "completion": "P" if i % 2 else "N"} for i in range(40)]
    here = tmp_path / "here"
    (here / "data").mkdir(parents=True)
    (here / "data" / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    spec = write_spec(here)
    spec.write_text(spec.read_text().replace("generate: {name: hem, n: 240, seed: 0}}", "path: data/train.jsonl}", 1))
    assert ftlab.run(spec, only=["data"]).ok
    assert _states(spec, capsys)["data/train"] == "done, would skip"
    # Runtime: the resolved file path. The whole experiment (spec, data, outputs) moved elsewhere.
    there = tmp_path / "there"
    shutil.copytree(here, there)
    spec = there / "spec.yaml"
    assert _states(spec, capsys)["data/train"] == "done, would skip"
    # Identity: the file's content, and the dataset's settings.
    (there / "data" / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[:30]))
    assert _states(spec, capsys)["data/train"] == "would run"
    (there / "data" / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert _states(spec, capsys)["data/train"] == "done, would skip"
    spec.write_text(spec.read_text().replace("path: data/train.jsonl}", "path: data/train.jsonl, limit: 20}"))
    assert _states(spec, capsys)["data/train"] == "would run"


def test_train_task_ignores_runtime_train_fields_and_eval_settings(tmp_path: Path, capsys):
    spec = write_spec(tmp_path)
    assert ftlab.run(spec, only=["data", "model", "train"]).ok
    text = spec.read_text()
    assert _states(spec, capsys)["train/run"] == "done, would skip"
    for runtime in (("logging_steps: 5", "logging_steps: 7"), ("eval: {batch_size: 32}", "eval: {batch_size: 8, exclude_final: true}")):
        spec.write_text(text.replace(*runtime))
        assert _states(spec, capsys)["train/run"] == "done, would skip", runtime
    spec.write_text(text.replace("learning_rate: 0.003", "learning_rate: 0.002"))
    assert _states(spec, capsys)["train/run"] == "would run"
