"""LoRA linear layers in one autograd node: the adapter's product accumulated into the base GEMM.

    fused = lora_kernel.install(peft_model)   # how many LoRA linear layers now take the fused path

PEFT computes `result = base(x) + lora_B(lora_A(x)) * scaling`: two full-size passes over the
output (the multiply, then the out-of-place add) per adapted layer per forward, and in the backward
another multiply plus one more gradient for autograd to sum into x's. Here the adapter's product is
added inside the base's output buffer by one addmm (alpha = scaling), and the backward builds x's
gradient with one GEMM plus an accumulating addmm. The arithmetic is PEFT's; only the rounding of
that sum differs (fp32: ~1e-7 relative). Nothing else changes: the same parameters, state dict,
adapter files, merging.

Why: on CPU those elementwise passes are memory-bound and each allocates a fresh output; on
SmolLM2-135M with LoRA on all seven linear layers of its 30 blocks they were a tenth of a training
step (BENCHMARKS.md, issue 23). Measured on CPU only: on a GPU, under autocast, with dropout, DoRA,
several active adapters, a quantized or hooked base layer, or a base that trains too, the layer
takes PEFT's own forward (`fusable`).
"""

from __future__ import annotations

import torch


class _LoraLinear(torch.autograd.Function):
    """y = x W^T (+ bias) + scaling * (x A^T) B^T with W and bias frozen."""

    @staticmethod
    def forward(ctx, x, weight, bias, lora_a, lora_b, scaling: float):
        flat = x.reshape(-1, x.shape[-1])
        down = flat.mm(lora_a.t())  # (positions, r): all the adapter needs to keep besides x
        out = torch.addmm(bias, flat, weight.t()) if bias is not None else flat.mm(weight.t())
        out.addmm_(down, lora_b.t(), alpha=scaling)
        ctx.save_for_backward(x, weight, lora_a, lora_b, down)
        ctx.scaling = scaling
        return out.view(*x.shape[:-1], out.shape[-1])

    @staticmethod
    def backward(ctx, grad):
        x, weight, lora_a, lora_b, down = ctx.saved_tensors
        scaling = ctx.scaling
        g = grad.reshape(-1, grad.shape[-1])
        g_down = g.mm(lora_b).mul_(scaling)  # (positions, r)
        grad_x = grad_a = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_x = g.mm(weight).addmm_(g_down, lora_a).view(x.shape)
        if ctx.needs_input_grad[3]:
            grad_a = g_down.t().mm(x.reshape(-1, x.shape[-1]))
        if ctx.needs_input_grad[4]:
            grad_b = g.t().mm(down).mul_(scaling)
        return grad_x, None, None, grad_a, grad_b, None


def fusable(layer, x: torch.Tensor) -> bool:
    """Whether `layer` (a PEFT lora.Linear) computes exactly `_LoraLinear` for input `x` now."""
    if layer.disable_adapters or layer.merged or len(layer.active_adapters) != 1:
        return False
    name = layer.active_adapters[0]
    if name not in layer.lora_A or name in layer.lora_variant:
        return False
    base, a, b = layer.base_layer, layer.lora_A[name], layer.lora_B[name]
    if type(base) is not torch.nn.Linear or b.bias is not None or not isinstance(layer.lora_dropout[name], torch.nn.Identity):
        return False
    if any(m._forward_hooks or m._forward_pre_hooks or hasattr(m, "_hf_hook") for m in (base, a, b)):
        return False
    if base.weight.requires_grad or (base.bias is not None and base.bias.requires_grad):
        return False
    if x.device.type != "cpu" or torch.is_autocast_enabled("cpu"):
        return False
    return x.dtype == base.weight.dtype == a.weight.dtype == b.weight.dtype


def _peft_linear():
    from peft.tuners.lora.layer import Linear

    return Linear


def _fused_class():
    base = _peft_linear()

    class FusedLinear(base):
        """PEFT's lora.Linear, with `_LoraLinear` as its forward wherever `fusable` holds."""

        def forward(self, x, *args, **kwargs):
            if args or kwargs or not fusable(self, x):
                return super().forward(x, *args, **kwargs)
            name = self.active_adapters[0]
            base = self.base_layer
            return _LoraLinear.apply(x, base.weight, base.bias, self.lora_A[name].weight, self.lora_B[name].weight,
                                     float(self.scaling[name]))

    return FusedLinear


_FUSED = None


def install(model) -> int:
    """Give every PEFT lora.Linear of `model` the fused forward (in place); returns how many."""
    global _FUSED
    if _FUSED is None:
        _FUSED = _fused_class()
    linear = _peft_linear()
    count = 0
    for module in model.modules():
        if type(module) is linear:
            module.__class__ = _FUSED
            count += 1
    return count
