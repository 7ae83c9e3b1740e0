"""Batched text generation with a HF causal LM, prompts encoded exactly as in training.

    from ftlab.evaluate.generation import generate

    prompts = [[{"role": "user", "content": "What is 2+2? End with '#### <n>'."}]]
    out = generate(model, tokenizer, prompts, max_new_tokens=256, stop=["\\nQuestion:"])
    out[0]  # {"index": 0, "text": "2+2=4\\n#### 4", "finish": "eos", "n_tokens": 9, "prompt_tokens": 21}

Each prompt is rendered by ftlab.data.encode.prompt_ids (chat template + generation prompt), so a
model is evaluated on the very tokens it was trained after. Prompts are sorted by length and
left-padded with an attention mask (generate derives position_ids from it), so a batch wastes
little compute on padding; results come back in input order.

Decoding settings are pinned in a fresh GenerationConfig, NOT inherited from the model folder:
Qwen2.5-Instruct ships do_sample=True, temperature 0.7, top_k 20 and repetition_penalty 1.05,
which would silently turn "greedy" into sampling with a penalty. temperature == 0 means greedy.
With temperature > 0 the CPU/GPU RNG is seeded with `seed` inside torch.random.fork_rng, so the
caller's RNG state is untouched and two identical calls give identical text. Sampled text also
depends on batch_size and on the other prompts (they share the RNG stream); greedy text does not.

The tokens every prompt starts with (shots, system turn, instruction) are prefilled once and each
batch starts from a copy of their KV cache (ftlab.evaluate.prefix): the batch is laid out as
[prefix][left padding][rest of prompt] with the mask over all of it, so generate's positions
(the mask's cumsum) and attention equal the plain [padding][prompt] layout; `reuse_prefix=False`
or a model whose cache cannot be passed back in takes the plain path.

Run the tests: `.venv/bin/pytest tests/evaluate/test_generation.py -q`
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ftlab.data.encode import prompt_ids
from ftlab.evaluate.prefix import SharedPrefix


class _StopStrings:
    """StoppingCriteria: a row is done once its generated text contains any stop string.

    Only the last few generated tokens are decoded each step: a byte-level token holds at least
    one byte, so a stop string of B UTF-8 bytes lies within the last B + 1 tokens. Decoding the
    whole completion every step would cost O(n^2) in new tokens (512 tokens x 8 rows each step).
    """

    def __init__(self, tokenizer, stops: Sequence[str], prompt_width: int):
        self.tokenizer = tokenizer
        self.stops = list(stops)
        self.prompt_width = prompt_width
        self.tail = max(len(s.encode("utf-8")) for s in self.stops) + 1

    def __call__(self, input_ids, scores, **kwargs):
        import torch

        generated = input_ids[:, self.prompt_width :]
        tails = generated[:, -self.tail :].tolist()
        done = [any(s in self.tokenizer.decode(t, skip_special_tokens=False) for s in self.stops) for t in tails]
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)


def _eos_ids(model, tokenizer) -> list[int]:
    """Every id that ends a turn: the model's generation_config eos (an int or a list) and the tokenizer's."""
    ids: set[int] = set()
    configured = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    if isinstance(configured, int):
        ids.add(configured)
    elif configured:
        ids.update(configured)
    if tokenizer.eos_token_id is not None:
        ids.add(tokenizer.eos_token_id)
    return sorted(ids)


def _generation_config(max_new_tokens: int, temperature: float, top_p: float, pad: int, eos: list[int]):
    from transformers import GenerationConfig

    sample = temperature > 0
    if sample:
        knobs = dict(temperature=temperature, top_p=top_p, top_k=0, min_p=0.0, typical_p=1.0)  # 0 = off
    else:
        # Greedy ignores these; pinned to HF's neutral defaults so the folder's values are not
        # inherited (HF warns about any other value when do_sample is False).
        knobs = dict(temperature=1.0, top_p=1.0, top_k=50)
    # Every field a model folder commonly sets is pinned (see module docstring); None would inherit.
    return GenerationConfig(
        max_new_tokens=max_new_tokens,
        do_sample=sample,
        num_beams=1,
        **knobs,
        repetition_penalty=1.0,
        no_repeat_ngram_size=0,
        pad_token_id=pad,
        eos_token_id=eos,
    )


def _finish(tokenizer, generated: list[int], eos: set[int], stops: Sequence[str]) -> tuple[str, str, int]:
    """(text, finish, n_tokens) of one row's generated ids (padding after the end included)."""

    def decode(ids: list[int]) -> str:
        return tokenizer.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)

    end = next((k for k, t in enumerate(generated) if t in eos), None)
    body = generated if end is None else generated[:end]
    text = decode(body)
    hits = [text.find(s) for s in stops if s in text]
    if hits:
        # n_tokens: the fewest tokens whose text holds a stop string. "contains a stop" only turns
        # from False to True as tokens are added, so bisect (decoding each prefix would be O(n^2)).
        lo, hi = 1, len(body)
        while lo < hi:
            mid = (lo + hi) // 2
            if any(s in decode(body[:mid]) for s in stops):
                hi = mid
            else:
                lo = mid + 1
        return text[: min(hits)], "stop", lo
    if end is not None:
        return text, "eos", end + 1  # the end-of-turn token was generated, so it counts
    return text, "length", len(generated)


