"""The `ftlab` command line: it parses arguments, calls the Python API (ftlab.api) and prints; every
domain error becomes one message and exit code 2. Every command's --help ends with an example.

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

from ftlab import api
from ftlab.errors import FtlabError, RequirementNotDone
from ftlab.stages import ORDER
from ftlab.version import __version__

STAGES = ", ".join(ORDER)


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
    parser.add_argument("--version", action="version", version=f"ftlab {__version__}")
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
    p.add_argument("--pilot", type=Path, metavar="DIR", help="a pilot experiment's output directory: judge the spec's compare "
                   "checks on its results and print the detectable difference and the seeds each min_effect needs")

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


def cmd_validate(args) -> int:
    done = api.validate(args.spec, max_runs=args.max_runs)
    print(f"{args.spec}: OK, {done.runs} runs")
    print("\n".join(["data:"] + done.data))
    for spec, runs in done.required:
        print(f"requires {api.rel(spec)}: OK, {runs} runs (ftlab run runs it first)")
    return 0


def cmd_plan(args) -> int:
    view = api.plan(args.spec, max_runs=args.max_runs, cost=args.cost, cluster=args.cluster)
    rows, cost, graph, profile = view.runs, view.cost, view.graph, view.profile
    if args.json:
        from ftlab.jsonout import dumps_rows

        print(json.dumps({"runs": rows, "cost": cost.as_dict()}, indent=2) if cost else dumps_rows(rows))
        return 0
    from ftlab.reporting.summary import table

    print(table(["index", "name", "kind", "seed", "values", "run id"], [[r["index"], r["name"], r["kind"], r["seed"], _values(r["values"]), r["run_id"]] for r in rows]))
    print(f"\n{len(rows)} runs -> {view.output_dir}")
    extra = [t for t in graph.tasks if t.stage in ("curate", "baseline")]  # seed 003 curation, seed 000 baselines
    for t in extra:
        print(f"  {t.key}: " + (", ".join(f.name for f in t.inputs.filters) if t.stage == "curate"
                                 else f"{t.inputs.name} (scikit-learn, chosen on {t.inputs.select.split})"))
    print(f"\nSLURM resources (policy {profile.policy}, profile {profile.source or 'default'}):")
    print("\n".join("  " + line for line in view.resources))
    if cost:
        print("\ncost estimate:")
        print("\n".join("  " + line for line in cost.lines))
    if args.pilot:
        from ftlab.reporting.power import render_power

        print(f"\nseeds, from the pilot {args.pilot} (80% power, two-sided 5%):")
        print("\n".join("  " + line for line in render_power(api.pilot_power(args.spec, args.pilot))))
    return 0


def cmd_run(args) -> int:
    done = api.run(args.spec, rerun=args.rerun, only=args.only, skip=args.skip, dry_run=args.dry_run,
                   rerun_evaluators=args.rerun_evaluators)
    if args.dry_run:
        for spec, todo in done.required_todo:
            print(f"requires {api.rel(spec)}: " + (f"would run it first ({todo} tasks)" if todo else "done"))
        for key, state in done.planned:
            print(f"{key:<40} {state}")
        return 0
    if done.failed_requirement is not None:
        print(f"error: {api.rel(done.failed_requirement)}, which this spec requires, did not finish; fix it and run again", file=sys.stderr)
        return 1
    if done.summary is not None:
        print("\n" + done.summary)
    if done.report is not None:
        print(f"\nHTML report: {done.report}")
    print(f"\nran {len(done.ran)}, skipped {len(done.skipped)} (done), failed {len(done.failed)}, blocked {len(done.blocked)}; results in {done.output_dir}")
    for key, error in done.failed.items():
        print(f"failed: {key}: {error.splitlines()[0]}", file=sys.stderr)
    return 0 if done.ok else 1


def cmd_status(args) -> int:
    found = api.status(args.spec)
    rows = found.rows
    if args.json:
        print(json.dumps(rows, indent=2, default=str))
        return 0
    from ftlab.reporting.summary import table

    metric = found.metric
    stage_names = ["train", "eval"]
    body = [[r["index"], r["name"], r["kind"], r["seed"]] + [r["stages"].get(s, "-") for s in stage_names] + [r["best_checkpoint"] or "", _num(r[metric])] for r in rows]
    print(table(["index", "name", "kind", "seed"] + stage_names + ["best ckpt", metric], body))
    for note in found.notes:
        print(note)
    return 0


def cmd_submit(args) -> int:
    try:
        done = api.submit(args.spec, dry_run=args.dry_run, resubmit_failed=args.resubmit_failed, cluster=args.cluster)
    except RequirementNotDone as err:  # exit 1, as before: the spec is fine, its order of work is not
        print(f"error: {err}", file=sys.stderr)
        return 1
    for spec, todo in done.requires_first:
        print(f"note: requires {api.rel(spec)} ({todo} tasks not done): run or submit it before submitting this one")
    print("\n".join(done.lines))
    if done.jobs:
        print(f"scripts in {done.scripts}; logs in {done.logs}")
    return 0


def cmd_cancel(args) -> int:
    cancelled = api.cancel(args.spec)
    print(f"cancelled {len(cancelled)} job{'s' if len(cancelled) != 1 else ''}: {' '.join(cancelled)}" if cancelled else "no queued or running jobs")
    return 0


def cmd_report(args) -> int:
    done = api.report(args.spec)
    print(done.summary)
    print(f"\nreport: {done.html}")
    if done.pending:
        n = len(done.pending)
        print(f"note: {n} task{'s' if n != 1 else ''} not done yet ({', '.join(done.pending[:3])}"
              f"{', ...' if n > 3 else ''}): this report shows what has run and is not marked done; "
              "ftlab run SPEC finishes the experiment and rebuilds it", file=sys.stderr)
    if not args.check:
        return 0
    bad = done.failing(strict=args.strict)
    for c in bad:
        print(f"check {c['status']}: {c['name']}: " + "; ".join(c["details"]), file=sys.stderr)
    return 1 if bad else 0


def cmd_export_mlflow(args) -> int:
    done = api.export_mlflow(args.spec, args.tracking_uri, experiment=args.experiment)
    print(f"exported {done.runs} runs ({done.metrics} metric points, {done.artifacts} artifacts) to MLflow experiment "
          f"'{done.experiment}' at {done.uri}")
    return 0


def cmd_stage_run(args) -> int:
    seconds = api.run_task(args.spec, args.task, rerun=args.rerun)
    print(f"{args.task}: done already" if seconds is None else f"{args.task}: done in {seconds:.1f}s")
    return 0


def cmd_stage_exec(args) -> int:
    api.run_rank(args.spec, args.task)
    return 0


def cmd_build_tiny(args) -> int:
    from ftlab.models.tiny import TinyConfig

    cfg = TinyConfig(
        architecture=args.architecture, hidden_size=args.hidden_size, num_layers=args.layers, num_heads=args.heads,
        num_kv_heads=args.kv_heads, intermediate_size=4 * args.hidden_size, vocab_size=args.vocab_size, seed=args.seed,
    )
    out = api.build_tiny(args.out, cfg, corpus=args.corpus)
    print(f"built {cfg.architecture} tiny model in {out}")
    return 0


def _values(values: dict) -> str:
    return " ".join(f"{k}={v}" for k, v in values.items()) or "-"


def _num(value) -> str:
    return "" if value is None else f"{value:.3f}"


if __name__ == "__main__":
    sys.exit(main())
