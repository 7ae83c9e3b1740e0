"""Local runner: execute an experiment's stage tasks in dependency order in this process.

A task is skipped when its out_dir holds `_done.json` with the task's identity. A task that was
interrupted (even by kill -9) has no `_done.json` and runs again; the train stage then resumes
from its last complete checkpoint and the eval stage from its last scored checkpoint. A task whose
identity changed (its inputs changed) has its old outputs moved aside, never silently mixed.
A failed task does not stop independent runs; only the tasks that depend on it are skipped.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import socket
import time
import traceback
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from ftlab import atomic
from ftlab.errors import FtlabError, StageError
from ftlab.pipeline import KEEPS_OUTPUTS, STAGE_ORDER, Graph, StageContext, Task, stage_function

DONE = "_done.json"
STARTED = "_started.json"


@dataclass
class Outcome:
    ran: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    blocked: list[str] = field(default_factory=list)


def is_done(task: Task) -> bool:
    marker = task.out_dir / DONE
    return marker.is_file() and atomic.read_json(marker).get("identity") == task.identity


def select_tasks(graph: Graph, only: Iterable[str] = (), skip: Iterable[str] = ()) -> list[Task]:
    only, skip = set(only), set(skip)
    for name in only | skip:
        if name not in STAGE_ORDER:
            from ftlab.plugins import did_you_mean

            raise StageError(f"Unknown stage '{name}'.{did_you_mean(name, STAGE_ORDER)} Available: {', '.join(STAGE_ORDER)}")
    return [t for t in graph.tasks if (not only or t.stage in only) and t.stage not in skip]


def run_graph(
    graph: Graph,
    registry,
    *,
    rerun: bool = False,
    only: Iterable[str] = (),
    skip: Iterable[str] = (),
    echo: Callable[[str], None] = print,
) -> Outcome:
    selected = select_tasks(graph, only, skip)
    outcome = Outcome()
    by_key = {t.key: t for t in graph.tasks}
    ctx = StageContext(experiment_dir=graph.plan.output_dir, registry=registry, spec_path=graph.plan.spec_path)
    with experiment_lock(graph.plan.output_dir):
        for n, task in enumerate(selected, 1):
            head = f"[{n}/{len(selected)}] {task.key}"
            if not rerun and is_done(task):
                outcome.skipped.append(task.key)
                if registry.stage(task.key) is None or registry.stage(task.key)["status"] != "done":
                    registry.stage_skipped(task.key, stage=task.stage, run_id=_run_id(task), identity=task.identity, outputs=atomic.read_json(task.out_dir / DONE)["outputs"])
                echo(f"{head}: done already, skipped")
                continue
            missing = [d for d in task.deps if not is_done(by_key[d])]
            if missing:
                outcome.blocked.append(task.key)
                if any(d in outcome.failed for d in missing):
                    why = "failed"
                elif any(d in outcome.blocked for d in missing):
                    why = "blocked by an earlier failure"
                else:
                    why = "not run: excluded by --only/--skip"
                echo(f"{head}: blocked, needs {', '.join(missing)} ({why})")
                continue
            echo(f"{head}: running")
            try:
                seconds = execute(task, ctx, rerun=rerun)
            except FtlabError as err:
                outcome.failed[task.key] = str(err)
                echo(f"{head}: FAILED: {err}")
                continue
            except Exception as err:  # a bug or a library error: keep the traceback in the registry
                outcome.failed[task.key] = f"{type(err).__name__}: {err}"
                echo(f"{head}: FAILED: {type(err).__name__}: {err} (traceback in {task.out_dir / 'error.txt'})")
                continue
            outcome.ran.append(task.key)
            echo(f"{head}: done in {seconds:.1f}s")
    return outcome


def execute(task: Task, ctx: StageContext, *, rerun: bool = False) -> float:
    """Run one task: prepare its directory, run the stage, mark it done (atomically, last)."""
    prepare_dir(task, rerun=rerun)
    atomic.write_json(task.out_dir / STARTED, {"identity": task.identity, "host": socket.gethostname(), "pid": os.getpid()})
    registry = ctx.registry
    registry.stage_started(task.key, stage=task.stage, run_id=_run_id(task), identity=task.identity, config=task.inputs, host=socket.gethostname(), pid=os.getpid())
    started = time.time()
    try:
        outputs = run_stage(task, ctx)
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


def run_stage(task: Task, ctx: StageContext) -> dict:
    """Run the stage code here, or on several GPUs through `accelerate launch` (see ftlab.train.launch)."""
    gpus = task.inputs.get("train", {}).get("gpus", 1) if task.stage == "train" else 1
    if gpus <= 1:
        return stage_function(task.stage)(task, ctx)
    import subprocess

    from ftlab.train.launch import launch_command, render_config

    config = render_config(task.out_dir / "accelerate.yaml", gpus, task.inputs["train"]["distributed"])
    argv = launch_command(config, ctx.spec_path, task.key)
    proc = subprocess.run(argv)
    if proc.returncode != 0:
        raise StageError(f"{task.key}: accelerate launch exited with {proc.returncode}; see the log above")
    return atomic.read_json(task.out_dir / "_outputs.json")


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


@contextmanager
def experiment_lock(experiment_dir: Path):
    """One `ftlab run` per experiment at a time (a second one would train the same runs twice)."""
    experiment_dir.mkdir(parents=True, exist_ok=True)
    with open(experiment_dir / ".lock", "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StageError(f"another ftlab process is running this experiment ({experiment_dir}); wait for it or stop it") from None
        yield


def _run_id(task: Task) -> str | None:
    return task.run.run_id if task.run else None
