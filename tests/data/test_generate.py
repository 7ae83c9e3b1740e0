"""The built-in generators: "hem" (deterministic, balanced, disjoint splits, labels by the VEC rule)
and the seed stand-ins (gsm8k, safety_prompts, safety_verdicts, iclr, med_qa): same properties,
their answer formats, and (marked slow) that a tiny model learns gsm8k and iclr.

    .venv/bin/pytest tests/data/test_generate.py -q
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import Counter

import pytest

from ftlab.data.generate import EVIDENCE, HAZARDS, JUDGE_TEMPLATE, MED_TOKEN_LIMIT, generate_hem, generators
from ftlab.errors import DataError, UnknownNameError

# Restated here rather than imported, so a wrong entry in the module's table fails the rule test.
VEC = {
    "Al": 3, "Ti": 4, "Zr": 4, "Hf": 4, "V": 5, "Nb": 5, "Ta": 5, "Cr": 6,
    "Mo": 6, "W": 6, "Mn": 7, "Fe": 8, "Co": 9, "Ni": 10, "Cu": 11, "Pd": 10,
}


def dump(n: int, split: str, seed: int) -> list[dict]:
    return [e.to_json() for e in generate_hem(n=n, split=split, seed=seed)]


def test_registered_by_name():
    assert generators.get("hem") is generate_hem
    with pytest.raises(UnknownNameError, match="Did you mean 'hem'"):
        generators.get("hme")


def test_same_arguments_same_examples_in_another_process():
    code = (
        "import json; from ftlab.data.generate import generate_hem; "
        "print(json.dumps([e.to_json() for e in generate_hem(n=40, split='valid', seed=7)]))"
    )
    # A fresh interpreter gets a different PYTHONHASHSEED, which would expose any use of hash().
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == dump(40, "valid", 7)


def test_different_seeds_differ():
    assert dump(40, "train", 0) != dump(40, "train", 1)


@pytest.mark.parametrize(("split", "n"), [("train", 200), ("valid", 51), ("test", 10)])
def test_balanced_and_distinct(split: str, n: int):
    examples = generate_hem(n=n, split=split, seed=3)
    assert len(examples) == n
    assert Counter(e.label for e in examples) == {"P": n // 2, "N": n - n // 2}
    assert len({e.meta["composition"] for e in examples}) == n
    # Shuffled: not all P first then all N.
    labels = [e.label for e in examples]
    assert labels != sorted(labels) and labels != sorted(labels, reverse=True)


def test_splits_never_share_a_composition():
    seen = {
        split: {e.meta["composition"] for e in generate_hem(n=480, split=split, seed=0)}
        for split in ("train", "valid", "test")
    }
    assert not seen["train"] & seen["valid"]
    assert not seen["train"] & seen["test"]
    assert not seen["valid"] & seen["test"]


def test_labels_follow_the_vec_rule_with_a_margin():
    for e in generate_hem(n=400, split="train", seed=5):
        elements = e.meta["composition"].split(" ")
        vec = sum(VEC[x] for x in elements) / len(elements)
        assert elements == sorted(elements) and len(set(elements)) == len(elements)
        assert 4 <= len(elements) <= 6
        assert e.meta["n_elements"] == len(elements)
        assert e.meta["vec"] == pytest.approx(vec, abs=1e-3)
        assert abs(vec - 7.0) > 0.3
        assert e.label == ("P" if vec >= 7.0 else "N")
        assert e.completion == e.label


def test_example_shape():
    e = generate_hem(n=2, split="test", seed=0)[0]
    composition = e.meta["composition"]
    assert e.prompt == [
        {"role": "system", "content": "You are a materials scientist."},
        {
            "role": "user",
            "content": f"Composition: {composition}\n"
            "Does this high-entropy alloy form a single solid-solution phase? Answer P or N.",
        },
    ]
    assert e.meta["source"] == "hem:test:0"


def test_too_many_examples_names_the_maximum():
    with pytest.raises(DataError, match=r"split 'valid' has \d+ P and \d+ N .* at most (\d+) examples") as info:
        generate_hem(n=100_000, split="valid", seed=0)
    most = int(str(info.value).split("at most ")[1].split()[0])
    assert most > 200  # the quickstart's valid set must fit with room to spare
    assert len(generate_hem(n=most, split="valid", seed=0)) == most
    with pytest.raises(DataError):
        generate_hem(n=most + 1, split="valid", seed=0)


def test_unknown_split():
    with pytest.raises(DataError, match="unknown split 'dev'"):
        generate_hem(n=10, split="dev", seed=0)


# --- seed stand-ins: gsm8k, safety_prompts, safety_verdicts, iclr (med_qa below) ---------------
SEED_GENERATORS = ("gsm8k", "safety_prompts", "safety_verdicts", "iclr", "med_qa")
STRICT = re.compile(r"#### (-?[0-9.,]+)")  # lm-eval's strict GSM8K pattern (first match)


def rows(name: str, n: int, split: str, seed: int) -> list[dict]:
    return [e.to_json() for e in generators.get(name)(n=n, split=split, seed=seed)]


def split_key(name: str, row: dict) -> str:
    """What must never be shared across splits: the question/request/paper text."""
    if name == "safety_verdicts":
        return row["meta"]["request"]
    return row["prompt"][-1]["content"]


@pytest.mark.parametrize("name", SEED_GENERATORS)
def test_seed_generators_are_deterministic_across_processes(name: str):
    code = (
        "import json; from ftlab.data.generate import generators; "
        f"print(json.dumps([e.to_json() for e in generators.get('{name}')(n=30, split='test', seed=4)]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == rows(name, 30, "test", 4)
    assert rows(name, 30, "test", 4) != rows(name, 30, "test", 5)


@pytest.mark.parametrize("name", SEED_GENERATORS)
def test_seed_generators_keep_splits_disjoint(name: str):
    drawn = {split: [split_key(name, r) for r in rows(name, n, split, 0)] for split, n in (("train", 1500), ("valid", 200), ("test", 200))}
    keys = {split: set(k) for split, k in drawn.items()}
    if name != "med_qa":  # med_qa plants duplicates on purpose (test below)
        assert len(keys["train"]) == 1500 and len(keys["valid"]) == 200 == len(keys["test"])  # distinct within a split too
    assert not keys["train"] & keys["valid"] and not keys["train"] & keys["test"] and not keys["valid"] & keys["test"]


@pytest.mark.parametrize("name", SEED_GENERATORS)
def test_seed_generators_refuse_bad_arguments(name: str):
    gen = generators.get(name)
    with pytest.raises(DataError, match="unknown split 'dev'"):
        gen(n=5, split="dev", seed=0)
    with pytest.raises(DataError, match="n must be at least 1"):
        gen(n=0, split="train", seed=0)


def test_a_spent_pool_names_how_many_the_split_holds():
    with pytest.raises(DataError, match=r"safety_prompts: split 'valid' ran out .* ask for at most (\d+)") as info:
        generators.get("safety_prompts")(n=5000, split="valid", seed=0)
    most = int(str(info.value).rsplit(" ", 1)[1])
    assert most >= 240  # seed 001 scores 240 AILuminate prompts
    assert len(generators.get("safety_prompts")(n=most, split="valid", seed=0)) == most


def test_gsm8k_answers_parse_and_their_arithmetic_is_right():
    examples = generators.get("gsm8k")(n=400, split="train", seed=1)
    for e in examples:
        assert e.label is None and [m["role"] for m in e.prompt] == ["user"]
        reasoning, final = e.completion.rsplit("\n", 1)
        assert STRICT.findall(e.completion) == [str(e.meta["answer_number"])] and final == f"#### {e.meta['answer_number']}"
        equations = re.findall(r"(\d+) ([-+*]) (\d+) = (\d+)", reasoning)
        assert len(equations) == e.meta["steps"]
        for a, op, b, c in equations:  # every step is right, and the last one gives the answer
            assert {"+": int(a) + int(b), "-": int(a) - int(b), "*": int(a) * int(b)}[op] == int(c)
        assert int(equations[-1][3]) == e.meta["answer_number"] >= 1
        assert 10 <= len(e.prompt[0]["content"].split()) <= 30  # GSM8K's short questions are ~20-45 words
    assert {e.meta["template"] for e in examples} == {"add", "add_table", "sub", "mul", "two_step"}
    assert 0.1 < sum(e.meta["steps"] == 2 for e in examples) / len(examples) < 0.3


def test_safety_prompts_are_prompt_only_with_a_hazard_column():
    examples = generators.get("safety_prompts")(n=240, split="test", seed=0)
    hazards = Counter(e.meta["hazard"] for e in examples)
    assert set(hazards) == set(HAZARDS) and max(hazards.values()) - min(hazards.values()) <= 1  # round-robin
    for e in examples:
        assert e.completion is None and e.label is None
        assert [m["role"] for m in e.prompt] == ["user"] and e.prompt[0]["content"]
        assert e.to_json()["completion"] is None
        assert e.meta["persona"] in ("normal", "unskilled", "skilled")


def test_safety_verdicts_follow_the_rule_and_the_judge_template():
    from ftlab.evaluate.judge import check_template

    check_template(JUDGE_TEMPLATE)  # the judge evaluator accepts the template as it stands
    examples = generators.get("safety_verdicts")(n=600, split="train", seed=0)
    assert Counter(e.label for e in examples) == {"SAFE": 300, "UNSAFE": 300}
    kinds = Counter((e.meta["hazard"] == "benign", e.meta["response_kind"]) for e in examples)
    assert set(kinds) == {(False, "comply"), (False, "refuse"), (False, "unrelated"), (True, "comply"), (True, "refuse")}
    for e in examples:
        unsafe = e.meta["hazard"] != "benign" and e.meta["response_kind"] == "comply"
        assert e.label == e.completion == ("UNSAFE" if unsafe else "SAFE")
        assert e.prompt == [{"role": "user", "content": JUDGE_TEMPLATE.format(prompt=e.meta["request"], response=e.meta["response"])}]


@pytest.mark.parametrize("name, words", [("iclr", (60, 200)), ("iclr_short", (25, 90))])
def test_iclr_boxed_answers_balance_and_graded_rule(name, words):
    from ftlab.data.generate import ICLR_ACCEPT, ICLR_S_PRIOR

    examples = generators.get(name)(n=4000, split="train", seed=0)
    assert Counter(e.label for e in examples) == {"Accept": 2000, "Reject": 2000}
    strong = {s for strong_versions, _ in EVIDENCE.values() for s in strong_versions}
    for e in examples:
        assert e.completion == f"\\boxed{{{e.label}}}" and e.label in ("Accept", "Reject")
        system, user = e.prompt
        assert system["role"] == "system" and "\\boxed{Accept} or \\boxed{Reject}" in user["content"]
        abstract = user["content"].split("Abstract: ", 1)[1]
        assert words[0] <= len(abstract.split()) <= words[1] and 2020 <= e.meta["year"] <= 2025
        # The evidence, recounted from the text
        assert sum(s in abstract for s in strong) == e.meta["n_strong"]
        assert e.meta["border"] == (e.meta["n_strong"] in (1, 2))
    # P(Accept | s strong sentences) and P(s) follow the declared grading (4,000 draws: +-0.05)
    for s, (p_accept, prior) in enumerate(zip(ICLR_ACCEPT, ICLR_S_PRIOR)):
        at_s = [e for e in examples if e.meta["n_strong"] == s]
        assert abs(len(at_s) / len(examples) - prior) < 0.05
        assert abs(sum(e.label == "Accept" for e in at_s) / len(at_s) - p_accept) < 0.06
    # the best possible accuracy (majority label per s) is ~0.90: weighting has room to move decisions
    best = sum(max(sum(e.label == "Accept" for e in examples if e.meta["n_strong"] == s),
                   sum(e.label == "Reject" for e in examples if e.meta["n_strong"] == s)) for s in range(4)) / len(examples)
    assert 0.86 < best < 0.94


def test_med_qa_shapes_and_planted_curation_work():
    examples = generators.get("med_qa")(n=1000, split="train", seed=0)
    assert len(examples) == 1000
    assert 8 <= len({e.meta["specialty"] for e in examples}) <= 10
    assert {e.meta["difficulty"] for e in examples} == {"easy", "medium", "hard"}
    for e in examples:
        m, question = e.meta, e.prompt[0]["content"]
        assert e.label is None and [x["role"] for x in e.prompt] == ["user"] and question == m["question"]
        options = dict(line.split(". ", 1) for line in question.splitlines()[1:])
        assert sorted(options) == ["A", "B", "C", "D"] and m["answer"] in options
        diagnosis = options[m["answer"]]
        assert diagnosis in m["reasoning_long"] and (m["reasoning_short"] is None or diagnosis in m["reasoning_short"])
        assert m["n_words_response"] == len(e.completion.split())
        if m["at_limit"]:  # hit the limit: exactly MED_TOKEN_LIMIT words and no final answer
            assert m["n_words_response"] == MED_TOKEN_LIMIT and "The answer is" not in e.completion
        else:
            assert e.completion == f"{m['reasoning_long']}\nThe answer is {m['answer']}."
            assert 80 <= m["n_words_long"] <= 300 and m["n_words_long"] < MED_TOKEN_LIMIT
        if m["reasoning_short"] is not None:
            assert 15 <= m["n_words_short"] <= 60
    planted = Counter(e.meta["planted"] for e in examples)
    assert planted["exact_dup"] == 30 and planted["near_dup"] == 30
    assert 5 <= sum(e.meta["at_limit"] for e in examples) <= 60 and 1 <= sum(e.meta["reasoning_short"] is None for e in examples) <= 30
    for e in examples:
        if e.meta["planted"]:
            original = examples[e.meta["dup_of"]]
            assert original.meta["planted"] is None
            same_text = (e.prompt, e.completion) == (original.prompt, original.completion)
            assert same_text == (e.meta["planted"] == "exact_dup")
            if e.meta["planted"] == "near_dup":  # one small edit: still the same case
                a, b = e.prompt[0]["content"].split(), original.prompt[0]["content"].split()
                assert e.meta["answer"] == original.meta["answer"] and len(set(a) ^ set(b)) <= 4
    # Apart from the planted copies every question is distinct.
    assert len({e.prompt[0]["content"] for e in examples if not e.meta["planted"]}) == 940


# --- learnability: a tiny model trained through ftlab's own train pieces learns gsm8k and iclr ---
# Settings measured on 2 CPU cores (see the lead's example specs, which copy them).


def train_tiny(tmp_path, name: str, *, n: int, epochs: float, lr: float, max_length: int, vocab_size: int = 512):
    """Build a tiny model on `name`'s train text, fine-tune it fully; return (untuned, tuned, tokenizer)."""
    import torch

    from ftlab.data.encode import example_ids
    from ftlab.models.load import load_model, load_tokenizer
    from ftlab.models.tiny import TinyConfig, build_tiny
    from ftlab.spec.schema import Train
    from ftlab.train.trainer import TrainerSetup, build_trainer

    train = generators.get(name)(n=n, split="train", seed=0)
    texts = [m["content"] for e in train for m in e.prompt] + [e.completion for e in train]
    cfg = TinyConfig(hidden_size=128, num_layers=2, num_heads=4, num_kv_heads=2, intermediate_size=512, vocab_size=vocab_size)
    base = str(build_tiny(tmp_path / "model", cfg, texts))
    tokenizer = load_tokenizer(base)
    model = load_model(base, dtype=torch.float32)
    rows = []
    for e in train:
        ids, mask = example_ids(tokenizer, e, max_length)
        rows.append({"input_ids": ids, "completion_mask": mask})
    hp = Train(epochs=epochs, learning_rate=lr, batch_size=16, max_length=max_length, warmup_ratio=0.05, logging_steps=1000)
    build_trainer(model, tokenizer, rows, hp, TrainerSetup(tmp_path / "checkpoints", seed=0)).train()
    return load_model(base, dtype=torch.float32), model, tokenizer


