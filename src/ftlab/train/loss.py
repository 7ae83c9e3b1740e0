"""Sample-level class-weighted loss (seed 002, done right: the seed's code ignored gamma).

Each training example carries a weight from its class label: variant `accept` gives gamma to
positive-label samples, `reject` gives gamma to negative-label samples, the rest get 1.

Normalisation: the weighted loss is sum_i w_i * sum_t nll_it / N, where N is the number of
completion tokens in the whole accumulated batch, exactly the denominator of TRL's unweighted
loss. So gamma = 1 reproduces TRL's loss bit for bit, a sample's weight does not depend on what
else is in its batch or how gradient accumulation splits it, and gamma > 1 raises the weighted
class's share of the gradient (it is not renormalised by the sum of weights, which would let
batch composition change every sample's effective weight).
"""

from __future__ import annotations

from typing import Any

import torch
from trl import SFTTrainer

WEIGHT = "sample_weight"


def sample_weight(label: str | None, *, positive: str, variant: str, gamma: float) -> float:
    if variant in ("none", "baseline"):
        return 1.0
    if label is None:
        from ftlab.errors import DataError

        raise DataError(f"loss weighting '{variant}' needs a class label on every training example")
    is_positive = label == positive
    if variant == "accept":
        return gamma if is_positive else 1.0
    if variant == "reject":
        return 1.0 if is_positive else gamma
    raise ValueError(f"unknown loss weighting variant {variant!r}")


class WeightCollator:
    """Wraps TRL's collator: moves each example's weight into a (batch,) float tensor, or, when the
    collator flattens the batch into one row (padding-free), a (1, tokens) tensor holding each
    token's example weight (0 on any padding to a multiple)."""

    def __init__(self, base):
        self.base = base

    def __call__(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        weights = torch.tensor([float(e[WEIGHT]) for e in examples], dtype=torch.float32)
        batch = self.base([{k: v for k, v in e.items() if k != WEIGHT} for e in examples])
        if getattr(self.base, "padding_free", False):
            lengths = torch.tensor([len(e["input_ids"]) for e in examples])
            per_token = torch.zeros(batch["input_ids"].shape, dtype=torch.float32)
            per_token[0, : int(lengths.sum())] = torch.repeat_interleave(weights, lengths)
            weights = per_token
        batch[WEIGHT] = weights
        return batch


class WeightedSFTTrainer(SFTTrainer):
    """SFTTrainer whose loss weights each sample by its `sample_weight` column."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.data_collator = WeightCollator(self.data_collator)

    def _set_signature_columns_if_needed(self):
        super()._set_signature_columns_if_needed()
        if WEIGHT not in self._signature_columns:
            self._signature_columns = [*self._signature_columns, WEIGHT]

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        # Mirrors the standard branch of TRL 1.16's SFTTrainer.compute_loss (fused LM head: per-token
        # log-probs, no full logits; build_trainer narrows it to completion positions, head.py), with
        # the per-sample weights applied before the sum. Calling super() instead would cost a second
        # forward pass to rebuild logits for `return_outputs`.
        weights = inputs.pop(WEIGHT)
        mode = "train" if self.model.training else "eval"
        inputs["use_cache"] = False
        outputs = model(**inputs, fused_lm_head=True)
        weights = weights.to(device=outputs.log_probs.device, dtype=outputs.log_probs.dtype)
        loss = weighted_loss(outputs.log_probs, outputs.label_mask, weights, num_items_in_batch)
        if self.args.average_tokens_across_devices and num_items_in_batch is not None:
            loss = loss * (self.accelerator.num_processes // self.get_tp_size())  # as TRL scales its own loss
        self._token_metrics(mode, inputs, outputs)
        return (loss, outputs) if return_outputs else loss

    def _token_metrics(self, mode: str, inputs, outputs) -> None:
        """The entropy / token accuracy / token count logs TRL writes for its own loss."""
        gather = self.accelerator.gather_for_metrics
        valid = gather(outputs.label_mask.sum()).sum()
        entropy = gather(outputs.entropy.detach().sum()).sum()
        correct = gather(outputs.is_top1.sum()).sum()
        self._metrics[mode]["entropy"].append((entropy / valid).item() if valid > 0 else 0.0)
        self._metrics[mode]["mean_token_accuracy"].append((correct / valid).item() if valid > 0 else 0.0)
        if mode == "train" and "attention_mask" in inputs:
            self._total_train_tokens += gather(inputs["attention_mask"].sum()).sum().item() // self._tp_size
        elif mode == "train" and "position_ids" in inputs:  # padding-free: one row, every position a token
            self._total_train_tokens += gather(torch.tensor(inputs["position_ids"].size(1))).sum().item() // self._tp_size
        self._metrics[mode]["num_tokens"] = [self._total_train_tokens]


def weighted_loss(log_probs: torch.Tensor, label_mask: torch.Tensor, weights: torch.Tensor, num_items_in_batch=None) -> torch.Tensor:
    """sum_i w_i * sum_t -log p_it / N; log_probs is zero on ignored positions (TRL's convention).

    `weights` is (batch,) per example, or (1, tokens) per token for a flattened batch; the head's
    log_probs are shifted (position t scores token t+1), so per-token weights drop their first column."""
    if weights.dim() == 1:
        weights = weights[:, None]
    else:
        weights = weights[:, weights.shape[1] - log_probs.shape[1]:]
    per_token = -log_probs * weights
    num_tokens = label_mask.sum() if num_items_in_batch is None else num_items_in_batch
    return per_token.sum() / torch.as_tensor(num_tokens).clamp(min=1)
