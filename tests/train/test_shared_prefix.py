"""Rows that share a prefix compute it once (train/shared_prefix.py): the same hidden states, loss
and gradients as the plain forward, with and without checkpointing; batches that do not qualify and
models whose attention it cannot serve keep the plain forward."""

from __future__ import annotations

import pytest
import torch
from transformers import Qwen2Config, Qwen2ForCausalLM

from ftlab.spec.schema import Method, Train
from ftlab.train import shared_prefix
from ftlab.train.stage import apply_method

LORA = Method.model_validate({"name": "lora", "lora": {"r": 4, "alpha": 8, "target_modules": "all-linear"}})


def tiny(**config) -> Qwen2ForCausalLM:
    torch.manual_seed(0)
    config = Qwen2Config(vocab_size=400, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                         num_key_value_heads=2, attn_implementation="sdpa", **config)
    return Qwen2ForCausalLM(config)


def shared_batch(prefix: int = 20, rows: int = 4, length: int = 41):
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(10, 390, (rows, length), generator=g)
    ids[:, :prefix] = ids[0, :prefix]
    mask = torch.ones_like(ids)
    mask[1, -7:] = 0  # right padding, as TRL's collator pads
    mask[3, -15:] = 0
    return ids, mask


def forward_and_grads(model, ids, mask, shared: bool):
    body = model.get_base_model().model
    kwargs = {"input_ids": ids, "attention_mask": mask, "use_cache": False}
    model.zero_grad(set_to_none=True)
    if shared:
        layout = shared_prefix.plan(kwargs)
        assert layout == shared_prefix.Layout(20, 4, 21)
        hidden = shared_prefix.run(body, kwargs, layout)
    else:
        hidden = body(**kwargs).last_hidden_state
    weights = torch.linspace(-1, 1, hidden.shape[-1])
    ((hidden @ weights) * mask).sum().backward()  # pad positions carry no loss, as in training
    return hidden.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("checkpointing,grouped", [(False, True), (True, True), (False, False)])
def test_the_shared_layout_gives_the_plain_hidden_states_and_gradients(checkpointing, grouped, monkeypatch):
    # grouped=False: the key/value heads repeated per query head, as on CUDA
    monkeypatch.setattr(shared_prefix, "grouped_heads_in_kernel", lambda device: grouped)
    model = apply_method(tiny(), LORA)
    assert shared_prefix.installed(model)
    torch.nn.init.normal_(model.base_model.model.model.layers[0].self_attn.q_proj.lora_B["default"].weight)  # B = 0 hides A's gradient
    if checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.train()
    ids, mask = shared_batch()
    plain, plain_grads = forward_and_grads(model, ids, mask, shared=False)
    shared, shared_grads = forward_and_grads(model, ids, mask, shared=True)
    real = mask.bool()
    assert torch.allclose(plain[real], shared[real], atol=1e-5)
    assert plain_grads.keys() == shared_grads.keys() and len(plain_grads) > 0
    for name, grad in plain_grads.items():
        assert torch.allclose(grad, shared_grads[name], atol=1e-5, rtol=1e-4), name
    assert any(g.abs().sum() > 0 for n, g in plain_grads.items() if "lora_A" in n)


def test_batches_that_do_not_qualify_keep_the_plain_forward():
    ids, mask = shared_batch()
    assert shared_prefix.plan({"input_ids": ids, "attention_mask": mask}) is not None
    left = mask.flip(1)
    assert shared_prefix.plan({"input_ids": ids, "attention_mask": left}) is None  # left padding
    assert shared_prefix.plan({"input_ids": ids[:1], "attention_mask": mask[:1]}) is None  # one row
    positions = torch.arange(ids.shape[1]).expand_as(ids)
    assert shared_prefix.plan({"input_ids": ids, "attention_mask": mask, "position_ids": positions}) is None
    short, _ = shared_batch(prefix=shared_prefix.MIN_PREFIX - 1)
    short[:, shared_prefix.MIN_PREFIX - 1] = torch.arange(4)  # rows part one position before the minimum
    assert shared_prefix.plan({"input_ids": short, "attention_mask": mask}) is None
    same = ids[:1].expand(3, -1)  # identical rows: each keeps its last position
    assert shared_prefix.plan({"input_ids": same}) == shared_prefix.Layout(ids.shape[1] - 1, 3, 1)
    assert shared_prefix.rows_prefix([r.tolist() for r in ids]) == 20
    # a short prefix before long remainders: the remainders' extra attention costs more than it saves
    assert shared_prefix.plan({"input_ids": ids, "attention_mask": mask}, ratio=1.0) is None
    assert shared_prefix.Layout(31, 8, 170).worth_it(3073) and not shared_prefix.Layout(31, 8, 1000).worth_it(3073)
    assert shared_prefix.position_to_pair(tiny()) == 2 * (64 * 64 * 2 + 64 * 32 * 2 + 64 + 2 * 32 + 3 * 64 * 128 + 2 * 64) / (4 * 64)
    assert shared_prefix.rows_prefix([r.tolist() for r in short]) == 0


def test_attention_it_cannot_serve_keeps_the_model_s_own():
    eager = tiny()
    eager.set_attn_implementation("eager")
    assert not shared_prefix.install(eager)
    windowed = tiny(use_sliding_window=True, sliding_window=4, max_window_layers=0)  # the probe's rows are longer
    assert not shared_prefix.install(windowed)
    assert windowed.config._attn_implementation == "sdpa"


def test_a_model_saved_with_it_installed_loads_anywhere(tmp_path):
    model = tiny()
    assert shared_prefix.install(model)
    model.save_pretrained(tmp_path)
    assert shared_prefix.NAME not in (tmp_path / "config.json").read_text()
    # and the installed model generates as SDPA does (no layout: transformers' masks, SDPA's kernel)
    ids, mask = shared_batch()
    plain = tiny()
    with torch.no_grad():
        assert torch.equal(model(input_ids=ids, attention_mask=mask.flip(1)).logits, plain(input_ids=ids, attention_mask=mask.flip(1)).logits)


def test_training_through_the_trainer_takes_the_layout_and_the_same_losses(tiny_model_dir, tmp_path, monkeypatch):
    from transformers import AutoTokenizer

    from ftlab.train.trainer import TrainerSetup, build_trainer

    ids, _ = shared_batch(prefix=30, rows=8, length=50)
    rows = [{"input_ids": r[: 40 + i].tolist(), "completion_mask": [0] * (38 + i) + [1, 1]} for i, r in enumerate(ids)]
    hp = Train(batch_size=4, max_steps=3, max_length=512, logging_steps=1, learning_rate=1e-3, activation_checkpointing=False)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    runs = {}
    calls = []
    real_run = shared_prefix.run
    monkeypatch.setattr(shared_prefix, "run", lambda *a: calls.append(a[2]) or real_run(*a))
    for shared in (True, False):
        model = apply_method(tiny(), LORA)
        if not shared:
            model.get_base_model().set_attn_implementation("sdpa")
        trainer = build_trainer(model, tokenizer, rows, hp, TrainerSetup(tmp_path / str(shared), 0))
        trainer.args.save_strategy, trainer.args.disable_tqdm = "no", True
        trainer.train()
        runs[shared] = [e["loss"] for e in trainer.state.log_history if "loss" in e]
    steps = [c for c in calls if c != shared_prefix.Layout(**shared_prefix._PROBE)]  # install's probe runs it too
    assert len(steps) == 3 and all(c.prefix == 30 and c.rows == 4 for c in steps)  # every step, only while installed
    assert len(runs[True]) == 3
    assert runs[True] == pytest.approx(runs[False], rel=1e-5)
