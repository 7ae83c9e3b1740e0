"""Evaluation throughput: ftlab's label-logit classification vs lm-eval-harness multiple choice
vs generate-then-parse, side by side in one process, on the same checkpoints and examples.

    .venv/bin/pip install -e '.[bench]'                       # lm_eval==0.4.13 (torch stays the CPU build)
    .venv/bin/python bench/eval_throughput/run.py             # ~10 min on 2 cores; appends to BENCHMARKS.md
    .venv/bin/python bench/eval_throughput/run.py --quick     # small model, 64 examples: a smoke run (~1 min)
    .venv/bin/python bench/eval_throughput/run.py --prefix    # shared-prefix reuse: few-shot + zero-shot 152k vocab (~5 min)
    .venv/bin/python bench/eval_throughput/run.py --smollm2-memory   # peak memory of logit scoring, SmolLM2, ~1,000-token prompts (~5 min)
    .venv/bin/python bench/eval_throughput/run.py --smollm2  # the comparisons on the real SmolLM2: zero-shot n=64, 5-shot n=16 (~10 min)

SmolLM2 throughput (`--smollm2`): the real SmolLM2-135M-Instruct (30 layers, vocabulary 49,152, fp32;
`model: {gguf: smollm2}`, converted and cached by ftlab.models.gguf) runs the same comparisons as
the small models: (a) zero-shot hem (`--n`, default 64 here): ftlab logits (with and without reuse)
vs lm-eval multiple choice, then generate-then-parse at the usual budgets; (b) the few-shot case's
prompts (5 worked shots, `--n-fewshot`, default 16 here): ftlab with its default prefix reuse vs
without vs lm-eval, and generation with reuse vs without it, which is plain HF `model.generate` on
the left-padded full prompts. `--repeats` defaults to 2 here, the warm-up to 8 examples per side.

SmolLM2 memory (`--smollm2-memory`): the real SmolLM2-135M-Instruct (30 layers, vocabulary 49,152;
`model: {gguf: smollm2}`) scores one batch of 32, then one of 64, distinct ~1,000-token chat
prompts with ftlab's label-logit classification; the peak RSS above the loaded model is measured
for each (reset between them), beside what the full-vocabulary logits of every position would
take (batch x length x 49,152 x 4 bytes: 6 GiB at batch 32), which must never be built.

Models: (1) the quickstart's best trained checkpoint when runs/quickstart holds one (hidden 128,
2 layers; `ftlab run examples/quickstart.yaml`), else a random-init model of the same shape;
(2) a ~15M-parameter random-init Qwen2 (hidden 512, 4 layers), big enough that matmuls, not
Python, dominate. Task: the built-in "hem" P/N test split (400 examples).

Shared-prefix reuse (ftlab.evaluate.prefix; `--prefix` runs only these two cases): ftlab is timed
with reuse (its default) and without (`reuse_prefix=False`), alternating with lm-eval, and the two
ftlab paths' decisions and scores are compared example by example.
- few-shot (seed 001's shape): 5 hem shots, each a described composition (one line per element)
  and a worked answer ("Mean VEC = (9 + 7 + ...) / 6 = 7.50, at or above 7.0, so the answer is
  P.\nP", ~125 tokens with its turn markers) before a ~115-token question; ~790 tokens per prompt,
  714 of them shared. Model: the ~15M one (hidden 512, 4 layers, 1k vocabulary) with a BPE
  trained on these texts, so the body, not the output layer, is the work being saved;
- zero-shot, the ~15M model with Qwen2.5's 151,936-row vocabulary: only the system turn and
  "Composition: " are shared (43 of ~76 tokens: this BPE never saw the system text, so it
  spells it in many tokens).
Generation on the few-shot case is timed with and without reuse too (greedy, batch 8), its
records compared for equality.

lm-eval scores the SAME token sequences as ftlab: each prompt is rendered with the tokenizer's chat
template into the data file, the task uses `doc_to_text: "{{prompt}}"`, `target_delimiter: ""`
and choices ["P", "N"], without --apply_chat_template; the run asserts that lm-eval's context
tokens equal ftlab's prompt tokens. lm-eval moves the template's trailing "\\n" into the
continuation ("\\n" + "P"), which adds the same log p("\\n") to both choices: decisions and score
margins are unchanged, so per-sample decisions must agree 100% (near-ties are reported).

Timing: one model in memory per side (lm-eval's HFLM loads its own copy of the same folder), the
first pass of each side is a warm-up and excluded, then the sides alternate `--repeats` times
and the median is reported. lm-eval is timed twice: inside HFLM.loglikelihood only (scoring), and
the whole simple_evaluate call (task build + dataset load + scoring + metrics, bootstrap off).
Generation uses ftlab.evaluate.generation.generate (greedy, batch 8) then the first_token parser,
once as the model answers (it may stop at end of turn) and once forced to exactly max_new_tokens
(min_new_tokens), which is the cost at seed 002's 32 and seed 001's 256/512 token budgets.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from machine import machine_line  # noqa: E402

from ftlab.data.encode import prompt_ids  # noqa: E402
from ftlab.data.example import Example  # noqa: E402
from ftlab.data.generate import VEC, generators, mean_vec  # noqa: E402
from ftlab.evaluate import generation  # noqa: E402
from ftlab.evaluate.logits import classify  # noqa: E402
from ftlab.evaluate.parsers import get_parser  # noqa: E402
from ftlab.evaluate.prefix import SharedPrefix  # noqa: E402
from ftlab.evaluate.prepare import with_shots  # noqa: E402
from ftlab.models.tiny import TinyConfig, build_tiny  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
LABELS = ["P", "N"]
QUICKSTART_SHAPE = TinyConfig(hidden_size=128, num_layers=2, num_heads=4, num_kv_heads=2, intermediate_size=512, vocab_size=512)
# 4 layers x (4 x 512^2 attention + 3 x 512 x 1792 MLP) = 15.2M + 0.5M embeddings.
LARGER_SHAPE = TinyConfig(hidden_size=512, num_layers=4, num_heads=8, num_kv_heads=8, intermediate_size=1792, vocab_size=1024)


def quickstart_checkpoint() -> Path | None:
    """The best checkpoint (by valid accuracy) of the quickstart's trained runs, if it was run here."""
    summary = ROOT / "runs/quickstart/report/summary.json"
    if not summary.exists():
        return None
    best = None
    for run in json.loads(summary.read_text()):
        if run.get("status") != "done" or not run["run"].startswith("full"):
            continue
        acc = run["at_best"]["valid"]["accuracy"]
        if best is None or acc > best[0]:
            best = (acc, run["run"], run["best_checkpoint"])
    if best is None:
        return None
    listing = ROOT / "runs/quickstart/runs" / best[1] / "train/checkpoints.json"
    path = next((c["path"] for c in json.loads(listing.read_text()) if c["name"] == best[2]), None)
    return Path(path) if path and Path(path, "model.safetensors").exists() else None


