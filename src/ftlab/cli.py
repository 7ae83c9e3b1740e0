"""The `ftlab` command line: a thin layer over the library. Every command's --help ends with an example.

    ftlab validate examples/quickstart.yaml
    ftlab plan examples/quickstart.yaml --json
    ftlab run examples/quickstart.yaml
    ftlab submit examples/quickstart.yaml --dry-run
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ftlab.errors import FtlabError

STAGES = "data, model, train, eval, report"


def main(argv: list[str] | None = None) -> int:
    import os

    from ftlab.spec.scale import ENV

    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "func"):
        parser.print_help()
        return 2
    before = os.environ.get(ENV)
    if getattr(args, "scale", None):
        os.environ[ENV] = args.scale  # every load of the spec from here (child processes, SLURM scripts) reads it
    try:
        return args.func(args) or 0
    except FtlabError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; run the same command again to resume", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `ftlab validate spec | head`: the reader left; nothing is wrong
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at interpreter exit
        return 0
    finally:
        if before is None:
            os.environ.pop(ENV, None)
        else:
            os.environ[ENV] = before


def _command(sub, name: str, help: str, example: str, func) -> argparse.ArgumentParser:
    p = sub.add_parser(
        name, help=help, description=help, epilog=f"example:\n  {example}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.set_defaults(func=func)
    return p


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ftlab",
        description="Run LLM fine-tuning research experiments end to end from one spec.",
        epilog="example:\n  ftlab run examples/quickstart.yaml",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(metavar="COMMAND")

    p = _command(sub, "validate", "Check a spec and read its datasets; report every problem at once.", "ftlab validate spec.yaml --max-runs 200000", cmd_validate)
    p.add_argument("spec", type=Path)
    p.add_argument("--max-runs", type=int, default=None, metavar="N", help="refuse specs of more than N runs (default: FTLAB_MAX_RUNS or 100000)")

    p = _command(sub, "plan", "List the runs a spec expands to (index, name, sweep values, seed, run id) and the SLURM resources each stage would ask for.", "ftlab plan spec.yaml --cost", cmd_plan)
    p.add_argument("spec", type=Path)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--cost", action="store_true", help="estimate GPU-hours and checkpoint storage from the resource policy")
    p.add_argument("--cluster", type=Path, help="cluster profile YAML (default: the spec's `cluster:`)")
    p.add_argument("--max-runs", type=int, default=None, metavar="N", help="refuse specs of more than N runs (default: FTLAB_MAX_RUNS or 100000)")

    p = _command(sub, "run", "Run every stage of every run locally, skipping what is already done.", "ftlab run spec.yaml --only data train --dry-run", cmd_run)
    p.add_argument("spec", type=Path)
    p.add_argument("--rerun", action="store_true", help="run the selected stages again even if done")
    p.add_argument("--only", nargs="+", default=[], metavar="STAGE", help=f"run only these stages ({STAGES})")
    p.add_argument("--skip", nargs="+", default=[], metavar="STAGE", help="skip these stages")
    p.add_argument("--dry-run", action="store_true", help="show what would run, run nothing")
    p.add_argument("--rerun-evaluators", nargs="+", default=[], metavar="NAME",
                   help="score these evaluators again on every checkpoint (e.g. judge), keeping training and the other evaluators' results")

    p = _command(sub, "submit", "Submit the stages not done yet to SLURM: a prepare job, a train array, an eval task per checkpoint (each released as its checkpoint is written), an eval array (task i after train task i), a report job.", "ftlab submit spec.yaml --dry-run", cmd_submit)
    p.add_argument("spec", type=Path)
    p.add_argument("--dry-run", action="store_true", help="write the sbatch scripts under <output_dir>/slurm/scripts, submit nothing")
    p.add_argument("--resubmit-failed", action="store_true", help="also resubmit tasks whose last job failed or was cancelled")
    p.add_argument("--cluster", type=Path, help="cluster profile YAML (default: the spec's `cluster:`)")

    p = _command(sub, "cancel", "Cancel this experiment's queued and running SLURM jobs.", "ftlab cancel spec.yaml", cmd_cancel)
    p.add_argument("spec", type=Path)

    p = _command(sub, "status", "Show each run's stage states (merged with SLURM's for submitted jobs) and best checkpoint.", "ftlab status spec.yaml --json", cmd_status)
    p.add_argument("spec", type=Path)
    p.add_argument("--json", action="store_true", help="machine-readable output")

    p = _command(sub, "report", "Rebuild the report (aggregated table, checks, plots, report/index.html, results.json) from what has run.", "ftlab report spec.yaml --check", cmd_report)
    p.add_argument("spec", type=Path)
    p.add_argument("--check", action="store_true", help="exit 1 when a declared report.checks check fails (CI for experiments)")
    p.add_argument("--strict", action="store_true", help="with --check: inconclusive checks fail too")

    export = sub.add_parser("export", help="Export an experiment's results to other tools.", description="Export an experiment's results to other tools.",
                            epilog="example:\n  ftlab export mlflow spec.yaml --tracking-uri mlruns", formatter_class=argparse.RawDescriptionHelpFormatter)
    esub = export.add_subparsers(metavar="TARGET")
    p = _command(esub, "mlflow", "Write every run (params = effective config, metrics per step and checkpoint, artifacts = report and plots) into a local MLflow file store.", "ftlab export mlflow spec.yaml --tracking-uri mlruns", cmd_export_mlflow)
    p.add_argument("spec", type=Path)
    p.add_argument("--tracking-uri", required=True, help="a directory (created if missing) or file: URI")
    p.add_argument("--experiment", help="MLflow experiment name (default: the spec's name)")

    model = sub.add_parser("model", help="Model utilities.", description="Model utilities.")
    msub = model.add_subparsers(metavar="COMMAND")
    p = _command(msub, "build-tiny", "Build a tiny random-init model with a locally trained tokenizer (offline).", "ftlab model build-tiny --out models/tiny --corpus data/train.jsonl", cmd_build_tiny)
    p.add_argument("--out", type=Path, required=True, help="directory to write (a normal HF model dir)")
    p.add_argument("--corpus", type=Path, nargs="*", default=[], help="JSONL/JSON datasets whose text trains the tokenizer (default: generated HEM data)")
    p.add_argument("--architecture", choices=["qwen2", "llama"], default="qwen2")
    p.add_argument("--hidden-size", type=int, default=64)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--kv-heads", type=int, default=2)
    p.add_argument("--vocab-size", type=int, default=512)
    p.add_argument("--seed", type=int, default=0)

    for name in ("validate", "plan", "run", "submit", "status", "report", "cancel"):
        if name in sub.choices:
            sub.choices[name].add_argument(
                "--scale", metavar="NAME", help="run the spec at this scale (its `scales:` block, e.g. tiny or full)"
            )

    stage = sub.add_parser("stage", help="Internal: run one stage task (runners call this).", description="Internal: run one stage task.")
    ssub = stage.add_subparsers(metavar="COMMAND")
    p = _command(ssub, "run", "Run one stage task of one run; its dependencies must be done.", "ftlab stage run spec.yaml train/lr0.001_s0", cmd_stage_run)
    p.add_argument("spec", type=Path)
    p.add_argument("task", help="task key, as listed by `ftlab run --dry-run`; eval/<run>@<checkpoint> scores one checkpoint into the run's eval cache")
    p.add_argument("--rerun", action="store_true")
    p = _command(ssub, "exec", "Run one stage's code only, without bookkeeping (what `accelerate launch` runs on each rank).", "ftlab stage exec spec.yaml train/lr0.001_s0", cmd_stage_exec)
    p.add_argument("spec", type=Path)
    p.add_argument("task")
    return parser


def _plan(spec: Path, max_runs: int | None = None):
    from ftlab.spec.plan import load_plan

    plan = load_plan(spec, max_runs=max_runs)
    for warning in plan.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    return plan


def _graph(spec: Path):
    from ftlab.graph import build_graph

    graph = build_graph(_plan(spec))
    return graph, _registry(graph)


def _registry(graph):
    from ftlab.registry import Registry

    return Registry(graph.plan.output_dir / "registry.sqlite")


def cmd_validate(args) -> int:
    plan = _plan(args.spec, args.max_runs)
    from ftlab.data.check import check_plan

    data = check_plan(plan)  # reads every dataset; DataError lists every bad row
    print(f"{args.spec}: OK, {len(plan.runs)} runs")
    print("\n".join(["data:"] + data))
    for req in _required_plans(plan):
        check_plan(req)
        print(f"requires {_rel(req.spec_path)}: OK, {len(req.runs)} runs (ftlab run runs it first)")
    return 0


def cmd_plan(args) -> int:
    plan = _plan(args.spec, args.max_runs)
    from ftlab.graph import build_graph
    from ftlab.runners.slurm.estimate import estimate, resource_lines
    from ftlab.runners.slurm.profile import profile_for

    rows = [{"index": r.index, "name": r.name, "kind": r.kind, "seed": r.seed, "values": r.values, "run_id": r.run_id} for r in plan.runs]
    graph, profile = build_graph(plan), profile_for(plan, args.cluster)
    cost = estimate(graph, profile) if args.cost else None
    if args.json:
        from ftlab.jsonout import dumps_rows

        print(json.dumps({"runs": rows, "cost": cost.as_dict()}, indent=2) if cost else dumps_rows(rows))
        return 0
    from ftlab.reporting.summary import table

    print(table(["index", "name", "kind", "seed", "values", "run id"], [[r["index"], r["name"], r["kind"], r["seed"], _values(r["values"]), r["run_id"]] for r in rows]))
    print(f"\n{len(rows)} runs -> {plan.output_dir}")
    extra = [t for t in graph.tasks if t.stage in ("curate", "baseline")]  # seed 003 curation, seed 000 baselines
    for t in extra:
        print(f"  {t.key}: " + (", ".join(f.name for f in t.inputs.filters) if t.stage == "curate"
                                 else f"{t.inputs.name} (scikit-learn, chosen on {t.inputs.select.split})"))
    print(f"\nSLURM resources (policy {profile.policy}, profile {profile.source or 'default'}):")
    print("\n".join("  " + line for line in resource_lines(graph, profile)))
    if cost:
        print("\ncost estimate:")
        print("\n".join("  " + line for line in cost.lines))
    return 0


def cmd_run(args) -> int:
    from ftlab.graph import build_graph
    from ftlab.runners.local import LocalRunner
    from ftlab.contract import is_done, select_tasks

    plan = _plan(args.spec)
    required = _required_plans(plan)
    if args.dry_run:
        for req in required:
            todo = _not_done(req)
            print(f"requires {_rel(req.spec_path)}: " + (f"would run it first ({len(todo)} tasks)" if todo else "done"))
    else:
        for req in required:  # innermost first: a judge's spec before the spec whose eval reads it
            if _run_required(req) != 0:
                print(f"error: {_rel(req.spec_path)}, which this spec requires, did not finish; fix it and run again", file=sys.stderr)
                return 1
        if required:
            plan = _plan(args.spec)  # again: paths the required experiments wrote now exist
    graph = build_graph(plan)
    if args.dry_run:
        for task in select_tasks(graph, args.only, args.skip):
            state = "done, would skip" if is_done(task) and not args.rerun else "would run"
            print(f"{task.key:<40} {state}")
        return 0
    registry = _registry(graph)
    _record_runs(graph, registry)
    rerun, only = args.rerun, args.only
    if args.rerun_evaluators:
        from ftlab.evaluate.stage import forget_results

        forget_results(graph, args.rerun_evaluators)  # and un-marks the eval tasks: they run, keeping the rest
    outcome = LocalRunner(registry).submit(graph, rerun=rerun, only=only, skip=args.skip)
    summary = graph.plan.output_dir / "report" / "summary.txt"
    if summary.is_file():
        print("\n" + summary.read_text().rstrip())
    if (summary.parent / "index.html").is_file():
        print(f"\nHTML report: {summary.parent / 'index.html'}")
    print(f"\nran {len(outcome.ran)}, skipped {len(outcome.skipped)} (done), failed {len(outcome.failed)}, blocked {len(outcome.blocked)}; results in {graph.plan.output_dir}")
    for key, error in outcome.failed.items():
        print(f"failed: {key}: {error.splitlines()[0]}", file=sys.stderr)
    return 1 if outcome.failed or outcome.blocked else 0


def _required_plans(plan) -> list:
    """Every spec that `requires:` reaches, each once, those it requires before it."""
    out: list = []
    for req in plan.requires:
        for p in [*_required_plans(req), req]:
            if all(p.spec_path != q.spec_path for q in out):
                out.append(p)
    return out


def _not_done(plan) -> list:
    """The stage tasks of a (required) experiment that are not done."""
    from ftlab.graph import build_graph
    from ftlab.contract import is_done

    return [t for t in build_graph(plan).tasks if not is_done(t)]


def _rel(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _run_required(plan) -> int:
    """Run a required experiment locally (its done tasks are skipped); 0 when nothing failed."""
    from ftlab.graph import build_graph
    from ftlab.runners.local import LocalRunner

    todo = _not_done(plan)
    print(f"== requires {_rel(plan.spec_path)}: " + (f"running it first ({len(todo)} tasks)" if todo else "done already"))
    if not todo:
        return 0
    graph = build_graph(plan)
    registry = _registry(graph)
    _record_runs(graph, registry)
    outcome = LocalRunner(registry).submit(graph)
    print(f"== {_rel(plan.spec_path)}: ran {len(outcome.ran)}, failed {len(outcome.failed)}, blocked {len(outcome.blocked)}")
    return 1 if outcome.failed or outcome.blocked else 0


def cmd_status(args) -> int:
    from ftlab.runners.status import status_rows

    from ftlab.runners.slurm.follow import merge_status

    graph, registry = _graph(args.spec)
    rows = status_rows(graph, registry)
    notes = merge_status(graph, registry, rows)  # SLURM's word on submitted tasks; [] when none were
    if args.json:
        print(json.dumps(rows, indent=2, default=str))
        return 0
    from ftlab.reporting.summary import table

    select = graph.plan.experiment.eval.select
    metric = f"{select.split}_{select.metric}"
    stage_names = ["train", "eval"]
    body = [[r["index"], r["name"], r["kind"], r["seed"]] + [r["stages"].get(s, "-") for s in stage_names] + [r["best_checkpoint"] or "", _num(r[metric])] for r in rows]
    print(table(["index", "name", "kind", "seed"] + stage_names + ["best ckpt", metric], body))
    for note in notes:
        print(note)
    return 0


def cmd_submit(args) -> int:
    from ftlab.runners.slurm.profile import profile_for
    from ftlab.runners.slurm.runner import SlurmRunner
    from ftlab.runners.slurm.submit import describe

    graph, registry = _graph(args.spec)
    profile = profile_for(graph.plan, args.cluster)
    for req in _required_plans(graph.plan):  # not chained into this submission: a separate experiment
        todo = _not_done(req)
        if todo and not args.dry_run:
            print(f"error: this spec requires {_rel(req.spec_path)}, which has {len(todo)} tasks not done; "
                  f"run or submit it first (ftlab run {_rel(req.spec_path)})", file=sys.stderr)
            return 1
        if todo:
            print(f"note: requires {_rel(req.spec_path)} ({len(todo)} tasks not done): run or submit it before submitting this one")
    if not args.dry_run:
        _record_runs(graph, registry)
    result = SlurmRunner(registry, profile).submit(graph, dry_run=args.dry_run, resubmit_failed=args.resubmit_failed)
    print("\n".join(describe(result, dry_run=args.dry_run)))
    if result.jobs:
        print(f"scripts in {graph.plan.output_dir / 'slurm' / 'scripts'}; logs in {graph.plan.output_dir / 'slurm' / 'logs'}")
    return 0


def cmd_cancel(args) -> int:
    from ftlab.runners.slurm.submit import cancel

    graph, registry = _graph(args.spec)
    cancelled = cancel(graph, registry)  # SlurmRunner.cancel without loading a cluster profile
    print(f"cancelled {len(cancelled)} job{'s' if len(cancelled) != 1 else ''}: {' '.join(cancelled)}" if cancelled else "no queued or running jobs")
    return 0


def cmd_report(args) -> int:
    from ftlab.contract import REPORT_KEY, context, execute

    graph, registry = _graph(args.spec)
    task = graph.task(REPORT_KEY)
    execute(task, context(task, graph.plan.output_dir, registry, graph.plan.spec_path, graph.plan.experiment.threads), rerun=True)
    report = graph.plan.output_dir / "report"
    print((report / "summary.txt").read_text().rstrip())
    print(f"\nreport: {report / 'index.html'}")
    if not args.check:
        return 0
    checks = json.loads((report / "checks.json").read_text())
    bad = [c for c in checks if c["status"] == "fails" or (args.strict and c["status"] == "inconclusive")]
    for c in bad:
        print(f"check {c['status']}: {c['name']}: " + "; ".join(c["details"]), file=sys.stderr)
    return 1 if bad else 0


def cmd_export_mlflow(args) -> int:
    from ftlab.reporting.mlflow_export import export_mlflow

    graph, registry = _graph(args.spec)
    done = export_mlflow(graph, registry, args.tracking_uri, experiment=args.experiment)
    print(f"exported {done.runs} runs ({done.metrics} metric points, {done.artifacts} artifacts) to MLflow experiment "
          f"'{done.experiment}' at {done.uri}")
    return 0


def cmd_stage_run(args) -> int:
    import os
    from contextlib import nullcontext

    from ftlab.errors import StageError
    from ftlab.contract import context, execute, is_done, missing_deps, split_checkpoint_key

    graph, registry = _graph(args.spec)
    if split_checkpoint_key(args.task)[1] is not None:  # eval/<run>@<checkpoint>: one checkpoint, into the run's cache
        from ftlab.runners.slurm.checkpoints import run_checkpoint

        _record_runs(graph, registry)
        print(run_checkpoint(graph, args.task, registry))
        return 0
    task = graph.task(args.task)
    releasing = nullcontext()
    if task.stage == "train" and os.environ.get("SLURM_JOB_ID"):  # this run's checkpoint evals wait, held, for its checkpoints
        from ftlab.runners.slurm.checkpoints import releasing as release_held

        releasing = release_held(graph, task, registry)
    with releasing:  # released however this ends: done already, missing inputs, failure, SIGTERM
        missing = missing_deps(task, graph)
        if missing:
            raise StageError(f"{task.key} needs {', '.join(missing)} to be done first")
        if is_done(task) and not args.rerun:
            print(f"{task.key}: done already")
            return 0
        _record_runs(graph, registry)
        seconds = execute(task, context(task, graph.plan.output_dir, registry, graph.plan.spec_path, graph.plan.experiment.threads), rerun=args.rerun)
    print(f"{task.key}: done in {seconds:.1f}s")
    return 0


def cmd_stage_exec(args) -> int:
    import os
    from contextlib import nullcontext

    from ftlab import atomic
    from ftlab.contract import context, stage_function
    from ftlab.train.launch import is_main_rank

    graph, registry = _graph(args.spec)
    task = graph.task(args.task)
    releasing = nullcontext()
    if task.stage == "train" and os.environ.get("SLURM_JOB_ID") and is_main_rank():  # rank 0 writes the checkpoints
        from ftlab.runners.slurm.checkpoints import releasing as release_held

        releasing = release_held(graph, task, registry)
    with releasing:
        result = stage_function(task.stage)(task.inputs, context(task, graph.plan.output_dir, registry, graph.plan.spec_path, graph.plan.experiment.threads))
    if is_main_rank():
        atomic.write_json(task.out_dir / "_outputs.json", result.outputs)
    return 0


def cmd_build_tiny(args) -> int:
    from ftlab.data.formats import load_examples
    from ftlab.data.generate import generators
    from ftlab.models.tiny import TinyConfig, build_tiny

    examples = [e for path in args.corpus for e in load_examples(path)] or generators.get("hem")(n=2000, split="train", seed=0)
    texts = [m["content"] for e in examples for m in e.prompt] + [e.completion for e in examples]
    cfg = TinyConfig(
        architecture=args.architecture, hidden_size=args.hidden_size, num_layers=args.layers, num_heads=args.heads,
        num_kv_heads=args.kv_heads, intermediate_size=4 * args.hidden_size, vocab_size=args.vocab_size, seed=args.seed,
    )
    out = build_tiny(args.out, cfg, texts)
    print(f"built {cfg.architecture} tiny model in {out}")
    return 0


def _record_runs(graph, registry) -> None:
    from ftlab.spec.identity import effective_config

    for r in graph.plan.runs:
        registry.upsert_run(r.run_id, index=r.index, name=r.name, kind=r.kind, seed=r.seed, sweep=r.values, config=effective_config(r.config))


def _values(values: dict) -> str:
    return " ".join(f"{k}={v}" for k, v in values.items()) or "-"


def _num(value) -> str:
    return "" if value is None else f"{value:.3f}"


if __name__ == "__main__":
    sys.exit(main())
