"""Generation through vLLM, for GPUs: same prompts and records as ftlab.evaluate.generation.

    generate evaluator option:  backend: vllm

vLLM is an optional extra (`pip install 'ftlab[vllm]'`) and needs CUDA; elsewhere the user gets
one clear error naming the fix. Prompts are the same chat-templated token ids as HF generation
(ftlab.data.encode.prompt_ids), so both backends answer the same question.

One engine per base model, kept between checkpoints (ENGINES, one slot): an eval task scoring a
LoRA run loads its base once (tens of seconds and most of the GPU's memory) and serves step 0 as
the plain base and each PEFT checkpoint as its own LoRARequest (a distinct int id, its adapter
path) onto it. A full fine-tuned checkpoint is other weights and gets its own engine, which
replaces the previous one (two engines do not fit beside each other on one GPU at
gpu_memory_utilization 0.9). Loading an HF model onto the GPU (another evaluator of the same task)
releases the engine first (ftlab.models.load.GPU_RELEASERS): such a task rebuilds it per
checkpoint, as every task did before the engine was kept.
"""

from __future__ import annotations

import gc
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ftlab.data.encode import prompt_ids
from ftlab.errors import ModelError
from ftlab.models.load import GPU_RELEASERS

# vLLM's smallest LoRA rank bound above most adapters (r 8-64); a larger adapter rebuilds the engine.
DEFAULT_MAX_LORA_RANK = 64
VLLM_LORA_RANKS = (8, 16, 32, 64, 128, 256, 320, 512)


def check_available() -> None:
    try:
        import vllm  # noqa: F401
    except ImportError:
        raise ModelError("the vllm backend needs vLLM: pip install 'ftlab[vllm]' (or use backend: hf)") from None
    import torch

    if not torch.cuda.is_available():
        raise ModelError("the vllm backend needs a CUDA GPU; on this machine use backend: hf")


@dataclass(frozen=True)
class Served:
    """How one checkpoint is served: the engine's model, and the adapter on it (None: the model itself)."""

    model: str
    adapter: str | None
    rank: int | None
    trained_full: bool  # a full fine-tuned checkpoint (no adapters will follow onto it)


def served(checkpoint: str) -> Served:
    config = Path(checkpoint) / "adapter_config.json"
    if config.is_file():
        adapter = json.loads(config.read_text())
        return Served(adapter["base_model_name_or_path"], checkpoint, int(adapter.get("r", 8)), False)
    # HF Trainer writes trainer_state.json into every checkpoint-<step>; a base model dir (step 0,
    # an untuned control) has none, and is the one LoRA checkpoints are served onto.
    return Served(checkpoint, None, None, (Path(checkpoint) / "trainer_state.json").is_file())


def _lora_rank(rank: int) -> int:
    return next((r for r in VLLM_LORA_RANKS if r >= rank), rank)


class Engines:
    """One vLLM engine at a time, reused while the base and seed stay; adapters get stable int ids."""

    def __init__(self) -> None:
        self.llm = None
        self.key: tuple | None = None  # (model, seed)
        self.max_lora_rank: int | None = None  # None: LoRA not enabled
        self.lora_ids: dict[str, int] = {}

    def engine(self, s: Served, seed: int):
        from vllm import LLM

        wants_lora = s.adapter is not None or not s.trained_full
        rank = _lora_rank(max(s.rank or 0, DEFAULT_MAX_LORA_RANK)) if wants_lora else None
        fits = self.llm is not None and self.key == (s.model, seed) and (
            s.adapter is None or (self.max_lora_rank or 0) >= (s.rank or 0))
        if not fits:
            self.close()
            kwargs = {"model": s.model, "seed": seed, "enable_lora": rank is not None}
            if rank is not None:
                kwargs |= {"max_lora_rank": rank, "max_loras": 1}  # one checkpoint's adapter per batch
            self.llm, self.key, self.max_lora_rank = LLM(**kwargs), (s.model, seed), rank
        return self.llm

    def lora_request(self, s: Served):
        if s.adapter is None:
            return None
        from vllm.lora.request import LoRARequest

        # Ids are vLLM's cache keys: one per adapter path, never reused for another path.
        lora_id = self.lora_ids.setdefault(s.adapter, len(self.lora_ids) + 1)
        return LoRARequest(f"{Path(s.adapter).name}-{lora_id}", lora_id, s.adapter)

    def close(self) -> None:
        if self.llm is None:
            return
        shutdown = getattr(getattr(self.llm, "llm_engine", None), "shutdown", None)
        if callable(shutdown):
            shutdown()
        self.llm, self.key, self.max_lora_rank = None, None, None
        gc.collect()
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()


ENGINES = Engines()
GPU_RELEASERS.append(ENGINES.close)


def generate_vllm(checkpoint: str, tokenizer, prompts: list[list[dict[str, str]]], options: dict[str, Any],
                  engines: Engines | None = None) -> list[dict[str, Any]]:
    check_available()
    from vllm import SamplingParams

    engines = engines or ENGINES
    s = served(checkpoint)
    llm = engines.engine(s, options["seed"])
    params = SamplingParams(
        max_tokens=options["max_new_tokens"], temperature=options["temperature"], top_p=options["top_p"],
        stop=options["stop"] or None, seed=options["seed"],
    )
    token_prompts = [{"prompt_token_ids": prompt_ids(tokenizer, p)} for p in prompts]
    outputs = llm.generate(token_prompts, params, lora_request=engines.lora_request(s))
    records = []
    for i, out in enumerate(outputs):
        completion = out.outputs[0]
        finish = {"stop": "stop", "length": "length"}.get(completion.finish_reason, completion.finish_reason)
        if finish == "stop" and completion.stop_reason is None:
            finish = "eos"
        records.append({"index": i, "text": completion.text, "finish": finish, "n_tokens": len(completion.token_ids)})
    return records