FEWSHOT_NAME = "larger, random init, few-shot (5 shots)"
SMOLLM2_NAME = "SmolLM2-135M-Instruct, zero-shot"
SMOLLM2_FEWSHOT_NAME = "SmolLM2-135M-Instruct, few-shot (5 shots)"
COMPARE_GENERATION = {FEWSHOT_NAME, SMOLLM2_FEWSHOT_NAME}  # cases timed with vs without generation reuse
VOCAB_NAME = "larger + Qwen2.5-size vocabulary (151,936), random init"


def described(example: Example, worked: bool) -> Example:
    """A hem example with one line per element and, for a shot, a worked answer ending in the label:
    the few-shot case's text (seed 001's shots carry their reasoning as these do)."""
    elements = example.meta["composition"].split()
    lines = [f"{x}: {VEC[x]} valence electrons" for x in elements]
    question = example.prompt[1]["content"].split("\n", 1)[1]
    content = f"Composition: {example.meta['composition']} (equimolar, {len(elements)} elements)\n" + "\n".join(lines) + "\n" + question
    completion = example.completion
    if worked:
        vec = mean_vec(tuple(elements))
        side = "at or above" if vec >= 7 else "below"
        completion = (f"Mean VEC = ({' + '.join(str(VEC[x]) for x in elements)}) / {len(elements)} = {float(vec):.2f}, "
                      f"{side} 7.0, so the answer is {example.label}.\n{example.label}")
    return Example([example.prompt[0], {"role": "user", "content": content}], completion, example.label, example.meta)


