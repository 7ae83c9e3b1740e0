"""Device-dependent training settings (train/device.py): the table, the CUDA configuration built
without a GPU, and padding-free batches scoring the same loss as padded ones."""

from __future__ import annotations

import math
import types

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from ftlab.data.encode import example_ids
from ftlab.data.generate import generators
from ftlab.spec.schema import Method, Train
from ftlab.train import device as device_mod
from ftlab.train.device import Device, DeviceSettings, TrainDeviceError, probe, resolve
from ftlab.train.loss import WEIGHT, sample_weight
from ftlab.train.trainer import LIGER_KERNELS, TrainerSetup, build_trainer, sft_config_kwargs

CPU = Device("cpu")
H100 = Device("cuda", bf16=True, flash_attn=True, liger=True)
BARE_GPU = Device("cuda", bf16=True)  # no flash_attn, no liger_kernel
V100 = Device("cuda", bf16=False)


def _row(s: DeviceSettings):
    return (s.device, s.precision, s.attention, s.padding_free, s.liger)


@pytest.mark.parametrize("device, expected", [
    (CPU, ("cpu", "fp32", "sdpa", False, False)),  # today's CPU choices, unchanged
    (H100, ("cuda", "bf16", "flash_attention_2", True, False)),  # liger only when asked
    (BARE_GPU, ("cuda", "bf16", "sdpa", False, False)),  # sdpa's packed mask is (sum len)^2: no padding-free
    (V100, ("cuda", "fp16", "sdpa", False, False)),
])
def test_auto_picks_per_device(device, expected):
    assert _row(resolve(Train(), device)) == expected


def test_explicit_choices_are_kept_where_the_device_can_honour_them():
    hp = Train(precision="bf16", attention="eager", padding_free=True, liger=True)
    assert _row(resolve(hp, H100)) == ("cuda", "bf16", "eager", True, True)
    # padding-free is correct with any kernel (block-diagonal mask), so CPU honours it when asked
    assert _row(resolve(Train(padding_free=True, attention="eager"), CPU)) == ("cpu", "fp32", "eager", True, False)
    assert _row(resolve(Train(attention="flash_attention_2", padding_free=False), H100))[2:4] == ("flash_attention_2", False)


@pytest.mark.parametrize("hp, device, needle", [
    (Train(attention="flash_attention_2"), BARE_GPU, "pip install flash-attn"),
    (Train(attention="flash_attention_2"), CPU, "needs a CUDA GPU"),
    (Train(attention="flash_attention_2", precision="fp32"), H100, "bf16 or fp16 only"),
    (Train(precision="fp16"), CPU, "fp16 needs a CUDA GPU"),
    (Train(precision="bf16"), V100, "no bf16 support"),
    (Train(liger=True), BARE_GPU, "pip install 'ftlab[liger]'"),
    (Train(liger=True), CPU, "need a CUDA GPU"),
])
def test_what_the_device_cannot_honour_fails_with_the_fix(hp, device, needle):
    with pytest.raises(TrainDeviceError, match="cannot run on this machine") as err:
        resolve(hp, device)
    assert needle in str(err.value)


def test_every_problem_is_in_the_one_message():
    with pytest.raises(TrainDeviceError) as err:
        resolve(Train(precision="fp16", attention="flash_attention_2", liger=True), CPU)
    assert str(err.value).count("\n  - ") == 3


