"""Ask SLURM where submitted jobs stand, and explain each task's state for `ftlab status`.

    states = job_states(JobTable(registry).all())   # {(job_id, array_index): JobState}
    view = slurm_view(graph, registry)     # {task_key: TaskView(state, job, log, why)}

Live and recently finished jobs come from `squeue -t all` (the controller keeps finished jobs for
MinJobAge, 300 s by default). Older ones come from `sacct` where accounting is configured, else
from the job-completion log (JobCompType=jobcomp/filetxt), which is how the local test cluster
and many small clusters without slurmdbd record finished jobs.
"""

from __future__ import annotations

import functools
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ftlab.errors import SlurmError
from ftlab.runners.slurm.explain import ending, resume_point, stops_story, what_to_do
from ftlab.runners.slurm.jobs import JobTable
from ftlab.runners.slurm.requeue import stops
from ftlab.contract import REPORT_KEY, is_done, run_key, split_checkpoint_key

ACTIVE = {"PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "SUSPENDED", "REQUEUED", "RESIZING", "SUBMITTED"}


@dataclass(frozen=True)
class JobState:
    state: str  # SLURM's word: PENDING, RUNNING, COMPLETED, FAILED, CANCELLED, TIMEOUT... or UNKNOWN
    reason: str | None = None  # squeue's reason (Dependency, DependencyNeverSatisfied, NonZeroExitCode...)
    exit_code: str | None = None

    @property
    def active(self) -> bool:
        return self.state in ACTIVE


def slurm_command(argv: list[str], *, cwd: Path | None = None, check: bool = True) -> subprocess.CompletedProcess:
    """Run a SLURM client command; a missing command or cluster becomes one SlurmError."""
    try:
        proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=60)
    except FileNotFoundError:
        raise SlurmError(f"`{argv[0]}` not found: SLURM's client commands are not installed here "
                         "(for a local test cluster: scripts/slurm-local.sh start)") from None
    except subprocess.TimeoutExpired:
        raise SlurmError(f"`{' '.join(argv[:2])}` did not answer in 60 s: is slurmctld up?") from None
    if check and proc.returncode != 0:
        message = clean_message(proc.stderr or proc.stdout)
        if "configuration source" in message:
            message += " (set SLURM_CONF to the cluster's slurm.conf; locally: eval \"$(scripts/slurm-local.sh env)\")"
        raise SlurmError(f"`{argv[0]}` failed: {message}")
    return proc


def clean_message(text: str) -> str:
    lines = [re.sub(r"^(sbatch|squeue|scancel|sacct|scontrol): error: ", "", line).strip() for line in text.strip().splitlines()]
    return "; ".join(dict.fromkeys(line for line in lines if line)) or "no message"


def job_states(jobs: list[dict]) -> dict[tuple[str, int], JobState]:
    """SLURM's current word on each (job_id, array_index) in `jobs` (registry rows)."""
    wanted = {(j["job_id"], j["array_index"]) for j in jobs}
    if not wanted:
        return {}
    found = _squeue()
    missing = {w for w in wanted if w not in found}
    # squeue keeps finished jobs for MinJobAge but not their exit codes, which say how they ended
    # (a signal: "0:9"); the accounting or completion log has them
    ended = {k for k in wanted if k in found and not found[k].active and found[k].state != "COMPLETED"}
    if missing or ended:
        finished = _finished({job_id for job_id, _ in missing | ended})
        for key in ended & finished.keys():
            finished[key] = JobState(found[key].state, found[key].reason, finished[key].exit_code)
        found.update(finished)
    out = {}
    for job_id, index in wanted:
        # A pending array cancelled as a whole is recorded once, under the array's own id.
        out[(job_id, index)] = found.get((job_id, index)) or found.get((job_id, -1)) or JobState("UNKNOWN", "not known to squeue or the accounting/completion log")
    return out


def _squeue() -> dict[tuple[str, int], JobState]:
    proc = slurm_command(["squeue", "--me", "-h", "-r", "-t", "all", "-o", "%F|%K|%T|%r"])
    found = {}
    for line in proc.stdout.splitlines():
        parts = line.strip().split("|")
        if len(parts) != 4:
            continue
        array_id, task, state, reason = parts
        index = int(task) if task.isdigit() else -1
        found[(array_id, index)] = JobState(state, None if reason == "None" else reason)
    return found


@functools.lru_cache(maxsize=1)
def _config() -> dict[str, str]:
    proc = slurm_command(["scontrol", "show", "config"], check=False)
    return dict(re.findall(r"^(\w+)\s*=\s*(.*?)\s*$", proc.stdout, flags=re.M))