def fewshot_examples(n: int) -> list[Example]:
    """n test questions, each after the same 5 train shots (drawn from train: no test answer is shown)."""
    shots = [described(e, True) for e in generators.get("hem")(n=6, split="train", seed=5)[:5]]
    return [with_shots(described(e, False), shots) for e in generators.get("hem")(n=n, split="test", seed=0)]


def smollm2_folder() -> Path:
    """The real SmolLM2-135M-Instruct as an HF folder (converted from its GGUF once, then cached)."""
    from ftlab.models import gguf

    path = gguf.resolve("smollm2", Path.cwd())
    return gguf.convert(path, gguf.digest(path))


def models(work: Path, args) -> list[tuple[str, Path, bool, list[Example]]]:
    """(name, folder, trained, examples) for each case to benchmark."""
    zero_shot = generators.get("hem")(n=args.n, split="test", seed=0)
    if args.smollm2:  # the same zero-shot and few-shot examples, on the real model and its tokenizer
        folder = smollm2_folder()
        return [(SMOLLM2_NAME, folder, True, zero_shot), (SMOLLM2_FEWSHOT_NAME, folder, True, fewshot_examples(args.n_fewshot))]
    pool = generators.get("hem")(n=2000, split="train", seed=0)
    texts = [e.prompt[1]["content"] for e in pool]
    out = []
    if not args.prefix:
        trained = quickstart_checkpoint()
        if trained is not None:
            out.append((f"quickstart trained ({trained.parent.parent.parent.name}/{trained.name})", trained, True, zero_shot))
        else:
            out.append(("quickstart shape, random init", build_tiny(work / "small", QUICKSTART_SHAPE, texts), False, zero_shot))
    if not args.quick:
        # The few-shot model's BPE also learns the described texts, as a real tokenizer covers its prompts' words.
        fewshot_texts = texts + [described(e, False).prompt[1]["content"] for e in pool[:1000]] + [described(e, True).completion for e in pool[:1000]]
        out.append((FEWSHOT_NAME, build_tiny(work / "fewshot", LARGER_SHAPE, fewshot_texts), False, fewshot_examples(args.n_fewshot)))
        larger = build_tiny(work / "larger", LARGER_SHAPE, texts)
        if not args.prefix:
            out.append(("larger, random init", larger, False, zero_shot))
        vocab_examples = zero_shot[: args.n_vocab] if args.n_vocab else zero_shot
        out.append((VOCAB_NAME, with_vocab(larger, work / "larger_vocab", 151_936), False, vocab_examples))
    return out


