"""Boxed answers (seed 002's `\\boxed{Accept}`) are scored where the trained model writes them.

Round 1 scored the bare label tokens at the first answer position, where a model trained on boxed
answers writes `\\boxed`: the labels held ~0.1% of the probability there and accuracy was chance.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import ftlab
from ftlab.data.answers import answer_template
from ftlab.data.example import Example
from ftlab.errors import FtlabError, DataError

SPEC = """
name: boxed
output_dir: out
model:
  tiny: {hidden_size: 128, num_layers: 2, num_heads: 4, num_kv_heads: 2, intermediate_size: 512, vocab_size: 512}
task: {labels: [P, N], positive: P}
datasets:
  - {name: train, role: train, path: train.jsonl}
  - {name: valid, role: valid, path: valid.jsonl}
method: {name: full}
train: {epochs: 4, learning_rate: 0.002, batch_size: 16, max_length: 96, warmup_ratio: 0.05, logging_steps: 50}
eval: {batch_size: 64}
controls: [untuned]
"""


def _write(path: Path, examples: list[Example]) -> None:
    with path.open("w") as f:
        for e in examples:
            answer = {"role": "assistant", "content": "\\boxed{%s}" % e.label}
            f.write(json.dumps({"messages": e.prompt + [answer]}) + "\n")


def test_answer_shape_is_detected_and_checked():
    def ex(answer, label):
        return Example([{"role": "user", "content": "q"}], answer, label, {"source": "f:1"})

    assert answer_template([ex("\\boxed{Accept}", "Accept"), ex("\\boxed{Reject}", "Reject")]) == "\\boxed{{label}}"
    assert answer_template([ex("P", "P"), ex("N", "N")]) == "{label}"
    with pytest.raises(DataError, match="do not share one shape"):
        answer_template([ex("\\boxed{Accept}", "Accept"), ex("Reject", "Reject")])
    with pytest.raises(DataError, match="does not match 1 of 2"):
        answer_template([ex("\\boxed{Accept}", "Accept"), ex("Reject", "Reject")], given="\\boxed{{label}}")


@pytest.mark.slow
def test_a_model_trained_on_boxed_answers_scores_high_by_logits(tmp_path: Path):
    from ftlab.data.generate import generators

    _write(tmp_path / "train.jsonl", generators.get("hem")(n=2000, split="train", seed=0))
    _write(tmp_path / "valid.jsonl", generators.get("hem")(n=200, split="valid", seed=0))
    (tmp_path / "spec.yaml").write_text(SPEC)
    assert ftlab.run(tmp_path / "spec.yaml").ok
    summary = json.loads((tmp_path / "out/runs/run/eval/summary.json").read_text())
    best = summary["at_best"]["valid"]
    assert best["accuracy"] >= 0.9, best
    assert best["label_mass"] >= 0.9, best  # the labels' full answers are what the model writes
    untuned = json.loads((tmp_path / "out/runs/untuned/eval/summary.json").read_text())["at_best"]["valid"]
    assert untuned["label_mass"] < 0.01 and best["accuracy"] > untuned["accuracy"] + 0.3
    metrics = json.loads((tmp_path / f"out/runs/run/eval/{summary['best_checkpoint']}/logits/valid.metrics.json").read_text())
    assert metrics["details"]["answer_template"] == "\\boxed{{label}}"


def test_mixed_answer_shapes_fail_at_validate(tmp_path: Path):

    ex = [Example([{"role": "user", "content": f"q{i}"}], "\\boxed{P}" if i % 2 else "N", "P" if i % 2 else "N", {}) for i in range(10)]
    (tmp_path / "train.jsonl").write_text("".join(json.dumps({"messages": e.prompt + [{"role": "assistant", "content": e.completion}]}) + "\n" for e in ex))
    (tmp_path / "valid.jsonl").write_text(json.dumps({"messages": [{"role": "user", "content": "v"}, {"role": "assistant", "content": "P"}]}) + "\n")
    spec = SPEC.replace("  - {name: valid, role: valid, path: valid.jsonl}", "  - {name: valid, role: valid, path: valid.jsonl}")
    (tmp_path / "spec.yaml").write_text(spec)
    with pytest.raises(FtlabError) as caught:  # before any training, not in the eval stage
        ftlab.validate(tmp_path / "spec.yaml")
