"""Generation through vLLM, for GPUs: same prompts and records as ftlab.evaluate.generation.

    generate evaluator option:  backend: vllm

vLLM is an optional extra (`pip install 'ftlab[vllm]'`) and needs CUDA; elsewhere the user gets
one clear error naming the fix. Prompts are the same chat-templated token ids as HF generation
(ftlab.data.encode.prompt_ids), so both backends answer the same question. A PEFT checkpoint is
served as a LoRA adapter on its base model.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ftlab.data.encode import prompt_ids
from ftlab.errors import ModelError


def check_available() -> None:
    try:
        import vllm  # noqa: F401
    except ImportError:
        raise ModelError("the vllm backend needs vLLM: pip install 'ftlab[vllm]' (or use backend: hf)") from None
    import torch

    if not torch.cuda.is_available():
        raise ModelError("the vllm backend needs a CUDA GPU; on this machine use backend: hf")


def generate_vllm(checkpoint: str, tokenizer, prompts: list[list[dict[str, str]]], options: dict[str, Any]) -> list[dict[str, Any]]:
    check_available()
    from vllm import LLM, SamplingParams
    from vllm.lora.request import LoRARequest

    adapter = Path(checkpoint) / "adapter_config.json"
    base = json.loads(adapter.read_text())["base_model_name_or_path"] if adapter.is_file() else checkpoint
    llm = LLM(model=base, enable_lora=adapter.is_file(), seed=options["seed"])
    params = SamplingParams(
        max_tokens=options["max_new_tokens"], temperature=options["temperature"], top_p=options["top_p"],
        stop=options["stop"] or None, seed=options["seed"],
    )
    lora = LoRARequest("checkpoint", 1, checkpoint) if adapter.is_file() else None
    token_prompts = [{"prompt_token_ids": prompt_ids(tokenizer, p)} for p in prompts]
    outputs = llm.generate(token_prompts, params, lora_request=lora)
    records = []
    for i, out in enumerate(outputs):
        completion = out.outputs[0]
        finish = {"stop": "stop", "length": "length"}.get(completion.finish_reason, completion.finish_reason)
        if finish == "stop" and completion.stop_reason is None:
            finish = "eos"
        records.append({"index": i, "text": completion.text, "finish": finish, "n_tokens": len(completion.token_ids)})
    return records
