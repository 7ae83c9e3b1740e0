"""Few-shot pools, test downsampling, declared denominators, per-group metrics, exclude_final."""

from __future__ import annotations

import json
from pathlib import Path

import ftlab
from ftlab.data.example import Example
from ftlab.data.formats import read_examples
from ftlab.errors import StageError
from ftlab.evaluate.prepare import check_overlap, with_shots
from ftlab.registry import Registry
from tests.conftest import write_spec


def _edit(spec: Path, eval_block: str, extra: str = "") -> None:
    spec.write_text(spec.read_text().replace("eval: {batch_size: 32}", "eval:\n  batch_size: 32\n" + eval_block) + extra)


def test_fewshot_pool_leaves_training_and_prefixes_eval_prompts(tmp_path: Path):
    spec = write_spec(tmp_path)
    _edit(spec, "  test_fraction: 0.25\n  exclude_final: true\n  group_by: [n_elements]\n", "fewshot: {pool: 4, k: 2, seed: 7}\n")
    assert ftlab.run(spec).ok
    out = tmp_path / "out"
    train_dir = next((out / "data").glob("train-*"))
    pool = read_examples(train_dir / "fewshot.jsonl")
    train = read_examples(train_dir / "examples.jsonl")
    assert len(pool) == 4 and len(train) == 236  # 240 generated, the pool removed
    assert not {e.meta["source"] for e in pool} & {e.meta["source"] for e in train}

    reg = Registry(out / "registry.sqlite")
    rows = reg.metrics()
    # test downsampled to 25% (seeded), valid untouched
    n = {m["split"]: m["value"] for m in rows if m["metric"] == "n" and m["checkpoint"] == "step_0"}
    assert n["test"] == 10 and n["valid"] == 40
    # exclude_final: 15 steps -> step_0, step_10 scored; epoch_0 (the final) not
    assert {m["checkpoint"] for m in rows} == {"step_0", "step_10"}
    # per-group metrics over a data column, group sizes add up to the split
    groups = {m["split"]: m["value"] for m in rows if m["metric"] == "n" and m["checkpoint"] == "step_0" and m["split"].startswith("valid[")}
    assert groups and all(k.startswith("valid[n_elements=") for k in groups) and sum(groups.values()) == 40
    # the scored prompts carry the first k pool examples as earlier turns
    from ftlab.data.stage import load_split
    from ftlab.evaluate.prepare import eval_splits
    from ftlab.graph import build_graph
    from ftlab.spec.plan import load_plan

    task = build_graph(load_plan(spec)).task("eval/run")
    data = eval_splits(task.inputs, {n: load_split(p) for n, p in task.inputs.split_dirs.items()})
    prompt = data["valid"][0].prompt
    assert [m["role"] for m in prompt] == ["system", "user", "assistant", "user", "assistant", "user"]
    assert [prompt[1]["content"], prompt[2]["content"], prompt[3]["content"]] == [pool[0].prompt[-1]["content"], pool[0].completion, pool[1].prompt[-1]["content"]]
    record = json.loads((out / "runs" / "run" / "eval" / "step_0" / "logits" / "valid.jsonl").read_text().splitlines()[0])
    assert record["source"].startswith("hem:valid")


def test_with_shots_and_overlap_refusal():
    q = Example([{"role": "system", "content": "S"}, {"role": "user", "content": "q"}], "P", "P", {"source": "a:1"})
    shot = Example([{"role": "system", "content": "S"}, {"role": "user", "content": "s1"}], "N", "N", {"source": "t:9"})
    assert [m["content"] for m in with_shots(q, [shot]).prompt] == ["S", "s1", "N", "q"]
    try:
        check_overlap([q], {"test": [q]})
    except StageError as err:
        assert "appear in the 'test' split (a:1)" in str(err)
    else:
        raise AssertionError("overlap was not refused")


def test_declared_denominators_are_checked(tmp_path: Path, capsys):
    spec = write_spec(tmp_path)
    _edit(spec, "  expected: {valid: 40, test: 39}\n")
    done = ftlab.run(spec, echo=None)
    assert not done.ok and "test: expected 39 examples, got 40" in done.failed["eval/run"]


def test_downsample_truncates_like_seed_001():
    """Seed 001 declares 263 of GSM8K's 1,319 test examples at 20%: int(263.8), not round() = 264."""
    from ftlab.evaluate.prepare import downsample

    examples = [Example([{"role": "user", "content": str(i)}], "P", "P", {"source": f"t:{i}"}) for i in range(1319)]
    kept = downsample(examples, 0.2, seed=42)
    assert len(kept) == 263
    assert kept == sorted(kept, key=lambda e: int(e.meta["source"][2:]))  # original order kept
    assert kept == downsample(examples, 0.2, seed=42) and kept != downsample(examples, 0.2, seed=43)
    assert len(downsample(examples[:3], 0.1, seed=0)) == 1  # never empty: int(0.3) -> at least 1
    assert len(downsample(examples[:100], 0.29, seed=0)) == 29  # 100 * 0.29 = 28.999999999999996 in floats
