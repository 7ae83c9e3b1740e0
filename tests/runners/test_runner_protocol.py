"""Both runners behind one Runner protocol (submit, status, cancel), each keeping its own state:
the registry holds runs, stages and metrics only; SLURM job ids live in the SLURM runner's table
(the SLURM side: tests/runners/slurm/test_runner.py)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from ftlab.graph import build_graph
from ftlab.registry import Registry
from ftlab.runners.base import Runner
from ftlab.runners.local import LocalRunner
from ftlab.runners.slurm.jobs import JobTable
from ftlab.spec.plan import load_plan
from tests.conftest import write_spec

def _tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as conn:
        return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def test_the_registry_has_no_runner_tables(tmp_path: Path):
    Registry(tmp_path / "registry.sqlite")
    assert _tables(tmp_path / "registry.sqlite") == {"meta", "runs", "stages", "metrics"}
    JobTable(Registry(tmp_path / "registry.sqlite"))  # the SLURM runner adds its own, in the same file
    assert "jobs" in _tables(tmp_path / "registry.sqlite")


def test_local_runner_protocol(tmp_path: Path):
    graph = build_graph(load_plan(write_spec(tmp_path)))
    registry = Registry(graph.plan.output_dir / "registry.sqlite")
    runner = LocalRunner(registry, echo=lambda line: None)
    assert isinstance(runner, Runner)
    assert set(runner.status(graph).values()) == {"pending"}
    outcome = runner.submit(graph, only=["data"])
    assert outcome.ran == [t.key for t in graph.tasks if t.stage == "data"] and not outcome.failed
    status = runner.status(graph)
    assert {k: v for k, v in status.items() if v == "done"} == {t.key: "done" for t in graph.tasks if t.stage == "data"}
    assert runner.cancel(graph) == []
    assert "jobs" not in _tables(graph.plan.output_dir / "registry.sqlite")  # nothing SLURM-shaped


def test_the_local_runner_records_the_runs_before_any_stage(tmp_path):
    """A caller that drives the runner itself (not through ftlab.run) still gets every run in the
    registry, so results() does not silently drop its metrics."""
    from ftlab.graph import build_graph
    from ftlab.registry import Registry
    from ftlab.runners.local import LocalRunner
    from ftlab.spec.plan import load_plan
    from tests.conftest import write_spec

    graph = build_graph(load_plan(write_spec(tmp_path, seeds="[0, 1]")))
    registry = Registry(graph.plan.output_dir / "registry.sqlite")
    LocalRunner(registry, echo=lambda _: None).submit(graph, only=["data"])
    assert [r["run_id"] for r in registry.runs()] == [r.run_id for r in graph.plan.runs]
