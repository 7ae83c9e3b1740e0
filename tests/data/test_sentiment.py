"""The sentiment generator: every split asks about its own adjectives, balanced, reproducible."""

from __future__ import annotations

import pytest

from ftlab.data.generate import generators
from ftlab.data.sentiment import NEGATIVE, POSITIVE, words
from ftlab.errors import DataError


def test_each_adjective_is_in_one_split_and_one_class():
    assert not set(POSITIVE) & set(NEGATIVE)
    seen = {s: set(words(s, "positive")) | set(words(s, "negative")) for s in ("train", "valid", "test")}
    assert not seen["train"] & seen["valid"] and not seen["train"] & seen["test"] and not seen["valid"] & seen["test"]
    assert all(len(words(s, label)) >= 10 for s in ("valid", "test") for label in ("positive", "negative"))


def test_rows_are_balanced_deterministic_and_use_their_split_words():
    gen = generators.get("sentiment")
    rows = gen(n=60, split="test", seed=0)
    assert rows == gen(n=60, split="test", seed=0) and rows != gen(n=60, split="test", seed=1)
    assert [r.label for r in rows].count("positive") == 30
    for r in rows:
        assert r.completion == r.label and r.meta["word"] in words("test", r.label)
        assert r.meta["word"] in r.prompt[0]["content"]
    assert len({r.prompt[0]["content"] for r in rows}) == 60


def test_asking_for_more_than_a_split_holds_is_a_clear_error():
    with pytest.raises(DataError, match="at most"):
        generators.get("sentiment")(n=10**6, split="valid", seed=0)
