"""The fused LoRA layer computes PEFT's LoRA: same outputs, same gradients, same adapter files;
PEFT's own forward wherever the fused one would not be the same arithmetic."""

from __future__ import annotations

import copy
import functools

import pytest
import torch
from peft import LoraConfig, get_peft_model
from peft.tuners.lora.layer import Linear as PeftLinear
from torch.utils.checkpoint import checkpoint
from transformers import Qwen2Config, Qwen2ForCausalLM

from ftlab.spec.schema import Method
from ftlab.train import lora_kernel
from ftlab.train.stage import apply_method


def tiny_qwen2() -> Qwen2ForCausalLM:
    """Qwen2: its q/k/v projections have biases, so the fused layer's bias path is exercised."""
    torch.manual_seed(0)
    config = Qwen2Config(vocab_size=97, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                         num_key_value_heads=2, attn_implementation="sdpa")
    return Qwen2ForCausalLM(config)


def peft_pair(dropout: float = 0.0):
    """(PEFT's model, a copy with the fused layers); B is drawn non-zero so the adapters matter."""
    config = LoraConfig(r=8, lora_alpha=16, lora_dropout=dropout, target_modules="all-linear", init_lora_weights=False)
    plain = get_peft_model(tiny_qwen2(), config)
    fused = copy.deepcopy(plain)
    assert lora_kernel.install(fused) == 14  # 7 linear layers x 2 blocks
    return plain, fused


def grads_after_step(model, ids, mask) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    model.train()
    out = model(input_ids=ids, attention_mask=mask, labels=ids)
    out.loss.backward()
    return out.logits.detach(), {n: p.grad for n, p in model.named_parameters() if p.requires_grad}


def batch():
    ids = torch.randint(0, 97, (3, 19), generator=torch.Generator().manual_seed(1))
    mask = torch.ones_like(ids)
    mask[1, :5] = 0  # a left-padded row, as training batches have
    return ids, mask


@pytest.mark.parametrize("checkpointed", [False, True], ids=["plain", "activation-checkpointing"])
def test_fused_layer_gives_peft_outputs_and_gradients(checkpointed: bool):
    plain, fused = peft_pair()
    if checkpointed:
        for model in (plain, fused):
            model.base_model.model._set_gradient_checkpointing(enable=True, gradient_checkpointing_func=functools.partial(checkpoint, use_reentrant=False))
            model.base_model.model.enable_input_require_grads()
    ids, mask = batch()
    logits_plain, grads_plain = grads_after_step(plain, ids, mask)
    logits_fused, grads_fused = grads_after_step(fused, ids, mask)
    assert torch.allclose(logits_fused, logits_plain, rtol=1e-5, atol=1e-5)
    assert grads_fused.keys() == grads_plain.keys() and len(grads_plain) == 28  # A and B of 14 layers
    for name, grad in grads_plain.items():
        assert grads_fused[name] is not None, name
        assert torch.allclose(grads_fused[name], grad, rtol=1e-4, atol=1e-6), name
    # the fused path is the one that ran (a copy that had kept PEFT's layers would pass the above trivially)
    assert all(type(m).__name__ == "FusedLinear" for m in fused.modules() if isinstance(m, PeftLinear))


def test_the_adapter_files_are_peft_s():
    plain, fused = peft_pair()
    assert fused.state_dict().keys() == plain.state_dict().keys()
    from peft import get_peft_model_state_dict

    saved_plain, saved_fused = get_peft_model_state_dict(plain), get_peft_model_state_dict(fused)
    assert saved_fused.keys() == saved_plain.keys()
    assert all(torch.equal(saved_fused[k], saved_plain[k]) for k in saved_plain)


def test_where_the_arithmetic_differs_peft_s_forward_runs():
    ids, mask = batch()
    # dropout: PEFT draws a mask on x for the adapter only, which one addmm cannot do
    plain, fused = peft_pair(dropout=0.1)
    layer = fused.base_model.model.model.layers[0].self_attn.q_proj
    x = torch.randn(2, 5, 64)
    assert not lora_kernel.fusable(layer, x)
    torch.manual_seed(3)
    a = plain(input_ids=ids, attention_mask=mask).logits
    torch.manual_seed(3)
    b = fused(input_ids=ids, attention_mask=mask).logits
    assert torch.equal(a, b)
    # adapters disabled, or merged into the base: the base layer alone
    plain, fused = peft_pair()
    layer = fused.base_model.model.model.layers[0].self_attn.q_proj
    assert lora_kernel.fusable(layer, x)
    with fused.disable_adapter():
        assert not lora_kernel.fusable(layer, x)
        assert torch.equal(layer(x), layer.base_layer(x))
    layer.merge()
    assert not lora_kernel.fusable(layer, x)
    layer.unmerge()
    # a base that trains too: the fused layer computes no gradient for it
    layer.base_layer.weight.requires_grad_(True)
    assert not lora_kernel.fusable(layer, x)


def test_apply_method_fuses_lora_and_leaves_full_fine_tuning_alone():
    lora = apply_method(tiny_qwen2(), Method(name="lora"))
    assert {type(m).__name__ for m in lora.modules() if isinstance(m, PeftLinear)} == {"FusedLinear"}
    full = apply_method(tiny_qwen2(), Method(name="full"))
    assert not any(isinstance(m, PeftLinear) for m in full.modules())
