"""A spec with several mistakes: every problem reported at once, with line and YAML path."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from ftlab.errors import SpecError
from ftlab.spec.plan import load_plan
from tests.conftest import write_spec

BROKEN = """\
name: broken
model:
  tiny: {hidden_size: 32}
task: {labels: [P, N], positive: Q}
datasets:
  - {name: train, role: train, generate: {name: hme, n: 10}}
  - {name: valid, role: valid, path: nowhere.jsonl}
  - {name: test, role: test, generate: {name: hem, n: 10}}
train:
  learnig_rate: 0.1
  epochs: -1
  batch_size: ${bs}
eval:
  select: {split: test}
sweep:
  - {lr: 0.1}
controls: [random_int]
"""


def test_every_problem_reported_with_line_and_path(tmp_path: Path):
    spec = tmp_path / "spec.yaml"
    spec.write_text(BROKEN)
    with pytest.raises(SpecError) as info:
        load_plan(spec)
    text = str(info.value)
    expected = [
        "line 4, task.positive: 'Q' is not in task.labels",
        "line 6, datasets[0].generate.name: unknown data generator 'hme'. Did you mean 'hem'?",
        "line 7, datasets[1].path: file not found",
        "line 10, train.learnig_rate: unknown key 'learnig_rate'. Did you mean 'learning_rate'?",
        "line 11, train.epochs: Input should be greater than 0",
        "line 12, train.batch_size: uses ${bs}, which this sweep point does not set",
        "line 14, eval.select.split: 'test' has role test; checkpoints are chosen on a valid dataset only",
        "line 17, controls[0]: unknown control 'random_int'. Did you mean 'random_init'?",
    ]
    for fragment in expected:
        assert fragment in text, f"missing: {fragment}\n---\n{text}"
    # batch_size's unresolved ${bs} is one problem, not also a type error
    assert text.count("train.batch_size") == 1
    assert len(info.value.problems) == len(expected)


def test_cli_prints_one_message_no_traceback(tmp_path: Path):
    spec = tmp_path / "spec.yaml"
    spec.write_text(BROKEN)
    proc = subprocess.run([sys.executable, "-m", "ftlab.cli", "validate", str(spec)], capture_output=True, text=True)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    assert "8 problems in the spec" in proc.stderr


def test_yaml_syntax_error_has_a_line(tmp_path: Path):
    spec = tmp_path / "spec.yaml"
    spec.write_text("name: x\nmodel: [unclosed\n")
    with pytest.raises(SpecError, match="line 3"):
        load_plan(spec)


def test_duplicate_key_is_reported(tmp_path: Path):
    spec = tmp_path / "spec.yaml"
    spec.write_text("name: a\nname: b\n")
    with pytest.raises(SpecError, match="line 2, name: duplicate key"):
        load_plan(spec)


@pytest.mark.parametrize("role", ["valid", "test"])
def test_resample_on_a_valid_or_test_dataset_is_refused(tmp_path: Path, role: str):
    """Seed 002: the original test set is never modified; only train data is resampled."""
    from tests.conftest import write_spec

    spec = write_spec(tmp_path)
    text = spec.read_text()
    line = next(ln for ln in text.splitlines() if f"role: {role}" in ln)
    spec.write_text(text.replace(line, line.replace("role: " + role, f"role: {role}, resample: {{positive_fraction: 0.5}}")))
    with pytest.raises(SpecError) as info:
        load_plan(spec)
    assert f"datasets[{1 if role == 'valid' else 2}].resample: dataset '{role}' has role {role}; only the train dataset may be resampled" in str(info.value)
    assert len(info.value.problems) == 1


def _requiring(tmp_path: Path, requires: str) -> Path:
    spec = write_spec(tmp_path)
    spec.write_text(spec.read_text() + f"requires: {requires}\n")
    return spec


def test_requires_loads_the_other_spec_and_its_outputs_need_not_exist_yet(tmp_path: Path):
    (tmp_path / "judge").mkdir()
    judge = write_spec(tmp_path / "judge")
    spec = _requiring(tmp_path, "[judge/spec.yaml]")
    text = spec.read_text().replace("eval: {batch_size: 32}", "eval: {batch_size: 32, evaluators: [{name: generate, max_new_tokens: 2}, "
                                    "{name: judge, of: generate, model: ./judge/out/runs/run/train/epoch_0, template: '{prompt} {response}'}]}")
    spec.write_text(text.replace("task: {labels: [P, N], positive: P}", "task: {type: generation}")
                    .replace("eval: {batch_size: 32, evaluators", "eval: {batch_size: 32, select: {evaluator: generate}, evaluators"))
    plan = load_plan(spec)
    assert [p.spec_path for p in plan.requires] == [judge.resolve()]
    assert plan.experiment.requires == ["judge/spec.yaml"]
    # without requires:, the same missing judge directory is an error that says what to do
    spec.write_text(spec.read_text().replace("requires: [judge/spec.yaml]\n", ""))
    with pytest.raises(SpecError, match=r"judge model directory not found.*name that spec in `requires:`"):
        load_plan(spec)


def test_requires_errors_name_the_entry(tmp_path: Path):
    with pytest.raises(SpecError, match=r"line \d+, requires\[0\]: no spec file"):
        load_plan(_requiring(tmp_path, "[nowhere.yaml]"))
    with pytest.raises(SpecError, match=r"requires\[0\]: 'spec.yaml' requires this spec back"):
        load_plan(_requiring(tmp_path, "[spec.yaml]"))
    (tmp_path / "bad").mkdir()
    bad = write_spec(tmp_path / "bad")
    bad.write_text(bad.read_text().replace("epochs: 1", "epochs: 0"))
    with pytest.raises(SpecError, match=r"requires\[0\]: 'bad/spec.yaml' is not a valid spec: .*train.epochs"):
        load_plan(_requiring(tmp_path, "[bad/spec.yaml]"))
    with pytest.raises(SpecError, match=r"requires: must be a list of spec files"):
        load_plan(_requiring(tmp_path, "judge.yaml"))


def test_a_problem_in_a_scale_block_is_reported_at_the_scale_line(tmp_path: Path):
    spec = write_spec(tmp_path)
    spec.write_text(spec.read_text() + "scale: tiny\nscales:\n  tiny:\n    train: {epochs: 0}\n")
    lines = spec.read_text().splitlines()
    line = next(i for i, t in enumerate(lines, 1) if "epochs: 0" in t)
    with pytest.raises(SpecError, match=rf"line {line}, scales.tiny.train.epochs"):
        load_plan(spec)
