"""Group an experiment's stage tasks into SLURM jobs and render each as a readable sbatch script.

    jobs = build_jobs(graph, submit_keys, in_flight, profile)   # prepare, eval-ckpt, train, release, eval, report
    text = render_script(job, context)

Groups (one sbatch each):
- prepare: one job that runs the data/* and model/* tasks in order (tiny builds, data prep).
- eval-ckpt: an array over (run, checkpoint) of the runs whose checkpoints are known at submit time
           (ftlab.runners.slurm.checkpoints says which and why), keys eval/<run>@<checkpoint>,
           submitted `--hold` before the train array; each train task releases its run's tasks as
           its checkpoints are written, so a checkpoint is scored while the run still trains.
- train:   an array over the runs that train; task i runs TASKS[i].
- release: one CPU job, `afterany` on the train array: releases whatever of eval-ckpt is still held
           (a train task cancelled before it started cannot), so nothing waits on a held job forever.
- eval:    an array whose task i evaluates the run of train task i, `--dependency=aftercorr:<train>`,
           so it starts when that one train task succeeded (and SLURM cancels it if it failed:
           the cluster needs DependencyParameters=kill_invalid_depend, see scripts/slurm-local.sh);
           with eval-ckpt also `afterany:<eval-ckpt>`: its scores are cached, it selects and summarises.
           A run whose checkpoints are not known at submit time scores them all here, as before.
- eval-ready: an array over evals whose upstream is not in this submission (the untuned control,
           runs trained earlier): `afterok` on prepare and on any upstream job still in flight.
- report:  one job, `afterany` on every eval job (eval-ckpt included): it runs even when some evals
           failed and reports what exists.
Every job calls `ftlab stage run SPEC KEY` (report: `ftlab report SPEC`), the same stage code as
the local runner. Every value rendered into a script is shell-quoted with shlex.quote.
Train, eval and curate arrays are requeueable and warned before their time limit
(`--signal=B:USR1@<profile.checkpoint_warning> --requeue --open-mode=append`; requeue.py says what
the task does then). arrays.py splits arrays beyond the cluster's MaxArraySize after build_jobs.
"""

from __future__ import annotations

import os
import re
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path

from ftlab.errors import SlurmError
from ftlab.graph import Graph
from ftlab.runners.slurm.profile import ClusterProfile
from ftlab.runners.slurm.checkpoints import plan_parts
from ftlab.runners.slurm.resources import Resources, choose, choose_for_run, model_size, policy_table
from ftlab.contract import checkpoint_key, eval_key


@dataclass
class Dependency:
    kind: str  # afterok | aftercorr | afterany
    group: str | None = None  # a job of this submission, by group name
    job_refs: tuple[str, ...] = ()  # jobs already in SLURM ("123" or "123_4")


@dataclass
class Job:
    group: str
    keys: list[str]  # task keys; for an array, index i runs keys[i]
    array: bool
    resources: Resources
    depends: list[Dependency] = field(default_factory=list)
    hold: bool = False  # submitted held: something releases it (its array elements one by one)
    arguments: tuple[str, ...] = ()  # the script's arguments: the job ids of these groups of the submission
    releases: str | None = None  # a train array: the held checkpoint eval array its tasks release
    throttle: int | None = None  # at most this many of its array tasks at once (--array=...%N; arrays.py)

    @property
    def log_pattern(self) -> str:
        return f"logs/{self.group}_%A_%a.out" if self.array else f"logs/{self.group}_%j.out"

    def log_for(self, job_id: str, index: int) -> str:
        return f"logs/{self.group}_{job_id}_{index}.out" if self.array else f"logs/{self.group}_{job_id}.out"


@dataclass
class Context:
    spec: Path  # absolute
    experiment: str
    profile: ClusterProfile
    ftlab: str  # the ftlab executable jobs call


def default_ftlab(profile: ClusterProfile) -> str:
    """The profile's ftlab; with a venv/conda to activate, plain `ftlab`; else the one running now."""
    if profile.ftlab:
        return profile.ftlab
    if profile.venv or profile.conda:
        return "ftlab"
    here = Path(sys.executable).parent / "ftlab"  # same host, same install: jobs run the submitting code
    return str(here) if here.is_file() else "ftlab"


def slurm_group(task) -> str:
    """The stage table's SLURM group of a task (ftlab.stages). The curate group is an array on the
    model's GPUs for curation that asks a model (difficulty); one that asks none (quality, length,
    random) is CPU work of seconds, done in prepare."""
    group = task.definition.slurm_group
    return "prepare" if group == "curate" and task.inputs.model_dir is None else group


