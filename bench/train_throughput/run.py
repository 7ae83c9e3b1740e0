"""Training throughput: ftlab's trainer vs plain TRL SFTTrainer defaults, side by side in one run.

    .venv/bin/python bench/train_throughput/run.py            # ~25 min on 2 cores; appends to BENCHMARKS.md
    .venv/bin/python bench/train_throughput/run.py --quick    # smaller model, fewer steps: a smoke run

Same ~32M-parameter model (random init, saved and reloaded), same pre-tokenized data, same batch
size and learning rate, one epoch each (every configuration trains on exactly the same examples).
Two data shapes: length-varied prompts (lognormal, 20-1,000 tokens, mean ~210: seed 002's papers /
seed 001's few-shot prompts) and evenly sized ones of the same mean.

Measured per configuration:
- real (non-pad) tokens per second over steps 3..end (the first two steps are warm-up: first-call
  allocation, and compilation where it is on; their seconds are reported apart);
- the share of computed positions that were padding;
- 6 x N x real tokens/s as a fraction of this machine's fp32 matmul peak. These machines are
  shared and their speed drifts by +-20% within minutes, so the peak is probed after every step
  (four 1024^3 fp32 matmuls, ~40 ms, outside the step's timing) and each step is compared with the
  probe beside it: fraction = sum(6 N tokens) / sum(step seconds x probed peak);
- held-out loss after those 40 steps (64 held-out examples). It is not converged there and depends
  on the batch order by several percent (TRL's own data-order seeds spread 0.452-0.489 in one
  run), and length grouping changes the order. So equal learning is checked apart, to
  convergence: a 0.6M-parameter model of the same architecture, one epoch of 1,600 length-varied
  examples (400 steps) on the same task, TRL defaults vs ftlab at three data-order seeds each,
  held-out loss on 256 examples against the task's best possible loss.
TRL's defaults are kept except bf16, which is off for both: TRL turns it on by default and bf16
matmuls run ~100x slower on CPUs without bf16 matrix units.
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from machine import machine_line  # noqa: E402

from ftlab.models.tiny import TinyConfig, build_tiny
from ftlab.spec.schema import Train
from ftlab.train.trainer import TrainerSetup, build_trainer

# ftlab's own defaults (the spec's Train model), with the benchmark's shared settings on top.
HP = Train().model_dump() | {
    "batch_size": 4, "learning_rate": 3e-4, "epochs": 1, "max_length": 1024, "logging_steps": 1000, "save_steps": None,
}
LOSS_SEEDS = (0, 1, 2)
# The convergence check: a small model trained to its plateau, where the batch order stops mattering.
LOSS_SHAPE = TinyConfig(hidden_size=128, num_layers=2, num_heads=4, num_kv_heads=4, intermediate_size=512, vocab_size=1024)
LOSS_EXAMPLES, LOSS_LR = 1600, 1e-3
FLIP = 0.2  # label noise: the label token's loss cannot go below H(0.2) = 0.500 nats
PROBE = torch.randn(1024, 1024), torch.randn(1024, 1024)


def probe_peak() -> float:
    """fp32 GFLOP/s of four 1024^3 matmuls right now (the machine's speed drifts; probe often)."""
    a, b = PROBE
    start = time.perf_counter()
    for _ in range(4):
        a @ b
    return 2 * 1024**3 * 4 / (time.perf_counter() - start) / 1e9


def make_rows(n: int, uneven: bool, vocab: int, seed: int, mean_len: int | None = None) -> list[dict]:
    """Random-token prompts ending in one of 8 marker tokens; the answer is a label token set by the
    marker's parity, flipped with probability FLIP, then <|im_end|>. The task is learnable within the
    benchmark's steps and its best possible loss is known (the flip entropy on the label token), so
    trained configurations converge to comparable losses instead of to order-dependent overfits."""
    rng = random.Random(seed)
    np_rng = np.random.default_rng(seed)
    if uneven:
        lengths = np.clip(np_rng.lognormal(mean=math.log(150), sigma=0.8, size=n), 20, 1000).astype(int)
    else:
        lengths = np.full(n, mean_len)
    rows = []
    for length in lengths:
        marker = rng.randrange(8)
        prompt = [rng.randrange(13, vocab) for _ in range(int(length) - 1)] + [5 + marker]
        label = 3 + (marker % 2 ^ (rng.random() < FLIP))
        rows.append({"input_ids": prompt + [label, 2], "completion_mask": [0] * len(prompt) + [1, 1]})
    return rows


class TokenCounter:
    """Wraps the collator: real and computed positions of every batch, in draw order."""

    def __init__(self, collator):
        self.collator, self.real, self.computed = collator, [], []

    def __call__(self, examples):
        batch = self.collator(examples)
        self.real.append(int(batch["attention_mask"].sum()))
        self.computed.append(int(batch["input_ids"].numel()))
        return batch


def step_timer(n_params: int, counter: TokenCounter, probe: bool):
    """A TrainerCallback timing each step and probing the matmul peak after it (outside the timing)."""
    from transformers import TrainerCallback

    class StepTimer(TrainerCallback):
        def __init__(self):
            self.seconds, self.peaks, self.start = [], [], None

        def on_step_begin(self, args, state, control, **kwargs):
            self.start = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            self.seconds.append(time.perf_counter() - self.start)
            self.peaks.append(probe_peak() * 1e9 if probe else float("nan"))

        def summary(self, warmup: int = 2) -> dict:
            steps = range(warmup, len(self.seconds))
            real = sum(counter.real[i] for i in steps)
            seconds = sum(self.seconds[i] for i in steps)
            return {
                "tokens_per_s": real / seconds,
                "padding": 1 - real / sum(counter.computed[i] for i in steps),
                "peak_fraction": 6 * n_params * real / sum(self.seconds[i] * self.peaks[i] for i in steps),
                "peak": statistics.median(self.peaks[i] for i in steps) / 1e9,
                "warmup_s": sum(self.seconds[:warmup]),
            }

    return StepTimer()


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


def train(config: str, model_dir: Path, rows, steps: int, work: Path, seed: int = 0, probe: bool = True, lr: float | None = None):
    """Train one configuration for one epoch; returns (trainer, timing summary)."""
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer, set_seed
    from trl import SFTConfig, SFTTrainer

    set_seed(seed)
    lr = lr or HP["learning_rate"]
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    out = work / f"{config.replace(' ', '_').replace(',', '')}_{seed}"
    if config.startswith("ftlab"):
        hp = dict(HP, learning_rate=lr, max_steps=steps, group_by_length="no length grouping" not in config, compile="compile" in config)
        trainer = build_trainer(model, tok, rows, hp, TrainerSetup(out, seed=seed))
        trainer.args.save_strategy = "no"
    else:
        args = SFTConfig(
            output_dir=str(out), per_device_train_batch_size=HP["batch_size"], learning_rate=lr,
            max_steps=steps, bf16=False, use_cpu=True, report_to="none", save_strategy="no", seed=seed,
            max_length=HP["max_length"],
            # TRL's default for prompt-completion data; pre-tokenized rows must say it explicitly.
            completion_only_loss=True,
        )
        trainer = SFTTrainer(model=model, args=args, train_dataset=Dataset.from_list(rows), processing_class=tok)
    trainer.args.disable_tqdm = True
    counter = TokenCounter(trainer.data_collator)
    trainer.data_collator = counter
    timer = step_timer(model.num_parameters(), counter, probe)
    trainer.add_callback(timer)
    trainer.train()
    return trainer, timer.summary() | {"checkpointing": bool(trainer.args.activation_checkpointing)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="0.6M-parameter model, 12 steps, one loss seed (smoke run)")
    parser.add_argument("--steps", type=int, default=40, help="steps per configuration = one epoch of steps x 4 examples")
    parser.add_argument("--no-append", action="store_true", help="print only, do not append to BENCHMARKS.md")
    args = parser.parse_args()
    steps = 12 if args.quick else args.steps
    loss_seeds = LOSS_SEEDS[:1] if args.quick else LOSS_SEEDS
    shape = TinyConfig(hidden_size=128, num_layers=2, num_heads=4, num_kv_heads=4, intermediate_size=512, vocab_size=1024) if args.quick else \
        TinyConfig(hidden_size=512, num_layers=8, num_heads=8, num_kv_heads=8, intermediate_size=1792, vocab_size=1024)
    work = Path(tempfile.mkdtemp(prefix="ftlab-bench-"))
    model_dir = build_tiny(work / "model", shape, [f"word{i} {i * 7 % 1000}" for i in range(4000)])
    from transformers import AutoModelForCausalLM, AutoTokenizer

    n_params = AutoModelForCausalLM.from_pretrained(model_dir).num_parameters()
    vocab = len(AutoTokenizer.from_pretrained(model_dir))  # the BPE may stop short of vocab_size
    n_rows = steps * HP["batch_size"]  # exactly one epoch: every config trains on the same examples
    uneven = make_rows(n_rows, True, vocab, seed=0)
    mean_len = int(np.mean([len(r["input_ids"]) for r in uneven])) - 2
    even = make_rows(n_rows, False, vocab, seed=0, mean_len=mean_len)
    held_uneven, held_even = make_rows(64, True, vocab, seed=1), make_rows(64, False, vocab, seed=1, mean_len=mean_len)

    results = []
    for data_name, rows, held in (("length-varied", uneven, held_uneven), ("evenly sized", even, held_even)):
        configs = ["TRL defaults", "ftlab", "ftlab + compile"] + (["ftlab, no length grouping"] if data_name == "length-varied" else [])
        for name in configs:
            trainer, r = train(name, model_dir, rows, steps, work)
            r |= {"data": data_name, "config": name, "held_out_loss": held_out_loss(trainer.model, held)}
            print(f"{data_name:14} {name:26} {r['tokens_per_s']:7.1f} tok/s  padding {r['padding']:.0%}  loss {r['held_out_loss']:.4f}  "
                  f"{r['peak_fraction']:.0%} of peak ({r['peak']:.0f} GFLOP/s)  warm-up {r['warmup_s']:.0f} s", flush=True)
            results.append(r)
    losses = converged_losses(work, loss_seeds, LOSS_EXAMPLES // (4 if args.quick else 1))
    text = render(results, losses, n_params, steps, args.quick)
    print(text)
    if not args.no_append:
        with open(Path(__file__).resolve().parents[2] / "BENCHMARKS.md", "a") as f:
            f.write(text)
    return 0


def converged_losses(work: Path, seeds, n_examples: int) -> list[dict]:
    """TRL defaults vs ftlab trained to convergence on a small model: held-out loss per data-order seed."""
    model_dir = build_tiny(work / "loss_model", LOSS_SHAPE, [f"word{i} {i * 7 % 1000}" for i in range(4000)])
    from transformers import AutoTokenizer

    vocab = len(AutoTokenizer.from_pretrained(model_dir))
    rows, held = make_rows(n_examples, True, vocab, seed=0), make_rows(256, True, vocab, seed=1)
    losses = []
    for seed in seeds:
        for name in ("TRL defaults", "ftlab"):
            trainer, timing = train(name, model_dir, rows, n_examples // HP["batch_size"], work, seed, probe=False, lr=LOSS_LR)
            losses.append({"config": name, "seed": seed, "held_out_loss": held_out_loss(trainer.model, held), "tokens_per_s": timing["tokens_per_s"], "examples": n_examples})
            print(f"converged loss, seed {seed}, {name:14} {losses[-1]['held_out_loss']:.4f}", flush=True)
    return losses


def render(results: list[dict], losses: list[dict], n_params: int, steps: int, quick: bool) -> str:
    peaks = [r["peak"] for r in results]
    lines = [
        "", f"## Training throughput: ftlab vs TRL SFTTrainer defaults (bench/train_throughput{' --quick' if quick else ''})", "",
        machine_line(), "",
        f"Model: {n_params / 1e6:.1f}M parameters (Qwen2 architecture, fp32). Batch {HP['batch_size']}, {steps} steps (one epoch), "
        f"steps 3..{steps} timed. fp32 matmul peak probed after every step: median {min(peaks):.0f}-{max(peaks):.0f} GFLOP/s per "
        "configuration; each step is compared with the probe beside it. 'vs TRL defaults' divides real tokens/s; "
        "'peak-normalised' divides the fractions of peak, which removes the machine's drift between the runs. "
        "Command: `.venv/bin/python bench/train_throughput/run.py`.", "",
        "| data | config | activation ckpt | real tokens/s | padding | vs TRL defaults | vs TRL, peak-normalised | held-out loss (seed 0) | 6·N·tokens/s of peak | warm-up s (steps 1-2) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        base = next(b for b in results if b["data"] == r["data"] and b["config"] == "TRL defaults")
        lines.append(
            f"| {r['data']} | {r['config']} | {'on' if r['checkpointing'] else 'off'} | {r['tokens_per_s']:.0f} | {r['padding']:.1%} | "
            f"{r['tokens_per_s'] / base['tokens_per_s']:.2f}x | {r['peak_fraction'] / base['peak_fraction']:.2f}x | {r['held_out_loss']:.4f} ({r['held_out_loss'] / base['held_out_loss'] - 1:+.1%}) | "
            f"{r['peak_fraction']:.0%} | {r['warmup_s']:.0f} |"
        )
    seeds = sorted({x["seed"] for x in losses})
    best = (-(FLIP * math.log(FLIP) + (1 - FLIP) * math.log(1 - FLIP))) / 2  # label token at its entropy, <|im_end|> at 0
    lines += ["", f"Equal learning, checked to convergence: {LOSS_SHAPE.hidden_size}-wide {LOSS_SHAPE.num_layers}-layer model "
              f"(same architecture), one epoch of {losses[0]['examples']:,} length-varied examples at learning rate {LOSS_LR:g}, "
              f"held-out loss on 256 examples; the task's best possible loss is {best:.3f}.", "",
              "| config | " + " | ".join(f"seed {s}" for s in seeds) + " | mean | vs TRL mean | real tokens/s (mean) |",
              "|---|" + "---|" * (len(seeds) + 3)]
    means = {c: statistics.mean(x["held_out_loss"] for x in losses if x["config"] == c) for c in ("TRL defaults", "ftlab")}
    for c, mean in means.items():
        per = [f"{x['held_out_loss']:.4f}" for x in losses if x["config"] == c]
        speed = statistics.mean(x["tokens_per_s"] for x in losses if x["config"] == c)
        lines.append(f"| {c} | " + " | ".join(per) + f" | {mean:.4f} | {mean / means['TRL defaults'] - 1:+.1%} | {speed:.0f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