def with_vocab(folder: Path, out: Path, rows: int) -> Path:
    """The same model with its (tied) embedding grown to `rows` entries: real chat models' output
    layer is this wide (Qwen2.5: 151,936), and scoring cost at the answer position depends on it.
    The tokenizer is unchanged, so inputs and decisions stay comparable."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    model.resize_token_embeddings(rows, mean_resizing=False)
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(folder).save_pretrained(out)
    return out


def write_task(work: Path, name: str, tokenizer, examples) -> tuple[Path, int]:
    """An lm-eval task over prompts rendered exactly as ftlab encodes them; returns (task dir, token mismatches)."""
    rows, mismatches = [], 0
    for e in examples:
        text = tokenizer.apply_chat_template(e.prompt, add_generation_prompt=True, tokenize=False)
        # lm-eval encodes the context with its trailing "\n" moved into the continuation.
        if tokenizer(text.rstrip(), add_special_tokens=False)["input_ids"] != prompt_ids(tokenizer, e.prompt)[:-1]:
            mismatches += 1
        rows.append({"prompt": text, "label": LABELS.index(e.label)})
    task_dir = work / f"task_{name}"
    task_dir.mkdir()
    data = task_dir / "test.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    (task_dir / f"{name}.yaml").write_text(
        f"task: {name}\n"
        "dataset_path: json\n"
        f"dataset_kwargs:\n  data_files:\n    test: {data}\n"
        "test_split: test\n"
        "output_type: multiple_choice\n"
        'doc_to_text: "{{prompt}}"\n'
        "doc_to_target: label\n"
        'doc_to_choice: ["P", "N"]\n'
        'target_delimiter: ""\n'
        "metric_list:\n  - metric: acc\n"
    )
    return task_dir, mismatches


class TimedLoglikelihood:
    """Wraps HFLM.loglikelihood to time lm-eval's scoring alone (request building and metrics excluded)."""

    def __init__(self, lm):
        self.inner, self.seconds = lm.loglikelihood, 0.0
        lm.loglikelihood = self

    def __call__(self, *args, **kwargs):
        start = time.perf_counter()
        try:
            return self.inner(*args, **kwargs)
        finally:
            self.seconds += time.perf_counter() - start


def run_lm_eval(lm, timer: TimedLoglikelihood, task_manager, task: str, batch_size: int, limit: int | None = None) -> dict:
    import lm_eval

    timer.seconds = 0.0
    start = time.perf_counter()
    out = lm_eval.simple_evaluate(
        model=lm, tasks=[task], task_manager=task_manager, batch_size=batch_size, device="cpu",
        log_samples=True, bootstrap_iters=0, verbosity="ERROR", limit=limit,
    )
    total = time.perf_counter() - start
    lls = {}
    for s in out["samples"][task]:
        lls[int(s["doc_id"])] = [float(r[0]) for r in s["filtered_resps"]]
    return {"total_s": total, "scoring_s": timer.seconds, "lls": lls}


def run_ftlab(model, tokenizer, examples, batch_size: int, reuse: bool = True) -> dict:
    start = time.perf_counter()
    records = classify(model, tokenizer, examples, LABELS, batch_size, reuse_prefix=reuse)
    return {"total_s": time.perf_counter() - start, "records": records}


@contextlib.contextmanager
def forced_length():
    """Make ftlab's generate() run every row to max_new_tokens (end of turn suppressed)."""
    original = generation._generation_config

    def config(max_new_tokens, *args):
        c = original(max_new_tokens, *args)
        c.min_new_tokens = max_new_tokens
        return c

    generation._generation_config = config
    try:
        yield
    finally:
        generation._generation_config = original


def run_generation(model, tokenizer, examples, max_new_tokens: int, forced: bool, reuse: bool = True) -> dict:
    parse = get_parser("first_token")
    with forced_length() if forced else contextlib.nullcontext():
        start = time.perf_counter()
        out = generation.generate(model, tokenizer, [e.prompt for e in examples], max_new_tokens=max_new_tokens, batch_size=8, reuse_prefix=reuse)
        parsed = [parse(r["text"]) for r in out]
        seconds = time.perf_counter() - start
    return {
        "max_new_tokens": max_new_tokens, "forced": forced, "n": len(examples), "s_per_example": seconds / len(examples),
        "mean_tokens": statistics.mean(r["n_tokens"] for r in out), "parsed": parsed, "records": out, "reuse": reuse,
    }


