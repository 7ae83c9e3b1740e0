"""A right-padded training batch attends causally without its padding mask: same loss, same
gradients; left padding, evaluation and a cache keep the mask."""

from __future__ import annotations

import copy

import torch
from transformers import Qwen2Config, Qwen2ForCausalLM

from ftlab.spec.schema import Method
from ftlab.train import padding_mask
from ftlab.train.stage import apply_method


def tiny() -> Qwen2ForCausalLM:
    torch.manual_seed(0)
    config = Qwen2Config(vocab_size=97, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                         num_key_value_heads=2, attn_implementation="sdpa")
    return Qwen2ForCausalLM(config)


def right_padded_batch():
    ids = torch.randint(0, 97, (3, 23), generator=torch.Generator().manual_seed(1))
    mask = torch.ones_like(ids)
    mask[1, -7:] = 0
    mask[2, -15:] = 0
    labels = ids.masked_fill(mask == 0, -100)  # as TRL's collator: pads carry no labels
    return ids, mask, labels


def seen_masks(model) -> list:
    """The attention_mask each decoder layer's attention is called with."""
    seen = []
    for layer in model.model.layers:
        layer.self_attn.register_forward_pre_hook(lambda m, a, kw: seen.append(kw.get("attention_mask")), with_kwargs=True)
    return seen


def test_right_padded_batch_trains_without_the_mask_to_the_same_loss_and_gradients():
    plain = tiny()
    dropped = copy.deepcopy(plain)
    padding_mask.install(dropped)
    masks = seen_masks(dropped)
    ids, mask, labels = right_padded_batch()
    losses, grads = [], []
    for model in (plain, dropped):
        model.train()
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        losses.append(loss.detach())
        grads.append({n: p.grad for n, p in model.named_parameters()})
    assert masks and all(m is None for m in masks)  # SDPA ran is_causal, no mask tensor
    assert torch.allclose(losses[0], losses[1], rtol=1e-6, atol=0)
    for name, grad in grads[0].items():
        assert torch.allclose(grads[1][name], grad, rtol=1e-4, atol=1e-7), name


def test_left_padding_evaluation_and_a_cache_keep_the_mask():
    model = tiny()
    padding_mask.install(model)
    masks = seen_masks(model)
    ids, mask, _ = right_padded_batch()
    model.train()
    model(input_ids=ids, attention_mask=mask.flip(1))  # left-padded
    assert masks[-1] is not None
    model.eval()
    with torch.no_grad():
        model(input_ids=ids, attention_mask=mask)
    assert masks[-1] is not None
    assert not padding_mask.right_padded(mask.flip(1)) and padding_mask.right_padded(mask)
    assert not padding_mask.right_padded(torch.tensor([[0, 0], [1, 0]]))  # a row without a token


def test_apply_method_installs_it_once_for_every_method():
    for method in ("full", "lora"):
        model = apply_method(tiny(), Method(name=method))
        body = model.get_base_model().model if method == "lora" else model.model
        assert len(body._forward_pre_hooks) == 1
        padding_mask.install(model)
        assert len(body._forward_pre_hooks) == 1
