"""Each checkpoint evaluated on its own (ftlab.runners.slurm.checkpoints), without SLURM: the
checkpoint plan made at submit time equals what training writes, one checkpoint's eval fills the
run's cache so the run's eval task scores nothing again, and a checkpoint never written fails clearly."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import ftlab
from ftlab.api import run_task
from ftlab.errors import StageError
from ftlab.graph import build_graph
from ftlab.registry import Registry
from ftlab.runners.slurm.checkpoints import planned_checkpoints, step_checkpoints
from ftlab.spec.plan import load_plan
from ftlab.spec.schema import Train
from tests.conftest import write_spec

FIXTURES = Path(__file__).parent / "fixtures"


def test_step_plan_by_hand():
    def plan(n, **hp):
        return step_checkpoints(n, Train(learning_rate=0.001, **hp))

    assert plan(240, batch_size=16, save_steps=10) == ["step_10", "epoch_0"]  # 15 steps
    # 15 batches / grad_accum 4 -> 4 updates per epoch (the last takes 3 batches)
    assert plan(240, batch_size=16, grad_accum=4, epochs=2, save_steps=3) == ["step_3", "epoch_0", "step_6", "epoch_1"]
    assert plan(240, batch_size=16, max_steps=20, save_steps=8) == ["step_8", "epoch_0", "step_16", "step_20"]
    assert plan(240, batch_size=16, epochs=1.5) == ["epoch_0", "step_23"]  # ceil(1.5 x 15)
    assert plan(0, batch_size=16) is None


@pytest.mark.slow
@pytest.mark.parametrize("train", [
    "{epochs: 2, learning_rate: 0.003, batch_size: 16, grad_accum: 4, max_length: 96, save_steps: 3, logging_steps: 5}",
    "{max_steps: 7, learning_rate: 0.003, batch_size: 50, grad_accum: 2, max_length: 96, save_steps: 2, logging_steps: 5}",
], ids=["grad-accum-remainder", "max-steps-mid-epoch"])
def test_plan_equals_what_training_writes(tmp_path: Path, train):
    """The plan mirrors transformers' step counting and CheckpointNamer: a real run checks it."""
    spec = write_spec(tmp_path)
    text = spec.read_text()
    spec.write_text(text[:text.index("train: {")] + f"train: {train}\n" + text[text.index("eval: {"):])
    assert ftlab.run(spec, only=["data", "model"]).ok
    graph = build_graph(load_plan(spec))
    train_task = next(t for t in graph.tasks if t.stage == "train")
    planned, why = planned_checkpoints(graph, train_task)
    assert planned is not None, why
    assert ftlab.run(spec, only=["train"]).ok
    written = [c["name"] for c in json.loads((train_task.out_dir / "checkpoints.json").read_text())]
    assert planned == written


def test_unknown_plans_say_why(tmp_path: Path):
    spec = write_spec(tmp_path)  # save_steps 10 on data not prepared yet
    graph = build_graph(load_plan(spec))
    train_task = next(t for t in graph.tasks if t.stage == "train")
    names, why = planned_checkpoints(graph, train_task)
    assert names is None and "train.save_steps" in why and "not prepared yet" in why
    spec = write_spec(tmp_path, epochs=2, save_steps="null")  # epoch saving: known from the settings alone
    graph = build_graph(load_plan(spec))
    assert planned_checkpoints(graph, next(t for t in graph.tasks if t.stage == "train")) == (["step_0", "epoch_0", "epoch_1"], "")
    spec.write_text(spec.read_text().replace("logging_steps: 5", "logging_steps: 5, keep_last: 1"))
    graph = build_graph(load_plan(spec))
    names, why = planned_checkpoints(graph, next(t for t in graph.tasks if t.stage == "train"))
    assert names is None and "keep_last" in why


def _no_scoring(monkeypatch):
    """Any evaluator asked to score fails the test: the run's eval must only read the cache."""
    from ftlab.evaluate.evaluators import evaluators

    for name in evaluators.names():
        cls = evaluators.get(name)
        monkeypatch.setattr(cls, "run", lambda self, *a, **k: pytest.fail("the run's eval scored a checkpoint again"))


