"""The Python API (ftlab.api) is what the CLI, the tests and notebooks call: typed results, the
same registry rows as `ftlab run`, and no torch for planning."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import ftlab
from ftlab.registry import Registry
from tests.conftest import write_spec


def test_import_ftlab_and_plan_import_no_torch(tmp_path: Path):
    spec = write_spec(tmp_path, seeds="[0, 1]")
    code = ("import sys, ftlab; view = ftlab.plan(sys.argv[1]); "
            "print(len(view.runs), len(view.graph.tasks), 'torch' in sys.modules, 'pandas' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code, str(spec)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    runs, tasks, torch, pandas = proc.stdout.split()
    assert (runs, torch, pandas) == ("2", "False", "False")
    assert int(tasks) == 3 + 1 + 2 * 2 + 1  # data x3, the tiny model, train+eval per run, report


def test_the_api_functions_are_exposed_lazily():
    assert set(ftlab.API) <= set(dir(ftlab))
    for name in ftlab.API:
        assert callable(getattr(ftlab, name)), name
    with pytest.raises(AttributeError):
        ftlab.no_such_function  # noqa: B018


def test_validate_and_plan_return_typed_results(tmp_path: Path):
    spec = write_spec(tmp_path, seeds="[0, 1]")
    done = ftlab.validate(spec)
    assert done.runs == 2 and done.spec == spec and any(line.strip().startswith("train") for line in done.data)
    view = ftlab.plan(spec, cost=True)
    assert [r["seed"] for r in view.runs] == [0, 1] and view.output_dir == tmp_path / "out"
    assert view.cost.gpu_hours["train"] > 0 and view.resources[0].startswith("prepare/report")


def test_dry_run_names_every_task_and_runs_nothing(tmp_path: Path):
    spec = write_spec(tmp_path)
    done = ftlab.run(spec, dry_run=True, only=["data", "model"])
    assert [state for _, state in done.planned] == ["would run"] * 4
    assert [key.split("/")[0] for key, _ in done.planned] == ["data"] * 3 + ["model"]
    assert not (tmp_path / "out" / "registry.sqlite").exists() and done.ran == []


def test_a_failed_task_is_named_with_its_error_and_recorded(tmp_path: Path, monkeypatch):
    """The data stage's entry point is looked up when it runs (the stage table's lazy string)."""
    import ftlab.data.stage

    def broken(inputs, ctx):
        raise RuntimeError(f"no data for {inputs.dataset.name}")

    monkeypatch.setattr(ftlab.data.stage, "run_data", broken)
    spec = write_spec(tmp_path)
    done = ftlab.run(spec, only=["data", "model"], echo=None)
    assert not done.ok and done.ran == []
    assert set(done.failed) == {k for k, _ in ftlab.run(spec, dry_run=True, only=["data"]).planned}
    key = next(iter(done.failed))
    assert done.failed[key].startswith("RuntimeError: no data for")
    assert "Traceback" in done.errors[key].read_text() and done.errors[key].name == "error.txt"
    assert done.blocked == [k for k, _ in ftlab.run(spec, dry_run=True, only=["model"]).planned]
    registry = Registry(tmp_path / "out" / "registry.sqlite")
    assert registry.stage(key)["status"] == "failed" and len(registry.runs()) == 1  # the run is recorded


@pytest.mark.slow
def test_a_notebook_session_validate_plan_run_results_report(tmp_path: Path):
    """What the README's "From Python" section does, end to end on the tiny spec."""
    spec = write_spec(tmp_path)
    assert ftlab.validate(spec).runs == 1
    view = ftlab.plan(spec)
    done = ftlab.run(spec, echo=None)
    assert done.ok and done.failed == {} and set(done.ran) == {t.key for t in view.graph.tasks}
    assert done.report == tmp_path / "out" / "report" / "index.html" and "run" in done.summary
    df = ftlab.results(spec)
    run_id = view.runs[0]["run_id"]
    assert set(df.run_id) == {run_id} and {"valid", "test"} <= set(df.split)
    assert df[df.selected & (df.split == "valid")].checkpoint.nunique() == 1
    again = ftlab.run(spec, echo=None)
    assert again.ran == [] and sorted(again.skipped) == sorted(done.ran)
    report = ftlab.report(spec)
    assert report.html.is_file() and report.failing() == [] and report.summary == done.summary
    assert ftlab.status(spec).rows[0]["stages"] == {"train": "done", "eval": "done"}
    exported = json.loads((tmp_path / "out" / "results.json").read_text())
    assert [r["run_id"] for r in exported["runs"]] == [run_id]
