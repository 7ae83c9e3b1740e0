"""Time planning large sweeps: 1,000 / 10,000 / 100,000 runs (targets: 10,000 < 2 s, 100,000 < 15 s).

    .venv/bin/python bench/plan_scale/run.py            # print the table
    .venv/bin/python bench/plan_scale/run.py --append   # and append it to BENCHMARKS.md

Two spec shapes per size, both the tiny model and generated data of tests/conftest.py:
- grid: `sweep: [{grid: {lr: [...], bs: [...]}}]`, a 1 kB file whose runs differ in train.learning_rate
  and train.batch_size;
- points: the same runs written out as N explicit points (`- {lr: ..., bs: ...}`, ~3 MB at 100,000),
  which is what the YAML loader has to get through.
Timed, wall clock: `load_plan` in this process (parse, validate every point, names, run ids: the spec
side), and the whole `ftlab validate` and `ftlab plan --json` processes (Python start included; plan
also builds the stage graph and its identities, ftlab.graph). Best of --repeats.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "bench"))
from machine import machine_line  # noqa: E402

HEAD = """name: scale
output_dir: out
model:
  tiny: {hidden_size: 32, num_layers: 1, num_heads: 2, num_kv_heads: 1, intermediate_size: 64, vocab_size: 400}
task: {labels: [P, N], positive: P}
datasets:
  - {name: train, role: train, generate: {name: hem, n: 240, seed: 0}}
  - {name: valid, role: valid, generate: {name: hem, n: 40, seed: 0}}
  - {name: test, role: test, generate: {name: hem, n: 40, seed: 0}}
method: {name: full}
train: {epochs: 1, learning_rate: "${lr}", batch_size: "${bs}", max_length: 96}
seeds: [0]
run_name: "lr{lr}_bs{bs}"
"""
TARGETS = {10_000: 2.0, 100_000: 15.0}


def write_spec(directory: Path, runs: int, shape: str) -> Path:
    side = 100 if runs >= 10_000 else 10  # batch sizes; runs must be a multiple
    lrs = [f"{(i + 1) * 1e-6:.6g}" for i in range(runs // side)]
    bss = [str(i + 1) for i in range(side)]
    if shape == "grid":
        sweep = f"sweep:\n  - grid: {{lr: [{', '.join(lrs)}], bs: [{', '.join(bss)}]}}\n"
    else:
        sweep = "sweep:\n" + "".join(f"  - {{lr: {lr}, bs: {bs}}}\n" for lr in lrs for bs in bss)
    path = directory / f"{shape}_{runs}.yaml"
    path.write_text(HEAD + sweep)
    return path


def best(fn, repeats: int) -> tuple[float, float]:
    """(wall, CPU) seconds of the fastest repeat; CPU counts this process and its children, so on a
    shared machine (load above the core count) it shows what the work costs without the queueing."""
    results = []
    for _ in range(repeats):
        cpu = _cpu()
        start = time.perf_counter()
        fn()
        results.append((time.perf_counter() - start, _cpu() - cpu))
    return min(results)


def _cpu() -> float:
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--append", action="store_true", help="append the table to BENCHMARKS.md")
    args = parser.parse_args()

    from ftlab.spec.plan import load_plan

    env = {**os.environ, "PYTHONPATH": f"{REPO / 'src'}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}

    def cli(*argv: str) -> None:
        proc = subprocess.run([sys.executable, "-m", "ftlab.cli", *argv, "--max-runs", str(max(args.sizes))],
                              capture_output=True, text=True, env=env)
        if proc.returncode != 0:
            raise SystemExit(f"ftlab {' '.join(argv)} failed:\n{proc.stderr[-2000:]}")

    rows = []
    load_average = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="ftlab-plan-scale-") as tmp:
        for runs in args.sizes:
            for shape in ("grid", "points"):
                spec = write_spec(Path(tmp), runs, shape)
                plan = load_plan(spec, max_runs=max(args.sizes))
                assert len(plan.runs) == runs, (len(plan.runs), runs)
                load = best(lambda: load_plan(spec, max_runs=max(args.sizes)), args.repeats)
                validate = best(lambda: cli("validate", str(spec)), args.repeats)
                planned = best(lambda: cli("plan", str(spec), "--json"), 1 if runs >= 100_000 else args.repeats)
                target = TARGETS.get(runs)
                verdict = "" if target is None else ("yes" if planned[0] < target else f"no (CPU {'yes' if planned[1] < target else 'no'})")
                rows.append((f"{runs:,}", shape, f"{spec.stat().st_size / 1e3:,.0f} kB", *(f"{w:.2f} / {c:.2f}" for w, c in (load, validate, planned)),
                             f"< {target:g} s: {verdict}" if target else ""))
                print(" | ".join(rows[-1]), flush=True)

    import pydantic
    import yaml

    lines = [
        "",
        f"## Planning large sweeps (bench/plan_scale, {time.strftime('%Y-%m-%d')})",
        "",
        "`.venv/bin/python bench/plan_scale/run.py --append`: seconds, best of "
        f"{args.repeats} (100,000-run `ftlab plan`: one run). `load_plan` is the spec side in process;",
        "`ftlab validate` / `ftlab plan --json` are whole processes (plan adds the stage graph of ftlab.graph).",
        f"Each cell is wall / CPU seconds; the 1-minute load average was {load_average:.1f} on {os.cpu_count()} cores when it started",
        "(above the core count, wall time includes waiting for a core; CPU time is the work itself).",
        f"Before issue 10 (the issue's numbers): `ftlab plan` of 10,000 runs 6.2 s, of 100,000 > 60 s.",
        "",
        machine_line() + f" PyYAML {yaml.__version__} (libyaml: {yaml.__with_libyaml__}), pydantic {pydantic.__version__}, ftlab {version('ftlab')}.",
        "",
        "| runs | sweep | spec size | load_plan | ftlab validate | ftlab plan --json | target (plan, wall) |",
        "|---:|---|---:|---:|---:|---:|---|",
        *[f"| {' | '.join(row)} |" for row in rows],
        "",
    ]
    print("\n".join(lines))
    if args.append:
        with open(REPO / "BENCHMARKS.md", "a") as handle:
            handle.write("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
