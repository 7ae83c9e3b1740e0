"""Sweep expansion order, ${var} substitution, seeds and controls."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import ftlab
from ftlab.cli import main
from ftlab.errors import FtlabError
from ftlab.spec.plan import load_plan
from ftlab.spec.sweep import Problems, expand_sweep, safe_name

# Seed 002's "Complete Experiment Index Mapping": index -> (proportion, variant, gamma).
SEED_002 = [
    ("1/2", "baseline", 1.0), ("1/2", "accept", 2.0), ("1/2", "accept", 4.0), ("1/2", "accept", 8.0),
    ("1/2", "reject", 2.0), ("1/2", "reject", 4.0), ("1/2", "reject", 8.0),
    ("1/3", "accept", 2.0), ("1/3", "accept", 4.0), ("1/3", "reject", 2.0), ("1/3", "reject", 4.0),
    ("1/4", "accept", 2.0), ("1/4", "accept", 4.0), ("1/4", "reject", 2.0), ("1/4", "reject", 4.0),
    ("1/8", "accept", 2.0), ("1/8", "accept", 4.0), ("1/8", "reject", 2.0), ("1/8", "reject", 4.0),
]

# Verbatim from DESIGN.md.
DESIGN_SWEEP = """
sweep:
  - {variant: baseline, gamma: 1.0, prop: 1/2}
  - grid: {prop: [1/2], variant: [accept, reject], gamma: [2, 4, 8]}
  - grid: {prop: [1/3, 1/4, 1/8], variant: [accept, reject], gamma: [2, 4]}
seeds: [0]
run_name: "{variant}_gamma{gamma}_prop{prop}"
"""


def test_design_sweep_reproduces_seed_002_index_table(tmp_path: Path, capsys):
    spec = Path(__file__).resolve().parents[2] / "examples" / "weighted_loss.yaml"
    assert main(["plan", str(spec), "--json", "--scale", "full"]) == 0  # the tiny scale plans 9 of the 19
    rows = json.loads(capsys.readouterr().out)
    got = [(r["values"]["prop"], r["values"]["variant"], float(r["values"]["gamma"])) for r in rows]
    assert got == SEED_002
    assert [r["index"] for r in rows] == list(range(19))
    assert rows[0]["name"] == "baseline_gamma1.0_prop1_2"
    assert len({r["run_id"] for r in rows}) == 19


def test_example_sweep_is_the_design_sweep():
    import yaml

    spec = Path(__file__).resolve().parents[2] / "examples" / "weighted_loss.yaml"
    ours = yaml.safe_load(spec.read_text())
    design = yaml.safe_load(DESIGN_SWEEP)
    assert {k: ours[k] for k in design} == design


def test_grid_last_key_varies_fastest():
    points = expand_sweep([{"grid": {"a": [1, 2], "b": ["x", "y", "z"]}}], Problems())
    assert points == [{"a": a, "b": b} for a in (1, 2) for b in ("x", "y", "z")]


def test_union_keeps_list_order_and_rejects_duplicates():
    problems = Problems()
    points = expand_sweep([{"a": 9}, {"grid": {"a": [1, 9]}}], problems)
    assert [p["a"] for p in points] == [9, 1, 9]
    assert any("appears twice" in m for _, m in problems.items)


def test_seeds_multiply_runs_point_major_and_controls_come_last(tmp_path: Path):
    from tests.conftest import write_spec

    spec = write_spec(tmp_path, sweep="[{grid: {lr: [0.1, 0.2]}}]", seeds="[0, 1, 2]", controls="[random_init, untuned]")
    text = spec.read_text().replace("learning_rate: 0.003", "learning_rate: '${lr}'")
    spec.write_text(text)
    plan = load_plan(spec)
    assert [(r.values.get("lr"), r.seed, r.kind) for r in plan.runs] == [
        (0.1, 0, "sweep"), (0.1, 1, "sweep"), (0.1, 2, "sweep"),
        (0.2, 0, "sweep"), (0.2, 1, "sweep"), (0.2, 2, "sweep"),
        (0.1, 0, "random_init"), (0.1, 1, "random_init"), (0.1, 2, "random_init"),
        (0.1, 0, "untuned"),
    ]
    # ${lr} is substituted with its type (a float), so validation sees a number.
    assert [r.config.train.learning_rate for r in plan.runs[:6]] == [0.1] * 3 + [0.2] * 3
    assert plan.runs[0].name == "lr0.1_s0"
    assert plan.warnings == []


def test_a_control_per_sweep_variable_gives_one_control_per_value(tmp_path: Path, capsys):
    """Seed 004 evaluates each base model untuned: `per: [base]` makes one untuned run per base."""
    from tests.conftest import write_spec

    spec = write_spec(tmp_path, sweep="[{grid: {base: [a, b], lr: [0.1, 0.2]}}]", controls="[{kind: untuned, per: [base]}]")
    spec.write_text(spec.read_text().replace("learning_rate: 0.003", "learning_rate: '${lr}'").replace("name: tiny", "name: tiny\ndescription: ${base}", 1))
    runs = [r for r in load_plan(spec).runs if r.kind == "untuned"]
    assert [(r.name, r.values) for r in runs] == [("untuned_a", {"base": "a", "lr": 0.1}), ("untuned_b", {"base": "b", "lr": 0.1})]
    assert runs[0].config.description == "a" and runs[1].config.description == "b"  # each at its own base's point

    spec.write_text(spec.read_text().replace("per: [base]", "per: [bsae]"))
    with pytest.raises(FtlabError) as caught:  # a spec error
        ftlab.validate(spec)
    err = str(caught.value)
    assert "controls[0].per: 'bsae' is not a sweep variable. Did you mean 'base'?" in err


def test_var_inside_a_string_is_interpolated(tmp_path: Path):
    from tests.conftest import write_spec

    spec = write_spec(tmp_path, sweep="[{tag: alpha}]")
    spec.write_text(spec.read_text().replace("name: tiny", "name: tiny\ndescription: run ${tag} here"))
    assert load_plan(spec).runs[0].config.description == "run alpha here"


def test_safe_names_stay_inside_the_experiment_dir():
    assert safe_name("prop1/2") == "prop1_2"
    assert safe_name("../../etc/passwd") == "etc_passwd"
    assert "/" not in safe_name("/abs/path") and not safe_name("..").startswith(".")
