"""Load models and tokenizers through the normal `from_pretrained` path (local dir or HF id).

A checkpoint directory holding `adapter_config.json` is a PEFT adapter: its base model is read
from the adapter config and the adapter is applied on top.
"""

from __future__ import annotations

import json
from pathlib import Path

from ftlab.errors import ModelError
from ftlab.spec.schema import Quantization


def device_and_dtype():
    """fp32 on CPU (bf16 matmuls are ~100x slower on our CPUs); bf16 on a GPU that supports it.
    Evaluation's choice; training resolves its own from the spec (ftlab.train.device)."""
    import torch

    if torch.cuda.is_available():
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.device("cuda"), dtype
    return torch.device("cpu"), torch.float32


# Callbacks that free GPU memory held outside any HF model (a cached vLLM engine claims 90% of the
# GPU): called before an HF model goes onto a CUDA device, so an eval task mixing a vLLM evaluator
# with an HF one (logits) does not run out of memory. ftlab.evaluate.vllm_backend registers one.
GPU_RELEASERS: list = []


def load_tokenizer(path: str):
    from transformers import AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(path)
    except OSError as err:
        raise ModelError(f"cannot load a tokenizer from '{path}': {err}") from None
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    if not tok.chat_template:
        raise ModelError(f"the tokenizer of '{path}' has no chat template; ftlab formats prompts as chats")
    return tok


def quantization_config(quantization: Quantization | None, compute_dtype):
    """bitsandbytes settings for a QLoRA base, or None; a clear error names the fix when it is missing."""
    if quantization is None:
        return None
    try:
        import bitsandbytes  # noqa: F401
        from transformers import BitsAndBytesConfig
    except ImportError:
        raise ModelError("QLoRA needs bitsandbytes: pip install 'ftlab[qlora]' (or pip install bitsandbytes)") from None
    if quantization.bits == 8:
        return BitsAndBytesConfig(load_in_8bit=True)
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type=quantization.quant_type,
        bnb_4bit_use_double_quant=quantization.double_quant,
        bnb_4bit_compute_dtype=compute_dtype,
    )


def load_model(path: str, dtype=None, quantization: Quantization | None = None, attn_implementation: str | None = None):
    """A causal LM from a full-model dir, an adapter dir, or an HF id; `quantization` loads the base
    in 4 or 8 bits (QLoRA), on the CPU too (bitsandbytes >= 0.45 has CPU kernels);
    `attn_implementation` (eager, sdpa, flash_attention_2): None keeps transformers' default (sdpa)."""
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging

    logging.disable_progress_bar()  # one "Loading weights" bar per checkpoint drowns the stage progress
    device, default_dtype = device_and_dtype()
    dtype = dtype or default_dtype
    if device.type == "cuda":
        for release in GPU_RELEASERS:
            release()
    adapter = Path(path) / "adapter_config.json"
    try:
        bnb = quantization_config(quantization, dtype)
        kwargs = {"dtype": dtype} if bnb is None else {"dtype": dtype, "quantization_config": bnb, "device_map": {"": device}}
        if attn_implementation is not None:
            kwargs["attn_implementation"] = attn_implementation
        if adapter.is_file():
            from peft import PeftModel

            base = json.loads(adapter.read_text())["base_model_name_or_path"]
            model = AutoModelForCausalLM.from_pretrained(base, **kwargs)
            model = PeftModel.from_pretrained(model, path)
        else:
            model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
    except OSError as err:
        raise ModelError(
            f"cannot load model '{path}': {err}\nIf this is an HF id, note that ftlab loads offline-first: "
            "download it on a machine with access and point model.path at the local directory."
        ) from None
    return model if quantization else model.to(device)  # quantized weights are placed by device_map
