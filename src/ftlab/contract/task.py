"""The stage contract: what a stage task is, how it is keyed, run, marked done, and checked ready.

    result = stage_function("train")(task.inputs, ctx)   # run(inputs, ctx) -> StageResult
    seconds = execute(task, ctx)                          # prepare dir, run, mark done (last)
    is_done(task); missing_deps(task, graph)              # what every runner asks

A task is done when its out_dir holds `_done.json` with the task's identity. A task that was
interrupted (even by kill -9) has no `_done.json` and runs again; the train stage then resumes
from its last complete checkpoint and the eval stage from its last scored checkpoint. A task whose
identity changed (its inputs changed) has its old outputs moved aside, never silently mixed.
Runners (ftlab.runners) decide only where `execute` runs; this module says what it does.
"""

from __future__ import annotations

import os
import shutil
import socket
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ftlab import atomic
from ftlab.errors import StageError
from ftlab.contract.inputs import StageInputs

# curate reads data (and a model, for difficulty) and feeds train; baselines read data only.
STAGE_ORDER = ("data", "model", "curate", "baseline", "train", "eval", "report")
# Stages that keep their outputs when their identity changes: they validate each cached piece
# themselves (eval: per checkpoint, evaluator and split), so adding an evaluator runs only it.
KEEPS_OUTPUTS = {"eval"}
DONE = "_done.json"
STARTED = "_started.json"
REPORT_KEY = "report"


def data_key(dataset: str, identity: str) -> str:
    return f"data/{dataset}-{identity[:8]}"


def model_key(identity: str, kind: str = "tiny") -> str:
    return f"model/{kind}-{identity[:8]}"


def curate_key(dataset: str, identity: str) -> str:
    return f"curate/{dataset}-{identity[:8]}"


def baseline_key(model: str) -> str:
    return f"baseline/{model}"


def train_key(run_name: str) -> str:
    return f"train/{run_name}"


def eval_key(run_name: str) -> str:
    return f"eval/{run_name}"


def checkpoint_key(run_name: str, checkpoint: str) -> str:
    """One checkpoint's evaluation, a part of eval/<run> a runner may run on its own: eval/<run>@<checkpoint>."""
    return f"{eval_key(run_name)}@{checkpoint}"


def split_checkpoint_key(key: str) -> tuple[str, str | None]:
    """eval/<run>@<checkpoint> -> (eval/<run>, checkpoint); any other key -> (key, None)."""
    if key.startswith("eval/") and "@" in key:
        task, _, checkpoint = key.rpartition("@")
        return task, checkpoint
    return key, None


def run_key(stage: str, run_name: str) -> str:
    """The key of a run's train or eval task."""
    return {"train": train_key, "eval": eval_key}[stage](run_name)


@dataclass(frozen=True)
class Task:
    stage: str
    key: str  # unique within the experiment, e.g. "train/lr0.001_s0"
    identity: str
    out_dir: Path
    deps: tuple[str, ...]
    inputs: StageInputs
    run: Any = None  # ftlab.spec.plan.Run of a train or eval task


@dataclass
class StageContext:
    """What a stage may use besides its inputs: where to write, the experiment dir, the registry."""

    out_dir: Path
    experiment_dir: Path
    registry: Any = None  # ftlab.registry.Registry (typed loosely to keep this module import-light)
    spec_path: Path | None = None  # what `accelerate launch` hands back to `ftlab stage exec`
    key: str = ""  # the task's key, for messages
    threads: int | None = None  # the spec's `threads:` (ftlab.threads decides with the allocation)


@dataclass
class StageResult:
    """What a stage returns: its outputs record (plain JSON), kept in `_done.json` and the registry."""

    outputs: dict[str, Any] = field(default_factory=dict)


StageFn = Callable[[StageInputs, StageContext], StageResult]


def stage_function(stage: str) -> StageFn:
    """Import lazily: the skip path of `ftlab run` must not pay for importing torch."""
    if stage == "data":
        from ftlab.data.stage import run_data as fn
    elif stage == "model":
        from ftlab.models.stage import run_model as fn
    elif stage == "curate":
        from ftlab.curate.stage import run_curate as fn
    elif stage == "baseline":
        from ftlab.baselines.stage import run_baseline as fn
    elif stage == "train":
        from ftlab.train.stage import run_train as fn
    elif stage == "eval":
        from ftlab.evaluate.stage import run_eval as fn
    elif stage == "report":
        from ftlab.reporting.stage import run_report as fn
    else:
        raise KeyError(stage)
    return fn


