"""Token-logit classification: batching does not change scores; predictions follow the logits."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from ftlab.data.encode import label_token_ids
from ftlab.data.generate import generators
from ftlab.errors import DataError
from ftlab.evaluate.logits import classify


def test_batching_and_padding_do_not_change_scores(tiny_model_dir):
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    examples = generators.get("hem")(n=24, split="valid", seed=3)  # 4-6 elements: prompts of different lengths
    one = classify(model, tok, examples, ["P", "N"], batch_size=1)
    many = classify(model, tok, examples, ["P", "N"], batch_size=7)
    for a, b in zip(one, many):
        assert a["index"] == b["index"] and a["pred"] == b["pred"]
        for label in ("P", "N"):
            assert a["logits"][label] == pytest.approx(b["logits"][label], abs=1e-4)
    for r in many:
        assert r["pred"] == max(r["logits"], key=r["logits"].get)
        assert sum(r["probs"].values()) == pytest.approx(1.0)
        assert r["label"] in ("P", "N") and r["source"].startswith("hem:valid")


def test_labels_sharing_a_first_token_are_refused(tiny_model_dir):
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    prompt = [{"role": "user", "content": "x"}]
    with pytest.raises(DataError, match="start with the same token"):
        label_token_ids(tok, ["Pa", "Pb"], prompt)


def test_multi_token_labels_are_scored_by_summed_log_probability(tiny_model_dir):
    from ftlab.evaluate.logits import label_sequences

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    examples = generators.get("hem")(n=6, split="valid", seed=1)
    labels = ["Accepted", "Rejected"]
    seqs = label_sequences(tok, labels, examples[0].prompt)
    assert all(len(s) > 1 for s in seqs)  # byte-level BPE on HEM text: several tokens each
    records = classify(model, tok, examples, labels, batch_size=4)
    from ftlab.data.encode import prompt_ids

    for e, r in zip(examples, records):
        for label, seq in zip(labels, seqs):
            ids = torch.tensor([prompt_ids(tok, e.prompt) + seq])
            logprobs = torch.log_softmax(model(input_ids=ids).logits[0, :-1], dim=-1)
            manual = sum(logprobs[len(ids[0]) - len(seq) - 1 + k, t].item() for k, t in enumerate(seq))
            assert r["logits"][label] == pytest.approx(manual, abs=1e-4)
    again = classify(model, tok, examples, labels, batch_size=1)
    assert [r["pred"] for r in again] == [r["pred"] for r in records]
