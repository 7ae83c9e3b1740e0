"""The Python API: the one door for the CLI, the tests and notebooks.

    import ftlab
    ftlab.validate("examples/quickstart.yaml")            # Validation: runs, data lines
    ftlab.plan("examples/quickstart.yaml").runs           # PlanView: runs, tasks, SLURM requests
    done = ftlab.run("examples/quickstart.yaml")          # RunResult: ran, skipped, failed (why), report
    df = ftlab.results("examples/quickstart.yaml")        # every metric, one row each (pandas)
    ftlab.report("examples/quickstart.yaml").html         # ReportResult: the HTML report's path

Each function takes a spec path or a loaded plan (ftlab.spec.plan.Plan) plus the options of the
CLI command of the same name, raises a domain error (ftlab.errors) for a problem of the spec, the
data or the cluster, and returns a small typed result. Running records every run and stage in
the experiment's registry, as `ftlab run` does: results() finds exactly what the CLI would.
Nothing here imports torch until a stage runs (`ftlab.plan` never does).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ftlab.errors import RequirementNotDone, StageError

Echo = Callable[[str], None]


def _stderr(message: str) -> None:
    import sys

    print(message, file=sys.stderr)


# ---- loading ---------------------------------------------------------------------------------


@contextmanager
def scaled(scale: str | None) -> Iterator[None]:
    """Every load of the spec inside (child processes, SLURM scripts too) reads it at this scale."""
    from ftlab.spec.scale import ENV

    if not scale:
        yield
        return
    before = os.environ.get(ENV)
    os.environ[ENV] = scale
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(ENV, None)
        else:
            os.environ[ENV] = before


def load(spec, *, max_runs: int | None = None, warn: Echo | None = _stderr):
    """The plan of a spec path (its warnings said through `warn`), or the plan given."""
    from ftlab.spec.plan import Plan, load_plan

    if isinstance(spec, Plan):
        return spec
    plan = load_plan(Path(spec), max_runs=max_runs)
    for warning in plan.warnings:
        if warn is not None:
            warn(f"warning: {warning}")
    return plan


def graph_of(spec, *, warn: Echo | None = _stderr):
    """(graph, registry) of a spec path or plan; the registry is the experiment's registry.sqlite."""
    from ftlab.graph import Graph, build_graph
    from ftlab.registry import Registry

    graph = spec if isinstance(spec, Graph) else build_graph(load(spec, warn=warn))
    return graph, Registry(graph.plan.output_dir / "registry.sqlite")


def record_runs(graph, registry) -> None:
    """Every run of the plan in the registry: results() joins metrics with these rows (the local
    and SLURM runners record them themselves; `ftlab stage run` records them here)."""
    from ftlab.runners.base import record_runs as record

    record(graph, registry)


def required_plans(plan) -> list:
    """Every spec that `requires:` reaches, each once, those it requires before it."""
    out: list = []
    for req in plan.requires:
        for p in [*required_plans(req), req]:
            if all(p.spec_path != q.spec_path for q in out):
                out.append(p)
    return out


def not_done(plan) -> list:
    """The stage tasks of a (required) experiment that are not done."""
    from ftlab.contract import is_done
    from ftlab.graph import build_graph

    return [t for t in build_graph(plan).tasks if not is_done(t)]


def rel(path: Path) -> str:
    try:
        return str(Path(path).relative_to(Path.cwd()))
    except ValueError:
        return str(path)


# ---- validate, plan --------------------------------------------------------------------------


@dataclass
class Validation:
    spec: Path
    runs: int
    data: list[str]  # one line per dataset: its splits' counts
    required: list[tuple[Path, int]] = field(default_factory=list)  # (spec, runs) of each `requires:`
    warnings: list[str] = field(default_factory=list)


def validate(spec, *, max_runs: int | None = None, scale: str | None = None, warn: Echo | None = _stderr) -> Validation:
    """Check a spec and read its datasets (and those of the specs it requires); SpecError or
    DataError lists every problem at once. The plan's warnings are in the result, and said
    through `warn` (default: stderr; None: silent) as soon as the spec is read."""
    from ftlab.data.check import check_plan

    with scaled(scale):
        plan = load(spec, max_runs=max_runs, warn=warn)
        suspicious: list[str] = []  # legal but suspicious data: said, never fatal
        data = check_plan(plan, suspicious)  # reads every dataset; DataError lists every bad row
        required = []
        for req in required_plans(plan):
            check_plan(req)
            required.append((req.spec_path, len(req.runs)))
    for line in suspicious:
        if warn is not None:
            warn(f"warning: {line}")
    return Validation(plan.spec_path, len(plan.runs), data, required, list(plan.warnings) + suspicious)


