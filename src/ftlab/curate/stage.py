"""Curate stage: apply a dataset's `curate:` filters to the examples its data task wrote.

Inputs (ftlab.contract.inputs.CurateInputs): the filters as the spec gives them, the data task's
dir, and the model a difficulty filter asks (the base model's task, or an HF id / local dir).

Writes in the task's out_dir:
    filtered.parquet   every input example with kept, dropped_by, reason (seed 003's med_s1k_filtered)
    curated.parquet    the kept examples only (med_s1k_curated)
    formatted/         the kept examples as an HF dataset of chat `messages` (save_to_disk; med_s1k_formatted)
    examples.jsonl     the kept examples in ftlab's format: what the train stage reads
    stats.json         counts in, out and per filter (also the stage's registry outputs)
    difficulty.jsonl   the difficulty filter's model answers, when it ran
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from ftlab import atomic
from ftlab.curate.filters import FilterContext, filters
from ftlab.data.formats import write_examples
from ftlab.data.stage import load_split
from ftlab.contract.task import StageContext, StageResult
from ftlab.contract.inputs import CurateInputs


def run_curate(inputs: CurateInputs, ctx: StageContext) -> StageResult:
    out = Path(ctx.out_dir)
    examples = load_split(inputs.data_dir)
    decisions: dict[int, tuple[str, str]] = {}  # index -> (filter, reason)
    counts = []
    fctx = FilterContext(out_dir=out, model_path=inputs.model_dir, batch_size=inputs.batch_size, labels=inputs.labels)
    for step, spec in enumerate(inputs.filters):
        name = spec.name
        f = filters.get(name)
        options = f.Options.model_validate(spec.options)
        alive = [(i, e) for i, e in enumerate(examples) if i not in decisions]
        dropped = f().apply(alive, options, fctx)
        label = f"{step}:{name}"
        for i, why in dropped.items():
            decisions[i] = (label, why)
        reasons = Counter(_reason_kind(w) for w in dropped.values())
        counts.append({"filter": name, "step": step, "in": len(alive), "dropped": len(dropped), "kept": len(alive) - len(dropped),
                       "reasons": dict(sorted(reasons.items()))}
                      | ({"consulted": len(alive), "model": inputs.model_dir} if f.needs_model else {}))
    kept = [e for i, e in enumerate(examples) if i not in decisions]
    _write_tables(out, examples, decisions)
    write_examples(out / "examples.jsonl", kept)
    stats = {"n": len(kept), "n_in": len(examples), "filters": counts, "labels": dict(Counter(str(e.label) for e in kept)), "unanswered": 0}
    atomic.write_json(out / "stats.json", stats)
    return StageResult({"examples": "examples.jsonl", **stats})


def _reason_kind(why: str) -> str:
    """'exact duplicate of #12' -> 'exact duplicate': reasons grouped for the counts."""
    return why.split(" of #")[0].split(" (")[0]


def _row(i: int, e, decision) -> dict[str, Any]:
    meta = {k: (v if isinstance(v, (str, int, float, bool)) or v is None else json.dumps(v)) for k, v in e.meta.items()}
    return {"index": i, "prompt": "\n".join(m["content"] for m in e.prompt if m["role"] == "user"), "completion": e.completion,
            "label": e.label, **{f"meta_{k}": v for k, v in meta.items()},
            "kept": decision is None, "dropped_by": decision[0] if decision else None, "reason": decision[1] if decision else None}


def _write_tables(out: Path, examples, decisions) -> None:
    import datasets
    import pandas as pd

    rows = [_row(i, e, decisions.get(i)) for i, e in enumerate(examples)]
    table = pd.DataFrame(rows)
    _atomic_parquet(table, out / "filtered.parquet")
    _atomic_parquet(table[table["kept"]].reset_index(drop=True), out / "curated.parquet")
    messages = [{"messages": e.prompt + [{"role": "assistant", "content": e.completion or ""}]}
                for i, e in enumerate(examples) if i not in decisions]
    formatted = out / "formatted"
    datasets.Dataset.from_list(messages).save_to_disk(str(formatted))


def _atomic_parquet(frame, path: Path) -> None:
    tmp = path.with_suffix(".parquet.tmp")
    frame.to_parquet(tmp, index=False)
    tmp.replace(path)
