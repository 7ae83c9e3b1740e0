"""Arrays larger than the cluster's MaxArraySize, on the real local SLURM (scripts/slurm-local.sh
sets MaxArraySize=4): runs trained earlier are scored by an `eval-ready` array, one task per run,
split into arrays of at most 4 whose every index runs its own task, side by side.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import ftlab
from ftlab.cli import main
from ftlab.registry import Registry
from ftlab.runners.slurm.follow import cluster_config
from ftlab.runners.slurm.jobs import JobTable
from tests.conftest import write_spec
from tests.runners.slurm.conftest import wait_for_jobs

pytestmark = pytest.mark.slow

PROFILE = ("partition: debug\nlimits: {gpus_per_node: 0}\nresources:\n  1B: {mem: 1G, cpus: 1, time: '0:10:00'}\n"
           "  cpu_job: {mem: 1G, cpus: 1, time: '0:10:00'}\n")


def test_nine_runs_trained_earlier_are_scored_in_parallel_by_arrays_split_at_max_array_size(slurm, tmp_path: Path, capsys):
    assert cluster_config().get("MaxArraySize") == "4", "scripts/slurm-local.sh sets MaxArraySize=4; restart the cluster"
    seeds = list(range(9))
    spec = write_spec(tmp_path, epochs=1, save_steps="null", seeds=str(seeds))
    (tmp_path / "cluster.yaml").write_text(PROFILE)
    spec.write_text(spec.read_text().replace("logging_steps: 5}", "logging_steps: 5, max_steps: 2}") + "threads: 1\ncluster: cluster.yaml\n")
    assert ftlab.run(spec, only=["data", "model", "train"]).ok  # trained earlier: 9 x 2 steps, here, in seconds
    capsys.readouterr()

    assert main(["submit", str(spec)]) == 0
    out = capsys.readouterr().out
    assert "eval-ready.1 4 tasks" in out and "eval-ready.2 4 tasks" in out and "eval-ready.3 1 task" in out, out
    registry = Registry(tmp_path / "out" / "registry.sqlite")
    wait_for_jobs(registry, 300, " (eval-ready arrays)")

    rows = [r for r in JobTable(registry).all() if r["grp"].startswith("eval-ready")]
    assert sorted(r["task_key"] for r in rows) == sorted(f"eval/run_s{s}" for s in seeds)  # each run once
    top: dict[str, int] = {}
    for r in rows:
        top[r["grp"]] = max(top.get(r["grp"], 0), r["array_index"])
    assert top == {"eval-ready.1": 3, "eval-ready.2": 3, "eval-ready.3": 0}  # indices 0-3, 0-3, 0: within MaxArraySize
    for r in rows:  # index i of each array ran the task at i of its own slice
        log = (tmp_path / "out" / "slurm" / r["log"]).read_text()
        assert f"ftlab: {r['task_key']} on " in log, (r, log[-500:])
    assert {m["run_id"] for m in registry.metrics()} == {run["run_id"] for run in registry.runs()}  # every run scored

    spans = _spans(rows)  # SLURM's own start and end times, 1 s resolution
    overlapping = sum(1 for i, a in enumerate(spans) for b in spans[i + 1:] if a[0] < b[1] and b[0] < a[1])
    assert overlapping >= 3, spans  # scored side by side, not one after another
    assert main(["status", str(spec)]) == 0
    assert "failed" not in capsys.readouterr().out


def _spans(rows: list[dict]) -> list[tuple[str, str]]:
    wanted = {(r["job_id"], r["array_index"]) for r in rows}
    spans = []
    for line in Path(cluster_config()["JobCompLoc"]).read_text().splitlines():
        f = dict(re.findall(r"(\w+)=(\S*)", line))
        key = (f.get("ArrayJobId"), int(f["ArrayTaskId"])) if f.get("ArrayTaskId", "").isdigit() else (f.get("JobId"), -1)
        if key in wanted and f.get("JobState") == "COMPLETED":
            spans.append((f["StartTime"], f["EndTime"]))
    assert len(spans) == len(wanted), spans
    return spans
