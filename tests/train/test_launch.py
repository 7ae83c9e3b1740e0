"""Multi-GPU launch: the rendered accelerate config and command, against golden files.

Re-record the goldens after an intended change:
    FTLAB_RERECORD=1 .venv/bin/pytest tests/train/test_launch.py
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from accelerate.commands.config.config_args import load_config_from_file

from ftlab.train.launch import launch_command, render_config, shell_line

GOLDEN = Path(__file__).parent / "golden"


def _check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("FTLAB_RERECORD"):
        path.write_text(text)
    assert path.is_file(), f"missing golden {path}; record it with FTLAB_RERECORD=1"
    assert text == path.read_text(), f"{name} changed; if intended, re-record with FTLAB_RERECORD=1"


@pytest.mark.parametrize("distributed", ["ddp", "fsdp"])
def test_rendered_config_matches_golden_and_loads_in_accelerate(tmp_path: Path, distributed):
    path = render_config(tmp_path / "accelerate.yaml", gpus=4, distributed=distributed)
    _check_golden(f"accelerate_{distributed}.yaml", path.read_text())
    config = load_config_from_file(str(path))  # accelerate's own loader validates the file
    assert config.num_processes == 4
    assert str(config.distributed_type).endswith("MULTI_GPU" if distributed == "ddp" else "FSDP")
    if distributed == "fsdp":
        assert config.fsdp_config["fsdp_state_dict_type"] == "FULL_STATE_DICT"


def test_launch_command_matches_golden():
    argv = launch_command(Path("/exp/runs/r/train/accelerate.yaml"), Path("/exp/spec with space.yaml"), "train/lr0.001_s0")
    argv[0] = "accelerate"  # the venv's absolute path differs per machine
    _check_golden("launch_command.txt", shell_line(argv) + "\n")


def test_multi_gpu_run_goes_through_accelerate(tmp_path: Path, monkeypatch):
    """The local runner hands a gpus>1 train task to `accelerate launch` with the rendered config."""
    import subprocess

    from ftlab.graph import build_graph
    from ftlab.contract import context, run_stage
    from ftlab.spec.plan import load_plan
    from tests.conftest import write_spec

    spec = write_spec(tmp_path)
    spec.write_text(spec.read_text().replace("logging_steps: 5", "logging_steps: 5, gpus: 2, distributed: fsdp"))
    plan = load_plan(spec)
    task = build_graph(plan).task("train/run")
    seen = {}

    def fake_run(argv, **kwargs):  # no GPUs here: capture the launch instead of executing it
        seen["argv"] = argv
        (task.out_dir / "_outputs.json").write_text('{"global_step": 1}')
        return subprocess.CompletedProcess(argv, 0)

    monkeypatch.setattr(subprocess, "run", fake_run)
    task.out_dir.mkdir(parents=True)
    result = run_stage(task, context(task, plan.output_dir, None, plan.spec_path))
    assert result.outputs == {"global_step": 1}
    assert seen["argv"][1:4] == ["launch", "--config_file", str(task.out_dir / "accelerate.yaml")]
    assert seen["argv"][-4:] == ["stage", "exec", str(plan.spec_path), "train/run"]
    assert load_config_from_file(str(task.out_dir / "accelerate.yaml")).num_processes == 2


def test_a_launched_task_keeps_the_markers_registry_row_and_error_record(tmp_path: Path, monkeypatch):
    """One door: execute() of a gpus>1 train task goes through the train row's launcher and records
    it like any task; each rank's `ftlab stage exec` (execute_rank) hands rank 0's outputs back."""
    import subprocess

    from ftlab.contract import DONE, STARTED, StageResult, context, execute, execute_rank
    from ftlab.errors import StageError
    from ftlab.graph import build_graph
    from ftlab.registry import Registry
    from ftlab.spec.plan import load_plan
    from tests.conftest import write_spec

    spec = write_spec(tmp_path)
    spec.write_text(spec.read_text().replace("logging_steps: 5", "logging_steps: 5, gpus: 2, distributed: ddp"))
    plan = load_plan(spec)
    task = build_graph(plan).task("train/run")
    registry = Registry(plan.output_dir / "registry.sqlite")
    ctx = context(task, plan.output_dir, registry, plan.spec_path)
    rank = {"code": 0}
    import ftlab.train.stage

    # what each rank runs is the row's entry point: a stand-in (no GPUs here)
    monkeypatch.setattr(ftlab.train.stage, "run_train", lambda inputs, c: StageResult({"global_step": 7}))

    def fake_launch(argv, **kwargs):
        execute_rank(task, ctx, main_rank=True)  # rank 0's `ftlab stage exec`
        return subprocess.CompletedProcess(argv, rank["code"])

    monkeypatch.setattr(subprocess, "run", fake_launch)
    execute(task, ctx)
    assert json.loads((task.out_dir / DONE).read_text())["outputs"] == {"global_step": 7}
    assert (task.out_dir / STARTED).is_file() and registry.stage("train/run")["status"] == "done"

    rank["code"] = 3  # a rank failed
    with pytest.raises(StageError, match="accelerate launch exited with 3"):
        execute(task, ctx, rerun=True)
    assert registry.stage("train/run")["status"] == "failed" and "exited with 3" in (task.out_dir / "error.txt").read_text()
