"""Model stage: build the spec's tiny model (tokenizer trained on the corpus datasets' text)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ftlab.data.stage import load_split
from ftlab.models.tiny import TinyConfig, build_tiny


def run_model(task, ctx) -> dict[str, Any]:
    spec = dict(task.inputs["tiny"])
    spec.pop("tokenizer_corpus")
    texts: list[str] = []
    for data_dir in task.inputs["corpus"]:
        for ex in load_split(data_dir):
            texts += [m["content"] for m in ex.prompt] + ([ex.completion] if ex.completion is not None else [])
    out = build_tiny(Path(task.out_dir), TinyConfig(**spec), texts)
    return {"model_dir": str(out)}
