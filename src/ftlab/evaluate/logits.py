"""Token-logit classification: score each label's full trained answer, in one pass per batch.

For each prompt the model sees exactly the training context (ftlab.data.encode). A label's score
is the summed log-probability of every token of its answer as training writes it: with
`answer_template: '\\boxed{{label}}'` (seed 002) that is `\\boxed{Accept}`, not the bare word
`Accept` at the position where the trained model writes `\\boxed`. The end-of-turn tokens that
follow every label alike are not scored; the tokens every answer starts with (`\\boxed{`) are
scored once and shared. When the answers differ in one token after that shared prefix (P/N,
`\\boxed{Accept}` vs `\\boxed{Reject}` when each is one token) a batch is one forward pass;
otherwise one teacher-forced pass per label. Batches are length-sorted and left-padded with
explicit position_ids.

The tokens every prompt of the split starts with (few-shot shots, a system turn, an instruction)
run once, and each batch (each label pass too) attends to their cached keys and values instead of
recomputing them (ftlab.evaluate.prefix; `reuse_prefix=False` or a model whose cache cannot be
passed back in takes the plain path). Scores equal the plain path's to float rounding.

Probabilities are the softmax over the label scores. `label_mass` is the probability the whole
label set holds at the answer (the sum of exp(score)): near 1 for a model that answers in the
trained shape; near 0 means the scores compare answers the model would not write (round 1 scored
boxed answers at the wrong token and the labels held ~0.1%), so it is kept as evidence and warned on.
"""

from __future__ import annotations

import math
from typing import Any

from ftlab.data.encode import answer_ids, prompt_ids
from ftlab.data.example import Example
from ftlab.errors import DataError
from ftlab.evaluate.prefix import SharedPrefix


def render_answer(template: str, label: str) -> str:
    """`\\boxed{{label}}` + "Accept" -> `\\boxed{Accept}` (plain replacement: braces need no escaping)."""
    return template.replace("{label}", label)


def label_sequences(tokenizer, labels: list[str], prompt: list[dict[str, str]], template: str = "{label}") -> list[list[int]]:
    """Each label's answer tokens as encoded after `prompt` in training, common end tokens removed."""
    seqs = [answer_ids(tokenizer, prompt, render_answer(template, label)) for label in labels]
    while all(len(s) > 1 for s in seqs) and len({s[-1] for s in seqs}) == 1:
        seqs = [s[:-1] for s in seqs]
    if len({tuple(s) for s in seqs}) != len(seqs):
        raise DataError(f"labels {labels} encode to the same answer tokens; they cannot be told apart")
    return seqs


def shared_prefix(seqs: list[list[int]]) -> int:
    """Length of the token prefix every sequence starts with, leaving each at least one token."""
    n = 0
    while all(len(s) > n + 1 for s in seqs) and len({s[n] for s in seqs}) == 1:
        n += 1
    return n


def classify(
    model,
    tokenizer,
    examples: list[Example],
    labels: list[str],
    batch_size: int,
    template: str = "{label}",
    *,
    reuse_prefix: bool = True,
) -> list[dict[str, Any]]:
    """One evidence record per example, in input order: label scores, probabilities, prediction, label_mass.

    reuse_prefix: score the prompts' common token prefix once (see module docstring); False runs
    every prompt in full (the reference the tests compare against)."""
    import torch

    if not examples:
        return []
    encoded = [prompt_ids(tokenizer, e.prompt) for e in examples]
    # The answer tokens may depend on the prompt only through the end-of-turn text, which is the
    # same for every prompt of a template; check on the first, encode per example only if needed.
    seqs = label_sequences(tokenizer, labels, examples[0].prompt, template)
    start = shared_prefix(seqs)
    prefix, suffixes = seqs[0][:start], [s[start:] for s in seqs]
    order = sorted(range(len(examples)), key=lambda i: len(encoded[i]))
    records: list[dict[str, Any] | None] = [None] * len(examples)
    model.eval()
    with torch.no_grad():
        # keep=1: the last prompt token stays in each suffix, its logits score the first answer token.
        shared = SharedPrefix.build(model, encoded, keep=1) if reuse_prefix else None
        for first in range(0, len(order), batch_size):
            batch = order[first : first + batch_size]
            rows = [encoded[i] + prefix for i in batch]
            if all(len(s) == 1 for s in suffixes):
                scores = _next_token_scores(model, tokenizer, rows, len(prefix), [s[0] for s in suffixes], shared)
            else:
                per_label = [_sequence_scores(model, tokenizer, [r + s for r in rows], len(prefix) + len(s), shared) for s in suffixes]
                scores = [list(row) for row in zip(*per_label)]
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


def _forward(model, tokenizer, rows: list[list[int]], keep: int, shared: SharedPrefix | None):
    """(input ids of the computed columns, logits of their last `keep` positions) for left-padded rows."""
    if shared is None:
        ids, mask, positions = _padded(tokenizer, rows, next(model.parameters()).device)
        cache = None
    else:
        ids, mask, positions, cache = shared.batch([r[shared.length :] for r in rows], tokenizer.pad_token_id)
    out = model(input_ids=ids, attention_mask=mask, position_ids=positions, past_key_values=cache, use_cache=False, logits_to_keep=keep)
    return ids, out.logits


def _next_token_scores(
    model, tokenizer, rows: list[list[int]], n_prefix: int, label_ids: list[int], shared: SharedPrefix | None = None
) -> list[list[float]]:
    """log P(prefix) + log P(label token | prefix) for each label, from one forward pass.

    Only the last n_prefix + 1 positions go through the output layer (a 152k vocabulary makes the
    full logits the biggest tensor of the pass)."""
    import torch

    ids, logits = _forward(model, tokenizer, rows, n_prefix + 1, shared)
    logprobs = torch.log_softmax(logits.float(), dim=-1)
    shared = torch.zeros(len(rows), device=logprobs.device)
    if n_prefix:
        targets = ids[:, -n_prefix:]
        shared = logprobs[:, :-1, :].gather(-1, targets.unsqueeze(-1)).squeeze(-1).sum(dim=1)
    last = logprobs[:, -1, :][:, label_ids]
    return (last + shared.unsqueeze(-1)).cpu().tolist()


def _sequence_scores(model, tokenizer, rows: list[list[int]], n_answer: int, shared: SharedPrefix | None = None) -> list[float]:
    """Summed log-probability of the last `n_answer` tokens of each row, teacher-forced."""
    import torch

    ids, logits = _forward(model, tokenizer, rows, n_answer + 1, shared)
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
        "label_mass": math.exp(top) * total,
    }