def build_jobs(graph: Graph, submit: set[str], in_flight: dict[str, str], profile: ClusterProfile,
               notes: list[str] | None = None) -> list[Job]:
    """Jobs for the task keys in `submit`; `in_flight` maps keys already queued to their job refs.
    `notes` (when given) collects why a run's checkpoints are not evaluated in jobs of their own."""
    notes = notes if notes is not None else []
    unplanned: dict[str, list[str]] = {}  # why -> eval keys whose checkpoints are not known at submit time
    table = policy_table(profile)
    by_key = {t.key: t for t in graph.tasks}
    chosen = [t for t in graph.tasks if t.key in submit]
    jobs: list[Job] = []
    sizes: dict[int, object] = {}

    def res(task, stage: str) -> Resources:
        exp = task.run.config if task.run else graph.plan.experiment
        if id(exp) not in sizes:
            sizes[id(exp)] = model_size(graph.plan, exp)
        return choose_for_run(table, sizes[id(exp)], stage=stage, exp=exp, limits=profile.limits)

    def upstream(task) -> Dependency | None:
        """afterok on the prepare job of this submission and on deps still queued from before."""
        refs = tuple(sorted({in_flight[d] for d in task.deps if d in in_flight}))
        return Dependency("afterok", job_refs=refs) if refs else None

    group_of = slurm_group

    curated = {t.key for t in chosen if group_of(t) == "curate"}
    # CPU work of minutes (data, model, baselines) goes in prepare, unless it reads a set curated now.
    late_baselines = [t for t in chosen if group_of(t) == "prepare" and curated & set(t.deps)]
    prepare = [t for t in chosen if group_of(t) == "prepare" and t not in late_baselines]
    if prepare:
        job = Job("prepare", [t.key for t in prepare], False, choose(table, None, stage="cpu", method="", limits=profile.limits))
        refs = tuple(sorted({in_flight[d] for t in prepare for d in t.deps if d in in_flight}))
        if refs:
            job.depends.append(Dependency("afterok", job_refs=refs))
        jobs.append(job)
    prepare_dep = [Dependency("afterok", group="prepare")] if prepare else []
    # Curation that asks a model (difficulty) needs that model's GPU, like an eval: its own array, before train.
    curates = [t for t in chosen if group_of(t) == "curate"]
    if curates:
        job = Job("curate", [t.key for t in curates], True, res(curates[0], "curate"), list(prepare_dep))
        job.depends += [d for d in (upstream(t) for t in curates) if d]
        jobs.append(job)
        prepare_dep = prepare_dep + [Dependency("afterok", group="curate")]
    if late_baselines:
        job = Job("baselines", [t.key for t in late_baselines], False,
                  choose(table, None, stage="cpu", method="", limits=profile.limits), list(prepare_dep))
        job.depends += [d for d in (upstream(t) for t in late_baselines) if d]
        jobs.append(job)

    # Train arrays, split where resources differ (an array has one request); each gets a paired eval array.
    trains = [t for t in chosen if group_of(t) == "train"]
    paired: dict[str, list] = {}
    for t in trains:
        evaluation = by_key[eval_key(t.run.name)]
        signature = (tuple(res(t, "train").sbatch_options()), tuple(res(evaluation, "eval").sbatch_options()) if evaluation.key in submit else ())
        paired.setdefault(repr(signature), []).append(t)
    for n, group in enumerate(paired.values()):
        suffix = "" if n == 0 else f"-{n + 1}"
        job = Job(f"train{suffix}", [t.key for t in group], True, res(group[0], "train"), list(prepare_dep))
        job.depends += [d for d in (upstream(t) for t in group) if d]
        evals = [by_key[eval_key(t.run.name)] for t in group]
        evals = [e for e in evals if e.key in submit]
        if len(evals) != len(group):
            jobs.append(job)
            continue
        # One held array task per (run, checkpoint), released by the train task as each checkpoint
        # lands (ftlab.runners.slurm.checkpoints); submitted first, so the train tasks find its job id.
        ckpt_keys, bases = [], set()
        for t in group:
            names, why = plan_parts(graph, t, bases)
            if names is None:
                unplanned.setdefault(why, []).append(eval_key(t.run.name))
            else:
                ckpt_keys += [checkpoint_key(t.run.name, name) for name in names]
        if ckpt_keys:
            jobs.append(Job(f"eval-ckpt{suffix}", ckpt_keys, True, res(evals[0], "eval"), hold=True))
            job.releases = f"eval-ckpt{suffix}"
        jobs.append(job)
        selection = Job(f"eval{suffix}", [e.key for e in evals], True, res(evals[0], "eval"), [Dependency("aftercorr", group=job.group)])
        if ckpt_keys:
            jobs.append(Job(f"release{suffix}", [f"release/{job.group}"], False, _release_resources(),
                            [Dependency("afterany", group=job.group)], arguments=(f"eval-ckpt{suffix}",)))
            selection.depends.append(Dependency("afterany", group=f"eval-ckpt{suffix}"))
        jobs.append(selection)  # aftercorr pairs index i with index i: memberships match
    for why, keys in unplanned.items():
        shown = ", ".join(keys[:3]) + (f" and {len(keys) - 3} more" if len(keys) > 3 else "")
        notes.append(f"{shown}: one task scores every checkpoint after training: {why}")
    in_pairs = {k for j in jobs if j.group.startswith("eval") for k in j.keys}

    ready = [t for t in chosen if group_of(t) == "eval" and t.key not in in_pairs]
    by_res: dict[str, list] = {}
    for t in ready:
        by_res.setdefault(repr(res(t, "eval").sbatch_options()), []).append(t)
    for n, group in enumerate(by_res.values()):
        deps = list(prepare_dep)
        for t in group:
            if any(d in submit and group_of(by_key[d]) == "train" for d in t.deps):
                raise SlurmError(f"{t.key} would need its train task in another array; submit both together")
        refs = tuple(sorted({in_flight[d] for t in group for d in t.deps if d in in_flight}))
        if refs:
            deps.append(Dependency("afterok", job_refs=refs))
        jobs.append(Job("eval-ready" if n == 0 else f"eval-ready-{n + 1}", [t.key for t in group], True, res(group[0], "eval"), deps))

    reports = [t for t in chosen if group_of(t) == "report"]
    if reports:
        eval_groups = [j.group for j in jobs if j.group.startswith("eval")]
        refs = tuple(sorted({in_flight[k] for k in in_flight if k.startswith("eval/")}))
        deps = [Dependency("afterany", group=g) for g in eval_groups + (["baselines"] if late_baselines else [])]
        if refs:
            deps.append(Dependency("afterany", job_refs=refs))
        if not eval_groups and not refs:
            deps += prepare_dep
        jobs.append(Job("report", [t.key for t in reports], False, choose(table, None, stage="cpu", method="", limits=profile.limits), deps))
    return jobs