def test_probe_reads_cuda_bf16_and_importable_packages(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert probe().type == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    monkeypatch.setattr(device_mod, "_importable", lambda name: name == "flash_attn")
    assert probe() == Device("cuda", bf16=True, flash_attn=True, liger=False)
    assert _row(resolve(Train(), probe())) == ("cuda", "bf16", "flash_attention_2", True, False)
    monkeypatch.setattr(device_mod, "_importable", lambda name: False)
    with pytest.raises(TrainDeviceError, match="pip install flash-attn"):
        resolve(Train(attention="flash_attention_2"), probe())


def test_cuda_trainer_config_without_a_gpu(tmp_path):
    """What build_trainer would hand SFTConfig on an H100 with flash_attn: bf16, no use_cpu,
    padding-free (so no max_length: rows arrive cut), Liger's layer kernels but never its fused CE."""
    hp = Train(batch_size=4, max_length=256, liger=True)
    settings = resolve(hp, H100)
    kwargs = sft_config_kwargs(hp, TrainerSetup(tmp_path, 0), settings)
    assert (kwargs["bf16"], kwargs["fp16"], kwargs["use_cpu"]) == (True, False, False)
    assert kwargs["padding_free"] is True and kwargs["max_length"] is None
    assert kwargs["use_liger_kernel"] and kwargs["liger_kernel_config"] == LIGER_KERNELS
    assert not LIGER_KERNELS["fused_linear_cross_entropy"]  # it would replace the completion-only head
    assert kwargs["activation_checkpointing"] is False and kwargs["optim"] == "adamw_torch_fused"
    assert settings.dtype == torch.bfloat16
    fp16 = resolve(Train(), V100)
    kwargs = sft_config_kwargs(Train(), TrainerSetup(tmp_path, 0), fp16)
    assert (kwargs["bf16"], kwargs["fp16"], kwargs["padding_free"], kwargs["max_length"]) == (False, True, False, 512)
    assert fp16.dtype == torch.float32  # fp32 master weights under fp16 autocast: HF's scaler refuses fp16 params


def test_cpu_trainer_config_is_todays(tmp_path):
    kwargs = sft_config_kwargs(Train(), TrainerSetup(tmp_path, 0), resolve(Train(), CPU))
    assert (kwargs["bf16"], kwargs["fp16"], kwargs["use_cpu"], kwargs["padding_free"], kwargs["max_length"]) == (False, False, True, False, 512)
    assert "use_liger_kernel" not in kwargs


def test_train_stage_loads_the_model_with_the_resolved_attention(monkeypatch, tmp_path):
    """The model kwargs: the train stage passes settings.attention and settings.dtype to load_model."""
    from ftlab.train import stage

    seen = {}

    def fake_load(path, dtype=None, quantization=None, attn_implementation=None):
        seen.update(dtype=dtype, attn=attn_implementation)
        raise RuntimeError("stop here")

    monkeypatch.setattr(stage, "probe", lambda: H100)
    monkeypatch.setattr(stage, "load_tokenizer", lambda path: None)
    monkeypatch.setattr(stage, "load_model", fake_load)
    inputs = types.SimpleNamespace(seed=0, train=Train(), base_dir="base", kind="sweep", method=Method(name="full"))
    with pytest.raises(RuntimeError, match="stop here"):
        stage.run_train(inputs, types.SimpleNamespace(out_dir=tmp_path, on_checkpoint=None))
    assert seen == {"dtype": torch.bfloat16, "attn": "flash_attention_2"}
    monkeypatch.setattr(stage, "probe", lambda: BARE_GPU)
    inputs.train = Train(attention="flash_attention_2")
    with pytest.raises(TrainDeviceError, match="pip install flash-attn"):  # before anything loads
        stage.run_train(inputs, types.SimpleNamespace(out_dir=tmp_path, on_checkpoint=None))


# --- padding-free: the same loss as padded batches --------------------------------------------

def _rows(model_dir, gamma: float) -> list[dict]:
    """Lengths from ~30 to ~60 tokens (the first prompt tokens cut from some rows), so the padded
    batch really pads and a leak across flattened sequences would show."""
    tok = AutoTokenizer.from_pretrained(model_dir)
    rows = []
    for i, e in enumerate(generators.get("hem")(n=8, split="train", seed=0)):
        ids, mask = example_ids(tok, e, 128)
        cut = 4 * i
        rows.append({"input_ids": ids[cut:], "completion_mask": mask[cut:],
                     WEIGHT: sample_weight(e.label, positive="P", variant="accept", gamma=gamma)})
    return rows


def _loss_and_grads(model_dir, tmp_path, rows, settings, weighted, method=None):
    from ftlab.train.stage import apply_method

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32, attn_implementation=settings.attention)
    model = apply_method(model, Method.model_validate(method or {"name": "full"}))
    if not weighted:
        rows = [{k: v for k, v in r.items() if k != WEIGHT} for r in rows]
    trainer = build_trainer(model, AutoTokenizer.from_pretrained(model_dir), rows, Train(batch_size=8, max_length=128),
                            TrainerSetup(tmp_path / str(settings.padding_free), 0, weighted, settings=settings))
    assert trainer.completion_head_blocker is None  # the completion-only head serves both paths
    batch = trainer.data_collator([dict(trainer.train_dataset[i]) for i in range(len(rows))])
    assert ("position_ids" in batch) == settings.padding_free and batch["input_ids"].shape[0] == (1 if settings.padding_free else 8)
    n = int((batch["labels"] != -100).sum())
    trainer.model.train()
    trainer.model.zero_grad()
    loss = trainer.compute_loss(trainer.model, dict(batch), num_items_in_batch=n)
    loss.backward()
    return loss.item(), {k: p.grad.clone() for k, p in trainer.model.named_parameters() if p.requires_grad}, n


