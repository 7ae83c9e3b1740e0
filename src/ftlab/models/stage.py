"""Model stage: build the spec's tiny model (tokenizer trained on the corpus datasets' text), or
convert its GGUF file once into the user cache (ftlab.models.gguf)."""

from __future__ import annotations

from pathlib import Path

from ftlab.data.stage import load_split
from ftlab.models import gguf
from ftlab.models.tiny import TinyConfig, build_tiny
from ftlab.contract.task import StageContext, StageResult
from ftlab.contract.inputs import ModelInputs


def run_model(inputs: ModelInputs, ctx: StageContext) -> StageResult:
    if inputs.gguf_sha256 is not None:
        out = gguf.convert(Path(inputs.gguf_file), inputs.gguf_sha256)
        return StageResult({"model_dir": str(out), "gguf": inputs.gguf_file, "title": gguf.title(Path(inputs.gguf_file))})
    texts: list[str] = []
    for data_dir in inputs.corpus:
        for ex in load_split(data_dir):
            texts += [m["content"] for m in ex.prompt] + ([ex.completion] if ex.completion is not None else [])
    out = build_tiny(Path(ctx.out_dir), TinyConfig(**inputs.tiny.model_dump(exclude={"tokenizer_corpus"})), texts)
    return StageResult({"model_dir": str(out)})
