"""Curation filters (seed 003) on the med_qa stand-in's planted flaws, and their spec checks.

Run: `.venv/bin/pytest tests/data/test_curate.py -q` (a few seconds; no model).
"""

from __future__ import annotations

import json
from collections import Counter

import pytest
import yaml

import ftlab
from ftlab.curate.filters import FilterContext, filters
from ftlab.data.generate import generators
from ftlab.errors import FtlabError


def _apply(name, examples, **options):
    f = filters.get(name)
    return f().apply(list(enumerate(examples)), f.Options.model_validate(options), FilterContext(out_dir=None))


def test_quality_finds_what_the_generator_planted():
    examples = generators.get("med_qa")(n=400, split="train", seed=0)
    dropped = _apply("quality", examples, fields=["reasoning_short"], token_limit=320, near_duplicates=0.7)
    for i, e in enumerate(examples):
        if e.meta["planted"] == "exact_dup":
            assert i in dropped or e.meta["dup_of"] in dropped, e.meta  # the copy, or the original when the copy came first
        if e.meta["at_limit"] and e.meta["planted"] is None and e.meta["reasoning_short"] is not None:
            assert dropped.get(i) == "response exactly at the 320-token limit"
        if e.meta["reasoning_short"] is None and e.meta["planted"] is None:
            assert dropped.get(i) == "missing reasoning_short"
    near = [i for i, e in enumerate(examples) if e.meta["planted"] == "near_dup"]
    caught = [i for i in near if i in dropped or e_dup_dropped(examples, dropped, i)]
    assert len(caught) == len(near)  # one of each near pair is dropped (MinHash estimate >= 0.7: true Jaccard of the planted pairs is 0.81-0.9)
    kinds = Counter(w.split(" of #")[0].split(" (")[0] for w in dropped.values())
    assert kinds["near duplicate"] >= 1 and kinds["exact duplicate"] >= 1
    # unplanted rows survive: no false duplicates among distinct vignettes
    flawed = {i for i, e in enumerate(examples) if e.meta["planted"] or e.meta["at_limit"] or e.meta["reasoning_short"] is None}
    originals = {e.meta["dup_of"] for e in examples if e.meta["planted"]}
    assert set(dropped) <= flawed | originals


def e_dup_dropped(examples, dropped, i):
    return examples[i].meta["dup_of"] in dropped


def test_diversity_balances_categories_and_is_seeded():
    examples = generators.get("med_qa")(n=400, split="train", seed=0)
    a = _apply("diversity", examples, field="reasoning_long", min_tokens=150, total=60, balance="specialty", seed=0)
    b = _apply("diversity", examples, field="reasoning_long", min_tokens=150, total=60, balance="specialty", seed=0)
    c = _apply("diversity", examples, field="reasoning_long", min_tokens=150, total=60, balance="specialty", seed=1)
    assert a == b and a != c
    kept = [e for i, e in enumerate(examples) if i not in a]
    assert len(kept) == 60 and all(len(e.meta["reasoning_long"].split()) >= 150 for e in kept)
    assert set(Counter(e.meta["specialty"] for e in kept).values()) == {6}  # 10 specialties x 6


def test_random_sample_of_n():
    examples = generators.get("med_qa")(n=100, split="train", seed=0)
    dropped = _apply("random", examples, n=30, seed=3)
    assert len(examples) - len(dropped) == 30 and dropped == _apply("random", examples, n=30, seed=3)


SPEC = {
    "name": "cur", "model": {"tiny": {"hidden_size": 32, "num_layers": 1, "num_heads": 2, "num_kv_heads": 1, "intermediate_size": 64}},
    "task": {"type": "generation"},
    "datasets": [
        {"name": "train", "role": "train", "generate": {"name": "med_qa_short", "n": 50},
         "curate": [{"name": "quality", "token_limit": 320}, {"name": "diversty", "total": 10}]},
        {"name": "valid", "role": "valid", "generate": {"name": "med_qa_short", "n": 10}, "curate": [{"name": "random", "n": 5}]},
    ],
    "eval": {"evaluators": [{"name": "generate", "parser": {"regex": "The answer is ([A-D])"}}]},
}


def test_validate_names_a_misspelt_filter_and_bad_options(tmp_path, capsys):
    spec = json.loads(json.dumps(SPEC))
    spec["datasets"][0]["curate"][0]["token_limt"] = 5
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(spec))
    with pytest.raises(FtlabError) as caught:
        ftlab.validate(tmp_path / "s.yaml")
    err = str(caught.value)
    assert "datasets[0].curate[1].name" in err and "Did you mean 'diversity'" in err
    assert "datasets[0].curate[0].token_limt" in err and "Did you mean 'token_limit'" in err
    assert "datasets[1].curate" in err and "only the train dataset may be curated" in err
    assert "Traceback" not in err


@pytest.mark.slow
def test_difficulty_asks_the_model_through_an_ftlab_evaluator(tmp_path):
    """A random-init tiny model scored by `logits` on P/N answers about half right: those are dropped,
    and another model (weight seed) answers, and so drops, differently."""
    from ftlab.models.tiny import TinyConfig, build_tiny

    examples = generators.get("hem")(n=40, split="train", seed=0)
    texts = [m["content"] for e in examples for m in e.prompt] + [e.completion for e in examples]
    decisions = []
    for seed in (0, 1):
        model = build_tiny(tmp_path / f"m{seed}", TinyConfig(hidden_size=32, num_layers=1, num_heads=2, num_kv_heads=1,
                                                              intermediate_size=64, vocab_size=320, seed=seed), texts)
        f = filters.get("difficulty")
        ctx = FilterContext(out_dir=tmp_path / f"out{seed}", model_path=str(model), labels=["P", "N"])
        (tmp_path / f"out{seed}").mkdir()
        dropped = f().apply(list(enumerate(examples)), f.Options.model_validate({"evaluator": "logits"}), ctx)
        answers = [json.loads(line) for line in (tmp_path / f"out{seed}" / "difficulty.jsonl").read_text().splitlines()]
        assert len(answers) == 40 and all("probs" in a for a in answers)  # the model's label probabilities, per example
        assert set(dropped) == {a["curate_index"] for a in answers if a["pred"] == a["label"]}
        assert 0 < len(dropped) < 40
        decisions.append(set(dropped))
    assert decisions[0] != decisions[1]
