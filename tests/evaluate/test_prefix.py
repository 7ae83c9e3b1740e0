"""Shared-prefix reuse: scores and decisions equal the plain path, for logit scoring and generation."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from ftlab.data.encode import prompt_ids
from ftlab.data.generate import generators
from ftlab.evaluate.generation import generate
from ftlab.evaluate.logits import classify
from ftlab.evaluate.prefix import MIN_PREFIX, SharedPrefix, common_prefix
from ftlab.evaluate.prepare import with_shots


@pytest.fixture(scope="module")
def lm(tiny_model_dir):
    return AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32).eval(), AutoTokenizer.from_pretrained(tiny_model_dir)


def fewshot(n: int = 20, seed: int = 3):
    """5 hem shots before each question (4-6 elements: prompts of different lengths)."""
    shots = generators.get("hem")(n=5, split="train", seed=1)
    return [with_shots(e, shots) for e in generators.get("hem")(n=n, split="valid", seed=seed)]


def test_common_prefix():
    assert common_prefix([[1, 2, 3], [1, 2, 4], [1, 2]]) == 2
    assert common_prefix([[1, 2], [3]]) == 0
    assert common_prefix([[5, 6]]) == 2 and common_prefix([]) == 0


def test_prefix_is_built_where_it_applies(lm):
    model, tok = lm
    rows = [prompt_ids(tok, e.prompt) for e in fewshot()]
    shared = SharedPrefix.build(model, rows)
    assert shared is not None and shared.length == min(common_prefix(rows), min(map(len, rows)) - 1)
    assert shared.length > 200  # the 5 shots and the system turn
    assert SharedPrefix.build(model, [r[: MIN_PREFIX - 1] + [0] for r in rows[:2]]) is None  # too short to pay
    assert SharedPrefix.build(model, [rows[0], rows[0]], keep=len(rows[0])) is None  # nothing left after it


@pytest.mark.parametrize("labels", [["P", "N"], ["Accepted", "Rejected"]])  # one pass; one pass per multi-token label
@pytest.mark.parametrize("shots", [True, False])
def test_logit_scores_and_decisions_equal_the_plain_path(lm, labels, shots):
    model, tok = lm
    examples = fewshot() if shots else generators.get("hem")(n=20, split="valid", seed=3)
    assert SharedPrefix.build(model, [prompt_ids(tok, e.prompt) for e in examples]) is not None  # reuse really runs
    plain = classify(model, tok, examples, labels, batch_size=6, reuse_prefix=False)
    reused = classify(model, tok, examples, labels, batch_size=6)
    assert [r["pred"] for r in reused] == [r["pred"] for r in plain]
    for a, b in zip(plain, reused):
        assert a["index"] == b["index"]
        for label in labels:
            assert b["logits"][label] == pytest.approx(a["logits"][label], abs=1e-5)
        assert b["label_mass"] == pytest.approx(a["label_mass"], rel=1e-4)


def test_boxed_template_equal_the_plain_path(lm):
    model, tok = lm
    examples = fewshot(n=8)
    plain = classify(model, tok, examples, ["P", "N"], 3, "\\boxed{{label}}", reuse_prefix=False)
    reused = classify(model, tok, examples, ["P", "N"], 3, "\\boxed{{label}}")
    for a, b in zip(plain, reused):
        assert a["pred"] == b["pred"] and b["logits"]["P"] == pytest.approx(a["logits"]["P"], abs=1e-5)


@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_generation_equals_the_plain_path(lm, temperature):
    model, tok = lm
    prompts = [e.prompt for e in fewshot(n=10)]
    plain = generate(model, tok, prompts, max_new_tokens=8, batch_size=4, temperature=temperature, reuse_prefix=False)
    reused = generate(model, tok, prompts, max_new_tokens=8, batch_size=4, temperature=temperature)
    assert reused == plain
    if temperature:
        assert len({r["text"] for r in plain}) > 1  # sampled rows differ: the comparison has teeth


def test_generation_scores_equal_the_plain_path(lm, monkeypatch):
    """Greedy text of a random model is near-constant; compare the per-step scores generate() sees."""
    model, tok = lm
    seen: dict[bool, list] = {}
    original = model.generate

    def recording(**kwargs):
        out = original(**kwargs, output_scores=True, return_dict_in_generate=True)
        seen.setdefault("past_key_values" in kwargs, []).append(torch.stack(out.scores))
        return out.sequences

    monkeypatch.setattr(model, "generate", recording)
    prompts = [e.prompt for e in fewshot(n=6)]
    generate(model, tok, prompts, max_new_tokens=4, batch_size=3, reuse_prefix=False)
    generate(model, tok, prompts, max_new_tokens=4, batch_size=3)
    assert len(seen[False]) == len(seen[True]) == 2
    for a, b in zip(seen[False], seen[True]):
        assert torch.allclose(a, b, atol=1e-5)


def test_sliding_window_models_take_the_plain_path(tmp_path):
    """Sliding-window layers keep only their window of the prefix; reuse must not apply."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    config = Qwen2Config(vocab_size=64, hidden_size=16, num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1,
                         intermediate_size=32, use_sliding_window=True, sliding_window=4, max_window_layers=0)
    model = Qwen2ForCausalLM(config).eval()
    rows = [list(range(1, 20)) + [30], list(range(1, 20)) + [31]]
    assert SharedPrefix.build(model, rows) is None
