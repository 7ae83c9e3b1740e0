"""Class-proportion resampling: exact counts (seed 002's table), seeding, and the too-few error."""

from __future__ import annotations

from collections import Counter

import pytest

from ftlab.data.example import Example
from ftlab.data.resample import resample, target_counts
from ftlab.errors import DataError

# Seed 002: 17,101 training papers, 8,553 Accept / 8,548 Reject, resampled at a fixed total.
SEED_002 = {"1/2": (8553, 8548), "1/3": (5702, 11399), "1/4": (4276, 12825), "1/8": (2135, 14966)}


def _papers(n_accept: int, n_reject: int) -> list[Example]:
    prompt = [{"role": "user", "content": "paper"}]
    return [Example(prompt, "\\boxed{Accept}", "Accept", {"i": i}) for i in range(n_accept)] + [
        Example(prompt, "\\boxed{Reject}", "Reject", {"i": n_accept + i}) for i in range(n_reject)
    ]


@pytest.mark.parametrize("prop", list(SEED_002))
def test_seed_002_counts_come_out_exactly(prop):
    data = _papers(8553, 8548)
    accepts, rejects = SEED_002[prop]
    # 1/3, 1/4 and 1/8 need more rejects than the 8,548 available: the shortfall is drawn with replacement.
    out = resample(data, positive="Accept", positives=accepts, replace=True, seed=0)
    counts = Counter(e.label for e in out)
    assert (counts["Accept"], counts["Reject"]) == (accepts, rejects)
    assert len(out) == 17101


def test_fraction_rounds_half_to_even_exactly():
    assert target_counts(17101, fraction="1/2", positives=None) == (8550, 8551)  # 8,550.5 -> 8,550
    assert target_counts(17101, fraction="1/4", positives=None) == (4275, 12826)
    assert target_counts(17101, fraction=0.125, positives=None) == (2138, 14963)
    assert target_counts(10, fraction="1/3", positives=None) == (3, 7)


def test_too_few_is_an_error_unless_replace():
    data = _papers(100, 20)
    with pytest.raises(DataError, match="needs 60 negative examples but the data has only 20"):
        resample(data, positive="Accept", fraction="1/2", total=120)
    out = resample(data, positive="Accept", fraction="1/2", total=120, replace=True)
    negatives = [e.meta["i"] for e in out if e.label == "Reject"]
    assert len(negatives) == 60 and set(negatives) == set(range(100, 120))  # every original used


def test_seeded_and_deterministic():
    data = _papers(300, 300)
    a = resample(data, positive="Accept", fraction="1/4", total=400, seed=1)
    b = resample(data, positive="Accept", fraction="1/4", total=400, seed=1)
    c = resample(data, positive="Accept", fraction="1/4", total=400, seed=2)
    assert [e.meta["i"] for e in a] == [e.meta["i"] for e in b] != [e.meta["i"] for e in c]
    assert Counter(e.label for e in a) == {"Accept": 100, "Reject": 300}
