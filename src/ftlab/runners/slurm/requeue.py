"""A task in a SLURM job that is stopped early (time limit near, preemption, `scontrol requeue`)
leaves a complete resume point and a record of why, and comes back.

    with requeueable(task) as stop_requested:      # in `ftlab stage run`, inside a SLURM job
        execute(task, context(..., stop_requested=stop_requested))
    stops(task)                                    # [{reason, step, checkpoint, job, at, requeued}]

How it runs (render.py asks for it: `--signal=B:USR1@<profile.checkpoint_warning>`, `--requeue`,
`--open-mode=append` on the train, eval and curate arrays):
- SIGUSR1, SLURM's warning before the time limit: a train task stops after its current step with a
  complete checkpoint (ftlab.train.interrupt), records why, and requeues itself (`scontrol requeue
  $SLURM_JOB_ID`); SLURM starts it again (after the requeue delay), and it resumes from that
  checkpoint exactly as the local runner resumes. An eval or curate task has nothing to save (its
  results are cached per checkpoint, evaluator and split as they are scored): it requeues at once.
- SIGTERM (preemption with a grace time, `scontrol requeue`, scancel, and the time limit itself): a
  train task stops the same way but does not requeue itself: SLURM requeues a preempted or
  requeued job, and a cancelled one is meant to stop. With KillWait (30 s by default) or the
  partition's GraceTime too short for a checkpoint, it resumes from its previous one.
- A train task on several GPUs (accelerate launch) requeues at once on the warning, like an eval,
  and resumes from its last complete checkpoint: its ranks do not see the signal.
- SIGKILL, node failure: nothing runs; `ftlab submit --resubmit-failed` resubmits it and it resumes
  from its last complete checkpoint (a torn one is removed first).
A train task whose warning comes again before it completes a single step stops requeueing itself
(the job would come back forever): it fails, saying to raise the time limit or lower the warning.

The record, `<task marker dir>/_stops.json`, is what `ftlab status` reads to say what happened.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from ftlab import atomic
from ftlab.errors import Interrupted

STOPS = "_stops.json"
WARNING = "the time limit is near (SLURM's warning signal, SIGUSR1)"
TERM = "SIGTERM (preemption, scontrol requeue, scancel or the time limit)"


def stops(task) -> list[dict]:
    """What stopped the task early so far, oldest first."""
    path = Path(task.marker_dir) / STOPS
    try:
        return list(atomic.read_json(path)) if path.is_file() else []
    except (OSError, ValueError):
        return []


def record_stop(task, reason: str, *, step: int | None = None, checkpoint: str | None = None, requeued: bool = False) -> None:
    entry = {"reason": reason, "step": step, "checkpoint": checkpoint, "requeued": requeued,
             "job": _job_ref(), "restart": int(os.environ.get("SLURM_RESTART_COUNT", "0") or 0),
             "at": time.strftime("%Y-%m-%dT%H:%M:%S")}
    Path(task.marker_dir).mkdir(parents=True, exist_ok=True)
    atomic.write_json(Path(task.marker_dir) / STOPS, stops(task) + [entry])


def _job_ref() -> str | None:
    array, index = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
    return f"{array}_{index}" if array and index else os.environ.get("SLURM_JOB_ID")


def requeue_self() -> bool:
    """`scontrol requeue` this job (SLURM then ends this attempt and starts it again later)."""
    from ftlab.runners.slurm.follow import slurm_command

    job = os.environ.get("SLURM_JOB_ID")
    if not job:
        return False
    try:
        proc = slurm_command(["scontrol", "requeue", job], check=False)
    except Exception as err:  # the record says it stopped; --resubmit-failed brings it back
        print(f"ftlab: could not requeue job {job}: {err}", file=sys.stderr, flush=True)
        return False
    if proc.returncode != 0:
        print(f"ftlab: scontrol requeue {job}: {(proc.stderr or proc.stdout).strip()}", file=sys.stderr, flush=True)
        return False
    print(f"ftlab: requeued job {job}", flush=True)
    return True


_early: dict[str, str | None] = {"reason": None}


def catch_early() -> None:
    """Call first thing in a SLURM task: a warning that comes while the spec and graph load (seconds;
    more on a loaded node) is remembered for requeueable instead of SIGUSR1's default, death. Seen in
    CI: a 1-minute train job warned during that load ended without a line of output or a record."""
    def remember(signum, frame) -> None:
        _early["reason"] = _early["reason"] or WARNING

    signal.signal(signal.SIGUSR1, remember)


@contextmanager
def requeueable(task):
    """Signal handlers for the length of one task; yields the stage context's `stop_requested`."""
    asked: dict[str, str | None] = {"reason": None}
    # On several GPUs the ranks (accelerate launch) never see the batch shell's signal and must agree
    # on the step to stop at: such a task requeues at once, like an eval, and resumes from its last
    # complete checkpoint.
    trains = task.stage == "train" and task.inputs.train.gpus <= 1

    def on_warning(signum, frame) -> None:
        if trains:
            asked["reason"] = asked["reason"] or WARNING  # the step loop stops, saves and raises Interrupted
            return
        record_stop(task, WARNING, requeued=True)  # its finished pieces are cached: nothing to save
        if requeue_self():
            signal.signal(signal.SIGUSR1, signal.SIG_IGN)  # SLURM's SIGTERM ends this attempt

    def on_term(signum, frame) -> None:
        asked["reason"] = asked["reason"] or TERM

    previous = {signal.SIGUSR1: signal.signal(signal.SIGUSR1, on_warning)}
    if trains:  # others die on SIGTERM as before: their cache is written piece by piece, atomically
        previous[signal.SIGTERM] = signal.signal(signal.SIGTERM, on_term)
    if _early["reason"]:  # warned while loading: handled as if it came now
        _early["reason"] = None
        on_warning(signal.SIGUSR1, None)
    try:
        yield (lambda: asked["reason"])
    except Interrupted as err:
        warned = err.reason == WARNING
        again = [s for s in stops(task) if s.get("step") == err.step and s.get("reason") == WARNING]
        if warned and again:
            record_stop(task, err.reason, step=err.step, checkpoint=err.checkpoint)
            raise Interrupted(f"{err} -- but it stopped at step {err.step} before: the warning comes before a step "
                              "is done, so it is not requeued again; raise the train time limit in the cluster "
                              "profile (resources) or lower checkpoint_warning, then ftlab submit --resubmit-failed",
                              reason=err.reason, checkpoint=err.checkpoint, step=err.step) from None
        record_stop(task, err.reason, step=err.step, checkpoint=err.checkpoint, requeued=warned)
        if warned:
            requeue_self()
        raise
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
