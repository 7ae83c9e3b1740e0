"""Training throughput: ftlab's trainer vs plain TRL SFTTrainer defaults, side by side in one run.

    .venv/bin/python bench/train_throughput/run.py            # ~15 min on 2 cores; appends to BENCHMARKS.md
    .venv/bin/python bench/train_throughput/run.py --quick    # smaller model, fewer steps: a smoke run

Same ~32M-parameter model (random init, saved and reloaded), same pre-tokenized data, same batch
size and learning rate, one epoch each (every configuration trains on exactly the same examples). Two data shapes: length-varied prompts (lognormal,
20-1,000 tokens, mean ~210: seed 002's papers / seed 001's few-shot prompts) and evenly sized ones
of the same mean. Reported per configuration: real (non-pad) tokens per second after the first
step (warm-up excluded), share of computed positions that were padding, held-out loss after
training (equal learning), and 6 x N x tokens/s as a fraction of this machine's fp32 matmul peak,
measured in the same run. TRL's defaults are kept except bf16, which is off for both: TRL turns
it on by default and bf16 matmuls run ~100x slower on these CPUs.
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from machine import machine_line  # noqa: E402

from ftlab.models.tiny import TinyConfig, build_tiny
from ftlab.train.trainer import TrainerSetup, build_trainer

HP = {
    "batch_size": 4, "grad_accum": 1, "learning_rate": 3e-4, "epochs": 1, "max_steps": None, "scheduler": "linear",
    "warmup_ratio": 0.0, "weight_decay": 0.0, "optimizer": "adamw_torch", "save_steps": None, "logging_steps": 1000,
    "max_length": 1024, "keep_last": None, "group_by_length": True,
}


def matmul_peak(n: int = 1024, iters: int = 20) -> float:
    """Best fp32 GFLOP/s of an n x n matmul over 3 repeats (warm-up excluded)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(3):
        a @ b
    best = 0.0
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(iters):
            a @ b
        best = max(best, 2 * n**3 * iters / (time.perf_counter() - start) / 1e9)
    return best


def make_rows(n: int, uneven: bool, vocab: int, seed: int, mean_len: int | None = None) -> list[dict]:
    """Prompt of random tokens + a 2-token answer whose first token depends on the prompt (learnable)."""
    rng = random.Random(seed)
    np_rng = np.random.default_rng(seed)
    if uneven:
        lengths = np.clip(np_rng.lognormal(mean=math.log(150), sigma=0.8, size=n), 20, 1000).astype(int)
    else:
        lengths = np.full(n, mean_len)
    rows = []
    for length in lengths:
        prompt = [rng.randrange(3, vocab) for _ in range(int(length))]
        answer = [3 + prompt[0] % 2, 2]  # label token, then <|im_end|>
        rows.append({"input_ids": prompt + answer, "completion_mask": [0] * len(prompt) + [1, 1]})
    return rows


class Counter:
    """Counts real and padded positions of every batch the trainer draws, and times steps 2..end."""

    def __init__(self, collator):
        self.collator, self.real, self.padded, self.batches, self.t_first = collator, 0, 0, 0, None

    def __call__(self, examples):
        batch = self.collator(examples)
        self.batches += 1
        if self.batches == 2:
            self.t_first = time.perf_counter()  # step 1 (warm-up) is excluded
        if self.batches >= 2:
            self.real += int(batch["attention_mask"].sum())
            self.padded += int(batch["input_ids"].numel())
        return batch


def held_out_loss(model, rows: list[dict]) -> float:
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for row in rows:
            ids = torch.tensor([row["input_ids"]])
            labels = torch.tensor([[t if m else -100 for t, m in zip(row["input_ids"], row["completion_mask"])]])
            out = model(input_ids=ids, labels=labels)
            n = int((labels[:, 1:] != -100).sum())
            total += out.loss.item() * n
            count += n
    return total / count


