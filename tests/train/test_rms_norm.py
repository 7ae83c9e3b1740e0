"""RMSNorms through torch's fused kernel: the module's outputs and gradients, bit for bit in fp32;
a norm whose formula differs keeps its own forward."""

from __future__ import annotations

import copy

import torch
from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

from ftlab.spec.schema import Method
from ftlab.train import rms_norm
from ftlab.train.stage import apply_method


def models():
    torch.manual_seed(0)
    shape = dict(vocab_size=97, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2)
    for model in (Qwen2ForCausalLM(Qwen2Config(**shape)), LlamaForCausalLM(LlamaConfig(**shape))):
        for p in model.parameters():
            if p.dim() == 1:
                torch.nn.init.normal_(p)  # norm weights away from 1, so the weight's role is tested
        yield model


def test_fused_norms_give_the_same_loss_and_gradients():
    for plain in models():
        fused = copy.deepcopy(plain)
        assert rms_norm.install(fused) == 5  # 2 per layer x 2 layers + the final norm
        assert all(type(m).__name__.startswith("Fused") for m in fused.modules() if type(m).__name__.endswith("RMSNorm"))
        ids = torch.randint(0, 97, (2, 11), generator=torch.Generator().manual_seed(1))
        losses = []
        for model in (plain, fused):
            loss = model(input_ids=ids, labels=ids).loss
            loss.backward()
            losses.append(loss.item())
        assert losses[0] == losses[1]
        for (name, a), b in zip(plain.named_parameters(), fused.parameters()):
            assert torch.allclose(a.grad, b.grad, rtol=1e-6, atol=1e-8), name


class GemmaStyleRMSNorm(torch.nn.Module):
    """Scales by (1 + w), as Gemma's norms do: not what the fused kernel computes."""

    def __init__(self, hidden: int):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(hidden))
        self.variance_epsilon = 1e-6

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.variance_epsilon) * (1 + self.weight)


def test_a_norm_with_another_formula_is_left_alone():
    holder = torch.nn.Sequential(GemmaStyleRMSNorm(16))
    assert not rms_norm.equivalent(holder[0])
    assert rms_norm.install(holder) == 0 and type(holder[0]) is GemmaStyleRMSNorm


def test_bf16_inputs_take_the_module_s_own_forward():
    model = next(models())
    rms_norm.install(model)
    norm = model.model.norm
    x = torch.randn(2, 3, 64).bfloat16()
    assert torch.equal(norm(x), type(norm).__mro__[1].forward(norm, x))


def test_apply_method_swaps_the_norms_for_every_method():
    for method in ("full", "lora"):
        model = apply_method(next(models()), Method(name=method))
        assert sum(type(m).__name__ == "FusedQwen2RMSNorm" for m in model.modules()) == 5
