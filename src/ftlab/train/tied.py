"""A tied embedding's gradient built in place: one vocabulary-sized buffer in backward, not two.

    blocker = write_tied_grad_in_place(trainer.model)   # None when installed, else why not

Models with tied input and output embeddings (Qwen2.5-0.5B/1.5B/3B, Llama 3.2 1B/3B, Gemma)
use one (vocabulary x hidden) weight twice. Autograd gives each use its own full-size gradient:
the output layer's (dense: the softmax touches every row) as soon as backward starts, then the
input lookup's (a dense zero matrix with the batch's rows added) at the very end, and only then
sums them into `.grad`. For full fine-tuning at a 152k vocabulary that second buffer is the
largest allocation of the step (hidden 896: 0.54 GB fp32), on top of weights, gradients and AdamW
state. Here the output layer's gradient becomes `.grad` directly (stolen, not copied), and the
lookup's backward adds its rows into it with `index_put_(accumulate=True)`, deterministic on CPU
and CUDA. Same sums in another order: gradients equal autograd's to float rounding (tests).

Only where nothing else watches the weight's gradient arrive: one process (DDP and FSDP hook
AccumulateGrad, which this bypasses), a plain `nn.Embedding` (no max_norm, no frequency scaling,
no sparse gradient) whose weight is the output layer's and is trained (LoRA freezes it).
"""

from __future__ import annotations

import types

import torch

INSTALLED = "_ftlab_tied_grad_in_place"  # marks the output layer whose weight routes through IntoGrad


class IntoGrad(torch.autograd.Function):
    """Identity on a leaf weight; backward writes the incoming gradient into `weight.grad`."""

    @staticmethod
    def forward(ctx, weight):
        ctx.weight = weight
        return weight.view_as(weight)

    @staticmethod
    def backward(ctx, grad):
        _add_to_grad(ctx.weight, grad)
        return None


class LookupIntoGrad(torch.autograd.Function):
    """F.embedding whose backward adds the looked-up rows' gradients into `weight.grad` in place."""

    @staticmethod
    def forward(ctx, ids, weight, padding_idx):
        ctx.save_for_backward(ids)
        ctx.weight, ctx.padding_idx = weight, padding_idx
        return torch.nn.functional.embedding(ids, weight.detach(), padding_idx)

    @staticmethod
    def backward(ctx, grad):
        (ids,) = ctx.saved_tensors
        ids, rows = ids.reshape(-1), grad.reshape(-1, grad.shape[-1])
        if ctx.padding_idx is not None:  # F.embedding gives the padding row no gradient
            keep = ids != ctx.padding_idx
            ids, rows = ids[keep], rows[keep]
        weight = ctx.weight
        if weight.grad is None:
            weight.grad = torch.zeros_like(weight)
        weight.grad.index_put_((ids,), rows.to(weight.grad.dtype), accumulate=True)
        return None, None, None


def _add_to_grad(weight: torch.Tensor, grad: torch.Tensor) -> None:
    if weight.grad is None:
        # Steal a fresh buffer (TRL's kernel returns one); a view of another tensor is copied.
        owned = grad._base is None and grad.is_contiguous() and grad.dtype == weight.dtype
        weight.grad = grad if owned else grad.to(weight.dtype, memory_format=torch.contiguous_format, copy=True)
    else:
        weight.grad.add_(grad)


def head_weight(lm_head) -> torch.Tensor:
    """The output layer's weight as the loss should use it: through IntoGrad when installed."""
    weight = lm_head.weight
    if getattr(lm_head, INSTALLED, False) and torch.is_grad_enabled() and weight.requires_grad:
        return IntoGrad.apply(weight)
    return weight


def tied_blocker(owner) -> str | None:
    """Why the in-place tied gradient does not apply to `owner` (the model owning lm_head), or None."""
    embed, head = owner.get_input_embeddings(), owner.get_output_embeddings()
    if head is None or type(embed) is not torch.nn.Embedding or type(head) is not torch.nn.Linear:
        return "not a plain embedding and linear output layer"
    if embed.weight is not head.weight:
        return "embeddings are not tied"
    if not embed.weight.requires_grad:
        return "the embedding is frozen"
    if embed.max_norm is not None or embed.scale_grad_by_freq or embed.sparse:
        return "embedding options change its backward"
    if torch.distributed.is_available() and torch.distributed.is_initialized() and torch.distributed.get_world_size() > 1:
        return "distributed training hooks each gradient's accumulation"
    return None


def write_tied_grad_in_place(owner) -> str | None:
    """Install on `owner` (the transformers model owning lm_head; the completion head must read the
    weight through head_weight). Returns None when installed, else the reason it is not."""
    blocker = tied_blocker(owner)
    if blocker is not None:
        return blocker
    embed = owner.get_input_embeddings()

    def forward(self, ids):
        if torch.is_grad_enabled() and self.weight.requires_grad:
            return LookupIntoGrad.apply(ids, self.weight, self.padding_idx)
        return torch.nn.functional.embedding(ids, self.weight, self.padding_idx)

    embed.forward = types.MethodType(forward, embed)
    setattr(owner.get_output_embeddings(), INSTALLED, True)
    return None
