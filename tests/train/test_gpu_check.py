"""bench/gpu_check, the parts that run without a GPU: arguments, the table, the clear exit, and one
training configuration smoked on the CPU with the tiny model (the GPU run measures the rest)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import torch

from ftlab.data.encode import example_ids
from ftlab.data.generate import generators

RUN = Path(__file__).resolve().parents[2] / "bench" / "gpu_check" / "run.py"


@pytest.fixture(scope="module")
def gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", RUN)
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_check"] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop("gpu_check", None)


def test_arguments(gpu_check, tmp_path):
    args = gpu_check.parse_args([])
    assert (args.steps, args.batch_size, args.layers, args.no_vllm, args.append) == (40, 8, 8, False, None)
    args = gpu_check.parse_args(["--steps", "10", "--no-vllm", "--append", str(tmp_path / "B.md")])
    assert (args.steps, args.no_vllm, args.append) == (10, True, tmp_path / "B.md")
    with pytest.raises(SystemExit):
        gpu_check.parse_args(["--steps", "2"])


def test_configurations_follow_what_is_installed(gpu_check):
    names = [c.name for c in gpu_check.configurations(flash_attn=False, liger=False)]
    assert names == ["sdpa padded", "sdpa padding-free", "eager padded", "eager padding-free"]
    both = gpu_check.configurations(flash_attn=True, liger=True)
    assert [c.attention for c in both].count("flash_attention_2") == 2 and both[-1].liger


def test_table_renders_ratios_failures_and_what_was_skipped(gpu_check):
    m = gpu_check
    results = m.Results("Machine: test.", "NVIDIA H200", {"layers": 8, "hidden": 896, "vocab": 151936, "params": 2.1e8,
                                                          "batch_size": 8, "steps": 40, "prompts": 256, "new_tokens": 64})
    results.train = [m.TrainResult("sdpa padded", "sdpa", False, False, 50_000, 12.5, 0.31, 7.1),
                     m.TrainResult("sdpa padding-free", "sdpa", True, False, 75_000, 10.0, 0.0, 7.1),
                     m.TrainResult("eager padded", "eager", False, False, 0, 0, 0, None, "RuntimeError: boom")]
    results.generate = [m.GenResult("hf", 1000, 2.0, 3.0), m.GenResult("vllm", 20_000, 30.0, None)]
    results.skipped = ["flash_attention_2 (pip install flash-attn)"]
    text = m.render(results)
    assert "## GPU check (bench/gpu_check): NVIDIA H200" in text
    assert "| sdpa padded | 50,000 | 1.00x | 12.50 GiB | 31.0% | 7.1000 |" in text
    assert "| sdpa padding-free | 75,000 | 1.50x | 10.00 GiB | 0.0% |" in text
    assert "| eager padded | failed: RuntimeError: boom |" in text
    assert "| vllm | 20,000 | 20.00x | 30.0 s | preallocated" in text
    assert "Not measured: flash_attention_2 (pip install flash-attn)." in text


def test_without_cuda_it_exits_clearly(gpu_check, monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert gpu_check.main(["--steps", "3"]) == 2
    assert "needs a CUDA GPU" in capsys.readouterr().err


@pytest.mark.parametrize("padding_free", [False, True])
def test_one_configuration_smoked_on_the_cpu(gpu_check, monkeypatch, tiny_model_dir, tmp_path, padding_free):
    from transformers import AutoTokenizer

    monkeypatch.setattr(gpu_check, "DEVICE", ("cpu", "fp32"))
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    rows = []
    for i, e in enumerate(generators.get("hem")(n=16, split="train", seed=0)):
        ids, mask = example_ids(tok, e, 128)
        rows.append({"input_ids": ids[i:], "completion_mask": mask[i:]})
    args = gpu_check.parse_args(["--steps", "3", "--batch-size", "4"])
    config = gpu_check.Config("sdpa", "sdpa", padding_free)
    result = gpu_check.train_one(tiny_model_dir, rows, args, config, tmp_path)
    assert result.tokens_per_s > 0 and result.final_loss is not None and result.error is None
    assert (result.padded_share == 0) == padding_free


def test_memory_rows_render(gpu_check):
    m = gpu_check
    results = m.Results("Machine: test.", "NVIDIA H100", {"layers": 8, "hidden": 896, "vocab": 151936, "params": 2.1e8, "batch_size": 8, "steps": 40})
    results.memory = [m.MemoryResult("SmolLM2-135M-Instruct", 1024, 8, False, 9.0, 10.0),
                      m.MemoryResult("SmolLM2-135M-Instruct", 1024, 8, True, 0, 0, "OutOfMemoryError: boom")]
    text = m.render(results)
    assert "| SmolLM2-135M-Instruct | 8 x 1024 | off | 9.00 GiB | 10.00 GiB | 0.90 |" in text
    assert "| SmolLM2-135M-Instruct | 8 x 1024 | on | failed: OutOfMemoryError: boom |" in text


@pytest.mark.parametrize("checkpointing", [False, True])
def test_memory_check_smoked_on_the_cpu(gpu_check, monkeypatch, tiny_model_dir, tmp_path, checkpointing):
    monkeypatch.setattr(gpu_check, "DEVICE", ("cpu", "fp32"))
    args = gpu_check.parse_args(["--batch-size", "2", "--memory-length", "64"])
    result = gpu_check.memory_one(tiny_model_dir, "tiny", args, checkpointing, tmp_path)
    assert result.error is None and result.checkpointing == checkpointing
    assert result.estimate_gib > 0 and result.measured_gib > 0
