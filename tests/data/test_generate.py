"""The built-in "hem" generator: deterministic, balanced, disjoint splits, labels by the VEC rule.

    .venv/bin/pytest tests/data/test_generate.py -q
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter

import pytest

from ftlab.data.generate import generate_hem, generators
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
