"""The stage contract: every input field is hashed or declared not to be, one function hashes
them all, and a cached result follows exactly what its stage reads."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from ftlab.graph import build_graph
from ftlab.spec.identity import stable_hash
from ftlab.spec.plan import load_plan
from ftlab.contract import identity, result_key
from ftlab.contract.hashing import field_roles, inputs_json
from ftlab.stages import STAGES
from tests.conftest import write_spec


def _graph(tmp_path: Path, **spec):
    return build_graph(load_plan(write_spec(tmp_path, **spec)))


def _one_task_per_stage(tmp_path: Path):
    """A task of each stage, from a spec with few-shot prompts (so no eval field is None), a
    curated train set whose difficulty filter asks the base model, and classical baselines."""
    spec = write_spec(tmp_path)
    train = "generate: {name: hem, n: 240, seed: 0}"
    text = spec.read_text().replace(train, train + ", curate: [{name: quality}, {name: difficulty, evaluator: logits}]", 1)
    spec.write_text(text + "fewshot: {pool: 4, k: 2}\nbaselines: {featurizer: {name: composition}}\n")
    tasks = {}
    for task in build_graph(load_plan(spec)).tasks:
        tasks.setdefault(task.stage, task)
    return tasks


def _changed(value: Any) -> Any:
    """Another value of the same shape (model_copy does not validate: only the hash reads it)."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, (int, float)):
        return value + 1
    if isinstance(value, str):
        return value + "x"
    if value is None:
        return "set"
    if isinstance(value, list):
        return [*value, "x"]
    if isinstance(value, dict):
        return {**value, "x": "y"}
    if isinstance(value, BaseModel):
        for name in type(value).model_fields:
            try:
                return value.model_copy(update={name: _changed(getattr(value, name))})
            except TypeError:
                continue
    raise TypeError(type(value))


@pytest.mark.filterwarnings("ignore:Pydantic serializer warnings")  # a list of checks grows by a string
@pytest.mark.parametrize("stage", list(STAGES))
def test_every_input_field_moves_the_identity_unless_declared_runtime(tmp_path: Path, stage: str):
    task = _one_task_per_stage(tmp_path)[stage]
    inputs = task.inputs
    assert type(inputs) is STAGES[stage].inputs_class()
    base = identity(STAGES[stage], inputs)
    for role in field_roles(type(inputs)):
        changed = inputs.model_copy(update={role.name: _changed(getattr(inputs, role.name))})
        moved = identity(STAGES[stage], changed) != base
        assert moved == (role.role != "runtime"), f"{stage}.{role.name} ({role.role})"


def test_eval_result_key_follows_identity_fields_not_task_only_ones(tmp_path: Path):
    inputs = _one_task_per_stage(tmp_path)["eval"].inputs
    specific = {"evaluator": "logits", "version": 1, "options": {}, "checkpoint": "step_0", "split": "s", "answer_template": "{label}"}
    base = result_key(inputs, **specific)
    for role in field_roles(type(inputs)):
        changed = inputs.model_copy(update={role.name: _changed(getattr(inputs, role.name))})
        assert (result_key(changed, **specific) != base) == (role.role == "identity"), f"eval.{role.name} ({role.role})"
    for name in specific:
        assert result_key(inputs, **{**specific, name: _changed(specific[name])}) != base


def test_runtime_spec_fields_inside_a_stage_input_are_not_hashed(tmp_path: Path):
    """train.logging_steps and train.report_to are RUNTIME in the spec: the train stage reads them, its identity does not."""
    train = _one_task_per_stage(tmp_path)["train"].inputs
    row = STAGES["train"]
    base = identity(row, train)
    for update in ({"logging_steps": 99}, {"report_to": ["tensorboard"]}):
        assert identity(row, train.model_copy(update={"train": train.train.model_copy(update=update)})) == base
    assert identity(row, train.model_copy(update={"train": train.train.model_copy(update={"learning_rate": 0.5})})) != base


def test_the_fast_identity_is_the_plain_hash_of_the_payload(tmp_path: Path):
    """identity() writes the JSON piece by piece (plan speed); it must hash what stable_hash would."""
    for stage, task in _one_task_per_stage(tmp_path).items():
        inputs = task.inputs
        dumped = inputs.model_dump(mode="json", by_alias=True)
        roles = {r.key: r for r in field_roles(type(inputs))}
        payload = {k: v for k, v in dumped.items() if roles[k].role != "runtime" and not (v is None and roles[k].omit_none)}
        if stage == "train":
            payload["train"] = {k: v for k, v in payload["train"].items() if k not in ("logging_steps", "report_to")}
        assert json.loads(inputs_json(inputs)) == payload
        deps = ["b" * 64, "a" * 64]
        expected = stable_hash({"v": 1, "stage": stage, "stage_version": STAGES[stage].version, "inputs": payload, "deps": sorted(deps)})
        assert identity(STAGES[stage], inputs, deps) == expected


def test_stage_versions_are_pinned():
    """Every task identity hashes its stage's version: changing one re-runs every finished task of
    that stage. These are the versions identities were recorded with (STAGE_VERSIONS before issue 19)."""
    assert {name: row.version for name, row in STAGES.items()} == {
        "data": 1, "model": 1, "curate": 1, "baseline": 1, "train": 3, "eval": 3, "report": 2}


def test_graph_identities_hash_inputs_and_dependencies(tmp_path: Path):
    graph = _graph(tmp_path)
    for task in graph.tasks:
        deps = [graph.task(d).identity for d in task.deps]
        assert task.identity == identity(task.definition, task.inputs, deps), task.key


def test_data_model_and_train_identities_did_not_move_with_the_contract(tmp_path: Path):
    """Recorded before the typed inputs (stage contract, issue 10): finished runs are not retrained."""
    graph = _graph(tmp_path)
    ids = {t.key.split("-")[0]: t.identity[:12] for t in graph.tasks if t.stage in ("data", "model", "train")}
    assert ids == RECORDED


RECORDED = {"data/train": "50fae66b9cac", "data/valid": "5133c60d5fba", "data/test": "87e23b3324a8",
            "model/tiny": "8a51a1237b7a", "train/run": "5893804b7b19"}


def test_a_class_proportion_sweep_shares_one_tiny_base(tmp_path: Path):
    """The tokenizer corpus is the train set before resampling: runs that differ only in class
    proportion train the same base (one per proportion would confound the comparison)."""
    spec = write_spec(tmp_path, sweep="[{grid: {prop: [1/2, 1/4]}}]")
    train = "generate: {name: hem, n: 240, seed: 0}"
    spec.write_text(spec.read_text().replace(train, train + ", resample: {positive_fraction: '${prop}', total: 200, seed: 0}", 1))
    tasks = build_graph(load_plan(spec)).tasks
    models = [t for t in tasks if t.stage == "model"]
    trains = [t for t in tasks if t.stage == "data" and t.key.startswith("data/train")]
    assert len(models) == 1
    assert len(trains) == 3  # two resampled train sets and the unresampled corpus
    corpus = [t for t in trains if t.inputs.dataset.resample is None]
    assert [t.key for t in corpus] == list(models[0].deps)
