"""The stage contract: what a stage task is, how it is keyed, run, marked done, and checked ready.

    result = task.definition.function()(task.inputs, ctx)   # run(inputs, ctx) -> StageResult
    seconds = execute(task, ctx)                             # prepare dir, run, mark done (last)
    is_done(task); missing_deps(task, graph)                 # what every runner asks

A task is done when its marker dir holds `_done.json` with the task's identity. A task that was
interrupted (even by kill -9) has no `_done.json` and runs again; the train stage then resumes
from its last complete checkpoint and the eval stage from its last scored checkpoint. A task whose
identity changed (its inputs changed) has its old outputs moved aside, never silently mixed.

`execute` is the one door into a stage, for every way a stage runs: in this process, on several
GPUs through the stage's launcher (`accelerate launch`, whose ranks call `execute_rank`), and one
part of a task on its own (`eval/<run>@<checkpoint>`: one checkpoint scored into the run's cache).
Each writes the same `_started.json`, registry row and, on failure, `error.txt`.

What a stage is (its entry point, inputs, version, kept outputs) is a `Stage` row of the one stage
table, ftlab.stages; this module names no stage and imports none (entry points are "module:function"
strings, imported when a task of that stage runs). Runners (ftlab.runners) decide only where
`execute` runs; this module says what it does.
"""

from __future__ import annotations

import os
import shutil
import socket
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ftlab import atomic
from ftlab.errors import StageError
from ftlab.plugins import load_entry
from ftlab.contract.inputs import StageInputs

DONE = "_done.json"
STARTED = "_started.json"
ERROR = "error.txt"
OUTPUTS = "_outputs.json"  # what rank 0 of a multi-process launch hands back to `execute`
PARTS = "_parts"  # markers of the parts of a task run on their own: <out_dir>/_parts/<part>/
REPORT_KEY = "report"


@dataclass(frozen=True)
class Stage:
    """One row of the stage table (ftlab.stages): everything the contract and the runners need to
    know about a stage. Entry points are "module:function" strings: naming a stage imports nothing."""

    name: str
    entry: str  # run(inputs, ctx) -> StageResult
    inputs: str  # "module:Class" of its frozen StageInputs model
    version: int  # bump when the code changes what it produces: old outputs then re-run
    slurm_group: str  # the sbatch group its tasks join: prepare | curate | train | eval | report
    keeps_outputs: bool = False  # validates each cached piece itself (eval): not moved aside on a new identity
    uses_torch: bool = True  # threads are set before it runs (ftlab.threads)
    # launch(task, ctx) -> StageResult | None: runs the task in other processes (accelerate launch
    # on several GPUs), or None when one process suffices
    launcher: str | None = None
    # run_part(inputs, ctx, part, run) -> StageResult: one part of a task on its own (eval: one checkpoint)
    part_entry: str | None = None
    # plan_parts(task, train_task, data_outputs, seen) -> (parts | None, why): the parts known at submit time
    parts_planner: str | None = None

    def function(self) -> Callable[..., StageResult]:
        return load_entry(self.entry)

    def inputs_class(self) -> type[StageInputs]:
        return load_entry(self.inputs)


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
    definition: Stage  # its row of the stage table
    key: str  # unique within the experiment, e.g. "train/lr0.001_s0"
    identity: str
    out_dir: Path
    deps: tuple[str, ...]
    inputs: StageInputs
    run: Any = None  # ftlab.spec.plan.Run of a train or eval task
    part: str | None = None  # one part of the task run on its own (eval: a checkpoint's name)

    @property
    def stage(self) -> str:
        return self.definition.name

    @property
    def marker_dir(self) -> Path:
        """Where `_started.json`, `_done.json` and `error.txt` live: the out dir, or a part's own dir in it."""
        return self.out_dir if self.part is None else self.out_dir / PARTS / self.part

    def part_of(self, part: str, deps: tuple[str, ...]) -> Task:
        """The task of one part of this one (key `<key>@<part>`), needing only `deps` to start."""
        if self.definition.part_entry is None:
            raise StageError(f"{self.key}: a {self.stage} task has no parts to run on their own")
        return replace(self, key=f"{self.key}@{part}", part=part, deps=deps)


@dataclass
class StageContext:
    """What a stage may use besides its inputs: where to write, the experiment dir, the registry."""

    out_dir: Path
    experiment_dir: Path
    registry: Any = None  # ftlab.registry.Registry (typed loosely to keep this module import-light)
    spec_path: Path | None = None  # what `accelerate launch` hands back to `ftlab stage exec`
    key: str = ""  # the task's key, for messages
    threads: int | None = None  # the spec's `threads:` (ftlab.threads decides with the allocation)
    # called with each checkpoint's manifest entry ({name, step, epoch, path}) once it is complete
    # (step_0 when training starts): a runner starts work on it while training goes on
    on_checkpoint: Callable[[dict[str, Any]], None] | None = None
    run: Any = None  # ftlab.spec.plan.Run of a train or eval task
    # why the runner asks the stage to stop now (a SLURM warning before the time limit, SIGTERM),
    # else None: the train stage asks it after every step and stops with a checkpoint to resume from
    stop_requested: Callable[[], str | None] | None = None