def run_config(name: str, model_dir: Path, rows, held_out, steps: int, work: Path) -> dict:
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer, set_seed
    from trl import SFTConfig, SFTTrainer

    set_seed(0)
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    hp = dict(HP, max_steps=steps, group_by_length=name != "ftlab, no length grouping")
    if name.startswith("ftlab"):
        trainer = build_trainer(model, tok, rows, hp, TrainerSetup(work / name.replace(" ", "_"), seed=0))
        trainer.args.save_strategy = "no"
    else:
        args = SFTConfig(
            output_dir=str(work / "trl"), per_device_train_batch_size=HP["batch_size"], learning_rate=HP["learning_rate"],
            max_steps=steps, bf16=False, use_cpu=True, report_to="none", save_strategy="no", seed=0,
            max_length=HP["max_length"],
            # TRL's default for prompt-completion data; pre-tokenized rows must say it explicitly.
            completion_only_loss=True,
        )
        trainer = SFTTrainer(model=model, args=args, train_dataset=Dataset.from_list(rows), processing_class=tok)
    counter = Counter(trainer.data_collator)
    trainer.data_collator = counter
    trainer.train()
    seconds = time.perf_counter() - counter.t_first
    return {
        "config": name,
        "tokens_per_s": counter.real / seconds,
        "padding": 1 - counter.real / counter.padded,
        "held_out_loss": held_out_loss(trainer.model, held_out),
        "checkpointing": bool(trainer.args.activation_checkpointing),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="0.6M-parameter model, 12 steps (smoke run)")
    # 40 steps x 4 = 160 examples: transformers groups lengths in megabatches of len/(4 x batch) = 10
    # batches here (50 at most); fewer examples would leave length grouping almost nothing to sort.
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--no-append", action="store_true", help="print only, do not append to BENCHMARKS.md")
    args = parser.parse_args()
    steps = 12 if args.quick else args.steps
    shape = TinyConfig(hidden_size=128, num_layers=2, num_heads=4, num_kv_heads=4, intermediate_size=512, vocab_size=1024) if args.quick else \
        TinyConfig(hidden_size=512, num_layers=8, num_heads=8, num_kv_heads=8, intermediate_size=1792, vocab_size=1024)
    work = Path(tempfile.mkdtemp(prefix="ftlab-bench-"))
    model_dir = build_tiny(work / "model", shape, [f"word{i} {i * 7 % 1000}" for i in range(4000)])
    from transformers import AutoModelForCausalLM

    n_params = AutoModelForCausalLM.from_pretrained(model_dir).num_parameters()
    from transformers import AutoTokenizer

    vocab = len(AutoTokenizer.from_pretrained(model_dir))  # the BPE may stop short of vocab_size
    peak = matmul_peak()
    n_rows = steps * HP["batch_size"]  # exactly one epoch: every config trains on the same examples
    uneven = make_rows(n_rows, True, vocab, seed=0)
    mean_len = int(np.mean([len(r["input_ids"]) for r in uneven])) - 2
    even = make_rows(n_rows, False, vocab, seed=0, mean_len=mean_len)
    held_uneven, held_even = make_rows(16, True, vocab, seed=1), make_rows(16, False, vocab, seed=1, mean_len=mean_len)

    results = []
    for data_name, rows, held in (("length-varied", uneven, held_uneven), ("evenly sized", even, held_even)):
        configs = ["TRL defaults", "ftlab"] + (["ftlab, no length grouping"] if data_name == "length-varied" else [])
        for name in configs:
            r = run_config(name, model_dir, rows, held, steps, work)
            r["data"] = data_name
            r["peak_fraction"] = 6 * n_params * r["tokens_per_s"] / (peak * 1e9)
            print(f"{data_name:14} {name:28} {r['tokens_per_s']:8.1f} tok/s  padding {r['padding']:.0%}  loss {r['held_out_loss']:.4f}  {r['peak_fraction']:.0%} of peak", flush=True)
            results.append(r)
    text = render(results, n_params, peak, steps, args.quick)
    print(text)
    if not args.no_append:
        with open(Path(__file__).resolve().parents[2] / "BENCHMARKS.md", "a") as f:
            f.write(text)
    return 0


def render(results: list[dict], n_params: int, peak: float, steps: int, quick: bool) -> str:
    lines = [
        "", f"## Training throughput: ftlab vs TRL SFTTrainer defaults (bench/train_throughput{' --quick' if quick else ''})", "",
        machine_line(), "",
        f"Model: {n_params / 1e6:.1f}M parameters (Qwen2 architecture, fp32). Batch {HP['batch_size']}, {steps} steps, "
        f"first step excluded. fp32 matmul peak measured in this run: {peak:.0f} GFLOP/s. "
        "Command: `.venv/bin/python bench/train_throughput/run.py`.", "",
        "| data | config | activation ckpt | real tokens/s | padding | vs TRL defaults | held-out loss | 6·N·tokens/s of peak |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        base = next(b for b in results if b["data"] == r["data"] and b["config"] == "TRL defaults")
        lines.append(
            f"| {r['data']} | {r['config']} | {'on' if r['checkpointing'] else 'off'} | {r['tokens_per_s']:.0f} | {r['padding']:.0%} | "
            f"{r['tokens_per_s'] / base['tokens_per_s']:.2f}x | {r['held_out_loss']:.4f} ({r['held_out_loss'] / base['held_out_loss'] - 1:+.1%}) | {r['peak_fraction']:.0%} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
