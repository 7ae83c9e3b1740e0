"""The memory estimate (ftlab.train.memory) against measured peaks, and the checkpointing choice.

Measured in a fresh interpreter each: CPU training with large freed blocks returned to the OS
(memory.bounded_heap, as the train stage does), the peak RSS reset before the steps. The models
are small enough for seconds per case and deep or long enough that activations, not Python and
torch, make the difference between resident and peak (hundreds of MB)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from ftlab.spec.schema import Method, Train
from ftlab.train import memory
from ftlab.train.memory import ActivationProfile, Budget, MemoryShape

GIB = 2**30


def _model(layers: int, hidden: int, method: str):
    from transformers import AutoModelForCausalLM, Qwen2Config

    from ftlab.train.stage import apply_method

    config = Qwen2Config(hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=hidden // 64, num_key_value_heads=hidden // 64,
                         intermediate_size=4 * hidden, vocab_size=400, tie_word_embeddings=True, max_position_embeddings=2048)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32, attn_implementation="sdpa")
    return apply_method(model, Method(name=method))


def _rows(n: int, length: int, prefix: int = 0) -> list[dict]:
    g = torch.Generator().manual_seed(0)
    shared = torch.randint(10, 390, (prefix,), generator=g).tolist()
    rows = []
    for i in range(n):
        ids = shared + torch.randint(10, 390, (length - prefix - (i % 4) * 9,), generator=g).tolist()  # padded batches, as in training
        rows.append({"input_ids": ids, "completion_mask": [0] * (len(ids) - 2) + [1, 1]})
    return rows


def measure(tokenizer_dir: Path, tmp_path: Path, layers: int, hidden: int, length: int, method: str, checkpointing: bool,
            batch: int = 8, prefix: int = 0):
    """(estimate, measured peak) of 2 training steps at `batch` through ftlab's own trainer."""
    from transformers import AutoTokenizer

    from ftlab.train.device import DeviceSettings
    from ftlab.train.trainer import TrainerSetup, build_trainer

    model = _model(layers, hidden, method)
    rows = _rows(2 * batch, length, prefix)
    hp = Train(batch_size=batch, max_steps=2, max_length=4096, logging_steps=100, activation_checkpointing=checkpointing)
    settings = DeviceSettings("cpu", "fp32", "sdpa", False, False)
    plan = memory.plan_training(model, rows, hp, settings)  # counts live memory (memory.release_freed)
    every = plan.every_n_layers
    assert plan.forced and (every == 1) == checkpointing
    trainer = build_trainer(model, AutoTokenizer.from_pretrained(tokenizer_dir), rows, hp, TrainerSetup(tmp_path, 0, checkpoint_every=every))
    trainer.args.save_strategy, trainer.args.disable_tqdm = "no", True
    memory.release_freed()  # what building the trainer freed leaves the RSS before the peak is reset
    meter = memory.PeakMeter("cpu")
    with memory.bounded_heap("cpu") as bounded:
        assert bounded
        meter.reset()
        trainer.train()
    return plan.estimate, meter.peak()


# (layers, hidden, length, method, checkpointing[, batch[, shared prefix]]): depths 4-12, lengths 512-1024,
# LoRA and full, batch 8 unless given. The 4-row case's blocks (batch x length x hidden x 4 bytes) are 1 MiB, under
# the train stage's mmap threshold: glibc's heap serves them and the estimate counts its holes apart
# (memory.HEAP_HOLES; without that term this case peaked 15-35% above the estimate).
CASES = [
    (12, 128, 768, "lora", False),
    (4, 128, 1024, "lora", False),
    (6, 192, 768, "full", False),
    (12, 128, 1024, "lora", True),
    (12, 128, 512, "lora", False, 4),
    (8, 256, 1024, "lora", False, 8, 512),  # every row starts with the same 512 tokens: computed once
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[0]}layers-h{c[1]}-len{c[2]}-{c[3]}-{'ckpt' if c[4] else 'nockpt'}-b{c[5] if len(c) > 5 else 8}"
                         f"{f'-prefix{c[6]}' if len(c) > 6 else ''}")
