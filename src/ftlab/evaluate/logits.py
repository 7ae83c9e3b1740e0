"""Token-logit classification: score each label as the answer, in one pass per batch.

For each prompt the model sees exactly the training context (chat template + generation prompt,
see ftlab.data.encode). A label's score is the summed log-probability of its answer tokens; the
end-of-turn tokens that follow every label alike are not scored. When every label is one token
(P/N, SAFE/UNSAFE) that is one forward pass per batch with `logits_to_keep=1`; labels of several
tokens take one teacher-forced pass per label. Batches are length-sorted and left-padded with
explicit position_ids. Probabilities are the softmax over the label scores.
"""

from __future__ import annotations

import math
from typing import Any

from ftlab.data.encode import example_ids, prompt_ids
from ftlab.data.example import Example
from ftlab.errors import DataError


def label_sequences(tokenizer, labels: list[str], prompt: list[dict[str, str]]) -> list[list[int]]:
    """Each label's answer tokens as encoded after `prompt` in training, common end tokens removed."""
    seqs = []
    for label in labels:
        ids, mask = example_ids(tokenizer, Example(prompt, label, label, {}), max_length=1 << 20)
        seqs.append([t for t, m in zip(ids, mask) if m])
    while all(len(s) > 1 for s in seqs) and len({s[-1] for s in seqs}) == 1:
        seqs = [s[:-1] for s in seqs]
    if len({tuple(s) for s in seqs}) != len(seqs):
        raise DataError(f"labels {labels} encode to the same answer tokens; they cannot be told apart")
    return seqs


def classify(model, tokenizer, examples: list[Example], labels: list[str], batch_size: int) -> list[dict[str, Any]]:
    """One evidence record per example, in input order: label scores, probabilities, prediction."""
    import torch

    if not examples:
        return []
    seqs = label_sequences(tokenizer, labels, examples[0].prompt)
    encoded = [prompt_ids(tokenizer, e.prompt) for e in examples]
    order = sorted(range(len(examples)), key=lambda i: len(encoded[i]))
    records: list[dict[str, Any] | None] = [None] * len(examples)
    model.eval()
    with torch.no_grad():
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            if all(len(s) == 1 for s in seqs):
                scores = _first_token_scores(model, tokenizer, [encoded[i] for i in batch], [s[0] for s in seqs])
            else:
                scores = [_sequence_scores(model, tokenizer, [encoded[i] + s for i in batch], len(s)) for s in seqs]
                scores = [list(row) for row in zip(*scores)]
            for row, i in enumerate(batch):
                records[i] = _record(i, examples[i], labels, scores[row])
    return records  # type: ignore[return-value]


def _padded(tokenizer, rows: list[list[int]], device):
    import torch

    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), tokenizer.pad_token_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for n, r in enumerate(rows):
        ids[n, width - len(r) :] = torch.tensor(r)
        mask[n, width - len(r) :] = 1
    positions = (mask.cumsum(dim=1) - 1).clamp(min=0)
    return ids.to(device), mask.to(device), positions.to(device)


def _first_token_scores(model, tokenizer, rows: list[list[int]], label_ids: list[int]) -> list[list[float]]:
    """Logits of each label's single token at the answer position (log-softmax differs by a constant)."""
    ids, mask, positions = _padded(tokenizer, rows, next(model.parameters()).device)
    logits = model(input_ids=ids, attention_mask=mask, position_ids=positions, logits_to_keep=1).logits[:, -1, :]
    return logits[:, label_ids].float().cpu().tolist()


def _sequence_scores(model, tokenizer, rows: list[list[int]], n_answer: int) -> list[float]:
    """Summed log-probability of the last `n_answer` tokens of each row, teacher-forced."""
    import torch

    ids, mask, positions = _padded(tokenizer, rows, next(model.parameters()).device)
    logits = model(input_ids=ids, attention_mask=mask, position_ids=positions, logits_to_keep=n_answer + 1).logits
    logprobs = torch.log_softmax(logits[:, :-1, :].float(), dim=-1)
    targets = ids[:, -n_answer:]
    return logprobs.gather(-1, targets.unsqueeze(-1)).squeeze(-1).sum(dim=1).cpu().tolist()


def _record(index: int, example: Example, labels: list[str], scores: list[float]) -> dict[str, Any]:
    top = max(scores)
    exp = [math.exp(v - top) for v in scores]
    total = sum(exp)
    best = max(range(len(labels)), key=lambda j: (scores[j], -j))  # ties -> first label, deterministic
    return {
        "index": index,
        "source": example.meta.get("source"),
        "label": example.label,
        "pred": labels[best],
        "logits": dict(zip(labels, scores)),
        "probs": {label: v / total for label, v in zip(labels, exp)},
    }