def bench_model(name: str, folder: Path, trained: bool, examples: list[Example], args, work: Path) -> dict:
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    task = f"ftlab_hem_{len(list(work.glob('task_*')))}"  # one task per model: its prompts use that tokenizer
    task_dir, mismatches = write_task(work, task, tokenizer, examples)
    lm = HFLM(pretrained=str(folder), dtype="float32", device="cpu", batch_size=args.batch_size)
    timer = TimedLoglikelihood(lm)
    task_manager = TaskManager(include_path=str(task_dir))

    # Warm-up: the first forward passes in a process are 2-3x slower (allocation); one batch per
    # side, excluded (a full pass of the few-shot case would cost minutes per side on 2 cores).
    warm = examples[: args.warm or args.batch_size]
    run_ftlab(model, tokenizer, warm, args.batch_size)
    run_ftlab(model, tokenizer, warm, args.batch_size, reuse=False)
    run_lm_eval(lm, timer, task_manager, task, args.batch_size, limit=len(warm))
    ft_runs, plain_runs, lm_runs = [], [], []
    for _ in range(args.repeats):  # alternate, so shared-CPU load drifts hit every side alike
        ft_runs.append(run_ftlab(model, tokenizer, examples, args.batch_size))
        plain_runs.append(run_ftlab(model, tokenizer, examples, args.batch_size, reuse=False))
        lm_runs.append(run_lm_eval(lm, timer, task_manager, task, args.batch_size))
    records, lls = ft_runs[-1]["records"], lm_runs[-1]["lls"]
    plain = plain_runs[-1]["records"]
    shared = SharedPrefix.build(model, [prompt_ids(tokenizer, e.prompt) for e in examples])
    agree, margins, margin_diff = 0, [], 0.0
    for i, r in enumerate(records):
        ll = lls[i]
        lm_pred = LABELS[max(range(len(LABELS)), key=lambda j: (ll[j], -j))]  # argmax, ties -> first (as np.argmax)
        agree += lm_pred == r["pred"]
        ft_margin = r["logits"]["P"] - r["logits"]["N"]
        margins.append(abs(ft_margin))
        margin_diff = max(margin_diff, abs(ft_margin - (ll[0] - ll[1])))
    n = len(examples)
    result = {
        "model": name, "trained": trained, "n_params": model.num_parameters(), "n": n, "token_mismatches": mismatches,
        "ftlab_s": statistics.median(r["total_s"] for r in ft_runs),
        "plain_s": statistics.median(r["total_s"] for r in plain_runs),
        "shared_tokens": shared.length if shared is not None else 0,
        "reuse_equal": sum(a["pred"] == b["pred"] for a, b in zip(records, plain)) / n,
        "reuse_diff": max(abs(a["logits"][k] - b["logits"][k]) for a, b in zip(records, plain) for k in LABELS),
        "lm_scoring_s": statistics.median(r["scoring_s"] for r in lm_runs),
        "lm_total_s": statistics.median(r["total_s"] for r in lm_runs),
        "agreement": agree / n, "min_margin": min(margins), "max_margin_diff": margin_diff,
        "accuracy": sum(r["pred"] == r["label"] for r in records) / n,
        "prompt_tokens": statistics.mean(len(prompt_ids(tokenizer, e.prompt)) for e in examples),
    }
    print(
        f"{name}: ftlab {n / result['ftlab_s']:.1f} ex/s (no reuse {n / result['plain_s']:.1f}), lm-eval scoring "
        f"{n / result['lm_scoring_s']:.1f} ex/s, end-to-end {n / result['lm_total_s']:.1f} ex/s; agreement {result['agreement']:.1%}, "
        f"reuse = plain {result['reuse_equal']:.1%} (max diff {result['reuse_diff']:.1e})", flush=True,
    )

    # Generation: warm-up on 8 short rows, then each budget on its own small sample of the same examples.
    run_generation(model, tokenizer, examples[:8], 4, forced=False)
    run_generation(model, tokenizer, examples[:8], 4, forced=True)
    result["generation_reuse"] = compare_generation(model, tokenizer, examples, args) if name in COMPARE_GENERATION else None
    gens = []
    for max_new, count, forced in ([] if args.prefix or name == SMOLLM2_FEWSHOT_NAME else args.gen_plan):
        g = run_generation(model, tokenizer, examples[:count], max_new, forced)
        if not forced:
            g["agreement"] = sum(p == r["pred"] for p, r in zip(g["parsed"], records)) / len(g["parsed"])  # count, or n if smaller
        del g["parsed"], g["records"]
        print(f"  generate {max_new} {'forced' if forced else 'natural'}: {g['s_per_example']:.3f} s/example, {g['mean_tokens']:.0f} tokens", flush=True)
        gens.append(g)
    result["generation"] = gens
    return result


