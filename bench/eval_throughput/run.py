"""Evaluation throughput: ftlab's label-logit classification vs lm-eval-harness multiple choice
vs generate-then-parse, side by side in one process, on the same checkpoints and examples.

    .venv/bin/pip install -e '.[bench]'                       # lm_eval==0.4.13 (torch stays the CPU build)
    .venv/bin/python bench/eval_throughput/run.py             # ~10 min on 2 cores; appends to BENCHMARKS.md
    .venv/bin/python bench/eval_throughput/run.py --quick     # small model, 64 examples: a smoke run (~1 min)

Models: (1) the quickstart's best trained checkpoint when runs/quickstart holds one (hidden 128,
2 layers; `ftlab run examples/quickstart.yaml`), else a random-init model of the same shape;
(2) a ~15M-parameter random-init Qwen2 (hidden 512, 4 layers), big enough that matmuls, not
Python, dominate. Task: the built-in "hem" P/N test split (400 examples).

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
from ftlab.data.generate import generators  # noqa: E402
from ftlab.evaluate import generation  # noqa: E402
from ftlab.evaluate.logits import classify  # noqa: E402
from ftlab.evaluate.parsers import get_parser  # noqa: E402
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


def models(work: Path, quick: bool) -> list[tuple[str, Path, bool]]:
    """(name, folder, trained) for each model to benchmark."""
    texts = [e.prompt[1]["content"] for e in generators.get("hem")(n=2000, split="train", seed=0)]
    out = []
    trained = quickstart_checkpoint()
    if trained is not None:
        out.append((f"quickstart trained ({trained.parent.parent.parent.name}/{trained.name})", trained, True))
    else:
        out.append(("quickstart shape, random init", build_tiny(work / "small", QUICKSTART_SHAPE, texts), False))
    if not quick:
        larger = build_tiny(work / "larger", LARGER_SHAPE, texts)
        out.append(("larger, random init", larger, False))
        out.append(("larger + Qwen2.5-size vocabulary (151,936), random init", with_vocab(larger, work / "larger_vocab", 151_936), False))
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


def run_lm_eval(lm, timer: TimedLoglikelihood, task_manager, task: str, batch_size: int) -> dict:
    import lm_eval

    timer.seconds = 0.0
    start = time.perf_counter()
    out = lm_eval.simple_evaluate(
        model=lm, tasks=[task], task_manager=task_manager, batch_size=batch_size, device="cpu",
        log_samples=True, bootstrap_iters=0, verbosity="ERROR",
    )
    total = time.perf_counter() - start
    lls = {}
    for s in out["samples"][task]:
        lls[int(s["doc_id"])] = [float(r[0]) for r in s["filtered_resps"]]
    return {"total_s": total, "scoring_s": timer.seconds, "lls": lls}


def run_ftlab(model, tokenizer, examples, batch_size: int) -> dict:
    start = time.perf_counter()
    records = classify(model, tokenizer, examples, LABELS, batch_size)
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


def run_generation(model, tokenizer, examples, max_new_tokens: int, forced: bool) -> dict:
    parse = get_parser("first_token")
    with forced_length() if forced else contextlib.nullcontext():
        start = time.perf_counter()
        out = generation.generate(model, tokenizer, [e.prompt for e in examples], max_new_tokens=max_new_tokens, batch_size=8)
        parsed = [parse(r["text"]) for r in out]
        seconds = time.perf_counter() - start
    return {
        "max_new_tokens": max_new_tokens, "forced": forced, "n": len(examples), "s_per_example": seconds / len(examples),
        "mean_tokens": statistics.mean(r["n_tokens"] for r in out), "parsed": parsed,
    }


def bench_model(name: str, folder: Path, trained: bool, examples, args, work: Path) -> dict:
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

    # Warm-up: the first forward pass in a process is 2-3x slower; one full pass per side, excluded.
    run_ftlab(model, tokenizer, examples, args.batch_size)
    run_lm_eval(lm, timer, task_manager, task, args.batch_size)
    ft_runs, lm_runs = [], []
    for _ in range(args.repeats):  # alternate, so shared-CPU load drifts hit both sides alike
        ft_runs.append(run_ftlab(model, tokenizer, examples, args.batch_size))
        lm_runs.append(run_lm_eval(lm, timer, task_manager, task, args.batch_size))
    records, lls = ft_runs[-1]["records"], lm_runs[-1]["lls"]
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
        "lm_scoring_s": statistics.median(r["scoring_s"] for r in lm_runs),
        "lm_total_s": statistics.median(r["total_s"] for r in lm_runs),
        "agreement": agree / n, "min_margin": min(margins), "max_margin_diff": margin_diff,
        "accuracy": sum(r["pred"] == r["label"] for r in records) / n,
        "prompt_tokens": statistics.mean(len(prompt_ids(tokenizer, e.prompt)) for e in examples),
    }
    print(
        f"{name}: ftlab {n / result['ftlab_s']:.0f} ex/s, lm-eval scoring {n / result['lm_scoring_s']:.0f} ex/s, "
        f"end-to-end {n / result['lm_total_s']:.0f} ex/s; agreement {result['agreement']:.1%}", flush=True,
    )

    # Generation: warm-up on 8 short rows, then each budget on its own small sample of the same examples.
    run_generation(model, tokenizer, examples[:8], 4, forced=False)
    run_generation(model, tokenizer, examples[:8], 4, forced=True)
    gens = []
    for max_new, count, forced in args.gen_plan:
        g = run_generation(model, tokenizer, examples[:count], max_new, forced)
        if not forced:
            g["agreement"] = sum(p == r["pred"] for p, r in zip(g["parsed"], records)) / count
        del g["parsed"]
        print(f"  generate {max_new} {'forced' if forced else 'natural'}: {g['s_per_example']:.3f} s/example, {g['mean_tokens']:.0f} tokens", flush=True)
        gens.append(g)
    result["generation"] = gens
    return result


def render(results: list[dict], args) -> str:
    lines = [
        "", f"## Evaluation throughput: ftlab logits vs lm-eval multiple choice vs generation (bench/eval_throughput{' --quick' if args.quick else ''})", "",
        machine_line().rstrip(".") + f"; lm_eval {_version('lm_eval')}; {torch.get_num_threads()} torch threads.", "",
        f"Task: hem test split, {results[0]['n']} examples (P/N), batch {args.batch_size} on both sides, fp32 CPU. "
        f"Median of {args.repeats} alternating repeats, first pass of each side excluded (warm-up). The CPU was shared "
        "with other work during the run: absolute rates are indicative only; ratios were measured side by side. "
        "Command: `.venv/bin/python bench/eval_throughput/run.py" + (" --quick" if args.quick else "") + "`.", "",
        "lm-eval 'scoring' = time inside HFLM.loglikelihood; 'end-to-end' = the whole simple_evaluate call with the "
        "model already loaded (task + dataset build, scoring, metrics; bootstrap off; it also runs `pip list` "
        "for its environment record, about 1 s per call here). Agreement: share of examples "
        "where lm-eval's argmax log-likelihood choice equals ftlab's prediction.", "",
        "| model | params | prompt tokens | accuracy | ftlab ex/s | lm-eval scoring ex/s | lm-eval end-to-end ex/s | speed-up (scoring) | speed-up (end-to-end) | agreement | min |margin| | max margin diff | token mismatches |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        n = r["n"]
        lines.append(
            f"| {r['model']} | {r['n_params'] / 1e6:.1f}M | {r['prompt_tokens']:.0f} | {r['accuracy']:.3f} | {n / r['ftlab_s']:.0f} | "
            f"{n / r['lm_scoring_s']:.0f} | {n / r['lm_total_s']:.0f} | {r['lm_scoring_s'] / r['ftlab_s']:.2f}x | "
            f"{r['lm_total_s'] / r['ftlab_s']:.2f}x | {r['agreement']:.1%} | {r['min_margin']:.3g} | {r['max_margin_diff']:.2g} | {r['token_mismatches']} |"
        )
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small model only, 64 examples, short generations (smoke run)")
    parser.add_argument("--n", type=int, default=400, help="classification examples (hem test holds ~490 balanced)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-append", action="store_true", help="print only, do not append to BENCHMARKS.md")
    args = parser.parse_args()
    if args.quick:
        args.n, args.repeats = 64, 1
        # (max_new_tokens, examples, forced)
        args.gen_plan = [(32, 8, False), (32, 8, True), (256, 8, True)]
    else:
        # Seed 002 boxes a short answer in 32 tokens; seed 001's GSM8K budgets are 256 and 512.
        args.gen_plan = [(32, 32, False), (32, 32, True), (256, 16, True), (512, 8, True)]
    examples = generators.get("hem")(n=args.n, split="test", seed=0)
    work = Path(tempfile.mkdtemp(prefix="ftlab-evalbench-"))
    results = [bench_model(name, folder, trained, examples, args, work) for name, folder, trained in models(work, args.quick)]
    text = render(results, args)
    print(text)
    if not args.no_append:
        with open(ROOT / "BENCHMARKS.md", "a") as f:
            f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