def cluster_config() -> dict[str, str]:
    """`scontrol show config` as {key: value} (read once per process)."""
    return _config()


def _finished(job_ids: set[str]) -> dict[tuple[str, int], JobState]:
    config = _config()
    if config.get("AccountingStorageType", "accounting_storage/none") != "accounting_storage/none":
        return _sacct(job_ids)
    if config.get("JobCompType") == "jobcomp/filetxt" and config.get("JobCompLoc"):
        return _jobcomp(Path(config["JobCompLoc"]), job_ids)
    return {}


def _sacct(job_ids: set[str]) -> dict[tuple[str, int], JobState]:
    proc = slurm_command(["sacct", "-n", "-P", "-X", "-j", ",".join(sorted(job_ids)), "-o", "JobID,State,ExitCode"], check=False)
    found = {}
    for line in proc.stdout.splitlines():
        job, state, exit_code = (line.split("|") + ["", ""])[:3]
        array_id, _, task = job.partition("_")
        found[(array_id, int(task) if task.isdigit() else -1)] = JobState(state.split()[0] if state else "UNKNOWN", None, exit_code)
    return found


def _jobcomp(path: Path, job_ids: set[str]) -> dict[tuple[str, int], JobState]:
    """Lines like `JobId=6 ... JobState=FAILED ... ArrayJobId=1 ArrayTaskId=1 ... ExitCode=1:0`."""
    found = {}
    try:
        text = path.read_text(errors="replace") if os.access(path, os.R_OK) else ""
    except OSError:
        return found
    for line in text.splitlines():
        fields = dict(re.findall(r"(\w+)=(\S*)", line))
        array_id, task = fields.get("ArrayJobId"), fields.get("ArrayTaskId", "")
        key = (array_id, int(task)) if array_id and task.isdigit() else (fields.get("JobId"), -1)
        if key[0] in job_ids:
            found[key] = JobState(fields.get("JobState", "UNKNOWN"), None, fields.get("ExitCode"))
    return found


@dataclass
class TaskView:
    state: str  # queued | running | failed | cancelled | done | unknown
    job: str  # "12_3" or "12"
    log: Path | None
    why: str | None = None
    slurm: JobState | None = None  # SLURM's own word: state, reason, exit code


def slurm_view(graph, registry) -> dict[str, TaskView]:
    """Each submitted task's state from SLURM, with why a task that will not run did not run."""
    table = JobTable(registry)
    latest = table.latest()
    if not latest:
        return {}
    states = job_states(list(latest.values()))
    cancelled_by_us = {(j["job_id"], j["array_index"]) for j in latest.values() if j["reason"] == "ftlab cancel"}
    table.update_states({k: (s.state, s.reason) for k, s in states.items() if s.state != "UNKNOWN" and k not in cancelled_by_us})
    logs_dir = graph.plan.output_dir / "slurm"
    views: dict[str, TaskView] = {}
    by_key = {t.key: t for t in graph.tasks}
    checkpoint_views: dict[str, TaskView] = {}
    for key, job in latest.items():
        owner, checkpoint = split_checkpoint_key(key)
        if owner not in by_key:
            continue  # a task of an older version of the spec (or the release job)
        s = states[(job["job_id"], job["array_index"])]
        ref = job["job_id"] if job["array_index"] < 0 else f"{job['job_id']}_{job['array_index']}"
        log = logs_dir / job["log"] if job["log"] else None
        if checkpoint is None:
            views[key] = TaskView(_word(s, is_done(by_key[key]), job), ref, log, slurm=s)
        else:  # one checkpoint of eval/<run> (checkpoints.py): done when its job completed
            view = TaskView(_word(s, s.state == "COMPLETED" or is_done(by_key[owner]), job), ref, log)
            view.why = _checkpoint_why(by_key[owner], checkpoint, view, s)
            checkpoint_views[key] = view
    for key, view in views.items():
        view.why = _why(by_key[key], view, views, registry, latest.get(key))
        parts = [v for k, v in checkpoint_views.items() if k.startswith(key + "@")]
        if view.state == "queued" and parts and any(v.state in ("queued", "running") for v in parts):
            done = sum(v.state == "done" for v in parts)
            view.why = (view.why + "; " if view.why else "") + f"waiting for its checkpoint evals ({done} of {len(parts)} done)"
    return views | checkpoint_views


