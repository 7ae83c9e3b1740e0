"""The SLURM runner behind the Runner protocol, on the real local SLURM (scripts/slurm-local.sh start)."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from ftlab.graph import build_graph
from ftlab.registry import Registry
from ftlab.runners.base import Runner
from ftlab.runners.slurm.jobs import JobTable
from ftlab.runners.slurm.profile import load_profile
from ftlab.runners.slurm.runner import SlurmRunner
from ftlab.spec.plan import load_plan
from tests.conftest import write_spec

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.mark.slow
def test_slurm_runner_protocol(slurm, tmp_path: Path):
    spec = write_spec(tmp_path)
    shutil.copy(FIXTURES / "local.yaml", tmp_path / "cluster.yaml")
    spec.write_text(spec.read_text() + "cluster: cluster.yaml\n")
    graph = build_graph(load_plan(spec))
    registry = Registry(graph.plan.output_dir / "registry.sqlite")
    runner = SlurmRunner(registry, load_profile(tmp_path / "cluster.yaml"))
    assert isinstance(runner, Runner)
    assert set(runner.status(graph).values()) == {"pending"}
    result = runner.submit(graph)
    assert result.jobs and all(s.job_id for s in result.jobs)
    submitted = {key for s in result.jobs for key in s.job.keys}
    assert submitted == {t.key for t in graph.tasks}
    assert set(runner.status(graph).values()) <= {"queued", "running", "done"}
    cancelled = runner.cancel(graph)
    assert set(cancelled) <= {s.job_id for s in result.jobs} and cancelled
    time.sleep(1)
    states = runner.status(graph)
    assert "cancelled" in states.values() and set(states.values()) <= {"cancelled", "done"}
    assert {row["task_key"] for row in JobTable(registry).all()} == submitted  # the runner's own table