@dataclass
class PlanView:
    plan: Any  # ftlab.spec.plan.Plan
    graph: Any  # ftlab.graph.Graph
    runs: list[dict[str, Any]]  # index, name, kind, seed, values, run_id
    profile: Any  # the cluster profile (ftlab.runners.slurm.profile.ClusterProfile)
    resources: list[str]  # what each stage would ask SLURM for, and why
    cost: Any = None  # ftlab.runners.slurm.estimate.Cost, with cost=True

    @property
    def output_dir(self) -> Path:
        return self.plan.output_dir


def plan(spec, *, max_runs: int | None = None, cost: bool = False, cluster: Path | None = None,
         scale: str | None = None, warn: Echo | None = _stderr) -> PlanView:
    """The runs a spec expands to, its stage tasks, the SLURM resources each stage would ask for
    and, with cost=True, the GPU-hours and checkpoint storage of submitting it all."""
    from ftlab.graph import build_graph
    from ftlab.runners.slurm.estimate import estimate, resource_lines
    from ftlab.runners.slurm.profile import profile_for

    with scaled(scale):
        loaded = load(spec, max_runs=max_runs, warn=warn)
        rows = [{"index": r.index, "name": r.name, "kind": r.kind, "seed": r.seed, "values": r.values, "run_id": r.run_id}
                for r in loaded.runs]
        graph, profile = build_graph(loaded), profile_for(loaded, cluster)
        return PlanView(loaded, graph, rows, profile, resource_lines(graph, profile),
                        estimate(graph, profile) if cost else None)


# ---- run -------------------------------------------------------------------------------------


@dataclass
class RunResult:
    """What `run` did: task keys that ran, were skipped (done already), failed (with why), or were
    blocked (a dependency failed or was not selected); where the report is."""

    output_dir: Path
    ran: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # key -> why: the domain error's message, or "Type: message"
    blocked: list[str] = field(default_factory=list)
    errors: dict[str, Path] = field(default_factory=dict)  # key -> its error.txt (a traceback) where written
    required: list[RunResult] = field(default_factory=list)  # the `requires:` experiments, run first
    failed_requirement: Path | None = None  # a required spec that did not finish: nothing of this one ran
    planned: list[tuple[str, str]] = field(default_factory=list)  # dry_run: (key, "would run" | "done, would skip")
    required_todo: list[tuple[Path, int]] = field(default_factory=list)  # dry_run: (spec, tasks not done)

    @property
    def ok(self) -> bool:
        return not self.failed and not self.blocked and self.failed_requirement is None

    @property
    def report(self) -> Path | None:
        html = self.output_dir / "report" / "index.html"
        return html if html.is_file() else None

    @property
    def summary(self) -> str | None:
        text = self.output_dir / "report" / "summary.txt"
        return text.read_text().rstrip() if text.is_file() else None


def run(spec, *, rerun: bool = False, only: Iterable[str] = (), skip: Iterable[str] = (), dry_run: bool = False,
        rerun_evaluators: Iterable[str] = (), scale: str | None = None, echo: Echo | None = print) -> RunResult:
    """Run every stage of every run locally, skipping what is done: the specs it `requires:` first
    (innermost first), then this one. A failed task is recorded (registry, error.txt) and named in
    the result; independent runs go on."""
    with scaled(scale):
        return _run(spec, rerun=rerun, only=list(only), skip=list(skip), dry_run=dry_run,
                    rerun_evaluators=list(rerun_evaluators), echo=echo or (lambda _: None))


