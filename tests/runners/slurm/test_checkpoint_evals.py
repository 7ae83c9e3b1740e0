"""Every checkpoint evaluated in its own SLURM job, on the real local SLURM (scripts/slurm-local.sh start):
checkpoint evals start while their run still trains, results equal the local runner's, the report
comes after all of them, and a train failure leaves nothing held (the report runs).

Timestamps are SLURM's own, from the job-completion log (Start, End and EligibleTime, 1 s resolution).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

import ftlab
from ftlab.cli import main
from ftlab.graph import build_graph
from ftlab.registry import Registry
from ftlab.runners.slurm.follow import _config, job_states, slurm_command
from ftlab.runners.slurm.jobs import JobTable
from ftlab.spec.plan import load_plan
from tests.conftest import write_spec
from tests.runners.slurm.conftest import wait_for_jobs

pytestmark = pytest.mark.slow

# 1 CPU per job on the 2-CPU test node: a checkpoint eval can run beside a train task.
PROFILE = "partition: debug\nresources:\n  1B: {mem: 1G, cpus: 1, time: '0:20:00'}\n  cpu_job: {mem: 1G, cpus: 1, time: '0:20:00'}\nlimits: {gpus_per_node: 0}\n"


def _spec(directory: Path, sweep: str = "[{grid: {ntrain: [240, 480]}}]") -> Path:
    """Two trained runs, 2 epochs each (epoch saving: the checkpoints are known at submit time)."""
    directory.mkdir(parents=True, exist_ok=True)
    spec = write_spec(directory, epochs=2, save_steps="null", sweep=sweep)
    text = spec.read_text().replace("{name: train, role: train, generate: {name: hem, n: 240, seed: 0}}",
                                    "{name: train, role: train, generate: {name: hem, n: '${ntrain}', seed: 0}}")
    text = text.replace("vocab_size: 400}", "vocab_size: 400, tokenizer_corpus: [valid]}")  # one tiny model for both runs
    (directory / "cluster.yaml").write_text(PROFILE)
    spec.write_text(text + "cluster: cluster.yaml\n")
    return spec


def _wait(registry: Registry, timeout: float = 300) -> None:
    wait_for_jobs(registry, timeout, ' (held checkpoint evals?)')


def _times(job_rows: list[dict]) -> dict[tuple[str, int], tuple[str, str, str, str]]:
    """(job_id, array_index) -> (StartTime, EndTime, JobState, EligibleTime) from the job-completion log.
    A held job's EligibleTime is when it was released."""
    wanted = {(r["job_id"], r["array_index"]) for r in job_rows}
    found = {}
    for line in Path(_config()["JobCompLoc"]).read_text().splitlines():
        f = dict(re.findall(r"(\w+)=(\S*)", line))
        key = (f.get("ArrayJobId"), int(f["ArrayTaskId"])) if f.get("ArrayJobId") and f.get("ArrayTaskId", "").isdigit() else (f.get("JobId"), -1)
        if key in wanted:
            found[key] = (f["StartTime"], f["EndTime"], f["JobState"], f["EligibleTime"])
    return found


def _metrics(registry: Registry) -> dict:
    return {(m["run_id"], m["checkpoint"], m["split"], m["metric"]): (m["value"], m["undefined_reason"]) for m in registry.metrics()}