def generate(
    model,
    tokenizer,
    prompts: list[list[dict[str, str]]],
    *,
    max_new_tokens: int,
    stop: Sequence[str] = (),
    temperature: float = 0.0,
    top_p: float = 1.0,
    seed: int = 0,
    batch_size: int = 8,
    reuse_prefix: bool = True,
) -> list[dict[str, Any]]:
    """Generate one completion per chat prompt; one record per prompt, in input order.

    Record: "index"; "text" (the completion only, cut before the first stop string, end-of-turn
    token excluded); "finish": "stop" (a stop string appeared), "eos" (the model ended its turn)
    or "length" (max_new_tokens reached); "n_tokens" (generated tokens up to and including the
    one that finished it); "prompt_tokens". reuse_prefix: prefill the prompts' common prefix once
    (module docstring); False prefills every prompt in full.
    """
    import torch
    from transformers import StoppingCriteriaList

    if max_new_tokens < 1 or batch_size < 1:
        raise ValueError(f"max_new_tokens and batch_size must be >= 1, got {max_new_tokens}, {batch_size}")
    if temperature < 0 or not 0 < top_p <= 1:
        raise ValueError(f"need temperature >= 0 and 0 < top_p <= 1, got {temperature}, {top_p}")
    stops = [stop] if isinstance(stop, str) else list(stop)  # a lone str is one stop, not its chars
    if any(not s for s in stops):
        raise ValueError("stop strings must be non-empty")
    if not prompts:
        return []
    eos = _eos_ids(model, tokenizer)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos[0]
    config = _generation_config(max_new_tokens, temperature, top_p, pad, eos)
    encoded = [prompt_ids(tokenizer, p) for p in prompts]
    order = sorted(range(len(prompts)), key=lambda i: len(encoded[i]))
    device = next(model.parameters()).device
    records: list[dict[str, Any] | None] = [None] * len(prompts)
    model.eval()
    # fork_rng restores the caller's RNG afterwards; CUDA state is forked only when the model is there.
    cuda = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda), torch.no_grad():
        # keep=1: generate needs one uncached prompt token per row to produce the first logits.
        shared = SharedPrefix.build(model, encoded, keep=1) if reuse_prefix else None
        n_shared = shared.length if shared is not None else 0
        torch.manual_seed(seed)
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            width = n_shared + max(len(encoded[i]) - n_shared for i in batch)
            ids = torch.full((len(batch), width), pad, dtype=torch.long)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            for row, i in enumerate(batch):
                rest = encoded[i][n_shared:]
                ids[row, :n_shared] = torch.tensor(encoded[i][:n_shared], dtype=torch.long)
                mask[row, :n_shared] = 1
                ids[row, width - len(rest) :] = torch.tensor(rest, dtype=torch.long)
                mask[row, width - len(rest) :] = 1
            criteria = StoppingCriteriaList([_StopStrings(tokenizer, stops, width)] if stops else [])
            cache = {"past_key_values": shared.cache(len(batch))} if shared is not None else {}
            out = model.generate(
                input_ids=ids.to(device),
                attention_mask=mask.to(device),
                generation_config=config,
                stopping_criteria=criteria,
                **cache,
            )
            for row, i in enumerate(batch):
                text, finish, n_tokens = _finish(tokenizer, out[row, width:].tolist(), set(eos), stops)
                records[i] = {
                    "index": i, "text": text, "finish": finish, "n_tokens": n_tokens,
                    "prompt_tokens": len(encoded[i]),
                }
    return records  # type: ignore[return-value]
