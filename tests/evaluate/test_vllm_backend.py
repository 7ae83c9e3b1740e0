"""vLLM backend (evaluate/vllm_backend.py) against a fake `vllm` module: one engine per base, each
PEFT checkpoint its own LoRARequest onto it, full checkpoints their own engine; clear errors
without vLLM or CUDA. The real engine needs a GPU (bench/gpu_check runs it where one is lent)."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import pytest
import torch

from ftlab.errors import ModelError
from ftlab.evaluate import vllm_backend
from ftlab.evaluate.vllm_backend import Engines, generate_vllm
from ftlab.models import load

OPTIONS = {"seed": 0, "max_new_tokens": 8, "temperature": 0.0, "top_p": 1.0, "stop": []}
PROMPTS = [[{"role": "user", "content": "2+2?"}], [{"role": "user", "content": "3+3?"}]]


class FakeVllm:
    """Records what LLM, SamplingParams and LoRARequest were called with."""

    def __init__(self):
        self.engines, self.generates, self.loras, self.shutdowns = [], [], [], 0
        fake = self

        class LLM:
            def __init__(self, **kwargs):
                fake.engines.append(kwargs)
                self.llm_engine = types.SimpleNamespace(shutdown=fake._shutdown)

            def generate(self, prompts, params, lora_request=None):
                fake.generates.append({"engine": len(fake.engines) - 1, "n": len(prompts), "lora": lora_request})
                done = types.SimpleNamespace(text=" 4", finish_reason="stop", stop_reason=None, token_ids=[1, 2])
                return [types.SimpleNamespace(outputs=[done]) for _ in prompts]

        class LoRARequest:
            def __init__(self, name, lora_int_id, lora_path):
                self.name, self.id, self.path = name, lora_int_id, lora_path
                fake.loras.append((name, lora_int_id, lora_path))

        self.module = types.ModuleType("vllm")
        self.module.LLM = LLM
        self.module.SamplingParams = lambda **kwargs: types.SimpleNamespace(**kwargs)
        self.lora = types.ModuleType("vllm.lora")
        self.request = types.ModuleType("vllm.lora.request")
        self.request.LoRARequest = LoRARequest

    def _shutdown(self):
        self.shutdowns += 1


@pytest.fixture
def fake_vllm(monkeypatch):
    fake = FakeVllm()
    monkeypatch.setitem(sys.modules, "vllm", fake.module)
    monkeypatch.setitem(sys.modules, "vllm.lora", fake.lora)
    monkeypatch.setitem(sys.modules, "vllm.lora.request", fake.request)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    return fake


@pytest.fixture
def run_dirs(tmp_path, tiny_model_dir):
    """A base, two LoRA checkpoints on it (r 8 and r 96) and a full fine-tuned checkpoint."""
    base = str(tiny_model_dir)
    out = {"base": base}
    for name, r in (("checkpoint-5", 8), ("checkpoint-10", 96)):
        d = tmp_path / "lora" / name
        d.mkdir(parents=True)
        (d / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": base, "r": r}))
        out[name] = str(d)
    full = tmp_path / "full" / "checkpoint-5"
    full.mkdir(parents=True)
    (full / "config.json").write_text("{}")
    (full / "trainer_state.json").write_text("{}")
    out["full"] = str(full)
    return out


@pytest.fixture
def tokenizer(tiny_model_dir):
    from ftlab.models.load import load_tokenizer

    return load_tokenizer(str(tiny_model_dir))


def test_one_engine_for_the_base_and_a_lora_request_per_checkpoint(fake_vllm, run_dirs, tokenizer):
    engines = Engines()
    for ckpt in ("base", "checkpoint-5", "checkpoint-5"):
        records = generate_vllm(run_dirs[ckpt], tokenizer, PROMPTS, OPTIONS, engines)
    assert records[0] == {"index": 0, "text": " 4", "finish": "eos", "n_tokens": 2}
    assert fake_vllm.engines == [{"model": run_dirs["base"], "seed": 0, "enable_lora": True, "max_lora_rank": 64, "max_loras": 1}]
    assert [g["lora"] for g in fake_vllm.generates][0] is None  # step 0: the base itself, no adapter
    assert [(r.id, r.path) for r in (g["lora"] for g in fake_vllm.generates[1:])] == [(1, run_dirs["checkpoint-5"])] * 2


def test_distinct_ids_a_wider_adapter_and_full_checkpoints_get_engines(fake_vllm, run_dirs, tokenizer):
    engines = Engines()
    for ckpt in ("checkpoint-5", "checkpoint-10", "full", "checkpoint-5"):
        generate_vllm(run_dirs[ckpt], tokenizer, PROMPTS, OPTIONS, engines)
    models = [(e["model"], e["enable_lora"], e.get("max_lora_rank")) for e in fake_vllm.engines]
    assert models == [
        (run_dirs["base"], True, 64),
        (run_dirs["base"], True, 128),  # r 96 does not fit max_lora_rank 64: rebuilt once, wider
        (run_dirs["full"], False, None),  # other weights: its own engine, no LoRA
        (run_dirs["base"], True, 64),
    ]
    assert fake_vllm.shutdowns == 3  # each replaced engine was shut down, not left holding the GPU
    ids = {(l[1], l[2]) for l in fake_vllm.loras}
    assert ids == {(1, run_dirs["checkpoint-5"]), (2, run_dirs["checkpoint-10"])}  # one id per path, kept across engines


def test_a_new_seed_gets_a_new_engine(fake_vllm, run_dirs, tokenizer):
    engines = Engines()
    generate_vllm(run_dirs["checkpoint-5"], tokenizer, PROMPTS, OPTIONS, engines)
    generate_vllm(run_dirs["checkpoint-5"], tokenizer, PROMPTS, {**OPTIONS, "seed": 1}, engines)
    assert [e["seed"] for e in fake_vllm.engines] == [0, 1]


def test_loading_an_hf_model_onto_the_gpu_releases_the_engine(fake_vllm, run_dirs, tokenizer, monkeypatch):
    monkeypatch.setattr(vllm_backend, "ENGINES", Engines())
    generate_vllm(run_dirs["checkpoint-5"], tokenizer, PROMPTS, OPTIONS)
    assert vllm_backend.ENGINES.llm is not None
    monkeypatch.setattr(load, "GPU_RELEASERS", [vllm_backend.ENGINES.close])
    for release in load.GPU_RELEASERS:  # what load_model does before placing a model on CUDA
        release()
    assert vllm_backend.ENGINES.llm is None and fake_vllm.shutdowns == 1


def test_the_generate_evaluator_serves_checkpoints_through_the_shared_engine(fake_vllm, run_dirs, tokenizer, monkeypatch):
    from ftlab.data.example import Example
    from ftlab.evaluate.base import EvalInput
    from ftlab.evaluate.evaluators.generate import GenerateEvaluator

    monkeypatch.setattr(vllm_backend, "ENGINES", Engines())
    loaded = types.SimpleNamespace(tokenizer=tokenizer)
    examples = [Example(prompt=p, completion="#### 4") for p in PROMPTS]
    options = {**OPTIONS, "parser": "gsm8k", "backend": "vllm"}
    for ckpt in ("base", "checkpoint-5", "checkpoint-10"):
        inp = EvalInput(checkpoint_model=loaded, examples=examples, options=options, batch_size=2, checkpoint=run_dirs[ckpt], uses_model=False)
        records = GenerateEvaluator().run(inp)
    assert len(fake_vllm.engines) == 2 and records[0]["text"] == " 4"
    assert [g["lora"].id if g["lora"] else None for g in fake_vllm.generates] == [None, 1, 2]


def test_clear_errors_without_vllm_or_cuda(monkeypatch, run_dirs, tokenizer):
    monkeypatch.setitem(sys.modules, "vllm", None)  # import vllm raises ImportError
    with pytest.raises(ModelError, match=r"pip install 'ftlab\[vllm\]'"):
        generate_vllm(run_dirs["base"], tokenizer, PROMPTS, OPTIONS, Engines())
    monkeypatch.setitem(sys.modules, "vllm", FakeVllm().module)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ModelError, match="needs a CUDA GPU"):
        generate_vllm(run_dirs["base"], tokenizer, PROMPTS, OPTIONS, Engines())


def test_served_tells_adapters_bases_and_trained_full_checkpoints_apart(run_dirs):
    assert vllm_backend.served(run_dirs["checkpoint-10"]) == vllm_backend.Served(run_dirs["base"], run_dirs["checkpoint-10"], 96, False)
    assert vllm_backend.served(run_dirs["base"]).trained_full is False
    assert vllm_backend.served(run_dirs["full"]).trained_full is True
    assert Path(run_dirs["full"]).name == "checkpoint-5"