def _release_resources() -> Resources:
    return Resources(cpus=1, mem="256M", gpus=0, time="0:05:00", why=["one scontrol call, no model weights"])


def dependency_option(job: Job, job_ids: dict[str, str]) -> str | None:
    """--dependency=... for `job`, given the ids of this submission's jobs by group (or placeholders)."""
    parts = []
    for dep in job.depends:
        refs = ([job_ids[dep.group]] if dep.group else []) + list(dep.job_refs)
        if refs:
            parts.append(f"{dep.kind}:" + ":".join(refs))
    return f"--dependency={','.join(parts)}" if parts else None


def render_script(job: Job, ctx: Context) -> str:
    q = shlex.quote
    profile = ctx.profile
    stage_word = {"prepare": "data and model tasks", "report": "report"}.get(job.group, f"{job.group} array")
    if job.group.startswith("release"):
        stage_word = "held-checkpoint-eval release"
    elif job.group.startswith("eval-ckpt"):
        stage_word = f"{job.group} array (one task per run and checkpoint, a shared base's step_0 once)"
    lines = [
        "#!/bin/bash",
        f"# ftlab {stage_word} of experiment {ctx.experiment}: {len(job.keys)} task{'s' if len(job.keys) != 1 else ''}.",
        "# Written by `ftlab submit`; it submits from the experiment's slurm/ directory, so the log path",
        "# below is relative to that directory, and adds --dependency on the command line (job ids).",
        f"#SBATCH --job-name=ftlab-{ctx.experiment}-{job.group}",
        f"#SBATCH --output={job.log_pattern}",
    ]
    if job.array:
        lines.append(f"#SBATCH --array=0-{len(job.keys) - 1}" + (f"%{job.throttle}" if job.throttle else ""))
    lines += _requeue_lines(job, profile)
    if job.hold:
        lines += ["# Held: each train task releases its run's tasks here (scontrol release JOB_INDEX) as its",
                  "# checkpoints are written, and what is left when it ends; a release job after the train",
                  "# array releases anything still held, and a task whose checkpoint never appeared fails.",
                  "#SBATCH --hold"]
    for option, value in (("partition", profile.partition), ("account", profile.account), ("qos", profile.qos)):
        if value:
            lines.append(f"#SBATCH --{option}={value}")
    res = job.resources
    constraint = "&".join(c for c in (res.constraint, profile.constraint if res.gpus else None) if c)
    options = [o for o in res.sbatch_options() if not o.startswith("--constraint")]
    lines += [f"#SBATCH {o}" for o in options]
    if constraint:
        lines.append(f"#SBATCH --constraint={constraint}")
    lines += [f"#SBATCH {extra}" for extra in profile.extra_sbatch]
    lines += ["# resources: " + "; ".join(res.why)]
    lines += ["", "set -eo pipefail"]
    env = _environment(profile)
    if env:
        lines += ["", "# environment (cluster profile" + (f" {Path(profile.source).name}" if profile.source else "") + ")"] + env
    lines += ["set -u  # only now: `module load` and `conda activate` read unset variables"]
    # Same thread count as the CPU count SLURM granted: local and SLURM runs then compute identically.
    lines += ['export OMP_NUM_THREADS="${SLURM_CPUS_PER_TASK:-1}"', "", f"SPEC={q(str(ctx.spec))}", f"FTLAB={q(ctx.ftlab)}"]
    scale = os.environ.get("FTLAB_SCALE")
    if scale:  # chosen on the command line (ftlab submit --scale): every job reads the same experiment
        lines.append(f"export FTLAB_SCALE={q(scale)}")
    if job.arguments:
        lines += ["", "# the job ids of the checkpoint eval array (`ftlab submit` passes them). Normally its train",
                  "# tasks released everything already; `scontrol release` then says so and exits 1: not a failure.",
                  'scontrol release "$@" || true']
    elif job.group == "report":
        lines += ["", "# rebuilds the table from every eval that exists, even when some failed",
                  'exec "$FTLAB" report "$SPEC"']
    elif job.array:
        if job.releases:
            lines += ["", f"# A train task releases its run's held tasks of the {job.releases} array (scontrol release) as",
                      "# each checkpoint is written, and the rest when it ends (ftlab.runners.slurm.checkpoints)."]
        lines += ["", "# array index -> task key"]
        lines += ["TASKS=("] + [f"  {q(k)}  # {i}" for i, k in enumerate(job.keys)] + [")"]
        lines += ['TASK="${TASKS[$SLURM_ARRAY_TASK_ID]}"',
                  'echo "ftlab: $TASK on $(hostname), job ${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}"',
                  'exec "$FTLAB" stage run "$SPEC" "$TASK"']
    else:
        lines += ["", "# in dependency order; a task done already is skipped"]
        lines += ["TASKS=("] + [f"  {q(k)}" for k in job.keys] + [")"]
        lines += ['for TASK in "${TASKS[@]}"; do', '  echo "ftlab: $TASK on $(hostname), job $SLURM_JOB_ID"',
                  '  "$FTLAB" stage run "$SPEC" "$TASK"', "done"]
    return "\n".join(lines) + "\n"


