"""Submit an experiment to SLURM (idempotently), resubmit what failed, cancel.

    result = submit(graph, registry, profile)                     # sbatch prepare, train, eval, report
    result = submit(graph, registry, profile, dry_run=True)       # write scripts, submit nothing
    result = submit(graph, registry, profile, resubmit_failed=True)
    cancel(graph, registry)

A task is submitted when it is not done, not already queued or running in SLURM, and never
submitted before (or its last job failed and resubmit_failed is set), and every task it depends
on is done, queued, or submitted now. Job ids go into the runner's own table (jobs.py). If sbatch refuses
a job, the jobs this call already submitted are cancelled, and the error names the request.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path

from ftlab import atomic
from ftlab.errors import SlurmError
from ftlab.graph import Graph
from ftlab.runners.slurm.jobs import JobTable
from ftlab.runners.slurm.arrays import ArrayLimits, fit_arrays
from ftlab.runners.slurm.follow import clean_message, cluster_config, job_states, slurm_command
from ftlab.runners.slurm.profile import ClusterProfile
from ftlab.runners.slurm.render import Context, Job, build_jobs, default_ftlab, dependency_option, render_script
from ftlab.contract import REPORT_KEY, is_done, missing_deps


@dataclass
class Submitted:
    job: Job
    script: Path
    job_id: str | None  # None on a dry run
    command: list[str]


@dataclass
class SubmitResult:
    jobs: list[Submitted] = field(default_factory=list)
    done: list[str] = field(default_factory=list)
    in_flight: dict[str, str] = field(default_factory=dict)
    failed_not_resubmitted: list[str] = field(default_factory=list)
    blocked: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # e.g. why a run's checkpoints share one eval task


def slurm_dir(graph: Graph) -> Path:
    return graph.plan.output_dir / "slurm"


def select(graph: Graph, registry, *, resubmit_failed: bool) -> tuple[set[str], SubmitResult]:
    """Which task keys to submit now; the result says why the others are not."""
    result = SubmitResult()
    latest = JobTable(registry).latest()
    states = job_states(list(latest.values())) if latest else {}
    submit: set[str] = set()
    for task in graph.tasks:
        if task.key == REPORT_KEY:
            continue
        job = latest.get(task.key)
        state = states.get((job["job_id"], job["array_index"])) if job else None
        if is_done(task):
            result.done.append(task.key)
        elif state is not None and state.active:
            result.in_flight[task.key] = job["job_id"] if job["array_index"] < 0 else f"{job['job_id']}_{job['array_index']}"
        elif job is not None and not resubmit_failed:
            result.failed_not_resubmitted.append(task.key)
        else:
            missing = missing_deps(task, graph, ready=submit | set(result.in_flight))
            if missing:
                result.blocked[task.key] = f"needs {', '.join(missing)}"
            else:
                submit.add(task.key)
    report = graph.task(REPORT_KEY)
    report_job = latest.get(REPORT_KEY)
    report_active = report_job is not None and states[(report_job["job_id"], report_job["array_index"])].active
    if report_active:
        result.in_flight[REPORT_KEY] = report_job["job_id"]
    elif any(graph.task(k).stage == "eval" for k in submit):
        submit.add(REPORT_KEY)  # new evals: the table is rebuilt after them
    elif is_done(report):
        result.done.append(REPORT_KEY)
    elif not missing_deps(report, graph) and (report_job is None or resubmit_failed):
        submit.add(REPORT_KEY)
    return submit, result


def submit(graph: Graph, registry, profile: ClusterProfile, *, dry_run: bool = False, resubmit_failed: bool = False) -> SubmitResult:
    submit_keys, result = select(graph, registry, resubmit_failed=resubmit_failed)
    jobs = fit_arrays(build_jobs(graph, submit_keys, result.in_flight, profile, result.notes), array_limits(profile))
    root = slurm_dir(graph)
    (root / "logs").mkdir(parents=True, exist_ok=True)  # SLURM does not create the log directory
    ctx = Context(graph.plan.spec_path.resolve(), graph.plan.experiment.name, profile, default_ftlab(profile))
    ids: dict[str, str] = {}
    try:
        for job in jobs:
            script = root / "scripts" / f"{job.group}.sbatch"
            atomic.write_text(script, render_script(job, ctx))
            placeholders = {**{g: f"<{g}>" for g in (j.group for j in jobs)}, **ids}
            dependency = dependency_option(job, ids if not dry_run else placeholders)
            command = ["sbatch", "--parsable"] + ([dependency] if dependency else []) + [str(script.relative_to(root))]
            command += [placeholders[g] if dry_run else ids[g] for g in job.arguments]
            job_id = None if dry_run else _sbatch(command, root, job)
            if job_id:
                ids[job.group] = job_id
                JobTable(registry).record([
                    {"job_id": job_id, "array_index": i if job.array else -1, "task_key": key, "grp": job.group, "log": job.log_for(job_id, i)}
                    for i, key in enumerate(job.keys)])
            result.jobs.append(Submitted(job, script, job_id, command))
    except SlurmError:
        if ids:  # all or nothing: a half-submitted experiment would wait on jobs that never come
            slurm_command(["scancel", *ids.values()], check=False)
            JobTable(registry).forget(list(ids.values()))
        raise
    return result


def array_limits(profile: ClusterProfile) -> ArrayLimits:
    """The cluster's MaxArraySize and MaxJobCount (`scontrol show config`; the profile's
    limits.max_array_size wins), and the profile's throttles. Without SLURM here (a dry run on a
    laptop) only what the profile says."""
    try:
        config = cluster_config()
    except SlurmError:
        config = {}

    def number(key: str) -> int | None:
        value = str(config.get(key, "")).split()[0] if config.get(key) else ""
        return int(value) if value.isdigit() and int(value) > 0 else None

    limits = profile.limits
    return ArrayLimits(limits.max_array_size or number("MaxArraySize"), number("MaxJobCount"),
                       limits.gpus_in_flight, limits.tasks_in_flight)


def _sbatch(command: list[str], cwd: Path, job: Job) -> str:
    proc = slurm_command(command, cwd=cwd, check=False)
    if proc.returncode != 0:
        request = " ".join(job.resources.sbatch_options())
        raise SlurmError(
            f"sbatch refused the {job.group} job ({len(job.keys)} task{'s' if len(job.keys) != 1 else ''}): {clean_message(proc.stderr or proc.stdout)}\n"
            f"  request: {request}\n  script:  {cwd / command[-1]}\n"
            f"  change the request in the cluster profile (resources/limits/partition) and submit again; nothing was left queued")
    return proc.stdout.strip().split(";")[0]  # --parsable prints "id" or "id;cluster"


def cancel(graph: Graph, registry) -> list[str]:
    """scancel every queued or running job of this experiment; returns the job ids cancelled."""
    table = JobTable(registry)
    latest = table.all()
    states = job_states(latest)
    active = sorted({j["job_id"] for j in latest if states[(j["job_id"], j["array_index"])].active}, key=int)
    if active:
        slurm_command(["scancel", *active])
        table.update_states({(j["job_id"], j["array_index"]): ("CANCELLED", "ftlab cancel")
                                    for j in latest if j["job_id"] in active and states[(j["job_id"], j["array_index"])].active})
    return active


def describe(result: SubmitResult, *, dry_run: bool) -> list[str]:
    """Lines for the user: each job with its tasks, dependency and script; then what was left out."""
    lines = []
    for s in result.jobs:
        tasks = f"{len(s.job.keys)} task{'s' if len(s.job.keys) != 1 else ''}"
        head = f"{s.job.group:<12} {tasks:<9} " + ("would run: " if dry_run else f"job {s.job_id}: ")
        held = "  (held: each task released as its checkpoint is written)" if s.job.hold else ""
        lines.append(head + " ".join(shlex.quote(c) for c in s.command) + held)
    if not result.jobs:
        lines.append("nothing to submit")
    if result.done:
        lines.append(f"done already: {len(result.done)} tasks")
    if result.in_flight:
        lines.append(f"queued or running already (not submitted again): {', '.join(sorted(result.in_flight))}")
    if result.failed_not_resubmitted:
        lines.append(f"failed before, not resubmitted (use --resubmit-failed): {', '.join(result.failed_not_resubmitted)}")
    for key, why in result.blocked.items():
        lines.append(f"not submitted: {key} {why}")
    lines += result.notes
    return lines