def compare_generation(model, tokenizer, examples, args) -> dict:
    """Generation with and without prefix reuse, alternating; records must be equal."""
    max_new, count = args.gen_compare
    count = min(count, len(examples))
    run_generation(model, tokenizer, examples[:8], 4, forced=False, reuse=False)
    reuse, plain = [], []
    for _ in range(args.repeats):
        reuse.append(run_generation(model, tokenizer, examples[:count], max_new, forced=False))
        plain.append(run_generation(model, tokenizer, examples[:count], max_new, forced=False, reuse=False))
    out = {
        "max_new_tokens": max_new, "n": count, "mean_tokens": reuse[-1]["mean_tokens"],
        "reuse_s": statistics.median(g["s_per_example"] for g in reuse), "plain_s": statistics.median(g["s_per_example"] for g in plain),
        "equal": sum(a == b for a, b in zip(reuse[-1]["records"], plain[-1]["records"])) / count,
    }
    print(f"  generate {max_new} with reuse {out['reuse_s']:.3f} s/example, without {out['plain_s']:.3f}; records equal {out['equal']:.0%}", flush=True)
    return out


def render(results: list[dict], args) -> str:
    flag = " --quick" if args.quick else " --prefix" if args.prefix else " --smollm2" if args.smollm2 else ""
    title = "Evaluation throughput: ftlab logits (shared-prefix reuse) vs lm-eval multiple choice vs generation"
    if args.smollm2:
        title += " on the real model: SmolLM2-135M-Instruct"
    lines = [
        "", f"## {title} (bench/eval_throughput{flag})", "",
        machine_line().rstrip(".") + f"; lm_eval {_version('lm_eval')}; {torch.get_num_threads()} torch threads.", "",
        f"Task: hem test split (P/N), batch {args.batch_size} on every side, fp32 CPU. Median of {args.repeats} alternating "
        "repeats (ftlab with reuse, ftlab without, lm-eval), a warm-up batch of each side excluded. The CPU was shared "
        f"with other work during the run (load average {args.load_start:.1f} at the start, {os.getloadavg()[0]:.1f} at the end, "
        f"on {os.cpu_count()} cores): absolute rates are indicative only; ratios were measured side by side. "
        f"Command: `.venv/bin/python bench/eval_throughput/run.py{flag}`.", "",
        "lm-eval 'scoring' = time inside HFLM.loglikelihood; 'end-to-end' = the whole simple_evaluate call with the "
        "model already loaded (task + dataset build, scoring, metrics; bootstrap off; it also runs `pip list` "
        "for its environment record, about 1 s per call here). Agreement: share of examples "
        "where lm-eval's argmax log-likelihood choice equals ftlab's prediction (with reuse). 'reuse = plain': share of "
        "examples where ftlab's decision with prefix reuse equals its decision without; 'max score diff': the largest "
        "|label score with reuse - without| over all examples and labels.", "",
        *([f"SmolLM2-135M-Instruct (30 layers, vocabulary 49,152, fp32), zero-shot hem ({args.n} examples) and the few-shot "
           f"case's 5-shot prompts ({args.n_fewshot} examples); warm-up {args.warm} examples per side. In the generation "
           "reuse table, 'without' is plain HF `model.generate` on the left-padded full prompts.", ""] if args.smollm2 else []),
        "| model | params | examples | prompt tokens | shared prefix tokens | accuracy | ftlab ex/s | ftlab, no reuse ex/s | lm-eval scoring ex/s | lm-eval end-to-end ex/s | speed-up (scoring) | no reuse vs lm-eval scoring | reuse vs no reuse | speed-up (end-to-end) | agreement | reuse = plain | max score diff | min |margin| | max margin diff vs lm-eval | token mismatches |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        n = r["n"]
        lines.append(
            f"| {r['model']} | {r['n_params'] / 1e6:.1f}M | {n} | {r['prompt_tokens']:.0f} | {r['shared_tokens']} | {r['accuracy']:.3f} | "
            f"{n / r['ftlab_s']:.1f} | {n / r['plain_s']:.1f} | {n / r['lm_scoring_s']:.1f} | {n / r['lm_total_s']:.1f} | "
            f"**{r['lm_scoring_s'] / r['ftlab_s']:.2f}x** | {r['lm_scoring_s'] / r['plain_s']:.2f}x | {r['plain_s'] / r['ftlab_s']:.2f}x | "
            f"{r['lm_total_s'] / r['ftlab_s']:.2f}x | {r['agreement']:.1%} | {r['reuse_equal']:.1%} | {r['reuse_diff']:.1e} | "
            f"{r['min_margin']:.3g} | {r['max_margin_diff']:.2g} | {r['token_mismatches']} |"
        )
    compared = [r for r in results if r.get("generation_reuse")]
    if compared:
        lines += [
            "", "Generation with and without prefix reuse (ftlab generate, greedy, batch 8, the model stops at end of turn "
            "or max_new_tokens; median of alternating repeats). 'records equal': text, finish reason and token counts "
            "identical with and without reuse.", "",
            "| model | examples | max_new_tokens | mean tokens | s/example with reuse | s/example without | speed-up | records equal |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for r in compared:
            g = r["generation_reuse"]
            lines.append(
                f"| {r['model']} | {g['n']} | {g['max_new_tokens']} | {g['mean_tokens']:.0f} | {g['reuse_s']:.3f} | {g['plain_s']:.3f} | "
                f"{g['plain_s'] / g['reuse_s']:.2f}x | {g['equal']:.0%} |"
            )
    if not any(r["generation"] for r in results):
        return "\n".join(lines) + "\n"
    lines += [
        "", "Generate-then-parse (ftlab generate, greedy, batch 8, first_token parser). 'natural' = the model may stop at "
        "end of turn; 'forced' = exactly max_new_tokens per example (the cost at that budget). Per-example seconds; "
        "'x logits' = per-example cost relative to ftlab's logit classification of the same model.", "",
        "| model | max_new_tokens | mode | examples | mean tokens | s/example | x logits | parsed = logit decision |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        per_logit = r["ftlab_s"] / r["n"]
        for g in r["generation"]:
            agree = f"{g['agreement']:.0%}" if "agreement" in g else "-"
            lines.append(
                f"| {r['model']} | {g['max_new_tokens']} | {'forced' if g['forced'] else 'natural'} | {g['n']} | {g['mean_tokens']:.0f} | "
                f"{g['s_per_example']:.3f} | {g['s_per_example'] / per_logit:.1f}x | {agree} |"
            )
    notes = [r for r in results if not r["trained"]]
    if notes:
        lines += ["", "Random-init models: their decisions are not meaningful as answers (accuracy near chance), "
                  "but agreement still tests that both tools score identical tokens and pick the same label."]
    return "\n".join(lines) + "\n"


def _version(name: str) -> str:
    from importlib.metadata import version

    return version(name)


def smollm2_memory(args) -> str:
    """Peak memory of label-logit scoring on the real SmolLM2 at batch 32 and 64, ~1,000-token prompts."""
    import random

    from ftlab.models.load import load_model, load_tokenizer
    from ftlab.train.memory import PeakMeter, bounded_heap, resident_bytes
    gib = 2**30
    folder = smollm2_folder()
    tok = load_tokenizer(str(folder))
    model = load_model(str(folder), dtype=torch.float32)
    model.eval()
    rng = random.Random(0)
    words = [f"w{i}" for i in range(3000)]  # ~4.6 tokens per word with the chat turn: 210 words ~ 1,000 tokens
    rows = ["| batch | prompt tokens (mean) | peak RSS above the loaded model | full-vocabulary logits would take | seconds |",
            "|---|---|---|---|---|"]
    for batch in (32, 64):
        examples = [Example([{"role": "user", "content": " ".join(rng.choice(words) for _ in range(210)) + "\nAnswer P or N."}], "P", "P", {})
                    for _ in range(batch)]
        lengths = [len(prompt_ids(tok, e.prompt)) for e in examples]
        loaded = resident_bytes(model, "cpu")
        meter = PeakMeter("cpu")
        with bounded_heap("cpu"):  # large freed blocks leave the RSS: it follows live tensors (train/memory.py)
            meter.reset()
            start = time.perf_counter()
            classify(model, tok, examples, LABELS, batch)
            seconds = time.perf_counter() - start
        grown = meter.peak() - loaded
        full = batch * max(lengths) * model.config.vocab_size * 4
        rows.append(f"| {batch} | {statistics.mean(lengths):.0f} | {grown / gib:.2f} GiB | {full / gib:.1f} GiB | {seconds:.0f} |")
        print(rows[-1], flush=True)
    return "\n".join(["", "## Evaluation memory on the real model: SmolLM2-135M-Instruct logit scoring (bench/eval_throughput --smollm2-memory)", "",
                      machine_line(), "", f"Load average {args.load_start:.1f} at the start. fp32, one process, batches scored one after "
                      "the other with the peak RSS reset between them.", "", *rows, ""])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small model only, 64 examples, short generations (smoke run)")
    parser.add_argument("--n", type=int, default=None, help="classification examples (hem test holds ~490 balanced; default 400, --smollm2 64)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=None, help="alternating timed repeats (default 3; --prefix at most 2, --smollm2 2)")
    parser.add_argument("--prefix", action="store_true", help="shared-prefix reuse cases only: few-shot and zero-shot 152k vocabulary (~5 min)")
    parser.add_argument("--n-fewshot", type=int, default=None, help="few-shot examples (~790 tokens each: ~1 s per example for lm-eval on 2 cores; default 64, --smollm2 16)")
    parser.add_argument("--n-vocab", type=int, default=None, help="examples for the 152k-vocabulary case (default: --n)")
    parser.add_argument("--no-append", action="store_true", help="print only, do not append to BENCHMARKS.md")
    parser.add_argument("--smollm2-memory", action="store_true", help="only the peak memory of scoring on SmolLM2 (~5 min)")
    parser.add_argument("--smollm2", action="store_true", help="the comparisons on the real SmolLM2-135M-Instruct: zero-shot and 5-shot (~10 min)")
    args = parser.parse_args()
    if args.smollm2 and (args.quick or args.prefix):
        parser.error("--smollm2 runs on its own: not with --quick or --prefix")
    args.n = args.n or (64 if args.smollm2 else 400)
    args.n_fewshot = args.n_fewshot or (16 if args.smollm2 else 64)
    args.repeats = args.repeats or (2 if args.smollm2 else 3)
    args.warm = 8 if args.smollm2 else None  # a full-batch warm-up of 5-shot prompts would cost minutes per side
    args.load_start = os.getloadavg()[0]
    if args.smollm2_memory:
        text = smollm2_memory(args)
        print(text)
        if not args.no_append:
            with open(ROOT / "BENCHMARKS.md", "a") as f:
                f.write(text)
        return 0
    args.gen_compare = (32, 16)  # (max_new_tokens, examples): generation with vs without reuse, few-shot case
    if args.prefix:
        args.repeats = min(args.repeats, 2)
        args.n_vocab = args.n_vocab or 96  # lm-eval: ~8 ex/s at 152k vocabulary on an idle machine, ~1 at load 8
        args.gen_plan = []
    if args.quick:
        args.n, args.repeats = 64, 1
        # (max_new_tokens, examples, forced)
        args.gen_plan = [(32, 8, False), (32, 8, True), (256, 8, True)]
    else:
        # Seed 002 boxes a short answer in 32 tokens; seed 001's GSM8K budgets are 256 and 512.
        args.gen_plan = [(32, 32, False), (32, 32, True), (256, 16, True), (512, 8, True)]
    work = Path(tempfile.mkdtemp(prefix="ftlab-evalbench-"))
    results = [bench_model(name, folder, trained, examples, args, work) for name, folder, trained, examples in models(work, args)]
    text = render(results, args)
    print(text)
    if not args.no_append:
        with open(ROOT / "BENCHMARKS.md", "a") as f:
            f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