def test_estimate_is_within_15_percent_of_the_measured_peak(tiny_model_dir, tmp_path, case):
    # in a fresh interpreter: a pytest worker that ran the real-model tests first holds ~6 GB of freed
    # heap, and its RSS then says little about this case (seen in CI under xdist)
    import subprocess
    import sys
    from types import SimpleNamespace

    code = ("import json, sys; from pathlib import Path; from tests.train.test_memory import measure; "
            "e, peak = measure(Path(sys.argv[1]), Path(sys.argv[2]), *json.loads(sys.argv[3])); "
            "print(json.dumps({'peak': e.peak, 'resident': e.resident, 'measured': peak}))")
    proc = subprocess.run([sys.executable, "-c", code, str(tiny_model_dir), str(tmp_path), json.dumps(list(case))],
                          cwd=Path(__file__).resolve().parents[2], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    estimate, peak = SimpleNamespace(peak=got["peak"], resident=got["resident"]), got["measured"]
    grown = peak - estimate.resident  # what training added: the part the estimate models
    assert grown > 100 * 2**20, "the case must grow memory measurably"
    print(f"{case}: estimate {estimate.peak / 2**20:.0f} MiB, measured {peak / 2**20:.0f} MiB ({estimate.peak / peak:.2f}x); "
          f"growth estimated {(estimate.peak - estimate.resident) / 2**20:.0f}, measured {grown / 2**20:.0f} MiB")
    assert 0.85 <= estimate.peak / peak <= 1.15
    # the growth is the part modelled: the 1 MiB-block case reads 0.79 here without the heap's holes
    assert 0.85 <= (estimate.peak - estimate.resident) / grown <= 1.3


def test_resident_memory_is_what_is_live_not_what_an_earlier_run_freed():
    """A process that trained before (the local runner runs a sweep's stages in one process) has
    freed heap in its RSS; the plan must not count it as held (it turned checkpointing on for runs
    that fit in CI). Freed 8 MiB blocks below a live one stay in glibc's heap until trimmed."""
    import subprocess
    import sys

    code = (
        "import torch; from ftlab.train import memory; "
        "base = memory._status_kib('VmRSS') * 1024; "
        "t = torch.ones(5 * 2**20); del t; "  # a freed 20 MiB block lifts glibc's mmap threshold above 8 MiB
        "blocks = [torch.ones(2**21) for _ in range(64)]; keep = blocks[-1]; del blocks; "
        "held = memory._status_kib('VmRSS') * 1024; "
        "print(base, held, memory.resident_bytes(None, 'cpu'))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    base, held, resident = map(int, proc.stdout.split())
    assert held - base > 400 * 2**20, "the freed blocks must still be in the RSS before the trim"
    assert resident - base < 64 * 2**20


def test_the_probe_sees_no_per_head_attention_weights_with_sdpa():
    """SDPA on CPU (torch's flash kernel, also with a padding mask) keeps no batch x heads x length^2
    weights for backward; eager keeps one float per head per position pair."""
    sdpa = memory.probe_activations(_model(2, 256, "lora"))
    model = _model(2, 256, "lora")
    model.set_attn_implementation("eager")
    eager = memory.probe_activations(model)
    heads = 256 // 64
    assert sdpa.layer_pair <= 4  # at most the padding mask, converted to float per layer
    assert eager.layer_pair >= heads * 4
    assert 0.9 <= sdpa.layer / eager.layer <= 1.1  # the rest is the same


PROFILE = ActivationProfile(layers=30, hidden=576, elem=4, layer=41_000, layer_pair=4, outside=2300, outside_pair=0)
SHAPE = MemoryShape(rows=8, length=1000, completion_rows=16)


def test_checkpointing_flips_with_the_budget():
    model = _model(2, 128, "lora")
    resident = GIB
    big = memory.choose("auto", model, PROFILE, SHAPE, Budget(64 * GIB, "test"), resident)
    assert not big.activation_checkpointing and big.every_n_layers is None and not big.forced
    assert 9 * GIB < big.estimate.peak < 12 * GIB  # 30 layers x 8,000 positions x ~45 KB, plus 1 GiB resident
    small = memory.choose("auto", model, PROFILE, SHAPE, Budget(10 * GIB, "test"), resident)
    assert small.activation_checkpointing and small.every_n_layers == 1 and "does not fit" not in small.reason
    assert small.estimate.peak < 3 * GIB < memory.MARGIN * 10 * GIB < small.estimate_off.peak
    tiny = memory.choose("auto", model, PROFILE, SHAPE, Budget(2 * GIB, "test"), resident)
    assert tiny.every_n_layers == 1 and "does not fit" in tiny.reason
    # the spec's choice wins over the budget, both ways
    assert memory.choose(False, model, PROFILE, SHAPE, Budget(2 * GIB, "test"), resident).every_n_layers is None
    forced = memory.choose(True, model, PROFILE, SHAPE, Budget(64 * GIB, "test"), resident)
    assert forced.forced and forced.every_n_layers == 1
    json.dumps(forced.record())  # goes into the stage's outputs


def test_longest_batch_is_the_samplers_worst():
    lengths, completions = [10, 500, 30, 480, 20], [2, 2, 5, 2, 2]
    assert memory.longest_batch(lengths, completions, 2, padding_free=False) == (2, 500, 7)
    assert memory.longest_batch(lengths, completions, 2, padding_free=True) == (1, 980, 7)


def test_budget_sources(monkeypatch, tmp_path):
    monkeypatch.setenv("SLURM_MEM_PER_NODE", "16000")
    assert memory.budget("cpu") == Budget(16000 * 2**20, "SLURM_MEM_PER_NODE")
    monkeypatch.delenv("SLURM_MEM_PER_NODE")
    assert memory.cgroup_limit(tmp_path) is None
    (tmp_path / "memory.max").write_text("max\n")
    assert memory.cgroup_limit(tmp_path) is None
    (tmp_path / "memory.max").write_text(f"{8 * GIB}\n")
    assert memory.cgroup_limit(tmp_path) == 8 * GIB
    monkeypatch.setattr(memory, "cgroup_limit", lambda: None)
    ram = memory.budget("cpu")
    assert ram.source == "25% of RAM" and ram.bytes > 0


def test_spec_option_validates_and_keeps_run_ids():
    from pydantic import ValidationError

    assert Train(activation_checkpointing=True).activation_checkpointing is True
    assert "activation_checkpointing" not in Train().model_dump()  # default left out: run ids unchanged
    with pytest.raises(ValidationError, match="activation_checkpointing"):
        Train(activation_checkpointing="sometimes")


def test_the_train_stage_records_estimate_choice_budget_and_peak(tmp_path, monkeypatch):
    from tests.conftest import write_spec

    # a budget this process fits whatever earlier tests left live (the estimate counts it)
    monkeypatch.setenv("SLURM_MEM_PER_NODE", str(256 * 1024))
    from tests.train.test_train import _run_stages

    graph = _run_stages(write_spec(tmp_path, method="lora"), "train/run")
    done = json.loads((Path(graph.task("train/run").out_dir) / "_done.json").read_text())
    record = done["outputs"]["memory"]
    assert record["activation_checkpointing"] is False and not record["forced"]  # a tiny model fits any budget
    assert record["estimate"]["peak"] > record["estimate"]["resident"] > 0
    assert record["budget"]["bytes"] > 0 and record["budget"]["source"]
    assert record["measured_peak"]["bytes"] > 0
    assert record["allocator"] == {"mmap_threshold": memory.MMAP_THRESHOLD, "torch_huge_pages": True}


def test_the_bounded_heap_returns_large_freed_blocks_and_then_puts_glibc_back():
    """Inside: freed 8 MiB blocks below a live one leave the RSS (each was its own mapping).
    After: glibc's maximum threshold again, so such blocks come from the heap and stay."""
    import subprocess
    import sys

    code = (
        "import torch; from ftlab.train import memory; rss = lambda: memory._status_kib('VmRSS') * 1024\n"
        "def kept():\n"
        "    base = rss(); blocks = [torch.ones(2**21) for _ in range(64)]; keep = blocks[-1]; del blocks\n"
        "    return rss() - base\n"
        "t = torch.ones(5 * 2**20); del t\n"  # lifts glibc's own threshold above 8 MiB, as training does
        "with memory.bounded_heap('cpu') as on: inside = kept()\n"
        "print(on, inside, kept())"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    on, inside, after = proc.stdout.split()
    assert on == "True"
    assert int(inside) < 64 * 2**20
    assert int(after) > 400 * 2**20
