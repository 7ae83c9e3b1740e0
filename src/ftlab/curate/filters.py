"""Curation filters, registered by name; each decides on the examples still kept.

    @filters.register("mine")
    class Mine:
        class Options(FilterOptions): ...
        needs_model = False
        def apply(self, examples, options, ctx) -> dict[int, str]: ...   # {position: why dropped}

`examples` are (index, Example) pairs still kept; `ctx` gives the model (difficulty) and a
directory for evidence. "Tokens" are whitespace words unless a filter says otherwise: the med_qa
stand-in's token limit is in words (ftlab.data.generate, MED_TOKEN_LIMIT).
Near duplicates: MinHash LSH from `datasketch` (Broder 1997; datasketch.MinHashLSH), word
3-shingles, Jaccard threshold given in the spec.
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ftlab.plugins import Plugins

filters: Plugins[Any] = Plugins("curation filter")


class FilterOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


@dataclass
class FilterContext:
    out_dir: Path  # where a filter keeps its evidence (difficulty: the model's answers)
    model_path: str | None = None  # the model a difficulty filter consults
    batch_size: int = 16
    labels: list[str] | None = None  # the task's label set (classification); None: a generation task


def text_of(example, field: str) -> str | None:
    """A column's text: "prompt" (the user turns), "completion", or a meta column."""
    if field == "prompt":
        return "\n".join(m["content"] for m in example.prompt if m["role"] == "user")
    if field == "completion":
        return example.completion
    value = example.meta.get(field)
    return None if value is None else str(value)


def n_tokens(text: str | None) -> int:
    return len(text.split()) if text else 0


@filters.register("quality")
class Quality:
    """Missing fields, responses exactly at a token limit (cut off: seed 003's "exact 1024 token
    responses"), exact duplicates and MinHash near duplicates (the first occurrence is kept)."""

    needs_model = False

    class Options(FilterOptions):
        fields: list[str] = Field(default_factory=list, description="columns that must be present and non-empty (the completion always)")
        token_limit: int | None = Field(None, gt=0, description="drop responses of exactly this many tokens (cut at the limit)")
        dedup_field: str = Field("prompt", description="text compared for duplicates")
        exact_duplicates: bool = True
        near_duplicates: float | None = Field(0.8, gt=0, le=1, description="MinHash Jaccard threshold; null: off")
        num_perm: int = Field(128, ge=16, le=1024, description="MinHash permutations")

    def apply(self, examples, o, ctx) -> dict[int, str]:
        dropped: dict[int, str] = {}
        for i, e in examples:
            missing = [f for f in ["completion"] + list(o.fields) if not (text_of(e, f) or "").strip()]
            if missing:
                dropped[i] = f"missing {', '.join(missing)}"
            elif o.token_limit is not None and n_tokens(e.completion) == o.token_limit:
                dropped[i] = f"response exactly at the {o.token_limit}-token limit"
        rest = [(i, e) for i, e in examples if i not in dropped]
        if o.exact_duplicates:
            first: dict[str, int] = {}
            for i, e in rest:
                key = " ".join((text_of(e, o.dedup_field) or "").split())
                if key in first:
                    dropped[i] = f"exact duplicate of #{first[key]}"
                else:
                    first[key] = i
            rest = [(i, e) for i, e in rest if i not in dropped]
        if o.near_duplicates is not None:
            dropped |= near_duplicates(rest, o.dedup_field, o.near_duplicates, o.num_perm)
        return dropped


def near_duplicates(examples, field: str, threshold: float, num_perm: int) -> dict[int, str]:
    """{index: reason} for each example whose MinHash Jaccard estimate with an earlier kept one is >= threshold."""
    from datasketch import MinHash, MinHashLSH

    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
    hashes: dict[int, Any] = {}
    dropped = {}
    for i, e in examples:
        words = (text_of(e, field) or "").lower().split()
        shingles = {" ".join(words[k:k + 3]) for k in range(max(1, len(words) - 2))}
        m = MinHash(num_perm=num_perm, seed=1)  # fixed seed: the same duplicates in every run
        for s in sorted(shingles):
            m.update(s.encode("utf-8"))
        match = [j for j in lsh.query(m) if m.jaccard(hashes[j]) >= threshold]
        if match:
            j = min(match)
            dropped[i] = f"near duplicate of #{j} (MinHash Jaccard {m.jaccard(hashes[j]):.2f})"
            continue
        lsh.insert(i, m)
        hashes[i] = m
    return dropped


