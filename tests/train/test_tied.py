"""A tied embedding's gradient built in place (train/tied.py): autograd's numbers, one buffer."""

from __future__ import annotations

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

import ftlab.train.trainer as trainer_module
from ftlab.data.encode import example_ids
from ftlab.data.generate import generators
from ftlab.spec.schema import Method, Train
from ftlab.train.head import head_owner
from ftlab.train.stage import apply_method
from ftlab.train.tied import tied_blocker
from ftlab.train.trainer import TrainerSetup, build_trainer


def _rows(model_dir, n=8):
    tok = AutoTokenizer.from_pretrained(model_dir)
    rows = []
    for e in generators.get("hem")(n=n, split="train", seed=0):
        ids, mask = example_ids(tok, e, 128)
        rows.append({"input_ids": ids, "completion_mask": mask})
    return rows


def _trainer(model_dir, tmp_path, name, in_place: bool, monkeypatch, method=None, **train):
    torch.manual_seed(0)
    model = apply_method(AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32), Method.model_validate(method or {"name": "full"}))
    with monkeypatch.context() as m:
        if not in_place:
            m.setattr(trainer_module, "write_tied_grad_in_place", lambda owner: "off for the reference")
        hp = Train.model_validate({"batch_size": 4, "max_length": 128, "logging_steps": 1000, **train})
        trainer = build_trainer(model, AutoTokenizer.from_pretrained(model_dir), _rows(model_dir), hp, TrainerSetup(tmp_path / name, 0))
    assert trainer.completion_head_blocker is None
    return trainer


def test_gradients_equal_autograds_over_accumulated_micro_batches_with_padding(tiny_model_dir, tmp_path, monkeypatch):
    ours = _trainer(tiny_model_dir, tmp_path, "ours", True, monkeypatch)
    reference = _trainer(tiny_model_dir, tmp_path, "ref", False, monkeypatch)
    assert ours.tied_grad_blocker is None and reference.tied_grad_blocker == "off for the reference"
    embed = head_owner(ours.model).get_input_embeddings()
    assert embed.weight is head_owner(ours.model).get_output_embeddings().weight
    rows = [dict(ours.train_dataset[i]) for i in range(len(ours.train_dataset))]
    batches = [ours.data_collator(rows[:4]), ours.data_collator(rows[4:])]
    pad = embed.padding_idx
    assert pad is not None and any((b["input_ids"] == pad).any() for b in batches)  # padded rows looked up
    grads = []
    for trainer in (ours, reference):
        trainer.model.train()
        trainer.model.zero_grad(set_to_none=True)
        for batch in batches:  # two micro-batches accumulate into one .grad
            trainer.compute_loss(trainer.model, dict(batch), num_items_in_batch=8).backward()
        grads.append({k: p.grad.clone() for k, p in trainer.model.named_parameters()})
    assert grads[0].keys() == grads[1].keys()
    for name in grads[0]:
        torch.testing.assert_close(grads[0][name], grads[1][name], rtol=1e-5, atol=1e-7, msg=name)
    embed_grad = grads[0][next(k for k in grads[0] if "embed_tokens" in k)]
    assert torch.count_nonzero(embed_grad[pad]) == embed_grad.shape[1]  # the output layer's share only
    assert torch.count_nonzero(embed_grad).item() == embed_grad.numel()  # dense: the softmax touches every row


def test_training_steps_give_the_same_weights(tiny_model_dir, tmp_path, monkeypatch):
    trained = []
    for name, in_place in (("ours", True), ("ref", False)):
        trainer = _trainer(tiny_model_dir, tmp_path, name, in_place, monkeypatch, max_steps=2, save_steps=None)
        trainer.args.save_strategy = "no"
        trainer.train()
        trained.append({k: p.detach().clone() for k, p in trainer.model.named_parameters()})
    start = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32).state_dict()
    for name, weight in trained[0].items():
        torch.testing.assert_close(weight, trained[1][name], rtol=1e-5, atol=1e-6, msg=name)
    assert not torch.equal(trained[0]["model.embed_tokens.weight"], start["model.embed_tokens.weight"])


def test_it_stays_out_where_autograd_must_see_the_gradient(tiny_model_dir, untied_model_dir, tmp_path, monkeypatch):
    lora = {"name": "lora", "lora": {"r": 4, "alpha": 8, "dropout": 0.0, "target_modules": ["q_proj", "v_proj"]}}
    assert _trainer(tiny_model_dir, tmp_path, "lora", True, monkeypatch, method=lora).tied_grad_blocker == "the embedding is frozen"
    assert _trainer(untied_model_dir, tmp_path, "untied", True, monkeypatch).tied_grad_blocker == "embeddings are not tied"
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    model.get_input_embeddings().max_norm = 1.0
    assert "options change its backward" in tied_blocker(model)



def test_lookup_backward_is_f_embeddings_with_repeated_ids_and_the_padding_row():
    """Directly against F.embedding: ids repeat (rows add up) and the padding id gets no gradient
    even where its output matters (in a batch, padded positions' outputs never reach the loss)."""
    from ftlab.train.tied import LookupIntoGrad

    torch.manual_seed(0)
    ids = torch.tensor([[3, 7, 3, 0, 5], [0, 7, 7, 2, 3]])
    upstream = torch.randn(2, 5, 6)
    for padding_idx in (None, 0):
        plain = torch.randn(10, 6, requires_grad=True)
        ours = plain.detach().clone().requires_grad_(True)
        torch.nn.functional.embedding(ids, plain, padding_idx).backward(upstream)
        LookupIntoGrad.apply(ids, ours, padding_idx).backward(upstream)
        torch.testing.assert_close(ours.grad, plain.grad, rtol=1e-6, atol=1e-7)
    assert torch.count_nonzero(ours.grad[0]) == 0 and torch.count_nonzero(ours.grad[7]) > 0
