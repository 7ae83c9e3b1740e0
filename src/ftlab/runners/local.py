"""Local runner: execute an experiment's stage tasks in dependency order in this process.

    runner = LocalRunner(registry)
    outcome = runner.submit(graph)       # runs every task that is not done (same as run_graph)
    runner.status(graph)                 # {task key: done | pending | running | failed | interrupted}

What a task is, when it is done and how it runs is the stage contract (ftlab.contract); this module
only chooses the order and keeps going: a failed task does not stop independent runs, only the
tasks that depend on it are skipped. One `ftlab run` per experiment at a time (a lock file).
"""

from __future__ import annotations

import fcntl
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from ftlab.errors import FtlabError, StageError
from ftlab.graph import Graph
from ftlab.contract import context, done_outputs, execute, is_done, missing_deps
from ftlab.stages import select_tasks


@dataclass
class Outcome:
    ran: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    blocked: list[str] = field(default_factory=list)


class LocalRunner:
    """The Runner protocol (ftlab.runners.base) in this process: its state is the done markers and
    the registry's stage rows, so it keeps no table of its own."""

    name = "local"

    def __init__(self, registry, echo: Callable[[str], None] = print):
        self.registry, self.echo = registry, echo

    def submit(self, graph: Graph, *, rerun: bool = False, only: Iterable[str] = (), skip: Iterable[str] = ()) -> Outcome:
        from ftlab.runners.base import record_runs

        record_runs(graph, self.registry)  # before any stage: results() joins metrics with these rows
        return run_graph(graph, self.registry, rerun=rerun, only=only, skip=skip, echo=self.echo)

    def status(self, graph: Graph) -> dict[str, str]:
        from ftlab.runners.status import task_state

        rows = {s["key"]: s for s in self.registry.stages()}
        return {t.key: task_state(t, rows.get(t.key)) for t in graph.tasks}

    def cancel(self, graph: Graph) -> list[str]:
        """Nothing is queued: a local run stops with its process (Ctrl-C); its tasks resume next time."""
        return []


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
    out, spec = graph.plan.output_dir, graph.plan.spec_path
    with experiment_lock(out):
        for n, task in enumerate(selected, 1):
            head = f"[{n}/{len(selected)}] {task.key}"
            if not rerun and is_done(task):
                outcome.skipped.append(task.key)
                if registry.stage(task.key) is None or registry.stage(task.key)["status"] != "done":
                    registry.stage_skipped(task.key, stage=task.stage, run_id=task.run.run_id if task.run else None,
                                           identity=task.identity, outputs=done_outputs(task))
                echo(f"{head}: done already, skipped")
                continue
            missing = missing_deps(task, graph)
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
                seconds = execute(task, context(task, out, registry, spec, graph.plan.experiment.threads), rerun=rerun)
            except FtlabError as err:
                outcome.failed[task.key] = str(err)
                echo(f"{head}: FAILED: {err}")
                continue
            except Exception as err:  # a bug or a library error: keep the traceback in the registry
                outcome.failed[task.key] = f"{type(err).__name__}: {err}"
                echo(f"{head}: FAILED: {type(err).__name__}: {err} (traceback in {task.marker_dir / 'error.txt'})")
                continue
            outcome.ran.append(task.key)
            echo(f"{head}: done in {seconds:.1f}s")
    return outcome


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
