"""Right-padded training batches attend with the causal mask alone, without their padding mask.

    padding_mask.install(model)   # the decoder body drops a right-padding mask while training

TRL's collator pads on the right. With causal attention a real token only attends to positions
before it, and in a right-padded row every position before a real token is real: the padding mask
changes nothing that reaches the loss. Only the pad positions' own outputs differ, and they carry no
labels and feed nothing after them. Given the mask, transformers hands SDPA an explicit boolean mask,
which torch's CPU flash kernel converts to a float copy in every layer and applies to every block,
the upper triangle included; without it SDPA runs `is_causal`, which skips the blocks above the
diagonal. Measured on SmolLM2's attention shape (8 x 9 heads x 721 x 64), forward and backward:
0.38-0.43 s causal vs 0.52-0.58 s masked, outputs identical at every real position (0.0 difference);
the step's effect is in BENCHMARKS.md (issue 23).

Left padding, a KV cache, a 4-D mask, or evaluation (the module not training) keep the mask.
"""

from __future__ import annotations

import torch

from ftlab.train.head import head_owner


def right_padded(mask: torch.Tensor) -> bool:
    """Every row is ones then zeros, and starts with a token."""
    return bool(mask[:, 0].all()) and bool((mask[:, 1:] <= mask[:, :-1]).all())


def _drop_right_padding_mask(module, args, kwargs):
    mask = kwargs.get("attention_mask")
    if mask is None or not module.training or mask.dim() != 2 or kwargs.get("past_key_values") is not None:
        return None
    if not right_padded(mask):
        return None
    return args, {**kwargs, "attention_mask": None}


def install(model) -> None:
    """On the decoder body of `model` (under PEFT's wrapper and the output layer), once."""
    body = head_owner(model).base_model
    if not getattr(body, "_ftlab_drops_right_padding_mask", False):
        body.register_forward_pre_hook(_drop_right_padding_mask, with_kwargs=True)
        body._ftlab_drops_right_padding_mask = True
