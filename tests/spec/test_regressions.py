"""Specs that `ftlab validate` used to accept (then crashed or did the wrong thing later), or answered
with a traceback or a hang: each now fails at validate with a message naming its line and YAML path."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from ftlab.errors import SpecError
from ftlab.spec.plan import load_plan
from tests.conftest import TINY_SPEC, write_spec

SWEEP = "[{lr: 0.1}, {lr: 0.2}]"


def _spec(tmp_path: Path, *edits: tuple[str, str], sweep: str = SWEEP, seeds: str = "[0]", extra: str = "") -> Path:
    """TINY_SPEC with text replacements (each must apply) and extra lines appended."""
    path = write_spec(tmp_path, sweep=sweep, seeds=seeds)
    text = path.read_text()
    for old, new in edits:
        assert old in text, old
        text = text.replace(old, new, 1)
    path.write_text(text + textwrap.dedent(extra))
    return path


def _line(path: Path, needle: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if needle in line)


TRAIN = "learning_rate: 0.003"
CASES = [
    # (id, edits, extra text, line marker, expected "path: message" fragment)
    ("epochs-inf", [("epochs: 1", "epochs: .inf")], "", "train:", "train.epochs: must be a finite number, not inf"),
    ("lr-nan", [(TRAIN, "learning_rate: .nan")], "", "train:", "train.learning_rate: must be a finite number, not nan"),
    ("seed-negative", [("seeds: [0]", "seeds: [-1]")], "", "seeds:", "seeds[0]: seed -1 is out of range"),
    ("seed-huge", [("seeds: [0]", "seeds: [18446744073709551616]")], "", "seeds:", "seeds[0]: seed 18446744073709551616 is out of range"),
    ("generator-seed", [("n: 240, seed: 0", "n: 240, seed: -5")], "", "name: train", "datasets[0].generate.seed: Input should be greater than or equal to 0"),
    ("label-empty", [("labels: [P, N]", 'labels: ["", N]')], "", "task:", "task.labels[0]: label '' is empty"),
    ("label-blank", [("labels: [P, N]", 'labels: [P, " "]')], "", "task:", "task.labels[1]: label ' ' is empty"),
    ("heads-3-hidden-128", [("hidden_size: 32, num_layers: 1, num_heads: 2", "hidden_size: 128, num_layers: 1, num_heads: 3")], "", "tiny:",
     "model.tiny.num_heads: hidden_size 128 is not divisible by num_heads 3"),
    ("kv-heads", [("num_heads: 2, num_kv_heads: 1", "num_heads: 4, num_kv_heads: 3")], "", "tiny:",
     "model.tiny.num_kv_heads: num_heads 4 is not divisible by num_kv_heads 3"),
    ("odd-head-size", [("hidden_size: 32", "hidden_size: 30")], "", "tiny:", "model.tiny.num_heads: head size hidden_size/num_heads = 15 must be even"),
    ("output-dir-var", [("output_dir: out", "output_dir: out_${lr}")], "", "output_dir:", "output_dir: uses sweep variable ${lr}"),
    ("name-var", [("name: tiny", "name: x_${lr}")], "", "name: x_", "name: uses sweep variable ${lr}"),
    ("splits-twice", [("eval: {batch_size: 32}", "eval: {batch_size: 32, splits: [valid, valid]}")], "", "eval:", "eval.splits: lists 'valid' twice"),
    ("run-name-brace", [], 'run_name: "{lr}}"\n', "run_name:", "run_name: is not a valid name template (Single '}' encountered"),
    ("run-name-open", [], 'run_name: "lr{lr"\n', "run_name:", "run_name: is not a valid name template"),
    ("run-name-type", [], 'run_name: "{lr:d}"\n', "run_name:", "run_name: cannot be filled at lr=0.1"),
    ("run-name-unknown", [], 'run_name: "{gamma}"\n', "run_name:", "run_name: uses {gamma}, which is not a sweep variable"),
    ("run-name-attribute", [], 'run_name: "{lr.__class__}"\n', "run_name:", "run_name: {lr.__class__}: name a sweep variable"),
    ("run-name-position", [], 'run_name: "{0}"\n', "run_name:", "run_name: {0}: name a sweep variable"),
    ("run-name-width", [], 'run_name: "{lr:>999999999}"\n', "run_name:", "run_name: {lr:>999999999}: use a plain format spec"),
    ("control-seed", [("controls: []", "controls: [{kind: random_init, seeds: [-2]}]")], "", "controls:", "controls[0].seeds[0]: seed -2 is out of range"),
    ("preset-typo", [], "presets:\n  fast:\n    train: {epoch: 3}\npreset: fast\n", "train: {epoch: 3}",
     "presets.fast.train.epoch: unknown key 'epoch'. Did you mean 'epochs'?"),
    ("preset-bad-value", [], "presets:\n  fast:\n    train:\n      warmup_ratio: 2\npreset: fast\n", "warmup_ratio: 2",
     "presets.fast.train.warmup_ratio: Input should be less than 1"),
]


@pytest.mark.parametrize("case_id, edits, extra, marker, fragment", CASES, ids=[c[0] for c in CASES])
def test_fails_at_validate_with_its_location(tmp_path: Path, case_id, edits, extra, marker, fragment):
    spec = _spec(tmp_path, *edits, extra=extra)
    with pytest.raises(SpecError) as info:
        load_plan(spec)
    expected = f"line {_line(spec, marker)}, {fragment}"
    assert any(p.startswith(expected) for p in info.value.problems), f"want {expected!r}\n got {info.value.problems}"


def test_the_unedited_spec_is_valid(tmp_path: Path):
    """The table above changes one thing each: the spec it starts from must pass."""
    plan = load_plan(_spec(tmp_path, extra='run_name: "lr{lr}"\n'))
    assert [r.name for r in plan.runs] == ["lr0.1", "lr0.2"]


def test_cluster_profile_typo_is_reported_with_its_file_line(tmp_path: Path):
    (tmp_path / "cl.yaml").write_text("partition: gpu\nresources:\n  8B:\n    tme: '1:00:00'\nlimits: {gpus_per_nod: 4}\n")
    spec = _spec(tmp_path, ("name: tiny", "name: tiny\ncluster: cl.yaml"))
    with pytest.raises(SpecError) as info:
        load_plan(spec)
    text = str(info.value)
    at = _line(spec, "cluster:")
    assert f"line {at}, cluster: in cl.yaml: line 4, resources.8B.tme: unknown key 'tme'. Did you mean 'time'?" in text
    assert f"line {at}, cluster: in cl.yaml: line 5, limits.gpus_per_nod: unknown key 'gpus_per_nod'. Did you mean 'gpus_per_node'?" in text


def test_huge_grid_is_refused_before_expanding(tmp_path: Path, monkeypatch):
    grid = "{" + ", ".join(f"v{i}: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]" for i in range(8)) + "}"
    spec = _spec(tmp_path, sweep=f"[{{grid: {grid}}}]")
    start = time.perf_counter()
    with pytest.raises(SpecError, match=r"sweep: expands to 100,000,000 runs .* the limit is 100,000"):
        load_plan(spec)
    assert time.perf_counter() - start < 1.0  # counted, not expanded (expanding took 24 GB)
    small = _spec(tmp_path, sweep="[{grid: {a: [1, 2, 3], b: [1, 2, 3]}}]", seeds="[0, 1]")
    with pytest.raises(SpecError, match="expands to 18 runs"):
        load_plan(small, max_runs=10)
    monkeypatch.setenv("FTLAB_MAX_RUNS", "10")
    with pytest.raises(SpecError, match="the limit is 10:"):
        load_plan(small)
    assert len(load_plan(small, max_runs=18).runs) == 18
    proc = subprocess.run([sys.executable, "-m", "ftlab.cli", "validate", str(small), "--max-runs", "18"], capture_output=True, text=True)
    assert proc.returncode == 0 and "18 runs" in proc.stdout, proc.stderr


def test_alias_bomb_answers_fast(tmp_path: Path):
    # 9 levels of 10 aliases: 10^9 strings from 2.5 kB of text (the report's bomb did not answer in 150 s).
    lines = ['laugh0: &laugh0 "lol"'] + [f"laugh{i}: &laugh{i} [" + ", ".join([f"*laugh{i - 1}"] * 10) + "]" for i in range(1, 10)]
    bomb = "\n".join(lines) + "\n"
    assert len(bomb) < 3000
    spec = tmp_path / "bomb.yaml"
    spec.write_text(write_spec(tmp_path).read_text() + bomb)
    start = time.perf_counter()
    with pytest.raises(SpecError, match=r"line \d+: aliases expand this value to more than"):
        load_plan(spec)
    assert time.perf_counter() - start < 0.5


@pytest.mark.parametrize("text, fragment", [
    (b"name: tiny\nx: [&a [*a]]\n", "recursive alias"),
    (b"name: tiny\nx: &a [*a]\n", "recursive alias"),
    (b"name: tiny\ndeep: " + b"[" * 60 + b"]" * 60 + b"\n", "nested more than 40 levels"),
    (b"name: tiny\ndeep: " + b"[" * 5000 + b"]" * 5000 + b"\n", "exceeded maximum nesting depth"),
    (b"name: tiny\nmodel: caf\xe9\n", "line 2, column 11: byte 0xe9 is not UTF-8"),
    (b"name: tiny\n\nmodel: a\x07b\n", "line 3, column 9: control character U+0007"),
    (b"name: tiny\nseeds: [" + b"9" * 5000 + b"]\n", "line 2: an integer of 5,000 digits"),
    (b"name: tiny\nwhen: 2024-13-45\n", "line 2: cannot read this value"),
    ("name: tiny\n".encode("utf-16"), "is not UTF-8"),
], ids=["recursive-seq", "recursive-self", "deep", "very-deep", "latin-1", "bell", "huge-int", "bad-date", "utf-16"])
def test_hostile_yaml_is_one_located_error(tmp_path: Path, text: bytes, fragment: str):
    spec = tmp_path / "spec.yaml"
    spec.write_bytes(text)
    start = time.perf_counter()
    with pytest.raises(SpecError) as info:
        load_plan(spec)
    assert fragment in str(info.value) and info.value.problems[0].startswith("line ")
    assert time.perf_counter() - start < 2.0


def test_long_values_are_cut_in_messages(tmp_path: Path):
    spec = _spec(tmp_path, ("labels: [P, N]", f"labels: [P, N, {'Q' * 100_000}]"), ("positive: P", f"positive: {'Z' * 100_000}"))
    with pytest.raises(SpecError) as info:
        load_plan(spec)
    assert "task.positive" in str(info.value) and len(str(info.value)) < 1000


def test_long_paths_answer_a_spec_error(tmp_path: Path):
    long = "x" * 100_000
    spec = _spec(tmp_path, ("generate: {name: hem, n: 40, seed: 0}}", f"path: {long}}}"), ("output_dir: out", f"output_dir: {long}"))
    with pytest.raises(SpecError, match=r"datasets\[1\].path: file not found") as info:
        load_plan(spec)
    assert len(str(info.value)) < 2000
    with pytest.raises(SpecError, match="cannot read spec file"):
        load_plan(tmp_path / long)
    proc = subprocess.run([sys.executable, "-m", "ftlab.cli", "validate", str(tmp_path / long)], capture_output=True, text=True)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and len(proc.stderr) < 1000


def test_run_directories_stay_inside_the_experiment(tmp_path: Path):
    """Run names are one path component whatever the template or values say ('../..', '/', '1/2')."""
    spec = _spec(tmp_path, extra='run_name: "../../{v}"\n', sweep='[{v: "../../x"}, {v: "/etc"}, {v: "1/2"}, {v: ".hidden"}]')
    plan = load_plan(spec)
    root = plan.output_dir / "runs"
    for run in plan.runs:
        assert (root / run.name).resolve().parent == root.resolve(), run.name
    assert len({r.name for r in plan.runs}) == 4
