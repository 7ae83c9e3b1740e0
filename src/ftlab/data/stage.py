"""Data stage: load or generate one dataset, check labels, write ftlab's normalised JSONL.

Outputs (in ctx.out_dir): examples.jsonl (one Example per line) and stats.json.
Inputs: ftlab.contract.inputs.DataInputs (`file` is a file, an HF dataset directory or a
dataset_info.json; ftlab.data.sources.data_digest hashes it, following directories and registrations).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from ftlab import atomic
from ftlab.data.formats import iter_examples, read_examples, write_examples
from ftlab.data.generate import generators
from ftlab.data.resample import resample
from ftlab.data.suspicious import Suspicious
from ftlab.errors import DataError
from ftlab.contract.task import StageContext, StageResult
from ftlab.contract.inputs import DataInputs


def run_data(inputs: DataInputs, ctx: StageContext) -> StageResult:
    ds = inputs.dataset
    labels = inputs.labels
    require_answer = inputs.require_answer if inputs.require_answer is not None else ds.role == "train"
    if ds.generate:
        gen = ds.generate
        examples = generators.get(gen.name)(n=gen.n, split=gen.split or ds.role, seed=gen.seed)
        bad = [e for e in examples if e.label not in labels] if labels is not None else []
        if bad:
            raise DataError(f"generator '{gen.name}' produced label '{bad[0].label}', not in task.labels {labels}")
    else:
        examples = iter_examples(
            Path(inputs.file), format=ds.format, labels=labels, label_field=inputs.label_field,
            require_answer=require_answer, columns=ds.columns, name_in_registry=ds.name_in_registry,
        )
    if inputs.system is not None:
        examples = (with_system(e, inputs.system) for e in examples)
    if ds.only_labels:  # a split defined by its labels (seed 000's positives-only valid_hem_only)
        keep = set(ds.only_labels)
        examples = (e for e in examples if e.label in keep)
    # Every row is read even past `limit`: a bad row anywhere in the file is still reported.
    examples = _limited(examples, ds.limit)
    out = Path(ctx.out_dir)
    for tmp in out.glob(".*.tmp"):  # atomic.py's temp files of a run killed midway (SIGKILL skips its cleanup);
        tmp.unlink(missing_ok=True)  # a data task is one process, so none of them is being written now
    if ds.resample or inputs.fewshot:
        examples = list(examples)  # both draw from the whole split, so it is held in memory
        if ds.resample:
            r = ds.resample
            examples = resample(
                examples, positive=inputs.positive, fraction=r.positive_fraction,
                positives=r.positives, total=r.total, replace=r.replace, seed=r.seed,
            )
        if inputs.fewshot:
            pool, examples = draw_fewshot(examples, pool=inputs.fewshot.pool, seed=inputs.fewshot.seed)
            write_examples(out / "fewshot.jsonl", pool)
    # Otherwise rows stream from the source to examples.jsonl: a 10^6-row file never sits in
    # memory (bench/data/run.py).
    counts: Counter = Counter()
    unanswered = 0
    role = "train" if ds.only_labels else ds.role  # a split cut to some labels is one class on purpose
    seen = Suspicious(ds.name, role, inputs.file or f"generator '{ds.generate.name}'", classification=labels is not None,
                      keep_digests=True)

    def counted(stream):
        nonlocal unanswered
        for e in stream:
            counts["null" if e.label is None else e.label] += 1  # "null": no label (generation task)
            unanswered += e.completion is None
            seen.add(e)
            yield e

    n = write_examples(out / "examples.jsonl", counted(examples))
    stats = {"n": n, "labels": dict(sorted(counts.items())), "unanswered": unanswered}
    if seen.lines():  # legal but suspicious (suspicious.py): the report's data section shows them
        stats["warnings"] = seen.lines()
    # 17 bytes a row: the report compares splits' normalised prompts without re-reading their rows.
    digests = seen.digests or b""
    atomic.write_lines(out / PROMPT_DIGESTS, (digests[i:i + 8].hex() + "\n" for i in range(0, len(digests), 8)))
    atomic.write_json(out / "stats.json", stats)
    return StageResult({"examples": "examples.jsonl", **stats})


PROMPT_DIGESTS = "prompts.normalised"


def with_system(example, system: str):
    """The example with `system` as its first message, unless it has a system message of its own."""
    if any(m["role"] == "system" for m in example.prompt):
        return example
    return type(example)([{"role": "system", "content": system}] + list(example.prompt), example.completion,
                         example.label, example.meta)


def _limited(examples: Iterable, limit: int | None) -> Iterator:
    for i, e in enumerate(examples):
        if limit is None or i < limit:
            yield e


def load_split(data_dir: str | Path) -> list:
    """The normalised examples a data task wrote."""
    return read_examples(Path(data_dir) / "examples.jsonl")


def draw_fewshot(examples: list, *, pool: int, seed: int) -> tuple[list, list]:
    """(pool, the rest): a seeded pool drawn from train and removed from it; an example whose exact
    text is also in the pool but stays in train is an error (it would leak the shot into training)."""
    import random

    if pool > len(examples):
        raise DataError(f"few-shot pool of {pool} is larger than the train set ({len(examples)})")
    drawn = random.Random(seed).sample(range(len(examples)), pool)  # draw order = pool order: first k are shown
    shots = [examples[i] for i in drawn]
    rest = [e for i, e in enumerate(examples) if i not in set(drawn)]
    shot_texts = {fewshot_text(e) for e in shots}
    leaks = [e.meta.get("source", "?") for e in rest if fewshot_text(e) in shot_texts]
    if leaks:
        raise DataError(f"few-shot examples also appear in the train data at {', '.join(leaks[:5])}; deduplicate the train file")
    return shots, rest


def fewshot_text(example) -> str:
    """What identifies an example for overlap checks: its prompt and answer text (a prompt-only
    example's answer is empty; real answers are never empty, so the two cannot collide)."""
    return "\x1f".join(m["content"] for m in example.prompt) + "\x1e" + (example.completion or "")
