"""Completion-only output layer (train/head.py): TRL's loss, gradients and metrics, fewer rows."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from datasets import Dataset
from transformers import AutoModelForCausalLM, AutoTokenizer
from trl import SFTConfig, SFTTrainer

from ftlab.data.encode import example_ids
from ftlab.data.generate import generators
from ftlab.spec.schema import Method, Train
from ftlab.train.head import add_completion_head, head_owner
from ftlab.train.loss import WEIGHT, WeightedSFTTrainer, sample_weight
from ftlab.train.trainer import TrainerSetup, build_trainer

LORA = {"name": "lora", "lora": {"r": 4, "alpha": 8, "dropout": 0.0, "target_modules": ["q_proj", "v_proj"]}}


def _rows(model_dir, gamma: float) -> list[dict]:
    tok = AutoTokenizer.from_pretrained(model_dir)
    rows = []
    for e in generators.get("hem")(n=8, split="train", seed=0):
        ids, mask = example_ids(tok, e, 128)
        rows.append({"input_ids": ids, "completion_mask": mask, WEIGHT: sample_weight(e.label, positive="P", variant="accept", gamma=gamma)})
    return rows


def _model(model_dir, method):
    from ftlab.train.stage import apply_method

    torch.manual_seed(0)  # LoRA's A matrices
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    return apply_method(model, Method.model_validate(method or {"name": "full"}))


def _ftlab(model_dir, tmp_path, rows, method=None, weighted=True):
    hp = Train(batch_size=8, max_length=128)
    trainer = build_trainer(_model(model_dir, method), AutoTokenizer.from_pretrained(model_dir), rows, hp, TrainerSetup(tmp_path / "f", 0, weighted))
    assert trainer.completion_head_blocker is None
    return trainer


def _trl(cls, model_dir, tmp_path, rows, method=None):
    args = SFTConfig(output_dir=str(tmp_path / cls.__name__), report_to="none", use_cpu=True, activation_checkpointing=False, bf16=False, max_length=128)
    return cls(model=_model(model_dir, method), args=args, train_dataset=Dataset.from_list(rows), processing_class=AutoTokenizer.from_pretrained(model_dir))


def _loss_and_grads(trainer, batch, n):
    trainer.model.train()  # the "train" metrics; the tiny models have no dropout
    trainer.model.zero_grad()
    loss = trainer.compute_loss(trainer.model, dict(batch), num_items_in_batch=n)
    loss.backward()
    grads = {k: p.grad.clone() for k, p in trainer.model.named_parameters() if p.requires_grad}
    metrics = {k: v[-1] for k, v in trainer._metrics["train"].items() if k in ("entropy", "mean_token_accuracy")}
    return loss.detach(), grads, metrics


def _compare(ours, theirs):
    (loss_a, grads_a, metrics_a), (loss_b, grads_b, metrics_b) = ours, theirs
    assert abs(loss_a.item() - loss_b.item()) < 1e-6
    assert grads_a.keys() == grads_b.keys() and grads_a
    for name in grads_a:
        torch.testing.assert_close(grads_a[name], grads_b[name], rtol=1e-5, atol=1e-6, msg=name)
    assert metrics_a["mean_token_accuracy"] == pytest.approx(metrics_b["mean_token_accuracy"], abs=1e-9)
    assert metrics_a["entropy"] == pytest.approx(metrics_b["entropy"], rel=1e-5)


@pytest.mark.parametrize("tied", [True, False])
@pytest.mark.parametrize("method", [None, LORA], ids=["full", "lora"])
def test_weighted_gamma_one_equals_trl_sft_loss_gradients_and_metrics(tiny_model_dir, untied_model_dir, tmp_path, tied, method):
    model_dir = tiny_model_dir if tied else untied_model_dir
    rows = _rows(model_dir, gamma=1.0)
    ours = _ftlab(model_dir, tmp_path, rows, method)
    theirs = _trl(SFTTrainer, model_dir, tmp_path, [{k: v for k, v in r.items() if k != WEIGHT} for r in rows], method)
    batch = ours.data_collator([dict(ours.train_dataset[i]) for i in range(len(rows))])
    n = int((batch["labels"] != -100).sum())
    assert n < batch["labels"].numel() / 4  # the prompt dominates: most positions are skipped
    _compare(_loss_and_grads(ours, batch, n), _loss_and_grads(theirs, {k: v for k, v in batch.items() if k != WEIGHT}, n))


def test_weighted_gamma_four_equals_the_weighted_loss_on_trls_head(tiny_model_dir, tmp_path):
    rows = _rows(tiny_model_dir, gamma=4.0)
    assert {r[WEIGHT] for r in rows} == {1.0, 4.0}
    ours = _ftlab(tiny_model_dir, tmp_path, rows)
    theirs = _trl(WeightedSFTTrainer, tiny_model_dir, tmp_path, rows)  # TRL's all-position head, same weighting
    batch = ours.data_collator([dict(ours.train_dataset[i]) for i in range(len(rows))])
    n = int((batch["labels"] != -100).sum())
    _compare(_loss_and_grads(ours, batch, n), _loss_and_grads(theirs, batch, n))


def test_unweighted_trainer_uses_it_too_and_all_prompt_batch_is_a_differentiable_zero(tiny_model_dir, tmp_path):
    rows = [{k: v for k, v in r.items() if k != WEIGHT} for r in _rows(tiny_model_dir, gamma=1.0)]
    trainer = _ftlab(tiny_model_dir, tmp_path, rows, weighted=False)
    batch = trainer.data_collator([dict(trainer.train_dataset[i]) for i in range(2)])
    batch["labels"][:] = -100
    loss = trainer.compute_loss(trainer.model, dict(batch))
    loss.backward()
    assert loss.item() == 0.0


def test_other_head_modules_go_through_their_own_forward_with_the_same_numbers():
    """A head that is not a plain nn.Linear (a quantized layer, a wrapper) is called as a module:
    its own forward counts. TRL rejects LoRA on lm_head, so a Linear subclass stands in."""
    from ftlab.train.head import completion_log_probs

    class Wrapped(torch.nn.Linear):
        pass

    torch.manual_seed(0)
    plain = torch.nn.Linear(16, 300, bias=False)
    wrapped = Wrapped(16, 300, bias=False)
    wrapped.weight.data.copy_(plain.weight.data)
    rows = torch.randn(12, 16, requires_grad=True)
    targets = torch.randint(0, 300, (12,))
    results = []
    for head in (plain, wrapped):
        rows.grad = None
        log_probs, entropy, is_top1 = completion_log_probs(head, rows, targets)
        (-log_probs.sum()).backward()
        results.append((log_probs.detach(), entropy.detach(), is_top1, rows.grad.clone(), head.weight.grad.clone()))
    for a, b in zip(*results):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    expected = torch.log_softmax(rows.detach() @ plain.weight.detach().T, -1).gather(-1, targets[:, None])[:, 0]
    torch.testing.assert_close(results[1][0], expected, rtol=1e-6, atol=1e-6)


def test_plain_forward_and_generation_are_untouched(tiny_model_dir, tmp_path):
    rows = [{k: v for k, v in r.items() if k != WEIGHT} for r in _rows(tiny_model_dir, gamma=1.0)]
    trainer = _ftlab(tiny_model_dir, tmp_path, rows, weighted=False)
    reference = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    ids = torch.tensor([rows[0]["input_ids"]])
    assert torch.equal(trainer.model(input_ids=ids).logits, reference(input_ids=ids).logits)
    greedy = dict(max_new_tokens=5, do_sample=False, pad_token_id=0)
    assert torch.equal(trainer.model.generate(ids, **greedy), reference.generate(ids, **greedy))


def test_configs_it_cannot_serve_keep_trls_head_and_say_why(tiny_model_dir, tmp_path):
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    assert "not installed" in add_completion_head(model)  # no SFTTrainer, no fused head to replace
    model.config.final_logit_softcapping = 30.0
    rows = [{k: v for k, v in r.items() if k != WEIGHT} for r in _rows(tiny_model_dir, gamma=1.0)]
    trainer = SFTTrainer(model=model, args=SFTConfig(output_dir=str(tmp_path), report_to="none", use_cpu=True, bf16=False), train_dataset=Dataset.from_list(rows))
    trl_forward = head_owner(trainer.model).forward
    assert "final_logit_softcapping" in add_completion_head(trainer.model)
    assert head_owner(trainer.model).forward == trl_forward
