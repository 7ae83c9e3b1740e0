"""The output layer at completion positions only: completion-only loss never reads prompt logits.

    trainer = SFTTrainer(...)            # TRL patches model.forward with its fused LM head
    add_completion_head(trainer.model)   # same outputs, lm_head over completion positions only

TRL 1.16's fused head scores only the positions with a label where Triton runs (CUDA, XPU); on
every other device (CPU included) it projects *every* position, prompt and padding too, through
the vocabulary in 4,096 x 32,768 tiles. With Qwen2.5's 151,936-token vocabulary that is
8 x 151,936 x hidden FLOPs per position (forward, the backward's recomputed tile, two gradient
GEMMs): at hidden 896 about 1.1 GFLOP per position, ~5x a 2-layer body's cost, spent on positions
the loss multiplies by zero. Here the body still runs over every position, then only the rows
whose next token is a completion token go through TRL's own chunked log-prob kernel, so the
per-token log-probs, entropy and top-1 flags (TRL's loss and its logged metrics) are the same
numbers, computed on fewer rows.

Where it does not apply, TRL's head stays (see `completion_head_blocker`).
"""

from __future__ import annotations

import functools
import types

import torch

from ftlab.train.tied import head_weight

# TRL's vocabulary tile width; kept so each row's logsumexp is folded in the same order as TRL's.
VOCAB_CHUNK = 32768
OUTPUTS = ("log_probs", "entropy", "is_top1")  # what SFTTrainer's loss and metrics read


def head_owner(model):
    """The transformers model that owns `lm_head` and its body: PEFT wraps it, TRL patches it."""
    get_base = getattr(model, "get_base_model", None)
    return get_base() if callable(get_base) else model


def completion_head_blocker(model) -> str | None:
    """Why the completion-only head cannot replace TRL's on `model`, or None when it can."""
    if "forward" not in vars(model):
        return "TRL's fused LM head is not installed (only SFTTrainer installs it)"
    text_config = model.config.get_text_config()
    if text_config is not model.config:
        return "multimodal model: TRL reaches the language backbone through its own wrapper"
    for name in ("final_logit_softcapping", "logit_scale", "output_multiplier", "lm_head_multiplier", "logits_scaling"):
        if getattr(text_config, name, None) is not None:
            return f"config sets {name}: TRL's head knows each family's logit scaling"
    if getattr(text_config, "output_router_logits", False):
        return "MoE router logits: TRL's head adds the load-balancing loss"
    return None


def add_completion_head(model) -> str | None:
    """Replace TRL's fused head on `model` (or the model PEFT wraps) with the completion-only one.
    Returns None when installed, else the reason TRL's head is kept."""
    owner = head_owner(model)
    blocker = completion_head_blocker(owner)
    if blocker is not None:
        return blocker
    trl_forward = owner.forward

    @functools.wraps(type(owner).forward)  # generate() validates its kwargs against this signature
    def forward(self, *args, fused_lm_head=False, labels=None, shift_labels=None, num_items_in_batch=None, **kwargs):
        lm_head = self.get_output_embeddings()
        if not fused_lm_head or sharded(lm_head.weight):
            # Generation and plain forwards; sharded heads (FSDP2, ZeRO-3), which TRL gathers first.
            return trl_forward(
                *args, fused_lm_head=fused_lm_head, labels=labels, shift_labels=shift_labels, num_items_in_batch=num_items_in_batch, **kwargs
            )
        from ftlab.train import shared_prefix

        kwargs["use_cache"] = False
        layout = None if args else shared_prefix.plan_for(self, kwargs)
        if layout is not None:  # rows that start alike: the prefix computed once (shared_prefix.py)
            hidden = shared_prefix.run(self.base_model, kwargs, layout)
        else:
            hidden = self.base_model(*args, **kwargs).last_hidden_state
        if shift_labels is None:
            hidden, labels = hidden[:, :-1], labels[:, 1:]
        else:
            labels = shift_labels
        hidden, labels = hidden.to(lm_head.weight.device), labels.to(lm_head.weight.device)
        mask = labels != -100
        log_probs, entropy, is_top1 = completion_log_probs(lm_head, hidden[mask], labels[mask])
        # masked_scatter keeps an all-prompt micro-batch connected to the graph (a differentiable zero).
        log_probs, entropy, is_top1 = (x.new_zeros(mask.shape).masked_scatter(mask, x) for x in (log_probs, entropy, is_top1))
        loss = -log_probs.sum() / (mask.sum().clamp(min=1) if num_items_in_batch is None else num_items_in_batch)
        from trl.trainer.utils import FusedCausalLMOutput

        return FusedCausalLMOutput(loss=loss, log_probs=log_probs, entropy=entropy, is_top1=is_top1, label_mask=mask)

    owner.forward = types.MethodType(forward, owner)
    return None


def sharded(weight) -> bool:
    from torch.distributed.tensor import DTensor

    return isinstance(weight, DTensor) or hasattr(weight, "ds_id")


def completion_log_probs(lm_head, rows: torch.Tensor, targets: torch.Tensor):
    """(log p(target), entropy, target is argmax) for each row of `rows` (n, hidden)."""
    if type(lm_head) is torch.nn.Linear:
        from trl.kernels import ChunkedLogProbFunction

        # Never builds the (n, vocab) logits: 4,096-row x 32,768-column tiles, recomputed in backward.
        log_probs, entropy, _, _, is_top1 = ChunkedLogProbFunction.apply(
            rows, head_weight(lm_head), lm_head.bias, targets, 1.0, VOCAB_CHUNK, None, 1.0, OUTPUTS
        )
        return log_probs, entropy, is_top1
    # Any other head module (a LoRA adapter on lm_head, a quantized layer): call it, so its own
    # forward (and its adapter weights, which TRL's kernel would skip by reading .weight) counts.
    # This builds (n, vocab) logits, but for completion rows only.
    logits = lm_head(rows).float()
    log_z = torch.logsumexp(logits, dim=-1)
    log_probs = logits.gather(-1, targets[:, None])[:, 0] - log_z
    with torch.no_grad():
        p = torch.softmax(logits, dim=-1)
        entropy = log_z - (p * logits).sum(-1)
        is_top1 = logits.argmax(-1) == targets
    return log_probs, entropy, is_top1
