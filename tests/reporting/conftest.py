"""One finished tiny experiment shared by the report tests (~30 s on 2 cores, built once per session).

Two learning rates x 2 seeds + an untuned control, 3 epochs of 240 examples so runs differ by seed,
and a positives-only test split (seed 000's valid_hem_only) for the "not meaningful" rule.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

import ftlab

SPEC = """
name: reptiny
output_dir: out
model:
  tiny: {hidden_size: 32, num_layers: 1, num_heads: 2, num_kv_heads: 1, intermediate_size: 64, vocab_size: 400}
task: {labels: [P, N], positive: P}
datasets:
  - {name: train, role: train, generate: {name: hem, n: 240, seed: 0}}
  - {name: valid, role: valid, generate: {name: hem, n: 40, seed: 0}}
  - {name: test, role: test, generate: {name: hem, n: 40, seed: 0}}
  - {name: pos_only, role: test, path: pos_only.jsonl}
method: {name: full}
train: {epochs: 2, learning_rate: "${lr}", batch_size: 16, max_length: 96, save_steps: 10, logging_steps: 5}
eval: {batch_size: 32, select: {metric: auroc}}  # AUROC moves with every step, so seeds select different checkpoints
sweep: [{grid: {lr: [0.003, 0.001]}}]
seeds: [0, 1]
controls: [untuned]
report:
  checks:
CHECKS
"""

CHECKS = """
    - {kind: threshold, metric: accuracy, split: test, min: 0.2, name: easy bar}
    - {kind: range, metric: accuracy, split: test, within: [0, 1], name: accuracy is a rate}
"""
FAILING = "    - {kind: threshold, metric: accuracy, split: test, min: 0.999, name: impossible bar}\n"


def write_experiment(directory: Path, checks: str = CHECKS) -> Path:
    from ftlab.data.generate import generators

    directory.mkdir(parents=True, exist_ok=True)
    positives = [e for e in generators.get("hem")(n=60, split="test", seed=7) if e.label == "P"][:12]
    with open(directory / "pos_only.jsonl", "w") as f:
        for e in positives:
            f.write(json.dumps({"prompt": e.prompt, "completion": e.completion}) + "\n")
    spec = directory / "spec.yaml"
    spec.write_text(textwrap.dedent(SPEC).replace("CHECKS\n", checks.lstrip("\n")))
    return spec


@pytest.fixture(scope="session")
def finished(tmp_path_factory) -> Path:
    """The spec of a finished experiment (ftlab.run, as the CLI runs it)."""
    spec = write_experiment(tmp_path_factory.mktemp("report") / "exp")
    assert ftlab.run(spec).ok
    return spec
