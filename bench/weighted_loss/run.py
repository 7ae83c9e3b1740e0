"""Does the predicted accept rate follow gamma? examples/weighted_loss.yaml at its tiny scale, 3 seeds.

    .venv/bin/python bench/weighted_loss/run.py            # train (~20-40 min on 2 cores), print the table
    .venv/bin/python bench/weighted_loss/run.py --append   # and append it to BENCHMARKS.md

The spec is the shipped example's own tiny scale (seed 002's balanced half, gamma 2/4/8 for each
variant, and one 1/8-accept pair) with `seeds: [0, 1, 2]`; it is derived from the example at run
time, so the benchmark cannot drift from what the example ships. Output: runs/bench_weighted_loss.

Reported per setting: the predicted accept rate (ppr) on the test split, per seed and its mean, and
the test accuracy, twice: at each run's checkpoint of best valid accuracy (the test split never
chooses) and at each run's final checkpoint (seed 002 evaluates final models, and so does the
example: selecting on valid accuracy favours the least biased checkpoint, which damps the effect). Verdicts, on the balanced (1/2) data: the mean ppr rises with gamma for
`accept` and falls for `reject` (the baseline is gamma 1), and every run's ppr is strictly between
0 and 1 (a collapse to one class is reported, not averaged away).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "bench"))
from machine import machine_line  # noqa: E402

EXAMPLE = REPO / "examples" / "weighted_loss.yaml"
OUT = REPO / "runs" / "bench_weighted_loss"
SEEDS = [0, 1, 2]


def derived_spec() -> Path:
    """The example with its tiny scale chosen, 3 seeds, and its output under runs/."""
    spec = yaml.safe_load(EXAMPLE.read_text())
    spec["scales"]["tiny"].update(seeds=SEEDS, output_dir=str(OUT))
    spec["name"] = "weighted_loss_bench"
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT.parent / "bench_weighted_loss.yaml"
    path.write_text("# Derived from examples/weighted_loss.yaml by bench/weighted_loss/run.py; do not edit.\n"
                    + yaml.safe_dump(spec, sort_keys=False))
    return path


def table(checkpoint: str) -> tuple[list[str], list[str]]:
    """checkpoint: "valid" (best valid accuracy, as eval.select's default) or "final" (each run's last)."""
    import ftlab

    from ftlab.evaluate.metrics import select_best

    df = ftlab.results(OUT)
    df = df[(df["evaluator"] == "logits") & (df["kind"] == "trained")]
    chosen = {}  # run id -> checkpoint, by the same rule ftlab's eval.select applies (step 0 excluded)
    for run_id, g in df[(df["split"] == "valid") & (df["metric"] == "accuracy")].groupby("run_id"):
        rows = [{"checkpoint": c, "step": st, "accuracy": v} for c, st, v in zip(g["checkpoint"], g["step"], g["value"])]
        chosen[run_id] = select_best(rows, metric="accuracy", checkpoint=None if checkpoint == "valid" else "final")["checkpoint"]
    test = df[(df["split"] == "test") & (df["checkpoint"] == df["run_id"].map(chosen))]
    wide = test.pivot_table(index=["prop", "variant", "gamma", "seed"], columns="metric", values="value").reset_index()
    lines = ["| train accepts | variant | gamma | mean ppr (test) | ppr per seed | mean accuracy (test) | checkpoint per seed |",
             "|---|---|---|---|---|---|---|"]
    best = test.drop_duplicates("run_id").set_index(["prop", "variant", "gamma", "seed"])["checkpoint"]
    verdicts = []
    for prop in sorted(wide["prop"].unique(), key=lambda p: -Fraction(str(p))):
        at = wide[wide["prop"] == prop]
        for variant, sign in (("accept", 1), ("reject", -1)):
            series = [g for _, g in at[at["variant"] == variant].groupby("gamma", sort=True)]
            if prop == "1/2":
                series = [at[at["variant"] == "baseline"], *series]
            pprs, ends = [], []
            for g in series:
                g = g.sort_values("seed")
                ppr = g["predicted_positive_rate"]
                pprs.append(ppr.mean())
                ends += [p for p in ppr if not 0 < p < 1]
                key = (prop, g["variant"].iloc[0], g["gamma"].iloc[0])
                ckpts = " ".join(str(best.get((*key, s), "?")) for s in g["seed"])
                lines.append(f"| {prop} | {g['variant'].iloc[0]} | {float(g['gamma'].iloc[0]):g} | {ppr.mean():.3f} | "
                             f"{' '.join(f'{p:.3f}' for p in ppr)} | {g['accuracy'].mean():.3f} | {ckpts} |")
            if prop != "1/2" or len(pprs) < 2:
                continue
            ok = all(sign * (b - a) > 0 for a, b in zip(pprs, pprs[1:]))
            verdicts.append(f"{checkpoint}, 1/2 accepts, {variant}: mean ppr {'rises' if sign > 0 else 'falls'} strictly with gamma "
                            f"({' -> '.join(f'{p:.3f}' for p in pprs)}): {'yes' if ok else 'NO'}")
            verdicts.append(f"{checkpoint}, 1/2 accepts, {variant}: every run's ppr strictly between 0 and 1: "
                            + ("yes" if not ends else f"NO ({len(ends)} at {sorted(set(ends))})"))
    return lines, verdicts


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--append", action="store_true", help="append the table to BENCHMARKS.md")
    ap.add_argument("--report-only", action="store_true", help="read the existing runs, train nothing")
    args = ap.parse_args(argv)
    spec = derived_spec()
    if not args.report_only:
        subprocess.run([str(REPO / ".venv" / "bin" / "ftlab"), "run", str(spec)], check=True)
    sections = []
    for at, title in (("valid", "At each run's checkpoint of best valid accuracy (eval.select's default rule):"),
                      ("final", "At each run's final checkpoint (seed 002's protocol, and the example's `select: {checkpoint: final}`):")):
        lines, verdicts = table(at)
        sections += [title, "", *lines, "", *[f"- {v}" for v in verdicts], ""]
    text = "\n".join([
        "", "## Weighted loss: predicted accept rate vs gamma, the example's tiny scale over 3 seeds (bench/weighted_loss)", "",
        machine_line(), "",
        "Command: `.venv/bin/python bench/weighted_loss/run.py --append`. Spec: `examples/weighted_loss.yaml` at `--scale tiny` "
        "(iclr_short stand-in, 1,000 train examples resampled to the run's accept fraction with replacement, "
        "valid and test 200 each, never resampled; 3 epochs at lr 0.002) with seeds 0, 1, 2. ppr = predicted accept "
        "rate on test.", "", *sections])
    print(text)
    if args.append:
        with open(REPO / "BENCHMARKS.md", "a") as f:
            f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