LORA = {"name": "lora", "lora": {"r": 4, "alpha": 8, "dropout": 0.0, "target_modules": ["q_proj", "v_proj"]}}


@pytest.mark.parametrize("attention", ["sdpa", "eager"])
@pytest.mark.parametrize("weighted, method", [(True, None), (False, LORA)], ids=["weighted-full", "unweighted-lora"])
def test_padding_free_loss_and_gradients_equal_the_padded_path(tiny_model_dir, tmp_path, attention, weighted, method):
    rows = _rows(tiny_model_dir, gamma=4.0)
    assert len({len(r["input_ids"]) for r in rows}) == 8
    padded = _loss_and_grads(tiny_model_dir, tmp_path, rows, DeviceSettings("cpu", "fp32", attention, False, False), weighted, method)
    flat = _loss_and_grads(tiny_model_dir, tmp_path, rows, DeviceSettings("cpu", "fp32", attention, True, False), weighted, method)
    assert padded[2] == flat[2]  # the same completion tokens counted
    assert abs(padded[0] - flat[0]) < 1e-6
    for name, grad in padded[1].items():
        torch.testing.assert_close(flat[1][name], grad, rtol=1e-5, atol=1e-6, msg=name)


def test_padding_free_trains_through_the_trainer(tiny_model_dir, tmp_path):
    """A few real steps (sampler, collator, weighted loss, token counts) with padding_free on the CPU."""
    rows = _rows(tiny_model_dir, gamma=4.0) * 2
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    hp = Train(batch_size=4, max_length=128, max_steps=3, padding_free=True)
    trainer = build_trainer(model, AutoTokenizer.from_pretrained(tiny_model_dir), rows, hp,
                            TrainerSetup(tmp_path / "o", 0, True, settings=resolve(hp, CPU)))
    trainer.train()
    assert trainer.state.global_step == 3
    lengths = sorted(len(r["input_ids"]) for r in rows)
    assert sum(lengths[:12]) <= trainer._total_train_tokens <= sum(lengths[-12:])  # real tokens, no padding
    assert math.isfinite(trainer.state.log_history[-1]["train_loss"])


@pytest.mark.parametrize("extra, moves", [
    ("", False), ("precision: auto", False), ("attention: eager", False), ("padding_free: true", False),
    ("liger: true", False), ("precision: bf16", True),
])
def test_run_and_train_ids_follow_precision_not_kernels(tmp_path, extra, moves):
    """Kernels are runtime (same loss); precision is identity; defaults keep today's ids."""
    from ftlab.graph import build_graph
    from ftlab.spec.plan import load_plan
    from tests.conftest import write_spec

    def ids(text: str):
        spec = write_spec(tmp_path)
        spec.write_text(spec.read_text().replace("logging_steps: 5}", f"logging_steps: 5{', ' + text if text else ''}}}"))
        plan = load_plan(spec)
        return plan.runs[0].run_id, next(t.identity for t in build_graph(plan).tasks if t.stage == "train")

    base = ids("")
    changed = ids(extra)
    assert (changed[0] != base[0], changed[1] != base[1]) == (moves, moves)
