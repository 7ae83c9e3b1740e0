"""Shared-prefix reuse: run the tokens every prompt of a split starts with once, then only the rest.

Few-shot shots, system prompts and instructions repeat at the start of every prompt (seed 001: 5
shots of ~150 tokens before a ~100-token question, so ~88% of each prompt is the same). Scoring
that prefix once and letting each batch attend to its keys and values skips that share of the
body's work per example.

    from ftlab.evaluate.prefix import SharedPrefix

    shared = SharedPrefix.build(model, rows)       # None: plain path (see build() for when and why)
    ids, mask, positions, cache = shared.batch([row[shared.length:] for row in batch_rows], pad_id)
    model(input_ids=ids, attention_mask=mask, position_ids=positions, past_key_values=cache)

Layout of a batch: the cache holds the prefix at positions 0..P-1 for every row; the suffixes are
left-padded after it, so padding sits between prefix and suffix ([prefix][pad pad][suffix]). The
attention mask covers prefix + suffix columns (prefix ones, padding zeros) and position ids
continue from P, so every real token sees exactly the tokens and positions it sees in a plain
left-padded pass ([pad pad][prefix][suffix] with positions from the mask's cumsum): scores agree
to float rounding (the prefix ran at batch 1, the plain pass at batch B).

Run the tests: `.venv/bin/pytest tests/evaluate/test_prefix.py -q`
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# Below this many shared tokens the plain path is used. Reuse costs one extra batch-1 forward per
# split and one concat of the prefix keys/values per batch and layer; a zero-shot hem prompt
# shares its system turn and "Composition: " (22 of ~57 tokens with the test fixture's BPE, 43 of
# ~76 with the eval bench's) and gains 1.4x from it, so the bar only rules out a template's few
# opening tokens, where the saving is within timing noise.
MIN_PREFIX = 8


def common_prefix(rows: list[list[int]]) -> int:
    """Length of the longest token prefix all rows share."""
    if not rows:
        return 0
    first, n = rows[0], min(len(r) for r in rows)
    for row in rows[1:]:
        k = 0
        while k < n and row[k] == first[k]:
            k += 1
        n = k
        if n == 0:
            break
    return n


def reusable(model) -> bool:
    """Whether a prefix's cache can stand in for its tokens in this model's forward pass.

    Encoder-decoder models have no decoder-only prefix to share; PEFT prompt learning (prefix or
    prompt tuning) puts its own virtual tokens into past_key_values, so a cache passed in would
    collide with them."""
    config = getattr(model, "config", None)
    if config is None or getattr(config, "is_encoder_decoder", False):
        return False
    peft = getattr(model, "active_peft_config", None)
    return not getattr(peft, "is_prompt_learning", False)


@dataclass
class SharedPrefix:
    """The keys and values of `length` prefix tokens, computed once at batch size 1."""

    length: int
    layers: list[tuple[Any, Any]]  # per layer (keys, values): [1, kv_heads, length, head_dim]
    device: Any

    @classmethod
    def build(cls, model, rows: list[list[int]], keep: int = 1) -> SharedPrefix | None:
        """The shared prefix of `rows` (each row keeps at least `keep` tokens after it), or None.

        None (use the plain path) when: fewer than MIN_PREFIX tokens are shared; the model is not
        a decoder-only model whose cache can be passed back in (reusable()); or its cache is not
        plain full-attention DynamicLayers: sliding-window layers keep only their window and drop
        the prefix's start, linear-attention/recurrent layers (Mamba-like) hold a state that cannot
        be expanded per row the same way, quantized layers would change the scores."""
        import torch
        from transformers.cache_utils import DynamicCache, DynamicLayer

        if not rows or not reusable(model):
            return None
        length = min(common_prefix(rows), min(len(r) for r in rows) - keep)
        if length < MIN_PREFIX:
            return None
        device = next(model.parameters()).device
        ids = torch.tensor([rows[0][:length]], device=device)
        with torch.no_grad():
            cache = _prefill(model, ids)
        if not isinstance(cache, DynamicCache) or not cache.layers:
            return None
        if any(type(layer) is not DynamicLayer for layer in cache.layers):
            return None
        return cls(length, [(layer.keys, layer.values) for layer in cache.layers], device)

    def cache(self, batch: int):
        """A fresh DynamicCache holding the prefix for `batch` rows, as broadcast views of the batch-1
        tensors. The layers are filled directly, not through update() (what DynamicCache(ddp_cache_data)
        does): update's concat would materialise the B copies once more before the forward's own concat
        with the suffix copies them again; that extra copy was 18% of a few-shot batch's time
        (32 rows x 714 prefix tokens x 4 layers x 2 x 512 floats = 0.4 GB)."""
        from transformers.cache_utils import DynamicCache, DynamicLayer

        layers = []
        for k, v in self.layers:
            layer = DynamicLayer()
            layer.lazy_initialization(k, v)
            layer.keys, layer.values = k.expand(batch, -1, -1, -1), v.expand(batch, -1, -1, -1)
            layers.append(layer)
        cache = DynamicCache()
        cache.layers = layers
        return cache

    def batch(self, suffixes: list[list[int]], pad_id: int):
        """(input_ids, attention_mask, position_ids, cache) for the suffixes after this prefix, left-padded.

        The mask spans prefix + suffix columns, as HF expects with a cache; positions continue at P."""
        import torch

        width = max(len(s) for s in suffixes)
        ids = torch.full((len(suffixes), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(suffixes), width), dtype=torch.long)
        for n, s in enumerate(suffixes):
            ids[n, width - len(s) :] = torch.tensor(s, dtype=torch.long)
            mask[n, width - len(s) :] = 1
        positions = (self.length + mask.cumsum(dim=1) - 1).clamp(min=self.length)
        full_mask = torch.cat([torch.ones((len(suffixes), self.length), dtype=torch.long), mask], dim=1)
        return ids.to(self.device), full_mask.to(self.device), positions.to(self.device), self.cache(len(suffixes))


def _prefill(model, ids):
    """The cache of `ids` from the decoder body alone: the prefix's logits are never used, so the
    output layer (152k x hidden for Qwen2.5, the largest matmul of a short pass) is skipped."""
    try:
        body = model.get_decoder()
    except (AttributeError, NotImplementedError, ValueError):
        body = model
    if body is model:  # no separate decoder module: the full model, keeping one position's logits
        return model(input_ids=ids, use_cache=True, logits_to_keep=1).past_key_values
    return body(input_ids=ids, use_cache=True).past_key_values
