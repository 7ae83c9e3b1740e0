"""Trains that SLURM stops early, on the real local SLURM (scripts/slurm-local.sh start): each one
resumes and ends with the numbers of an uninterrupted run, and `ftlab status` tells what happened.

Three experiments of one spec run side by side (the node has 4 job slots): one whose train task
crosses its 1-minute time limit (SLURM's warning, USR1, 45 s before it), one requeued by hand
(`scontrol requeue`) mid-run, one killed (SIGKILL) mid-run and resubmitted with --resubmit-failed. Training is paced by tests/runners/slurm/fixtures/paced (a sleep per step) so the
signals land mid-run without loading the machine; a requeued or resubmitted attempt runs at full speed. SLURM checks time limits every 30 s, so the
warning lands 15-45 s into the job, sometimes while it is still loading (~15 s here): then it stops
after one step. Once it stopped, the test gives the requeued job 10 minutes, as a real time limit
(hours) leaves a resumed run time to finish; without that it would be warned every attempt.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import ftlab
from ftlab.cli import main
from ftlab.graph import build_graph
from ftlab.registry import Registry
from ftlab.runners.slurm.follow import slurm_command
from ftlab.runners.slurm.jobs import JobTable
from ftlab.spec.plan import load_plan
from tests.conftest import write_spec
from tests.runners.slurm.conftest import wait_for_jobs

pytestmark = pytest.mark.slow
PACED = Path(__file__).parent / "fixtures" / "paced"


def _profile(train_time: str) -> str:
    return ("partition: debug\ncheckpoint_warning: 45\nlimits: {gpus_per_node: 0}\nresources:\n"
            f"  1B: {{mem: 1G, cpus: 1, time: {{train: '{train_time}', eval: '0:10:00'}}}}\n"
            "  cpu_job: {mem: 1G, cpus: 1, time: '0:10:00'}\n")


def _spec(directory: Path, *, train_time: str = "0:10:00", checkpoint_evals: bool = False) -> Path:
    """One run, 3 epochs of 15 steps, 1 thread everywhere (the numbers then match exactly). Without
    checkpoint_evals, keep_last makes one eval task score every checkpoint (fewer jobs to start)."""
    directory.mkdir(parents=True, exist_ok=True)
    spec = write_spec(directory, epochs=3, save_steps="null")
    text = spec.read_text()
    if not checkpoint_evals:
        text = text.replace("logging_steps: 5}", "logging_steps: 5, keep_last: 10}")
    (directory / "cluster.yaml").write_text(_profile(train_time))
    spec.write_text(text + "threads: 1\ncluster: cluster.yaml\n")
    return spec


def _numbers(spec: Path) -> dict:
    registry = Registry(spec.parent / "out" / "registry.sqlite")
    return {(m["checkpoint"], m["split"], m["metric"]): (m["value"], m["undefined_reason"]) for m in registry.metrics()}


def _final_weights(spec: Path) -> dict:
    manifest = json.loads((spec.parent / "out" / "runs" / "run" / "train" / "checkpoints.json").read_text())
    return load_file(str(Path(manifest[-1]["path"]) / "model.safetensors"))


def _train_job(spec: Path) -> str:
    rows = [r for r in JobTable(Registry(spec.parent / "out" / "registry.sqlite")).all() if r["task_key"] == "train/run"]
    return f"{rows[-1]['job_id']}_{rows[-1]['array_index']}"


def _wait_for(path: Path, timeout: float = 180) -> None:
    deadline = time.time() + timeout
    while not path.exists():
        assert time.time() < deadline, f"{path} never appeared"
        time.sleep(0.2)


def _line(out: str, start: str) -> str:
    return next((line for line in out.splitlines() if line.startswith(start)), f"no line starting {start!r} in:\n{out}")


def _stops(spec: Path) -> list[dict]:
    path = spec.parent / "out" / "runs" / "run" / "train" / "_stops.json"
    return json.loads(path.read_text()) if path.is_file() else []


def test_trains_stopped_by_slurm_resume_to_the_uninterrupted_numbers(slurm, tmp_path: Path, capsys, monkeypatch):
    limit = _spec(tmp_path / "limit", train_time="0:01:00")
    requeue = _spec(tmp_path / "requeue")
    kill = _spec(tmp_path / "kill", checkpoint_evals=True)
    for spec in (limit, requeue, kill):
        assert ftlab.run(spec, only=["data", "model"]).ok  # here, in seconds: fewer jobs to start
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in (str(PACED), os.environ.get("PYTHONPATH")) if p))
    # 45 steps: ~32 s of training at 0.7 s a step, past the warning whenever it comes; 0.4 s for the others
    for spec, pace in ((limit, "0.7"), (requeue, "0.4"), (kill, "0.4")):
        monkeypatch.setenv("FTLAB_TEST_STEP_SECONDS", pace)
        assert main(["submit", str(spec)]) == 0
    out = capsys.readouterr().out
    assert "eval-ckpt    4 tasks" in out  # the kill experiment's checkpoints, each in its own held job

    reference = _spec(tmp_path / "reference")  # uninterrupted, in this process, while the jobs run
    assert ftlab.run(reference).ok
    expected, weights = _numbers(reference), _final_weights(reference)
    capsys.readouterr()

    checkpoints = "out/runs/run/train/checkpoints"
    _wait_for(requeue.parent / checkpoints / "checkpoint-15" / "ftlab_checkpoint.json")
    slurm_command(["scontrol", "requeue", _train_job(requeue)])
    _wait_for(kill.parent / checkpoints / "checkpoint-15" / "ftlab_checkpoint.json")
    # SIGKILL to the train process itself, as the kernel's OOM killer or a dying node leaves it: no
    # handler runs. (`scancel --signal=KILL` is gentler in Slurm 22.05: the task gets SIGTERM and
    # KillWait first, like a cancel, and saves a checkpoint as for a requeue.)
    os.kill(json.loads((kill.parent / "out/runs/run/train/_started.json").read_text())["pid"], signal.SIGKILL)
    _wait_for(limit.parent / "out/runs/run/train/_stops.json")  # it stopped and asked to be requeued
    while "PENDING" not in slurm_command(["squeue", "-h", "-j", _train_job(limit), "-o", "%T"]).stdout:
        time.sleep(0.2)
    slurm_command(["scontrol", "update", f"JobId={_train_job(limit)}", "TimeLimit=10"], check=False)  # root only
    assert main(["status", str(limit)]) == 0
    out = _line(capsys.readouterr().out, "train/run:")
    assert out.startswith("train/run: queued: requeued"), out
    assert ": it resumes from checkpoint step_" in out or ": it resumes from checkpoint epoch_" in out

    wait_for_jobs(Registry(kill.parent / "out" / "registry.sqlite"), 300, " (kill experiment)")
    assert main(["status", str(kill)]) == 0
    status = capsys.readouterr().out
    assert _line(status, "train/run:").startswith("train/run: failed: was killed by signal 9 (SIGKILL) (job "), status
    assert "`ftlab submit --resubmit-failed` resubmits it and it resumes from checkpoint epoch_0 (step 15)" in status, status
    assert "eval/run@epoch_2: failed: checkpoint epoch_2 of train/run was never written" in status  # released by the release job
    monkeypatch.delenv("FTLAB_TEST_STEP_SECONDS")  # the resubmitted train runs at full speed
    assert main(["submit", str(kill), "--resubmit-failed"]) == 0
    out = capsys.readouterr().out
    assert "train        1 task" in out and "eval-ckpt" in out

    for spec in (limit, requeue, kill):
        wait_for_jobs(Registry(spec.parent / "out" / "registry.sqlite"), 400, f" ({spec.parent.name})")
    for spec in (limit, requeue, kill):
        assert _numbers(spec) == expected, spec.parent.name
        final = _final_weights(spec)
        assert final.keys() == weights.keys() and all(torch.equal(final[k], weights[k]) for k in weights), spec.parent.name
        train = Registry(spec.parent / "out" / "registry.sqlite").stage("train/run")
        assert train["status"] == "done" and train["outputs"]["resumed_from"], (spec.parent.name, train)
        assert not list((spec.parent / checkpoints).glob("*/ftlab_checkpoint.json")) or all(
            not json.loads(m.read_text()).get("resume_only") for m in (spec.parent / checkpoints).glob("*/ftlab_checkpoint.json"))

    assert [s["requeued"] for s in _stops(limit)] == [True], _stops(limit)  # warned, checkpointed, requeued itself
    assert [s["reason"].split()[0] for s in _stops(requeue)] == ["SIGTERM"], _stops(requeue)  # SLURM requeued it
    assert not _stops(kill)  # SIGKILL: nothing could run
    told = {}
    for spec in (limit, requeue, kill):
        assert main(["status", str(spec)]) == 0
        told[spec.parent.name] = capsys.readouterr().out
    assert "train/run: done: stopped early 1 time (the time limit near x1); requeued itself 1 time; last at step" in told["limit"]
    assert "train/run: done: stopped early 1 time (SIGTERM (preempted, requeued or cancelled) x1); requeued itself 0 times" in told["requeue"]
    assert "failed" not in told["kill"] and "train/run:" not in told["kill"]