def context(task: Task, experiment_dir: Path, registry=None, spec_path: Path | None = None,
            threads: int | None = None) -> StageContext:
    return StageContext(task.out_dir, experiment_dir, registry, spec_path, task.key, threads)


def is_done(task: Task) -> bool:
    marker = task.out_dir / DONE
    return marker.is_file() and atomic.read_json(marker).get("identity") == task.identity


def done_outputs(task: Task) -> dict[str, Any]:
    return atomic.read_json(task.out_dir / DONE)["outputs"]


def missing_deps(task: Task, graph, ready: Iterable[str] = ()) -> list[str]:
    """The dependencies of `task` that are neither done nor in `ready` (e.g. queued in SLURM)."""
    ready = set(ready)
    return [d for d in task.deps if d not in ready and not is_done(graph.task(d))]


def select_tasks(graph, only: Iterable[str] = (), skip: Iterable[str] = ()) -> list[Task]:
    only, skip = set(only), set(skip)
    for name in only | skip:
        if name not in STAGE_ORDER:
            from ftlab.plugins import did_you_mean

            raise StageError(f"Unknown stage '{name}'.{did_you_mean(name, STAGE_ORDER)} Available: {', '.join(STAGE_ORDER)}")
    return [t for t in graph.tasks if (not only or t.stage in only) and t.stage not in skip]


def execute(task: Task, ctx: StageContext, *, rerun: bool = False) -> float:
    """Run one task: prepare its directory, run the stage, mark it done (atomically, last)."""
    prepare_dir(task, rerun=rerun)
    atomic.write_json(task.out_dir / STARTED, {"identity": task.identity, "host": socket.gethostname(), "pid": os.getpid()})
    registry = ctx.registry
    run_id = task.run.run_id if task.run else None
    registry.stage_started(task.key, stage=task.stage, run_id=run_id, identity=task.identity,
                           config=task.inputs.model_dump(mode="json"), host=socket.gethostname(), pid=os.getpid())
    started = time.time()
    try:
        if task.stage not in ("data", "report"):  # the stages that run torch; the others need not import it
            from ftlab import threads

            threads.apply(ctx.threads)
        outputs = run_stage(task, ctx).outputs
    except BaseException as err:
        seconds = time.time() - started
        message = "interrupted" if isinstance(err, KeyboardInterrupt) else f"{type(err).__name__}: {err}"
        atomic.write_text(task.out_dir / "error.txt", traceback.format_exc())
        registry.stage_failed(task.key, identity=task.identity, error=message, seconds=seconds)
        raise
    seconds = time.time() - started
    atomic.write_json(task.out_dir / DONE, {"identity": task.identity, "outputs": outputs, "seconds": seconds})
    registry.stage_finished(task.key, identity=task.identity, outputs=outputs, seconds=seconds)
    return seconds


def run_stage(task: Task, ctx: StageContext) -> StageResult:
    """Run the stage code here, or on several GPUs through `accelerate launch` (see ftlab.train.launch)."""
    gpus = task.inputs.train.gpus if task.stage == "train" else 1
    if gpus <= 1:
        return stage_function(task.stage)(task.inputs, ctx)
    import subprocess

    from ftlab.train.launch import launch_command, render_config

    config = render_config(task.out_dir / "accelerate.yaml", gpus, task.inputs.train.distributed)
    argv = launch_command(config, ctx.spec_path, task.key)
    proc = subprocess.run(argv)
    if proc.returncode != 0:
        raise StageError(f"{task.key}: accelerate launch exited with {proc.returncode}; see the log above")
    return StageResult(atomic.read_json(task.out_dir / "_outputs.json"))


def prepare_dir(task: Task, *, rerun: bool) -> None:
    """Keep a partial run of the same identity (to resume); move anything else aside."""
    out = task.out_dir
    if out.exists():
        started = out / STARTED
        same = started.is_file() and atomic.read_json(started).get("identity") == task.identity
        if rerun:
            shutil.rmtree(out)
        elif not same and task.stage not in KEEPS_OUTPUTS and any(out.iterdir()):
            stale = out.with_name(f"{out.name}.stale-{time.strftime('%Y%m%d-%H%M%S')}")
            out.rename(stale)
    out.mkdir(parents=True, exist_ok=True)
