"""Load models and tokenizers through the normal `from_pretrained` path (local dir or HF id).

A checkpoint directory holding `adapter_config.json` is a PEFT adapter: its base model is read
from the adapter config and the adapter is applied on top.
"""

from __future__ import annotations

import json
from pathlib import Path

from ftlab.errors import ModelError


def device_and_dtype():
    """fp32 on CPU (bf16 matmuls are ~100x slower on our CPUs); bf16 on a GPU that supports it."""
    import torch

    if torch.cuda.is_available():
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.device("cuda"), dtype
    return torch.device("cpu"), torch.float32


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


def load_model(path: str, dtype=None):
    """A causal LM from a full-model dir, an adapter dir, or an HF id."""
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging

    logging.disable_progress_bar()  # one "Loading weights" bar per checkpoint drowns the stage progress
    device, default_dtype = device_and_dtype()
    dtype = dtype or default_dtype
    adapter = Path(path) / "adapter_config.json"
    try:
        if adapter.is_file():
            from peft import PeftModel

            base = json.loads(adapter.read_text())["base_model_name_or_path"]
            model = AutoModelForCausalLM.from_pretrained(base, dtype=dtype)
            model = PeftModel.from_pretrained(model, path)
        else:
            model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype)
    except OSError as err:
        raise ModelError(
            f"cannot load model '{path}': {err}\nIf this is an HF id, note that ftlab loads offline-first: "
            "download it on a machine with access and point model.path at the local directory."
        ) from None
    return model.to(device)