REQUEUEABLE = ("train", "eval", "eval-ckpt", "eval-ready", "curate")


def base_group(group: str) -> str:
    """train-2.3 -> train: the group without its resource split (-2) and MaxArraySize slice (.3) suffixes."""
    return re.sub(r"(-\d+)?(\.\d+)?$", "", group)


def _requeue_lines(job: Job, profile: ClusterProfile) -> list[str]:
    """Train, eval and curate arrays come back when time runs out or they are preempted
    (ftlab.runners.slurm.requeue): a warning before the time limit, requeueable, logs appended."""
    if not job.array or base_group(job.group) not in REQUEUEABLE:
        return []
    warning = profile.checkpoint_warning
    limit = int(job.resources.hours() * 3600)
    if warning >= limit:
        raise SlurmError(f"checkpoint_warning ({warning} s) is not shorter than the {job.group} time limit ({job.resources.time}): "
                         "every attempt would be warned at once; lower checkpoint_warning in the cluster profile or raise the time")
    what = ("saves a checkpoint and requeues itself; resumes from it" if base_group(job.group) == "train"
            else "requeues itself; resumes from its cached results")
    return [f"# {warning} s before the time limit SLURM signals the task (USR1): it {what}.",
            f"#SBATCH --signal=B:USR1@{warning}", "#SBATCH --requeue",
            "# every attempt appends to the same log", "#SBATCH --open-mode=append"]


def _environment(profile: ClusterProfile) -> list[str]:
    q = shlex.quote
    lines = [f"module load {q(m)}" for m in profile.modules]
    if profile.venv:
        lines.append(f"source {q(str(Path(profile.venv) / 'bin' / 'activate'))}")
    if profile.conda:
        lines += ['eval "$(conda shell.bash hook)"', f"conda activate {q(profile.conda)}"]
    lines += list(profile.setup)  # shell code the user wrote on purpose: not quoted
    lines += [f"export {k}={q(v)}" for k, v in profile.env.items()]
    return lines