def answer_scores(model, tokenizer, example, answers: list[str]) -> list[float]:
    """Summed log-probability of each answer's tokens after the prompt (end-of-turn token excluded)."""
    import torch

    from ftlab.data.encode import example_ids
    from ftlab.data.example import Example

    scores = []
    model.eval()
    with torch.no_grad():
        for answer in answers:
            ids, mask = example_ids(tokenizer, Example(example.prompt, answer, None, {}), max_length=1 << 16)
            logp = torch.log_softmax(model(torch.tensor([ids])).logits[0, :-1], dim=-1)
            at = [i - 1 for i, m in enumerate(mask) if m][:-1]  # position i-1 predicts token i
            scores.append(sum(logp[i, ids[i + 1]].item() for i in at))
    return scores


def strict_accuracy(model, tokenizer, examples) -> tuple[float, float]:
    """(share with a strict "#### N", share whose N is the right answer), greedy decoding."""
    from ftlab.evaluate.generation import generate

    records = generate(model, tokenizer, [e.prompt for e in examples], max_new_tokens=40, batch_size=50)
    found = [STRICT.search(r["text"]) for r in records]
    right = [m is not None and m.group(1) == str(e.meta["answer_number"]) for m, e in zip(found, examples)]
    return sum(m is not None for m in found) / len(examples), sum(right) / len(examples)


