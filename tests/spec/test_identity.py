"""Run ids follow what affects results and ignore runtime-only fields."""

from __future__ import annotations

from pathlib import Path

from ftlab.spec.plan import load_plan
from tests.conftest import write_spec


def _ids(spec: Path) -> list[str]:
    return [r.run_id for r in load_plan(spec).runs]


def test_runtime_fields_do_not_change_the_run_id(tmp_path: Path):
    spec = write_spec(tmp_path)
    before = _ids(spec)
    text = spec.read_text()
    spec.write_text(
        text.replace("output_dir: out", "output_dir: elsewhere\ndescription: edited")
        .replace("eval: {batch_size: 32}", "eval: {batch_size: 7}")
        .replace("logging_steps: 5", "logging_steps: 1")
    )
    assert _ids(spec) == before


def test_defaults_written_out_do_not_change_the_run_id(tmp_path: Path):
    spec = write_spec(tmp_path)
    before = _ids(spec)
    spec.write_text(spec.read_text().replace("batch_size: 16,", "batch_size: 16, grad_accum: 1, scheduler: linear,"))
    assert _ids(spec) == before


def test_result_fields_change_the_run_id(tmp_path: Path):
    spec = write_spec(tmp_path)
    before = _ids(spec)
    spec.write_text(spec.read_text().replace("learning_rate: 0.003", "learning_rate: 0.004"))
    changed = _ids(spec)
    assert changed != before
    spec.write_text(spec.read_text().replace("seeds: [0]", "seeds: [1]"))
    assert _ids(spec) not in (before, changed)
    assert all(i.startswith("r1-") for i in changed)  # versioned


def test_fast_path_gives_the_same_configs_and_ids_as_full_validation():
    """points.py validates per field and identity.py hashes per field: the result must be exactly what
    validating each point in full and hashing stable_hash(payload) gives (run ids stay stable)."""
    from ftlab.spec.identity import IDENTITY_VERSION, effective_config, stable_hash
    from ftlab.spec.schema import Experiment

    for name in ("quickstart.yaml", "weighted_loss.yaml"):
        plan = load_plan(Path(__file__).resolve().parents[2] / "examples" / name)
        for run in plan.runs:
            full = Experiment.model_validate(run.config.model_dump())
            assert run.config == full and run.config.model_dump() == full.model_dump()
            payload = {"v": IDENTITY_VERSION, "config": effective_config(full), "kind": run.kind, "seed": run.seed, "sweep": run.values}
            assert run.run_id == f"r{IDENTITY_VERSION}-{stable_hash(payload)[:12]}"
