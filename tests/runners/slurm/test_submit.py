"""`ftlab submit` against the real local SLURM (scripts/slurm-local.sh start): results equal the
local runner's, a failed train task's eval is cancelled and explained, --resubmit-failed resubmits
only what failed, cancel, and sbatch's own errors as one clear message.

    scripts/slurm-local.sh start && .venv/bin/pytest tests/runners/slurm -q
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import ftlab
from ftlab.cli import main
from ftlab.errors import SlurmError
from ftlab.graph import build_graph
from ftlab.registry import Registry
from ftlab.runners.slurm.follow import job_states
from ftlab.runners.slurm.jobs import JobTable
from ftlab.runners.slurm.profile import load_profile
from ftlab.runners.slurm.submit import submit
from ftlab.spec.plan import load_plan
from tests.conftest import write_spec
from tests.runners.slurm.conftest import wait_for_jobs

FIXTURES = Path(__file__).parent / "fixtures"
pytestmark = pytest.mark.slow


def _spec(directory: Path, profile: str = "local.yaml") -> Path:
    """Two runs with their own train data (so one can be broken) and an untuned control."""
    directory.mkdir(parents=True, exist_ok=True)
    spec = write_spec(directory, sweep="[{grid: {ds: [0, 1]}}]", controls="[untuned]")
    text = spec.read_text().replace("{name: train, role: train, generate: {name: hem, n: 240, seed: 0}}",
                                    "{name: train, role: train, generate: {name: hem, n: 240, seed: '${ds}'}}")
    text = text.replace("vocab_size: 400}", "vocab_size: 400, tokenizer_corpus: [valid]}")  # one tiny model for both runs
    shutil.copy(FIXTURES / profile, directory / "cluster.yaml")
    spec.write_text(text + "cluster: cluster.yaml\n")
    return spec


def _wait(registry: Registry, timeout: float = 400) -> None:
    wait_for_jobs(registry, timeout, '')


def _metrics(registry: Registry) -> dict:
    return {(m["run_id"], m["checkpoint"], m["split"], m["metric"]): (m["value"], m["undefined_reason"]) for m in registry.metrics()}


def test_sweep_matches_local_failed_train_cancels_its_eval_and_resubmit_fixes_it(slurm, tmp_path: Path, capsys):
    local = _spec(tmp_path / "local")
    assert ftlab.run(local).ok
    expected = _metrics(Registry(local.parent / "out" / "registry.sqlite"))

    spec = _spec(tmp_path / "on slurm 'q' $(x)")  # the experiment dir's quote, $() and space reach jobs intact
    assert ftlab.run(spec, only=["data", "model"]).ok
    graph = build_graph(load_plan(spec))
    broken = Path(graph.task("train/ds1").inputs.data_dir) / "examples.jsonl"
    saved = broken.read_bytes()
    broken.unlink()  # a real failure: train/ds1 cannot read its data
    capsys.readouterr()

    assert main(["submit", str(spec)]) == 0
    out = capsys.readouterr().out
    assert "train        2 tasks" in out and "eval         2 tasks" in out and "eval-ready   1 task" in out
    assert "prepare" not in out  # data and model are done already
    registry = Registry(spec.parent / "out" / "registry.sqlite")
    _wait(registry)

    assert main(["status", str(spec)]) == 0
    status = capsys.readouterr().out
    assert "train/ds1: failed: DataError:" in status and "examples.jsonl: file not found" in status
    assert "eval/ds1: cancelled: cancelled by SLURM: its dependency train/ds1 failed" in status
    assert (spec.parent / "out" / "report" / "summary.txt").is_file()  # the report ran on what exists

    broken.write_bytes(saved)
    assert main(["submit", str(spec)]) == 0
    assert "failed before, not resubmitted (use --resubmit-failed): train/ds1, eval/ds1" in capsys.readouterr().out
    assert main(["submit", str(spec), "--resubmit-failed"]) == 0
    out = capsys.readouterr().out
    assert "train        1 task" in out and "eval         1 task" in out and "report" in out and "eval-ready" not in out
    _wait(registry)

    got = _metrics(registry)
    assert got == expected  # exactly: same stage code, same thread count (OMP_NUM_THREADS=2)
    assert len({k[0] for k in got}) == 3
    assert main(["status", str(spec)]) == 0
    assert "failed" not in capsys.readouterr().out
    assert main(["submit", str(spec)]) == 0
    assert "nothing to submit" in capsys.readouterr().out  # idempotent


def test_cancel_stops_every_job_and_status_says_so(slurm, tmp_path: Path, capsys):
    spec = _spec(tmp_path / "exp")
    assert main(["submit", str(spec)]) == 0
    assert main(["cancel", str(spec)]) == 0
    assert "cancelled 5 jobs" in capsys.readouterr().out
    registry = Registry(spec.parent / "out" / "registry.sqlite")
    # a job cancelled while running is COMPLETING until its processes are gone (up to KillWait)
    wait_for_jobs(registry, 30, " after ftlab cancel")
    assert main(["status", str(spec)]) == 0
    assert "cancelled by `ftlab cancel`" in capsys.readouterr().out
    assert main(["submit", str(spec)]) == 0
    assert "use --resubmit-failed" in capsys.readouterr().out


@pytest.mark.parametrize("profile, message, request_part", [
    ("resources: {1B: {mem: 1G, cpus: 1}}\n", "Requested node configuration is not available", "--gres=gpu:1"),
    ("resources: {1B: {mem: 900000G, cpus: 1}, cpu_job: {mem: 900000G}}\nlimits: {gpus_per_node: 0}\n", "Memory specification can not be satisfied", "--mem=900000G"),
    ("partition: nosuch\nlimits: {gpus_per_node: 0}\n", "nvalid partition", "--cpus-per-task"),
], ids=["gpu-on-cpu-node", "memory-beyond-node", "bad-partition"])
def test_sbatch_errors_are_one_clear_message_and_leave_nothing_queued(slurm, tmp_path: Path, profile, message, request_part, capsys):
    spec = _spec(tmp_path / "exp")
    (spec.parent / "cluster.yaml").write_text(profile)
    graph = build_graph(load_plan(spec))
    registry = Registry(graph.plan.output_dir / "registry.sqlite")
    with pytest.raises(SlurmError) as info:
        submit(graph, registry, load_profile(spec.parent / "cluster.yaml"))
    text = str(info.value)
    assert message in text and "request:" in text and request_part in text and "script:" in text
    assert not any(s.active for s in job_states(JobTable(registry).all()).values())
    assert main(["submit", str(spec)]) == 2  # the CLI: one message, no traceback
    err = capsys.readouterr().err
    assert err.startswith("error: sbatch refused") and "Traceback" not in err
