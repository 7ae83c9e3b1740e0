"""The tiny model reloads through the normal from_pretrained path, tokenizer included."""

from __future__ import annotations

import json

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from ftlab.models.tiny import train_tokenizer

SAMPLES = [
    "Composition: Co Cr Fe Mn Ni\nAnswer P or N.",
    "20 apples cost 3.50 dollars, 1,234 in all",  # digits: the trap turned "20" into "2","0" silently
    "Ünïcödé  double  spaces\ttabs\n\nnew lines",
    "<|im_start|>user\nhi<|im_end|>",
]


def test_reloaded_tokenizer_tokenizes_identically(tiny_model_dir):
    from ftlab.data.generate import generators

    original = train_tokenizer([m["content"] for e in generators.get("hem")(n=200, split="train", seed=0) for m in e.prompt] + ["P", "N"], 400)
    reloaded = AutoTokenizer.from_pretrained(tiny_model_dir)
    # transformers 5 rebuilds qwen2 folders as Qwen2Tokenizer: the case this test guards.
    assert json.loads((tiny_model_dir / "config.json").read_text())["model_type"] == "qwen2"
    for text in SAMPLES:
        assert reloaded(text)["input_ids"] == original(text)["input_ids"], text
        assert reloaded.decode(reloaded(text)["input_ids"]) == text
    chat = [{"role": "user", "content": "Composition: Co Cr"}, {"role": "assistant", "content": "P"}]
    assert reloaded.apply_chat_template(chat, tokenize=False) == original.apply_chat_template(chat, tokenize=False)


def test_model_reloads_with_same_weights_and_outputs(tiny_model_dir):
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    again = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    ids = torch.tensor([[1, 50, 60, 70]])
    assert torch.equal(model(ids).logits, again(ids).logits)
    assert model.config.model_type == "qwen2" and model.num_parameters() < 100_000