def _run(spec, *, rerun, only, skip, dry_run, rerun_evaluators, echo: Echo) -> RunResult:
    from ftlab.contract import is_done
    from ftlab.graph import build_graph
    from ftlab.stages import check_selection, select_tasks

    check_selection(only, skip)  # before the output directory is made
    loaded = load(spec)
    required = required_plans(loaded)
    result = RunResult(loaded.output_dir)
    if dry_run:
        result.required_todo = [(req.spec_path, len(not_done(req))) for req in required]
    else:
        for req in required:  # innermost first: a judge's spec before the spec whose eval reads it
            done = _run_required(req, echo)
            result.required.append(done)
            if not done.ok:
                result.failed_requirement = req.spec_path
                return result
        if required and not isinstance(spec, type(loaded)):
            loaded = load(spec)  # again: paths the required experiments wrote now exist
    graph = build_graph(loaded)
    if dry_run:
        result.planned = [(t.key, "done, would skip" if is_done(t) and not rerun else "would run")
                          for t in select_tasks(graph, only, skip)]
        return result
    return _run_graph(graph, result, rerun=rerun, only=only, skip=skip, rerun_evaluators=rerun_evaluators, echo=echo)


def _run_graph(graph, result: RunResult, *, rerun=False, only=(), skip=(), rerun_evaluators=(), echo: Echo = print) -> RunResult:
    from ftlab.contract import ERROR
    from ftlab.runners.local import LocalRunner

    graph, registry = graph_of(graph)
    if rerun_evaluators:
        from ftlab.evaluate.stage import forget_results

        forget_results(graph, list(rerun_evaluators))  # and un-marks the eval tasks: they run, keeping the rest
    outcome = LocalRunner(registry, echo=echo).submit(graph, rerun=rerun, only=only, skip=skip)  # records the runs first
    result.ran, result.skipped, result.failed, result.blocked = outcome.ran, outcome.skipped, outcome.failed, outcome.blocked
    for key in outcome.failed:
        error = graph.task(key).marker_dir / ERROR
        if error.is_file():
            result.errors[key] = error
    return result


def _run_required(plan, echo: Echo) -> RunResult:
    """Run a required experiment locally (its done tasks are skipped)."""
    from ftlab.graph import build_graph

    todo = not_done(plan)
    echo(f"== requires {rel(plan.spec_path)}: " + (f"running it first ({len(todo)} tasks)" if todo else "done already"))
    result = RunResult(plan.output_dir)
    if not todo:
        return result
    result = _run_graph(build_graph(plan), result, echo=echo)
    echo(f"== {rel(plan.spec_path)}: ran {len(result.ran)}, failed {len(result.failed)}, blocked {len(result.blocked)}")
    return result


def run_task(spec, key: str, *, rerun: bool = False) -> float | None:
    """Run one stage task (or one part of one: eval/<run>@<checkpoint>) whose dependencies are done,
    as a SLURM job does; None when it was done already. A train task under SLURM releases its
    run's held checkpoint evals as each checkpoint is written; in a SLURM job, a warning before the
    time limit or SIGTERM stops it with a checkpoint, and it requeues (ftlab.runners.slurm.requeue)."""
    from contextlib import nullcontext

    from ftlab.contract import context, execute, is_done, missing_deps

    if os.environ.get("SLURM_JOB_ID"):
        from ftlab.runners.slurm.requeue import catch_early

        catch_early()  # before the graph loads: SLURM's warning may come while it does
    graph, registry = graph_of(spec)
    task = graph.task(key)
    releasing, stopping = nullcontext(), nullcontext()
    if os.environ.get("SLURM_JOB_ID"):
        from ftlab.runners.slurm.requeue import requeueable

        stopping = requeueable(task)
    if task.stage == "train" and os.environ.get("SLURM_JOB_ID"):  # this run's checkpoint evals wait, held, for its checkpoints
        from ftlab.runners.slurm.checkpoints import releasing as release_held

        releasing = release_held(graph, task, registry)
    # released however this ends (done already, missing inputs, failure), except when it stopped to resume
    with stopping as stop_requested, releasing as on_checkpoint:
        missing = missing_deps(task, graph)
        if missing:
            raise StageError(f"{task.key} needs {', '.join(missing)} to be done first")
        if is_done(task) and not rerun:
            return None
        record_runs(graph, registry)
        exp = graph.plan
        ctx = context(task, exp.output_dir, registry, exp.spec_path, exp.experiment.threads, on_checkpoint, stop_requested)
        return execute(task, ctx, rerun=rerun)


