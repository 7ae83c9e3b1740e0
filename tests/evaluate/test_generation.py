"""Generation: order, greedy batching invariance, seeded sampling, stop strings, length and EOS.

The tiny random model's text is gibberish; the tests check structure and behaviour. Its weights
are redrawn with std 0.3 because at the default init (std 0.02) greedy decoding emits one token
forever, which would make batching and stop tests pass vacuously.
"""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from ftlab.evaluate.generation import generate

# Prompt lengths 12-60 tokens, so length sorting and left padding really change the batches.
PROMPTS = [[{"role": "user", "content": "ab " * k + "Is it P or N?"}] for k in (20, 0, 9, 3, 14, 6)]


@pytest.fixture(scope="module")
def lm(tiny_model_dir):
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() == 2:
                p.normal_(0.0, 0.3, generator=gen)
    return model, AutoTokenizer.from_pretrained(tiny_model_dir)


@pytest.fixture(scope="module")
def greedy(lm):
    model, tok = lm
    return generate(model, tok, PROMPTS, max_new_tokens=12, batch_size=1)


def test_records_in_input_order_with_length_finish(lm, greedy):
    assert [r["index"] for r in greedy] == list(range(len(PROMPTS)))
    assert len({r["prompt_tokens"] for r in greedy}) == len(PROMPTS)
    for r in greedy:
        assert set(r) == {"index", "text", "finish", "n_tokens", "prompt_tokens"}
        assert r["finish"] == "length" and r["n_tokens"] == 12  # max_new_tokens respected exactly
    assert len({r["text"] for r in greedy}) > 1  # not one degenerate token for every prompt


def test_greedy_text_does_not_depend_on_batching(lm, greedy):
    model, tok = lm
    assert generate(model, tok, PROMPTS, max_new_tokens=12, batch_size=4) == greedy


def test_seeded_sampling_is_deterministic_and_leaves_the_callers_rng_alone(lm):
    model, tok = lm
    state = torch.get_rng_state()
    one = generate(model, tok, PROMPTS[:3], max_new_tokens=10, temperature=1.0, seed=7, batch_size=2)
    two = generate(model, tok, PROMPTS[:3], max_new_tokens=10, temperature=1.0, seed=7, batch_size=2)
    other = generate(model, tok, PROMPTS[:3], max_new_tokens=10, temperature=1.0, seed=8, batch_size=2)
    assert one == two and one != other
    assert torch.equal(torch.get_rng_state(), state)


def test_stop_string_truncates_and_ends_generation(lm, greedy):
    model, tok = lm
    # A stop string taken from the unstopped text of prompt 0, a few characters in.
    full = greedy[0]["text"]
    stop = next(full[i : i + 2] for i in range(2, len(full)) if full[i : i + 2].isprintable())
    stopped = generate(model, tok, PROMPTS, max_new_tokens=12, stop=[stop, "never appears"], batch_size=3)
    assert stopped[0]["finish"] == "stop" and stopped[0]["n_tokens"] < 12
    for r, g in zip(stopped, greedy):
        if stop in g["text"]:
            assert r["text"] == g["text"][: g["text"].index(stop)] and r["finish"] == "stop"
            assert 1 <= r["n_tokens"] <= 12
        else:
            assert r == g


def test_eos_ends_a_row_and_is_not_in_the_text(lm):
    model, tok = lm
    # A scripted head that always prefers end-of-turn: a real forward whose output layer is constant.
    head = torch.nn.Linear(model.config.hidden_size, model.config.vocab_size, bias=True)
    with torch.no_grad():
        head.weight.zero_()
        head.bias.zero_()
        head.bias[tok.eos_token_id] = 10.0
    original = model.lm_head
    model.lm_head = head
    try:
        out = generate(model, tok, PROMPTS[:2], max_new_tokens=5, batch_size=2)
    finally:
        model.lm_head = original
    assert [(r["text"], r["finish"], r["n_tokens"]) for r in out] == [("", "eos", 1)] * 2


def test_bad_arguments_and_empty_input(lm):
    model, tok = lm
    assert generate(model, tok, [], max_new_tokens=4) == []
    with pytest.raises(ValueError, match="max_new_tokens"):
        generate(model, tok, PROMPTS, max_new_tokens=0)
    with pytest.raises(ValueError, match="non-empty"):
        generate(model, tok, PROMPTS, max_new_tokens=2, stop=[""])