@dataclass
class StageResult:
    """What a stage returns: its outputs record (plain JSON), kept in `_done.json` and the registry."""

    outputs: dict[str, Any] = field(default_factory=dict)


StageFn = Callable[[StageInputs, StageContext], StageResult]


def context(task: Task, experiment_dir: Path, registry=None, spec_path: Path | None = None,
            threads: int | None = None, on_checkpoint: Callable[[dict[str, Any]], None] | None = None,
            stop_requested: Callable[[], str | None] | None = None) -> StageContext:
    return StageContext(task.out_dir, experiment_dir, registry, spec_path, task.key, threads, on_checkpoint, task.run, stop_requested)


def _marked(marker: Path, identity: str) -> bool:
    return marker.is_file() and atomic.read_json(marker).get("identity") == identity


def is_done(task: Task) -> bool:
    """Its own done marker; a part is done too once its whole task is."""
    return _marked(task.marker_dir / DONE, task.identity) or (task.part is not None and _marked(task.out_dir / DONE, task.identity))


def done_outputs(task: Task) -> dict[str, Any]:
    return atomic.read_json(task.marker_dir / DONE)["outputs"]


def missing_deps(task: Task, graph, ready: Iterable[str] = ()) -> list[str]:
    """The dependencies of `task` that are neither done nor in `ready` (e.g. queued in SLURM)."""
    ready = set(ready)
    return [d for d in task.deps if d not in ready and not is_done(graph.task(d))]


def execute(task: Task, ctx: StageContext, *, rerun: bool = False, partial: bool = False) -> float:
    """Run one task (or one part of one): prepare its directory, run the stage, mark it done (atomically, last).

    partial: its dependencies are not all done (`ftlab report` on an experiment that has not run,
    or has half run): the outputs are written but the task is neither marked done nor recorded,
    so a later `run` still builds it from the finished inputs."""
    prepare_dir(task, rerun=rerun)
    marks = task.marker_dir
    marks.mkdir(parents=True, exist_ok=True)
    if partial:
        (marks / DONE).unlink(missing_ok=True)
        started = time.time()
        run_stage(task, ctx)
        return time.time() - started
    atomic.write_json(marks / STARTED, {"identity": task.identity, "host": socket.gethostname(), "pid": os.getpid()})
    registry = ctx.registry
    run_id = task.run.run_id if task.run else None
    registry.stage_started(task.key, stage=task.stage, run_id=run_id, identity=task.identity,
                           config=task.inputs.model_dump(mode="json"), host=socket.gethostname(), pid=os.getpid())
    started = time.time()
    try:
        if task.definition.uses_torch:  # the others need not import it
            from ftlab import threads

            threads.apply(ctx.threads)
        outputs = run_stage(task, ctx).outputs
    except BaseException as err:
        seconds = time.time() - started
        message = "interrupted" if isinstance(err, KeyboardInterrupt) else f"{type(err).__name__}: {err}"
        atomic.write_text(marks / ERROR, traceback.format_exc())
        registry.stage_failed(task.key, identity=task.identity, error=message, seconds=seconds)
        raise
    seconds = time.time() - started
    atomic.write_json(marks / DONE, {"identity": task.identity, "outputs": outputs, "seconds": seconds})
    registry.stage_finished(task.key, identity=task.identity, outputs=outputs, seconds=seconds)
    return seconds


def run_stage(task: Task, ctx: StageContext) -> StageResult:
    """Run the stage code: one part of the task, or the whole task here, or through the stage's
    launcher on several processes (train.gpus > 1: `accelerate launch`, see ftlab.train.launch)."""
    row = task.definition
    if task.part is not None:
        return load_entry(row.part_entry)(task.inputs, ctx, task.part, task.run)
    if row.launcher is not None:
        launched = load_entry(row.launcher)(task, ctx)
        if launched is not None:
            return launched
    return row.function()(task.inputs, ctx)


def execute_rank(task: Task, ctx: StageContext, *, main_rank: bool) -> StageResult:
    """What each rank of a launch runs (`ftlab stage exec`): the stage code only, no bookkeeping;
    rank 0 hands its outputs back to `execute` (in the launching process) through `_outputs.json`."""
    result = task.definition.function()(task.inputs, ctx)
    if main_rank:
        atomic.write_json(task.out_dir / OUTPUTS, result.outputs)
    return result


def launched_outputs(task: Task) -> StageResult:
    """The outputs rank 0 of a launch wrote (execute_rank), read back by the launcher."""
    return StageResult(atomic.read_json(task.out_dir / OUTPUTS))


def prepare_dir(task: Task, *, rerun: bool) -> None:
    """Keep a partial run of the same identity (to resume); move anything else aside. A part
    shares its task's out dir: it only clears its own markers."""
    if task.part is not None:
        if rerun and task.marker_dir.exists():
            shutil.rmtree(task.marker_dir)
        task.out_dir.mkdir(parents=True, exist_ok=True)
        return
    out = task.out_dir
    if out.exists():
        same = _marked(out / STARTED, task.identity)
        if rerun:
            shutil.rmtree(out)
        elif not same and not task.definition.keeps_outputs and any(out.iterdir()):
            stale = out.with_name(f"{out.name}.stale-{time.strftime('%Y%m%d-%H%M%S')}")
            out.rename(stale)
    out.mkdir(parents=True, exist_ok=True)
