"""Full, LoRA and QLoRA all train and evaluate; seeds make runs reproducible; presets expand."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import ftlab
from ftlab.registry import Registry
from ftlab.spec.plan import load_plan
from ftlab.spec.schema import Quantization
from tests.conftest import write_spec


@pytest.mark.parametrize("checkpointing", ["auto", True])
def test_qlora_trains_a_4bit_base_and_evaluates(tmp_path: Path, checkpointing):
    # checkpointing on: what the memory plan picks in a process holding more (CI's pytest workers),
    # and where an inference forward before training had left bitsandbytes' repacked weights
    pytest.importorskip("bitsandbytes")
    spec = write_spec(tmp_path, method="qlora")
    # bitsandbytes' CPU inference kernel packs weights in blocks of 64 inputs: hidden 32 is too narrow.
    text = spec.read_text().replace("hidden_size: 32", "hidden_size: 64").replace("intermediate_size: 64", "intermediate_size: 128")
    spec.write_text(text.replace("train: {", "train: {activation_checkpointing: true, ") if checkpointing is True else text)
    assert ftlab.run(spec).ok
    reg = Registry(tmp_path / "out" / "registry.sqlite")
    train = reg.stage("train/run")
    assert train["status"] == "done" and train["outputs"]["global_step"] == 15
    final = Path(json.loads((tmp_path / "out" / "runs" / "run" / "train" / "checkpoints.json").read_text())[-1]["path"])
    adapter = json.loads((final / "adapter_config.json").read_text())
    assert adapter["peft_type"] == "LORA" and not (final / "model.safetensors").exists()
    assert {m["checkpoint"] for m in reg.metrics(split="test")} == {"step_0", "step_10", "epoch_0"}


def test_qlora_loads_linear_layers_in_4bit(tiny_model_dir):
    pytest.importorskip("bitsandbytes")
    import bitsandbytes as bnb

    from ftlab.models.load import load_model

    model = load_model(str(tiny_model_dir), quantization=Quantization())
    kinds = {type(m).__name__ for m in model.modules()}
    assert any(isinstance(m, bnb.nn.Linear4bit) for m in model.modules()), kinds
    # no inference forward before training: bitsandbytes would repack the 4-bit weights for it
    from ftlab.train import shared_prefix

    assert not shared_prefix.install(model)


def test_same_seed_same_loss_curve_and_other_seed_differs(tmp_path: Path):
    curves = {}
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        (tmp_path / name).mkdir()
        spec = write_spec(tmp_path / name, method="lora", seeds=f"[{seed}]")
        assert ftlab.run(spec, only=["data", "model", "train"]).ok
        history = json.loads((tmp_path / name / "out" / "runs" / "run" / "train" / "log_history.json").read_text())
        curves[name] = [h["loss"] for h in history if "loss" in h]
    assert len(curves["a"]) >= 3
    assert curves["a"] == curves["b"]
    assert curves["a"] != curves["c"]


SEED_001 = """
name: gsm8k_presets
model: {{tiny: {{hidden_size: 32, num_layers: 1, num_heads: 2, num_kv_heads: 1, intermediate_size: 64, vocab_size: 400}}}}
task: {{labels: [P, N]}}
datasets:
  - {{name: train, role: train, generate: {{name: hem, n: 40}}}}
  - {{name: valid, role: valid, generate: {{name: hem, n: 10}}}}
method: {{name: qlora}}
presets:
  simple: {{train: {{epochs: 1, learning_rate: 1.0e-4}}, method: {{lora: {{r: 8, alpha: 16, dropout: 0.0}}}}}}
  medium: {{train: {{epochs: 1, learning_rate: 5.0e-5}}, method: {{lora: {{r: 16, alpha: 32, dropout: 0.05}}}}}}
  strong: {{train: {{epochs: 2, learning_rate: 2.0e-5}}, method: {{lora: {{r: 32, alpha: 64, dropout: 0.1}}}}}}
preset: '${{preset}}'
train: {{batch_size: 4{override}}}
sweep:
  - grid: {{preset: [simple, medium, strong]}}
run_name: "{{preset}}"
"""


def test_seed_001_presets_expand_and_the_spec_overrides_them(tmp_path: Path):
    spec = tmp_path / "spec.yaml"
    spec.write_text(SEED_001.format(override=""))
    runs = load_plan(spec).runs
    got = [(r.name, r.config.train.epochs, r.config.train.learning_rate, r.config.method.lora.r, r.config.method.lora.alpha, r.config.method.lora.dropout) for r in runs]
    assert got == [("simple", 1, 1e-4, 8, 16, 0.0), ("medium", 1, 5e-5, 16, 32, 0.05), ("strong", 2, 2e-5, 32, 64, 0.1)]
    assert all(r.config.method.name == "qlora" and r.config.train.batch_size == 4 for r in runs)
    spec.write_text(SEED_001.format(override=", epochs: 3"))
    assert [r.config.train.epochs for r in load_plan(spec).runs] == [3, 3, 3]


def test_unknown_preset_is_a_spec_error(tmp_path: Path):
    from ftlab.errors import SpecError

    spec = tmp_path / "spec.yaml"
    spec.write_text(SEED_001.format(override="").replace("grid: {preset: [simple, medium, strong]}", "grid: {preset: [simpel]}"))
    with pytest.raises(SpecError, match="unknown preset 'simpel'. Did you mean 'simple'"):
        load_plan(spec)
