"""Data stage: load or generate one dataset, check labels, write ftlab's normalised JSONL.

Outputs (in the task's out_dir): examples.jsonl (one Example per line) and stats.json.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from ftlab import atomic
from ftlab.data.formats import load_examples, read_examples, write_examples
from ftlab.data.generate import generators
from ftlab.data.resample import resample
from ftlab.errors import DataError


def run_data(task, ctx) -> dict[str, Any]:
    ds = task.inputs["dataset"]
    labels = task.inputs["labels"]
    if ds.get("generate"):
        gen = ds["generate"]
        examples = generators.get(gen["name"])(n=gen["n"], split=gen.get("split") or ds["role"], seed=gen["seed"])
        bad = [e for e in examples if e.label not in labels]
        if bad:
            raise DataError(f"generator '{gen['name']}' produced label '{bad[0].label}', not in task.labels {labels}")
    else:
        examples = load_examples(
            Path(task.inputs["file"]), format=ds["format"], labels=labels, label_field=task.inputs["label_field"]
        )
    if ds.get("limit"):
        examples = examples[: ds["limit"]]
    if ds.get("resample"):
        r = ds["resample"]
        examples = resample(
            examples, positive=task.inputs["positive"], fraction=r["positive_fraction"], positives=r["positives"],
            total=r["total"], replace=r["replace"], seed=r["seed"],
        )
    out = Path(task.out_dir)
    write_examples(out / "examples.jsonl", examples)
    stats = {"n": len(examples), "labels": dict(sorted(Counter(e.label for e in examples).items()))}
    atomic.write_json(out / "stats.json", stats)
    return {"examples": "examples.jsonl", **stats}


def load_split(data_dir: str | Path) -> list:
    """The normalised examples a data task wrote."""
    return read_examples(Path(data_dir) / "examples.jsonl")