def run_rank(spec, key: str) -> None:
    """One rank of a multi-process launch (`ftlab stage exec`): the stage code only; `execute`, in
    the launching process, keeps the bookkeeping. Rank 0 writes the checkpoints, so it releases them."""
    from contextlib import nullcontext

    from ftlab.contract import context, execute_rank
    from ftlab.train.launch import is_main_rank

    graph, registry = graph_of(spec)
    task = graph.task(key)
    releasing = nullcontext()
    if task.stage == "train" and os.environ.get("SLURM_JOB_ID") and is_main_rank():
        from ftlab.runners.slurm.checkpoints import releasing as release_held

        releasing = release_held(graph, task, registry)
    with releasing as on_checkpoint:
        exp = graph.plan
        ctx = context(task, exp.output_dir, registry, exp.spec_path, exp.experiment.threads, on_checkpoint)
        execute_rank(task, ctx, main_rank=is_main_rank())


# ---- SLURM -----------------------------------------------------------------------------------


@dataclass
class Submission:
    result: Any  # ftlab.runners.slurm.submit.SubmitResult: jobs, done, in flight, notes
    lines: list[str]  # what was (or would be) submitted, for people
    scripts: Path
    logs: Path
    requires_first: list[tuple[Path, int]] = field(default_factory=list)  # required specs with tasks not done

    @property
    def jobs(self) -> list:
        return self.result.jobs


def submit(spec, *, dry_run: bool = False, resubmit_failed: bool = False, cluster: Path | None = None,
           scale: str | None = None) -> Submission:
    """Submit the stages not done yet to SLURM (dry_run: write the sbatch scripts only). A spec it
    `requires:` is a separate experiment: with tasks not done, submitting raises StageError."""
    from ftlab.runners.slurm.profile import profile_for
    from ftlab.runners.slurm.runner import SlurmRunner
    from ftlab.runners.slurm.submit import describe, slurm_dir

    with scaled(scale):
        graph, registry = graph_of(spec)
        profile = profile_for(graph.plan, cluster)
        todo = [(req.spec_path, len(not_done(req))) for req in required_plans(graph.plan)]
        todo = [(path, n) for path, n in todo if n]
        if todo and not dry_run:
            path, n = todo[0]
            raise RequirementNotDone(f"this spec requires {rel(path)}, which has {n} tasks not done; "
                                     f"run or submit it first (ftlab run {rel(path)})")
        result = SlurmRunner(registry, profile).submit(graph, dry_run=dry_run, resubmit_failed=resubmit_failed)
    where = slurm_dir(graph)
    return Submission(result, describe(result, dry_run=dry_run), where / "scripts", where / "logs", todo)


@dataclass
class Status:
    rows: list[dict[str, Any]]  # one per run: index, name, kind, seed, run_id, values, stages, best checkpoint, metric
    notes: list[str]  # SLURM's word on submitted tasks
    metric: str  # the selection metric's column, e.g. valid_accuracy


def status(spec, *, scale: str | None = None) -> Status:
    """Each run's stage states (merged with SLURM's for submitted jobs) and best checkpoint."""
    from ftlab.runners.slurm.follow import merge_status
    from ftlab.runners.status import status_rows

    with scaled(scale):
        graph, registry = graph_of(spec)
        rows = status_rows(graph, registry)
        notes = merge_status(graph, registry, rows)  # [] when nothing was submitted
    select = graph.plan.experiment.eval.select
    return Status(rows, notes, f"{select.split}_{select.metric}")


def cancel(spec, *, scale: str | None = None) -> list[str]:
    """Cancel this experiment's queued and running SLURM jobs; the job ids cancelled."""
    from ftlab.runners.slurm.submit import cancel as cancel_jobs

    with scaled(scale):
        graph, registry = graph_of(spec)
        return cancel_jobs(graph, registry)  # SlurmRunner.cancel without loading a cluster profile


# ---- report, results, export -----------------------------------------------------------------


@dataclass
class ReportResult:
    output_dir: Path  # <experiment>/report
    summary: str  # the aggregated table, as summary.txt holds it
    checks: list[dict[str, Any]]  # each declared check: name, status (passes | fails | inconclusive), details
    pending: list[str] = field(default_factory=list)  # tasks not done: the report is partial and not marked done

    @property
    def html(self) -> Path:
        return self.output_dir / "index.html"

    def failing(self, *, strict: bool = False) -> list[dict[str, Any]]:
        """Checks that fail (strict: inconclusive ones too)."""
        return [c for c in self.checks if c["status"] == "fails" or (strict and c["status"] == "inconclusive")]


