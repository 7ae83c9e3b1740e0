"""Shared fixtures: tiny specs and a tiny model built once per session (seconds, offline)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures"

# 240 train examples x 1 epoch of batch 16 = 15 steps on a 1-layer, hidden-32 model: ~3 s on 2 cores.
TINY_SPEC = """
name: tiny
output_dir: out
model:
  tiny: {{hidden_size: 32, num_layers: 1, num_heads: 2, num_kv_heads: 1, intermediate_size: 64, vocab_size: 400}}
task: {{labels: [P, N], positive: P}}
datasets:
  - {{name: train, role: train, generate: {{name: hem, n: 240, seed: 0}}}}
  - {{name: valid, role: valid, generate: {{name: hem, n: 40, seed: 0}}}}
  - {{name: test, role: test, generate: {{name: hem, n: 40, seed: 0}}}}
method: {{name: {method}}}
train: {{epochs: {epochs}, learning_rate: 0.003, batch_size: 16, max_length: 96, save_steps: {save_steps}, logging_steps: 5}}
eval: {{batch_size: 32}}
sweep: {sweep}
seeds: {seeds}
controls: {controls}
"""


def write_spec(directory: Path, *, method="full", epochs=1, save_steps=10, sweep="[]", seeds="[0]", controls="[]") -> Path:
    path = directory / "spec.yaml"
    text = TINY_SPEC.format(method=method, epochs=epochs, save_steps=save_steps, sweep=sweep, seeds=seeds, controls=controls)
    path.write_text(textwrap.dedent(text))
    return path


@pytest.fixture
def tiny_spec(tmp_path: Path) -> Path:
    return write_spec(tmp_path)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    from ftlab.data.generate import generators
    from ftlab.models.tiny import TinyConfig, build_tiny

    examples = generators.get("hem")(n=200, split="train", seed=0)
    texts = [m["content"] for e in examples for m in e.prompt] + [e.completion for e in examples]
    out = tmp_path_factory.mktemp("tiny") / "model"
    cfg = TinyConfig(hidden_size=32, num_layers=1, num_heads=2, num_kv_heads=1, intermediate_size=64, vocab_size=400)
    return build_tiny(out, cfg, texts)