@pytest.mark.slow
def test_checkpoint_evals_fill_the_cache_and_the_run_eval_only_selects(tmp_path: Path, monkeypatch, capsys):
    (tmp_path / "local").mkdir()
    local = write_spec(tmp_path / "local", epochs=2, save_steps="null")
    assert ftlab.run(local).ok

    (tmp_path / "parts").mkdir()
    spec = write_spec(tmp_path / "parts", epochs=2, save_steps="null")
    assert ftlab.run(spec, only=["data", "model", "train"]).ok
    graph = build_graph(load_plan(spec))
    train_task = next(t for t in graph.tasks if t.stage == "train")
    run = train_task.run.name
    names, _ = planned_checkpoints(graph, train_task)
    for name in names:
        assert run_task(spec, f"eval/{run}@{name}") is not None  # scored, with the markers of a task
        assert (graph.task(f"eval/{run}").out_dir / "_parts" / name / "_done.json").is_file()
    with pytest.raises(StageError, match=rf"train/{run} finished without writing checkpoint epoch_7 \(it wrote step_0, epoch_0, epoch_1\)"):
        run_task(spec, f"eval/{run}@epoch_7")
    failed = Registry(spec.parent / "out" / "registry.sqlite").stage(f"eval/{run}@epoch_7")
    assert failed["status"] == "failed" and (graph.task(f"eval/{run}").out_dir / "_parts" / "epoch_7" / "error.txt").is_file()

    with monkeypatch.context() as m:
        _no_scoring(m)
        assert run_task(spec, f"eval/{run}") is not None
        assert ftlab.run(spec).ok  # the report too

    summary = json.loads((graph.task(f"eval/{run}").out_dir / "summary.json").read_text())
    local_out = local.parent / "out"
    assert summary == json.loads((local_out / "runs" / run / "eval" / "summary.json").read_text())

    def metrics(registry):
        return {(m["checkpoint"], m["split"], m["metric"]): m["value"] for m in registry.metrics()}

    assert metrics(Registry(spec.parent / "out" / "registry.sqlite")) == metrics(Registry(local_out / "registry.sqlite"))


RELEASE_SCRIPT = """
import json, subprocess, sys
from pathlib import Path
from ftlab.graph import build_graph
from ftlab.registry import Registry
from ftlab.runners.slurm import checkpoints, follow
from ftlab.spec.plan import load_plan

spec, log, how = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
calls = []
def fake(argv, **kw):
    calls.append(argv[2:])
    log.write_text(json.dumps(calls))
    return subprocess.CompletedProcess(argv, 0, "", "")
follow.slurm_command = fake
graph = build_graph(load_plan(spec))
registry = Registry(graph.plan.output_dir / "registry.sqlite")
train = next(t for t in graph.tasks if t.stage == "train")
with checkpoints.releasing(graph, train, registry) as on_checkpoint:  # what the train stage's context calls
    on_checkpoint({"name": "epoch_0", "step": 15, "epoch": 1.0, "path": "x"})
    on_checkpoint({"name": "epoch_0", "step": 15, "epoch": 1.0, "path": "x"})  # once is enough
    if how == "stop":  # asked to stop (time limit near, preempted, requeued): saved a checkpoint, resumes later
        from ftlab.errors import Interrupted
        raise Interrupted("stopped at step 20", reason="SIGTERM", checkpoint="step_20", step=20)
    raise RuntimeError("training failed")
"""


def test_the_train_task_releases_each_checkpoint_once_and_the_rest_unless_it_stopped_to_resume(tmp_path: Path):
    import subprocess
    import sys

    from ftlab.runners.slurm.jobs import JobTable

    spec = write_spec(tmp_path, epochs=2, save_steps="null")
    graph = build_graph(load_plan(spec))
    registry = Registry(graph.plan.output_dir / "registry.sqlite")
    run = next(t for t in graph.tasks if t.stage == "train").run.name
    JobTable(registry).record([{"job_id": "99", "array_index": i, "task_key": f"eval/{run}@{name}", "grp": "eval-ckpt"}
                               for i, name in enumerate(["step_0", "epoch_0", "epoch_1"])])
    (tmp_path / "script.py").write_text(RELEASE_SCRIPT)
    for how, released in (("raise", [["99_0"], ["99_1"], ["99_2"]]), ("stop", [["99_0"], ["99_1"]])):
        log = tmp_path / f"{how}.json"
        proc = subprocess.run([sys.executable, str(tmp_path / "script.py"), str(spec), str(log), how], capture_output=True, text=True)
        assert proc.returncode == 1, proc.stderr
        # step_0 (the base) at once, epoch_0 when announced, epoch_1 on the way out; when it stopped to
        # resume, epoch_1 stays held for the resumed task (or the release job after the train array)
        assert json.loads(log.read_text()) == released, how