@filters.register("difficulty")
class Difficulty:
    """Drop what a model already answers correctly, scored by one of ftlab's evaluators (generation
    + parser; for a classification task also `logits`). Its answers are kept as evidence."""

    needs_model = True

    class Options(FilterOptions):
        model: str = Field("base", description="'base' (the experiment's base model) or an HF id / local directory")
        evaluator: str = Field("generate", description="ftlab evaluator that scores the model's answers")
        parser: str | dict[str, Any] = Field("first_token", description="the generate evaluator's answer parser")
        max_new_tokens: int = Field(64, gt=0, le=100_000)

    def apply(self, examples, o, ctx) -> dict[int, str]:
        from ftlab.evaluate.evaluators import EvalInput, evaluators
        from ftlab.evaluate.stage import LoadedCheckpoint
        from ftlab import atomic

        evaluator = evaluators.get(o.evaluator)()
        options = evaluator.Options.model_validate(
            {"parser": o.parser, "max_new_tokens": o.max_new_tokens} if o.evaluator == "generate" else {}).model_dump(mode="json")
        items = [e for _, e in examples]
        labels = ctx.labels
        inp = EvalInput(checkpoint_model=LoadedCheckpoint(ctx.model_path, None), examples=items, options=options,
                        batch_size=ctx.batch_size, labels=labels, positive=labels[0] if labels else None,
                        checkpoint=ctx.model_path, out_dir=ctx.out_dir)
        records = evaluator.run(inp) if items else []
        dropped = {}
        for (i, _), r in zip(examples, records):
            correct = r.get("pred") is not None and r["pred"] == r["label"] if labels else \
                r.get("parsed") is not None and r.get("parsed") == r.get("reference")
            r["curate_index"], r["correct"] = i, bool(correct)
            if correct:
                dropped[i] = f"the model already answers it ({r.get('parsed') or r.get('pred')})"
        atomic.write_jsonl(ctx.out_dir / "difficulty.jsonl", records)  # the model's answers: evidence it was consulted
        return dropped


@filters.register("diversity")
class Diversity:
    """Keep reasoning of at least min_tokens, then a seeded sample of `total` balanced across a
    category column (seed 003: specialties): equal shares, the shortfall of small categories
    refilled from the others in turn."""

    needs_model = False

    class Options(FilterOptions):
        field: str = Field("completion", description="the reasoning column whose length is checked")
        min_tokens: int = Field(0, ge=0)
        total: int | None = Field(None, gt=0, description="sample size (null: keep every long-enough example)")
        balance: str | None = Field(None, description="category column to balance across, e.g. specialty")
        seed: int = Field(0, ge=0, lt=2**32)

    def apply(self, examples, o, ctx) -> dict[int, str]:
        dropped = {i: f"reasoning under {o.min_tokens} tokens ({o.field})" for i, e in examples if n_tokens(text_of(e, o.field)) < o.min_tokens}
        rest = [(i, e) for i, e in examples if i not in dropped]
        if o.total is None or o.total >= len(rest):
            return dropped
        groups: dict[str, list[int]] = defaultdict(list)
        for i, e in rest:
            groups[str(text_of(e, o.balance)) if o.balance else ""].append(i)
        rng = random.Random(o.seed)
        for key in sorted(groups):
            rng.shuffle(groups[key])
        chosen: set[int] = set()
        depth = 0
        while len(chosen) < o.total:  # round-robin over sorted categories: equal shares, deterministic
            for key in sorted(groups):
                if depth < len(groups[key]) and len(chosen) < o.total:
                    chosen.add(groups[key][depth])
            depth += 1
        why = f"not in the balanced sample of {o.total}" + (f" over {o.balance}" if o.balance else "")
        return dropped | {i: why for i, _ in rest if i not in chosen}


@filters.register("random")
class RandomSample:
    """A seeded random sample of n (seed 003's random-1k baseline)."""

    needs_model = False

    class Options(FilterOptions):
        n: int = Field(gt=0)
        seed: int = Field(0, ge=0, lt=2**32)

    def apply(self, examples, o, ctx) -> dict[int, str]:
        if o.n >= len(examples):
            return {}
        keep = set(random.Random(o.seed).sample([i for i, _ in examples], o.n))
        return {i: f"not in the random sample of {o.n}" for i, _ in examples if i not in keep}


def filter_problems(name: str, options: dict[str, Any]) -> list[tuple[tuple, str]]:
    """(key path inside the filter's entry, message) for an unknown name or bad options."""
    from pydantic import ValidationError

    from ftlab.plugins import did_you_mean

    if name not in filters:
        return [(("name",), f"unknown curation filter '{name}'.{did_you_mean(name, filters.names())} Available: {', '.join(filters.names())}")]
    cls = filters.get(name)
    try:
        cls.Options.model_validate(options)
    except ValidationError as err:
        allowed = list(cls.Options.model_fields)
        out = []
        for e in err.errors():
            loc = tuple(e["loc"])
            if e["type"] == "extra_forbidden":
                out.append((loc, f"unknown option '{loc[-1]}' of filter {name}.{did_you_mean(str(loc[-1]), allowed)} Allowed: {', '.join(allowed)}"))
            else:
                out.append((loc, "required key is missing" if e["type"] == "missing" else e["msg"]))
        return out
    return []