def test_each_checkpoint_is_its_own_job_released_and_started_while_its_run_trains(slurm, tmp_path: Path, capsys):
    spec = _spec(tmp_path / "slurm")
    assert main(["submit", str(spec)]) == 0
    out = capsys.readouterr().out
    # 5 checkpoint tasks, the test cluster's MaxArraySize is 4 (scripts/slurm-local.sh): two arrays
    assert "eval-ckpt.1  4 tasks" in out and "eval-ckpt.2  1 task" in out and "(held" in out and "release      1 task" in out
    assert "--dependency=aftercorr:" in out and "one task scores every checkpoint" not in out
    registry = Registry(spec.parent / "out" / "registry.sqlite")
    # One train task at a time (it waits for the prepare job now): the node's other CPU is then free
    # for checkpoint evals while a run trains, as GPUs beside a training job are on a cluster.
    # Two runs training at once would leave no CPU, and which released job SLURM starts first on the
    # CPU that frees is its business, not ftlab's.
    train_job = next(r["job_id"] for r in JobTable(registry).all() if r["grp"] == "train")
    slurm_command(["scontrol", "update", f"JobId={train_job}", "ArrayTaskThrottle=1"])

    # Meanwhile the local runner on the same spec, niced: it takes only the CPU time SLURM's jobs leave,
    # with the jobs' thread count (--cpus-per-task=1), so the numbers can be compared exactly.
    local = _spec(tmp_path / "local")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(["nice", "-n", "19", str(Path(sys.executable).parent / "ftlab"), "run", str(local)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    _wait(registry)
    assert proc.wait(timeout=300) == 0, proc.stdout.read()[-3000:]
    expected = _metrics(Registry(local.parent / "out" / "registry.sqlite"))
    rows = JobTable(registry).all()
    times = _times(rows)
    by_key = {r["task_key"]: (r["job_id"], r["array_index"]) for r in rows}
    checkpoint_keys = sorted(k for k in by_key if "@" in k)
    # Both runs start from the same base: its step_0 is one task, the other run's eval copies it.
    planned = {240: ("step_0", "epoch_0", "epoch_1"), 480: ("epoch_0", "epoch_1")}
    assert checkpoint_keys == sorted(f"eval/ntrain{n}@{c}" for n, names in planned.items() for c in names)
    assert len({by_key[k] for k in checkpoint_keys}) == 5  # five array tasks, one per checkpoint
    assert all(times[by_key[k]][2] == "COMPLETED" for k in by_key), {k: times.get(v) for k, v in by_key.items()}

    for n in (240, 480):
        train = times[by_key[f"train/ntrain{n}"]]
        for name in planned[n]:
            eligible = times[by_key[f"eval/ntrain{n}@{name}"]][3]  # held until now: released by the train task
            assert train[0] <= eligible <= train[1], (n, name, train, eligible)
    # The first run trains while the other CPU is free: its evals start before its training ends.
    first = times[by_key["train/ntrain240"]]
    early = [k for k in checkpoint_keys if k.startswith("eval/ntrain240@") and times[by_key[k]][0] < first[1]]
    assert early, (first, {k: times[by_key[k]] for k in checkpoint_keys})

    report_start = times[by_key["report"]][0]
    assert all(times[by_key[k]][1] <= report_start for k in by_key if k.startswith("eval/"))
    assert _metrics(registry) == expected  # the same numbers as the local runner's

    assert main(["status", str(spec)]) == 0
    assert "failed" not in capsys.readouterr().out
    assert main(["submit", str(spec)]) == 0
    assert "nothing to submit" in capsys.readouterr().out


def test_a_failed_train_leaves_nothing_held_and_the_report_runs(slurm, tmp_path: Path, capsys):
    spec = _spec(tmp_path / "exp", sweep="[{grid: {ntrain: [16]}}]")
    assert ftlab.run(spec, only=["data", "model"]).ok
    graph = build_graph(load_plan(spec))
    (Path(graph.task("train/ntrain16").inputs.data_dir) / "examples.jsonl").unlink()  # train/ntrain16 fails reading it
    capsys.readouterr()
    assert main(["submit", str(spec)]) == 0
    assert "eval-ckpt    3 tasks" in capsys.readouterr().out
    registry = Registry(spec.parent / "out" / "registry.sqlite")

    assert main(["status", str(spec)]) == 0  # at once: the train task takes ~10 s to start here
    assert "eval/ntrain16@epoch_1: queued: waiting for checkpoint epoch_1 (held until train/ntrain16 writes it)" in capsys.readouterr().out
    _wait(registry, timeout=120)
    assert (spec.parent / "out" / "report" / "summary.txt").is_file()  # the report ran on what exists
    assert main(["status", str(spec)]) == 0
    status = capsys.readouterr().out
    assert "train/ntrain16: failed: DataError:" in status
    assert "eval/ntrain16: cancelled: cancelled by SLURM: its dependency train/ntrain16 failed" in status
    assert "eval/ntrain16@epoch_1: failed: checkpoint epoch_1 of train/ntrain16 was never written" in status


def test_cancel_takes_the_held_checkpoint_evals_and_resubmit_brings_them_back(slurm, tmp_path: Path, capsys):
    spec = _spec(tmp_path / "exp", sweep="[{grid: {ntrain: [16]}}]")
    assert main(["submit", str(spec)]) == 0
    assert main(["cancel", str(spec)]) == 0
    assert "cancelled 6 jobs" in capsys.readouterr().out  # prepare, eval-ckpt (held), train, release, eval, report
    registry = Registry(spec.parent / "out" / "registry.sqlite")
    # a job cancelled while running is COMPLETING until its processes are gone (up to KillWait)
    wait_for_jobs(registry, 30, " after ftlab cancel")
    assert main(["status", str(spec)]) == 0
    assert "eval/ntrain16@step_0: cancelled" in capsys.readouterr().out
    assert main(["submit", str(spec), "--resubmit-failed"]) == 0
    out = capsys.readouterr().out
    assert "eval-ckpt    3 tasks" in out and "release      1 task" in out
    assert main(["cancel", str(spec)]) == 0
