"""What happened to a SLURM task, in words, and what to do: for `ftlab status`.

    ending(JobState("TIMEOUT", exit_code="0:15"))   # "hit its time limit: raise time.train ..."
    stops_story(task)                                # "stopped 2 times: the time limit near x2 (requeued) ..."
    resume_point(task)                               # "checkpoint epoch_0 (step 15)" or None

SLURM's final states (sacct, or the job-completion log) and exit codes ("exit:signal") say how a
job ended; the task's own record (ftlab.runners.slurm.requeue) says how often it was stopped early
and why, and where a train task resumes.
"""

from __future__ import annotations

from collections import Counter

from ftlab.runners.slurm.requeue import TERM, WARNING, stops

RESUBMIT = "`ftlab submit --resubmit-failed` resubmits it"
ENDINGS = {
    "TIMEOUT": "hit its time limit without stopping in time (the warning comes checkpoint_warning seconds before it): "
               "raise time in the cluster profile's resources, or checkpoint_warning if a checkpoint takes longer",
    "PREEMPTED": "was preempted and not requeued (the partition's PreemptMode cancels instead)",
    "NODE_FAIL": "its node failed (SLURM reports NODE_FAIL)",
    "BOOT_FAIL": "its node failed to boot",
    "OUT_OF_MEMORY": "ran out of memory: raise mem in the cluster profile's resources",
    "DEADLINE": "reached its deadline",
}
SIGNALS = {"9": "SIGKILL", "15": "SIGTERM", "6": "SIGABRT", "11": "SIGSEGV", "10": "SIGUSR1"}


def ending(state: str, exit_code: str | None) -> str | None:
    """How a job ended, when SLURM says more than "failed": its state, else a signal in its exit code."""
    if state in ENDINGS:
        return ENDINGS[state]
    code, _, signal = (exit_code or "").partition(":")
    if signal and signal != "0":
        return f"was killed by signal {signal} ({SIGNALS.get(signal, 'see `kill -l`')})"
    if code in ("137", "143"):  # a shell reports a child killed by SIGKILL / SIGTERM as 128 + n
        return f"was killed ({'SIGKILL' if code == '137' else 'SIGTERM'}, exit code {code})"
    return None


def stops_story(task) -> str | None:
    """How often the task was stopped early and why, from its own record; None if never."""
    record = stops(task)
    if not record:
        return None
    words = {WARNING: "the time limit near", TERM: "SIGTERM (preempted, requeued or cancelled)"}
    counts = Counter(words.get(s["reason"], s["reason"]) for s in record)
    requeued = sum(bool(s.get("requeued")) for s in record)
    last = record[-1]
    where = f"; last at step {last['step']} ({last['checkpoint']} saved)" if last.get("step") is not None else ""
    told = ", ".join(f"{why} x{n}" for why, n in counts.items())
    return (f"stopped early {len(record)} time{'s' if len(record) != 1 else ''} ({told}); "
            f"requeued itself {requeued} time{'s' if requeued != 1 else ''}{where}")


def resume_point(task) -> str | None:
    """The checkpoint a train task resumes from when it runs again, or None."""
    from ftlab.contract.layout import CHECKPOINTS_DIR, complete_checkpoints

    if task.stage != "train":
        return None
    done = complete_checkpoints(task.out_dir / CHECKPOINTS_DIR, with_resume_only=True)
    return f"checkpoint {done[-1]['name']} (step {done[-1]['step']})" if done else None


def what_to_do(task) -> str:
    """The resubmit advice, with where a train task resumes."""
    point = resume_point(task)
    if point:
        return f"{RESUBMIT} and it resumes from {point}"
    return f"{RESUBMIT}" + (" (no complete checkpoint yet: it trains from the start)" if task.stage == "train" else
                            " (it reuses every result it cached)" if task.stage in ("eval", "curate") else "")
