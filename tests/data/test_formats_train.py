"""A parquet train set, a LLaMA-Factory-registered valid set and a CSV test set go through
`ftlab validate` and `ftlab run` (data -> train -> eval) on the tiny model.

    .venv/bin/pytest tests/data/test_formats_train.py -q
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

import ftlab
from ftlab.data.formats import read_examples
from ftlab.data.generate import generators
from ftlab.registry import Registry
from tests.conftest import write_spec


def test_parquet_registration_and_csv_datasets_train_and_score(tmp_path: Path, capsys):
    hem = generators.get("hem")
    train = [{"messages": e.prompt + [{"role": "assistant", "content": e.completion}], "n": len(e.prompt)}
             for e in hem(n=240, split="train", seed=0)]
    pq.write_table(pa.Table.from_pylist(train), tmp_path / "train.parquet")
    valid = [{"q": e.prompt[-1]["content"], "sys": e.prompt[0]["content"], "a": e.completion}
             for e in hem(n=40, split="valid", seed=0)]
    (tmp_path / "valid.jsonl").write_text("".join(json.dumps(r) + "\n" for r in valid))
    (tmp_path / "dataset_info.json").write_text(json.dumps(
        {"hem_valid": {"file_name": "valid.jsonl", "columns": {"prompt": "q", "response": "a", "system": "sys"}}}
    ))
    with open(tmp_path / "test.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["question", "verdict"])
        writer.writerows([e.prompt[-1]["content"], e.completion] for e in hem(n=40, split="test", seed=0))

    spec = write_spec(tmp_path)
    text = spec.read_text()
    for old, new in [
        ("generate: {name: hem, n: 240, seed: 0}", "path: train.parquet"),
        ("{name: valid, role: valid, generate: {name: hem, n: 40, seed: 0}}",
         "{name: valid, role: valid, path: dataset_info.json, name_in_registry: hem_valid}"),
        ("{name: test, role: test, generate: {name: hem, n: 40, seed: 0}}",
         "{name: test, role: test, path: test.csv, columns: {prompt: question, label: verdict}}"),
    ]:
        assert old in text
        text = text.replace(old, new)
    spec.write_text(text)

    out = "\n".join(ftlab.validate(spec).data)
    assert "train (train): 240 rows; N 120, P 120" in out and "test (test): 40 rows; N 20, P 20" in out

    assert ftlab.run(spec).ok
    data = tmp_path / "out" / "data"
    valid_examples = read_examples(next(data.glob("valid-*")) / "examples.jsonl")
    assert valid_examples[0].prompt[0]["role"] == "system" and valid_examples[0].label in ("P", "N")
    test_examples = read_examples(next(data.glob("test-*")) / "examples.jsonl")
    assert test_examples[0].meta["source"] == "test.csv:2"
    metrics = Registry(tmp_path / "out" / "registry.sqlite").metrics()
    n = {m["split"]: m["value"] for m in metrics if m["metric"] == "n" and m["checkpoint"] == "step_0"}
    assert n == {"valid": 40, "test": 40}


def test_hf_dataset_directory_trains(tmp_path: Path, capsys):
    """A DatasetDict saved with save_to_disk: the path names its `train` split directory."""
    import datasets

    hem = generators.get("hem")
    rows = [{"prompt": e.prompt, "completion": e.completion} for e in hem(n=240, split="train", seed=0)]
    datasets.DatasetDict({"train": datasets.Dataset.from_list(rows)}).save_to_disk(str(tmp_path / "hf"))
    spec = write_spec(tmp_path)
    text = spec.read_text()
    old = "generate: {name: hem, n: 240, seed: 0}"
    assert old in text
    spec.write_text(text.replace(old, "path: hf/train", 1))
    assert "train (train): 240 rows; N 120, P 120" in "\n".join(ftlab.validate(spec).data)
    assert ftlab.run(spec).ok
    reg = Registry(tmp_path / "out" / "registry.sqlite")
    assert reg.stage("train/run")["status"] == "done"
    steps = {m["checkpoint"] for m in reg.metrics(split="valid") if m["metric"] == "accuracy"}
    assert {"step_0", "epoch_0"} <= steps
