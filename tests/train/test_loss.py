"""Sample-level class-weighted loss: gamma = 1 is TRL's loss exactly; weights follow labels, not batches."""

from __future__ import annotations

import torch
from datasets import Dataset
from transformers import AutoModelForCausalLM, AutoTokenizer
from trl import SFTConfig, SFTTrainer

from ftlab.data.encode import example_ids
from ftlab.data.generate import generators
from ftlab.train.loss import WEIGHT, WeightedSFTTrainer, sample_weight, weighted_loss


def _trainer(cls, model_dir, tmp_path, rows):
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    args = SFTConfig(output_dir=str(tmp_path), report_to="none", use_cpu=True, activation_checkpointing=False, bf16=False, max_length=128)
    return cls(model=model, args=args, train_dataset=Dataset.from_list(rows), processing_class=tok)


def _rows(model_dir, gamma: float, variant: str = "accept"):
    tok = AutoTokenizer.from_pretrained(model_dir)
    rows = []
    for e in generators.get("hem")(n=8, split="train", seed=0):
        ids, mask = example_ids(tok, e, 128)
        rows.append({"input_ids": ids, "completion_mask": mask, WEIGHT: sample_weight(e.label, positive="P", variant=variant, gamma=gamma)})
    return rows


def _batch(trainer, rows):
    batch = trainer.data_collator(rows)
    return {k: v for k, v in batch.items()}


def test_gamma_one_equals_trl_loss_bit_for_bit(tiny_model_dir, tmp_path):
    rows = _rows(tiny_model_dir, gamma=1.0)
    weighted = _trainer(WeightedSFTTrainer, tiny_model_dir, tmp_path / "w", rows)
    plain = _trainer(SFTTrainer, tiny_model_dir, tmp_path / "p", [{k: v for k, v in r.items() if k != WEIGHT} for r in rows])
    prepared = [dict(weighted.train_dataset[i]) for i in range(len(rows))]
    batch = _batch(weighted, prepared)
    n = int((batch["labels"] != -100).sum())
    loss_w = weighted.compute_loss(weighted.model, dict(batch), num_items_in_batch=n)
    loss_p = plain.compute_loss(plain.model, {k: v for k, v in batch.items() if k != WEIGHT}, num_items_in_batch=n)
    assert torch.equal(loss_w, loss_p)


def test_weighted_loss_matches_per_sample_formula_and_ignores_batch_split(tiny_model_dir, tmp_path):
    gamma = 4.0
    rows = _rows(tiny_model_dir, gamma=gamma)
    trainer = _trainer(WeightedSFTTrainer, tiny_model_dir, tmp_path, rows)
    prepared = [dict(trainer.train_dataset[i]) for i in range(len(rows))]
    batch = _batch(trainer, prepared)
    total_tokens = int((batch["labels"] != -100).sum())
    whole = trainer.compute_loss(trainer.model, dict(batch), num_items_in_batch=total_tokens)

    # By hand: each sample's summed token NLL, times its label's weight, over all completion tokens.
    expected = 0.0
    for row in prepared:
        ids = torch.tensor([row["input_ids"]])
        labels = torch.tensor([row["labels"]])
        logits = trainer.model(input_ids=ids).logits[0, :-1]
        nll = torch.nn.functional.cross_entropy(logits, labels[0, 1:], ignore_index=-100, reduction="sum")
        expected += row[WEIGHT] * nll.item()
    assert abs(whole.item() - expected / total_tokens) < 1e-5
    assert {r[WEIGHT] for r in rows} == {1.0, gamma}

    # Gradient accumulation: two micro-batches with the accumulated token count sum to the same loss.
    halves = [_batch(trainer, prepared[:3]), _batch(trainer, prepared[3:])]
    split = sum(trainer.compute_loss(trainer.model, dict(b), num_items_in_batch=total_tokens) for b in halves)
    assert abs(split.item() - whole.item()) < 1e-5


def test_variants_weight_the_right_class():
    assert sample_weight("P", positive="P", variant="accept", gamma=3) == 3
    assert sample_weight("N", positive="P", variant="accept", gamma=3) == 1
    assert sample_weight("P", positive="P", variant="reject", gamma=3) == 1
    assert sample_weight("N", positive="P", variant="reject", gamma=3) == 3
    assert sample_weight("N", positive="P", variant="baseline", gamma=3) == 1
    assert sample_weight("P", positive="P", variant="accept", gamma=0) == 0


def test_weighted_loss_zero_gamma_drops_the_class():
    log_probs = torch.tensor([[-1.0, -2.0], [-3.0, 0.0]])
    mask = torch.tensor([[1, 1], [1, 0]])
    assert weighted_loss(log_probs, mask, torch.tensor([0.0, 1.0])).item() == 1.0  # 3 / 3 tokens
