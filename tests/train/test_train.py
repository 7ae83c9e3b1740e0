"""Training behaviour on a tiny model: what LoRA and full fine-tuning change, and checkpoint names."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file

import ftlab
from ftlab.contract import context, execute
from ftlab.graph import build_graph
from ftlab.registry import Registry
from ftlab.spec.plan import load_plan
from tests.conftest import write_spec


def _run_stages(spec: Path, upto: str):
    plan = load_plan(spec)
    graph = build_graph(plan)
    registry = Registry(plan.output_dir / "registry.sqlite")
    for task in graph.tasks:
        if task.stage in ("data", "model") or task.key == upto:
            execute(task, context(task, plan.output_dir, registry))
    return graph


def _base_weights(model_dir: Path) -> dict[str, torch.Tensor]:
    return load_file(str(model_dir / "model.safetensors"))


def test_lora_leaves_base_unchanged_and_changes_adapters(tmp_path: Path):
    graph = _run_stages(write_spec(tmp_path, method="lora"), "train/run")
    base_dir = Path(graph.task("train/run").inputs.base_dir)
    before = _base_weights(base_dir)
    ckpt = Path(graph.task("train/run").out_dir) / "checkpoints"
    final = sorted(ckpt.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))[-1]
    adapter = load_file(str(final / "adapter_model.safetensors"))
    assert not (final / "model.safetensors").exists()  # only the adapter is saved
    # LoRA B starts at zero: any non-zero B means the adapter trained.
    lora_b = [v for k, v in adapter.items() if "lora_B" in k]
    assert lora_b and all(v.abs().sum() > 0 for v in lora_b)
    # the base model on disk, and the base inside the trained PEFT model, are bit-identical
    from ftlab.models.load import load_model

    trained = load_model(str(final))
    base_state = {k.replace("base_model.model.", "").replace(".base_layer", ""): v for k, v in trained.state_dict().items() if "lora_" not in k}
    for name, tensor in before.items():
        assert torch.equal(base_state[name], tensor), name


def test_full_training_changes_weights_and_names_epoch_checkpoints(tmp_path: Path):
    graph = _run_stages(write_spec(tmp_path, method="full", epochs=2, save_steps=10), "train/run")
    train_dir = Path(graph.task("train/run").out_dir)
    before = _base_weights(Path(graph.task("train/run").inputs.base_dir))
    names = [c["name"] for c in json.loads((train_dir / "checkpoints.json").read_text())]
    # 240 examples / batch 16 = 15 steps per epoch: step 10, epoch_0 (15), step 20, epoch_1 (30)
    assert names == ["step_0", "step_10", "epoch_0", "step_20", "epoch_1"]
    assert (train_dir / "epoch_0").is_symlink() and (train_dir / "epoch_1" / "model.safetensors").is_file()
    after = load_file(str(train_dir / "epoch_1" / "model.safetensors"))
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert len(changed) == len(before)


def test_keep_last_rotates_checkpoints_and_eval_scores_what_is_kept(tmp_path: Path):
    
    spec = write_spec(tmp_path, epochs=2, save_steps=5)
    spec.write_text(spec.read_text().replace("logging_steps: 5", "logging_steps: 5, keep_last: 2"))
    assert ftlab.run(spec).ok
    train_dir = tmp_path / "out" / "runs" / "run" / "train"
    kept = sorted(p.name for p in (train_dir / "checkpoints").glob("checkpoint-*"))
    assert kept == ["checkpoint-25", "checkpoint-30"]
    names = [c["name"] for c in json.loads((train_dir / "checkpoints.json").read_text())]
    assert names == ["step_0", "step_25", "epoch_1"]
    assert not (train_dir / "epoch_0").exists() and not (train_dir / "epoch_0").is_symlink()  # no dangling link
    reg = Registry(tmp_path / "out" / "registry.sqlite")
    assert {m["checkpoint"] for m in reg.metrics(split="valid")} == set(names)
