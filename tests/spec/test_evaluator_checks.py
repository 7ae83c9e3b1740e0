"""Evaluator options and task types are checked when the spec loads, not in the eval stage."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from ftlab.errors import SpecError
from ftlab.spec.plan import load_plan

BASE = """
name: t
model: {tiny: {hidden_size: 32, num_layers: 1, num_heads: 2, num_kv_heads: 1, intermediate_size: 64, vocab_size: 400}}
TASK
datasets:
  - {name: train, role: train, generate: {name: hem, n: 40}}
  - {name: valid, role: valid, generate: {name: hem, n: 20}}
eval:
EVAL
"""
CLASSIFY = "task: {labels: [P, N]}"


def _spec(tmp_path: Path, eval_block: str, task: str = CLASSIFY) -> Path:
    path = tmp_path / "spec.yaml"
    text = BASE.replace("TASK", task).replace("EVAL", textwrap.indent(textwrap.dedent(eval_block).strip(), "  "))
    path.write_text(text)
    return path


def _problems(path: Path) -> str:
    with pytest.raises(SpecError) as info:
        load_plan(path)
    return str(info.value)


@pytest.mark.parametrize(
    "block, expected",
    [
        ("evaluators: [{name: generate, parser: boxd}]\nselect: {evaluator: generate}", ["eval.evaluators[0].parser", "Did you mean 'boxed'"]),
        ("evaluators: [{name: generate, parser: {regex: '('}}]\nselect: {evaluator: generate}", ["eval.evaluators[0].parser", "not a valid regular expression"]),
        (
            "evaluators: [{name: generate}, {name: judge, model: /nonexistent/judge, template: 'Is {reponse} safe?'}]",
            ["eval.evaluators[1].template", "unknown placeholder {reponse}", "Did you mean 'response'"],
        ),
        ("evaluators: [{name: generate}, {name: judge, model: j, template: '{prompt} {response}', safe: OK}]", ["eval.evaluators[1].safe"]),
        ("evaluators: [{name: logits}]\nselect: {metric: safety_rate}", ["eval.select.metric", "does not record 'safety_rate'"]),
        ("evaluators: [{name: logits}]\nselect: {metric: acuracy}", ["Did you mean 'accuracy'"]),
        ("evaluators: [{name: logits, calibration_bin: 5}]", ["eval.evaluators[0].calibration_bin", "Did you mean 'calibration_bins'"]),
    ],
)
def test_bad_evaluator_options_fail_at_load(tmp_path, block, expected):
    message = _problems(_spec(tmp_path, block))
    for part in expected:
        assert part in message, message


def test_selecting_on_ece_is_allowed(tmp_path):
    load_plan(_spec(tmp_path, "evaluators: [{name: logits}]\nselect: {metric: ece}"))


def test_generation_task_needs_no_labels_and_refuses_logits(tmp_path):
    task = "task: {type: generation}"
    plan = load_plan(_spec(tmp_path, "evaluators: [{name: generate, parser: gsm8k}]", task))
    assert plan.experiment.task.labels is None
    message = _problems(_spec(tmp_path, "evaluators: [{name: logits}]", task))
    assert "eval.evaluators[0].name" in message and "generation task has none" in message
    message = _problems(_spec(tmp_path, "evaluators: [{name: generate, parser: gsm8k}]", "task: {type: generation, labels: [A, B]}"))
    assert "task.labels" in message


def test_classification_without_labels_points_at_generation(tmp_path):
    message = _problems(_spec(tmp_path, "evaluators: [{name: logits}]", "task: {positive: P}"))
    assert "task.labels" in message and "type: generation" in message


def test_answer_template_needs_one_placeholder(tmp_path):
    message = _problems(_spec(tmp_path, "evaluators: [{name: logits}]", "task: {labels: [P, N], answer_template: 'boxed'}"))
    assert "task.answer_template" in message
    load_plan(_spec(tmp_path, "evaluators: [{name: logits}]", "task: {labels: [P, N], answer_template: '\\\\boxed{{label}}'}"))