def _checkpoint_why(task, checkpoint: str, view: TaskView, s: JobState) -> str | None:
    train = task.deps[0]
    if view.state == "queued" and s.reason == "JobHeldUser":
        return f"waiting for checkpoint {checkpoint} (held until {train} writes it)"
    if view.state == "failed":
        return f"{_last_error(view.log) or 'its job failed'} (job {view.job}, log {view.log}); {task.key} scores it again"
    if view.state == "cancelled":
        return "cancelled (scancel or `ftlab cancel`)"
    return None


def _last_error(log: Path | None) -> str | None:
    try:
        lines = [line for line in log.read_text(errors="replace").splitlines() if line.startswith("error: ")] if log else []
    except OSError:
        return None
    return lines[-1][len("error: "):] if lines else None


def _word(s: JobState, done: bool, job: dict) -> str:
    if done:
        return "done"
    if s.state == "PENDING":
        return "queued"
    if s.state in ACTIVE:
        return "running"
    if s.state == "CANCELLED" or job.get("reason") == "ftlab cancel":
        return "cancelled"
    if s.state == "UNKNOWN":
        return "unknown"
    return "failed"  # FAILED, TIMEOUT, OUT_OF_MEMORY, NODE_FAIL, or COMPLETED without a done marker


def _why(task, view: TaskView, views: dict[str, TaskView], registry, job: dict | None) -> str | None:
    """Why the task is where it is, and what to do; with the story of its early stops, if any."""
    story = stops_story(task)
    told = _state_why(task, view, views, registry, job)
    return "; ".join(w for w in (told, story) if w) or None


def _state_why(task, view: TaskView, views: dict[str, TaskView], registry, job: dict | None) -> str | None:
    s = view.slurm or JobState("UNKNOWN")
    if view.state == "done":
        return None
    if view.state == "running":
        return f"resumed from {resume_point(task)}" if stops(task) and resume_point(task) else None
    if view.state == "queued":
        if stops(task):  # requeued after it stopped early (or resubmitted)
            delay = " (held for SLURM's requeue delay)" if s.reason == "BeginTime" else ""
            return f"requeued{delay}: it resumes from {resume_point(task) or 'its cached results'} when it starts"
        blockers = [d for d in task.deps if d in views and views[d].state in ("queued", "running")]
        return f"waiting for {', '.join(blockers)}" if blockers else None
    if view.state == "cancelled":
        if job and job.get("reason") == "ftlab cancel":
            return "cancelled by `ftlab cancel`"
        failed = [d for d in task.deps if d in views and views[d].state in ("failed", "cancelled")]
        if failed:
            d = failed[0]
            return f"cancelled by SLURM: its dependency {d} {views[d].state} (job {views[d].job}, log {views[d].log})"
        return f"cancelled (scancel, a kill, or a dependency that could not be met); {what_to_do(task)}"
    if view.state == "failed":
        record = registry.stage(task.key)
        error = record["error"].splitlines()[0] if record and record.get("error") and record.get("status") == "failed" else None
        how = ending(s.state, s.exit_code)
        if how is None:
            return f"{error or 'the job failed before the stage started'} (job {view.job}, log {view.log})"
        return f"{how} (job {view.job}, log {view.log}); {what_to_do(task)}"
    return "SLURM no longer knows this job and the stage has no done marker; resubmit with --resubmit-failed"


def merge_status(graph, registry, rows: list[dict]) -> list[str]:
    """Put SLURM's state of submitted tasks into `ftlab status` rows; return explanation lines."""
    if not JobTable(registry).latest():
        return []
    try:
        views = slurm_view(graph, registry)
    except SlurmError as err:  # e.g. results copied off the cluster: the registry alone still answers
        return [f"SLURM not reachable, showing the registry only: {err}"]
    for row in rows:
        row["slurm"] = {}
        for stage in ("train", "eval"):
            view = views.get(run_key(stage, row["name"]))
            if view is None:
                continue
            row["slurm"][stage] = {"state": view.state, "job": view.job, "log": str(view.log) if view.log else None, "why": view.why}
            if row["stages"].get(stage) != "done":
                row["stages"][stage] = view.state
        prefix = run_key("eval", row["name"]) + "@"
        checkpoints = {k[len(prefix):]: v for k, v in views.items() if k.startswith(prefix)}
        if checkpoints:  # each checkpoint's eval in its own job
            row["slurm"]["checkpoints"] = {name: {"state": v.state, "job": v.job, "why": v.why} for name, v in checkpoints.items()}
    notes = [f"{key}: {view.state}: {view.why}" for key, view in views.items() if view.why]
    report = views.get(REPORT_KEY)
    if report and not report.why:
        notes.append(f"report: {report.state} (job {report.job})")
    return notes