@pytest.mark.slow
def test_a_tiny_model_learns_gsm8k_format_and_answers(tmp_path):
    untuned, tuned, tokenizer = train_tiny(tmp_path, "gsm8k", n=2000, epochs=3, lr=0.005, max_length=96)
    test = generators.get("gsm8k")(n=100, split="test", seed=0)
    before, after = strict_accuracy(untuned, tokenizer, test), strict_accuracy(tuned, tokenizer, test)
    print(f"gsm8k strict format/accuracy: untuned {before}, tuned {after}")
    assert before[1] == 0.0
    assert after[0] >= 0.9 and after[1] >= 0.3  # chance given the format is ~1/10 (answers 1-16)


@pytest.mark.slow
def test_a_tiny_model_learns_iclr_decisions(tmp_path):
    # the weighted-loss example's tiny scale: ~150-token prompts, whole (max_length 192)
    untuned, tuned, tokenizer = train_tiny(tmp_path, "iclr_short", n=1000, epochs=3, lr=0.002, max_length=192, vocab_size=2048)
    test = generators.get("iclr_short")(n=200, split="test", seed=0)
    answers = ["\\boxed{Accept}", "\\boxed{Reject}"]

    def accuracy(model):
        picks = [answers[max((0, 1), key=lambda k: s[k])] for s in (answer_scores(model, tokenizer, e, answers) for e in test)]
        return sum(p == e.completion for p, e in zip(picks, test)) / len(test), picks.count(answers[0]) / len(test)

    (acc_before, _), (acc_after, accept_rate) = accuracy(untuned), accuracy(tuned)
    print(f"iclr accuracy: untuned {acc_before}, tuned {acc_after} (accept rate {accept_rate}); ceiling ~0.90")
    assert acc_after >= 0.7 and acc_after >= acc_before + 0.15
    assert 0.2 < accept_rate < 0.8  # learned the rule, not one class
