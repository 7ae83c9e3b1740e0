"""Token-logit classification: one forward pass per batch, label tokens' logits at the answer position.

For each prompt the model sees exactly the training context (chat template + generation prompt,
see ftlab.data.encode); the logits of each label's first answer token are compared there. Batches
are sorted by length and left-padded with explicit position_ids, and only the last position's
logits are computed (`logits_to_keep=1`), so cost is one forward pass per example.
"""

from __future__ import annotations

import math
from typing import Any

from ftlab.data.encode import label_token_ids, prompt_ids
from ftlab.data.example import Example


def classify(model, tokenizer, examples: list[Example], labels: list[str], batch_size: int) -> list[dict[str, Any]]:
    """One evidence record per example, in input order: label logits, probabilities, prediction."""
    import torch

    if not examples:
        return []
    label_ids = label_token_ids(tokenizer, labels, examples[0].prompt)
    encoded = [prompt_ids(tokenizer, e.prompt) for e in examples]
    order = sorted(range(len(examples)), key=lambda i: len(encoded[i]))
    records: list[dict[str, Any] | None] = [None] * len(examples)
    pad = tokenizer.pad_token_id
    device = next(model.parameters()).device
    model.eval()
    with torch.no_grad():
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            width = max(len(encoded[i]) for i in batch)
            ids = torch.full((len(batch), width), pad, dtype=torch.long)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            for row, i in enumerate(batch):
                ids[row, width - len(encoded[i]) :] = torch.tensor(encoded[i])
                mask[row, width - len(encoded[i]) :] = 1
            positions = (mask.cumsum(dim=1) - 1).clamp(min=0)
            logits = model(
                input_ids=ids.to(device),
                attention_mask=mask.to(device),
                position_ids=positions.to(device),
                logits_to_keep=1,
            ).logits[:, -1, :]
            chosen = logits[:, label_ids].float().cpu()
            for row, i in enumerate(batch):
                records[i] = _record(i, examples[i], labels, chosen[row].tolist())
    return records  # type: ignore[return-value]


def _record(index: int, example: Example, labels: list[str], label_logits: list[float]) -> dict[str, Any]:
    top = max(label_logits)
    exp = [math.exp(v - top) for v in label_logits]
    total = sum(exp)
    probs = [v / total for v in exp]
    best = max(range(len(labels)), key=lambda j: (label_logits[j], -j))  # ties -> first label, deterministic
    return {
        "index": index,
        "source": example.meta.get("source"),
        "label": example.label,
        "pred": labels[best],
        "logits": dict(zip(labels, label_logits)),
        "probs": dict(zip(labels, probs)),
    }
