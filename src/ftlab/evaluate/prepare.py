"""What each eval split holds before any evaluator sees it: test downsampling, declared
denominators, few-shot turns (with the overlap check), checkpoints to score.

Split discipline: downsampling touches test splits only and is seeded; a pool example found in a
valid or test split is refused (it would be scored on an answer shown in its own prompt).
"""

from __future__ import annotations

import random
from typing import Any

from ftlab.data.example import Example
from ftlab.data.formats import read_examples
from ftlab.data.stage import fewshot_text
from ftlab.errors import StageError
from ftlab.evaluate.groups import check_denominators
from ftlab.contract.inputs import EvalInputs


def eval_splits(inputs: EvalInputs, data: dict[str, list[Example]]) -> dict[str, list[Example]]:
    settings = inputs.eval
    out = {}
    for name, examples in data.items():
        fraction = test_fraction(settings.test_fraction, name)
        if inputs.roles[name] == "test" and fraction is not None:
            examples = downsample(examples, fraction, settings.test_seed)
        out[name] = examples
    problems = check_denominators({k: len(v) for k, v in out.items()}, settings.expected)
    if problems:
        raise StageError("eval splits differ from the declared denominators (eval.expected): " + "; ".join(problems))
    if inputs.fewshot_k is not None:
        from pathlib import Path

        pool = read_examples(Path(inputs.fewshot_pool_dir) / "fewshot.jsonl")
        check_overlap(pool, out)
        shots = pool[: inputs.fewshot_k]
        shown = inputs.fewshot_splits or list(out)
        out = {name: [with_shots(e, shots) for e in examples] if name in shown else examples for name, examples in out.items()}
    return out


def test_fraction(setting: float | dict[str, float | None] | None, split: str) -> float | None:
    """The downsampling fraction of one test split: one number for all, or a per-split mapping."""
    if isinstance(setting, dict):
        return setting.get(split)
    return setting


def downsample(examples: list[Example], fraction: float, seed: int) -> list[Example]:
    """A seeded subset of int(len * fraction) examples (truncated, at least 1), in the original order.

    Truncation, not rounding, is seed 001's rule: 20% of GSM8K's 1,319 test examples is 263.8,
    and its declared denominator is 263 (round() would give 264 and fail eval.expected).
    """
    # + 1e-9: a product that is an integer on paper must not truncate one lower (100 * 0.29 is
    # 28.999999999999996 in floats); no real fraction of a split is within 1e-9 of the next integer.
    n = max(1, int(len(examples) * fraction + 1e-9))
    keep = sorted(random.Random(seed).sample(range(len(examples)), n))
    return [examples[i] for i in keep]


def check_overlap(pool: list[Example], splits: dict[str, list[Example]]) -> None:
    texts = {fewshot_text(e) for e in pool}
    for name, examples in splits.items():
        hits = [e.meta.get("source", "?") for e in examples if fewshot_text(e) in texts]
        if hits:
            raise StageError(f"few-shot pool examples appear in the '{name}' split ({', '.join(hits[:5])}); draw the pool from data that is not evaluated")


def with_shots(example: Example, shots: list[Example]) -> Example:
    """System messages first, then each shot as a user/assistant exchange, then the question."""
    system = [m for m in example.prompt if m["role"] == "system"]
    turns = []
    for shot in shots:
        turns += [m for m in shot.prompt if m["role"] != "system"] + [{"role": "assistant", "content": shot.completion}]
    rest = [m for m in example.prompt if m["role"] != "system"]
    return Example(system + turns + rest, example.completion, example.label, example.meta)


def checkpoints_to_score(checkpoints: list[dict[str, Any]], exclude_final: bool) -> list[dict[str, Any]]:
    """Seed 000 scores intermediate checkpoints only: drop the last one of a trained run."""
    if exclude_final and len(checkpoints) > 1:
        return checkpoints[:-1]
    return checkpoints