def report(spec, *, scale: str | None = None) -> ReportResult:
    """Rebuild the report (aggregated table, checks, plots, index.html, results.json) from what has run."""
    from ftlab import atomic
    from ftlab.contract import REPORT_KEY, context, execute, is_done, missing_deps

    with scaled(scale):
        graph, registry = graph_of(spec)
        task = graph.task(REPORT_KEY)
        exp = graph.plan
        # A report of what has run so far is not the finished report: it is written, not marked done.
        pending = [t.key for t in graph.tasks if t.key != REPORT_KEY and not is_done(t)] if missing_deps(task, graph) else []
        execute(task, context(task, exp.output_dir, registry, exp.spec_path, exp.experiment.threads), rerun=True,
                partial=bool(pending))
    out = task.out_dir
    checks = out / "checks.json"
    return ReportResult(out, (out / "summary.txt").read_text().rstrip(), atomic.read_json(checks) if checks.is_file() else [],
                        pending)


def pilot_power(spec, pilot) -> list[dict]:
    """The spec's compare/monotonic checks judged on a pilot experiment's results (its output
    directory or spec): per comparison, the detectable difference and, for a check's min_effect,
    the seeds per side it needs (ftlab.reporting.power)."""
    from ftlab.contract import REPORT_KEY
    from ftlab.reporting.power import pilot_power as judge

    graph, _ = graph_of(spec)
    return judge(results(pilot), graph.task(REPORT_KEY).inputs)


def results(spec_or_dir):
    """The experiment's metrics as a pandas DataFrame, one row per run x checkpoint x split x
    evaluator x metric (see ftlab.reporting.results); a spec path, a plan, or an output directory.
    pandas loads only here."""
    from ftlab.errors import RegistryError
    from ftlab.registry import Registry
    from ftlab.reporting.results import experiment_dir, results_frame
    from ftlab.spec.plan import Plan

    only = order = None
    if isinstance(spec_or_dir, Plan) or Path(spec_or_dir).is_file():
        # a spec: its plan's runs only (the registry may remember runs of an older sweep)
        from ftlab.graph import build_graph

        loaded = load(spec_or_dir, warn=None)
        out, only = loaded.output_dir, {r.run_id for r in loaded.runs}
        if loaded.experiment.baselines is not None:  # its classical baselines are runs of the experiment too
            only |= {t.inputs.run_id for t in build_graph(loaded).tasks if t.stage == "baseline"}
        order = list(dict.fromkeys(k for r in loaded.runs for k in r.values))
    else:
        out = experiment_dir(spec_or_dir)
    if not (out / "registry.sqlite").is_file():
        raise RegistryError(f"{out} has no registry.sqlite yet: run the experiment first (ftlab run SPEC).")
    registry = Registry(out / "registry.sqlite")
    return results_frame(registry.runs(), registry.metrics(), out, only=only, variables=order)


def export_mlflow(spec, tracking_uri: str | Path, *, experiment: str | None = None):
    """Write every run (params, metrics per step and checkpoint, artifacts) into a local MLflow
    file store; returns what was exported (runs, metrics, artifacts, experiment, uri)."""
    from ftlab.reporting.mlflow_export import export_mlflow as export

    graph, registry = graph_of(spec)
    return export(graph, registry, tracking_uri, experiment=experiment)


def build_tiny(out: Path, config, *, corpus: Iterable[Path] = ()) -> Path:
    """A tiny random-init model (ftlab.models.tiny.TinyConfig) with a tokenizer trained on the text
    of these datasets (default: 2,000 generated HEM examples), saved as a normal HF directory."""
    from ftlab.data.formats import load_examples
    from ftlab.data.generate import generators
    from ftlab.models.tiny import build_tiny as build

    examples = [e for path in corpus for e in load_examples(path)] or generators.get("hem")(n=2000, split="train", seed=0)
    texts = [m["content"] for e in examples for m in e.prompt] + [e.completion for e in examples]
    return build(out, config, texts)
