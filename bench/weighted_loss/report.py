"""Read the weighted-loss sweep's results and append a table to BENCHMARKS.md.

    .venv/bin/python bench/weighted_loss/report.py runs/bench_weighted_loss

Predicted positive rate (ppr) on the balanced valid split at each run's final checkpoint, averaged
over the spec's seeds (one run's ppr moves by a few hundredths with the seed alone), for each
train positive fraction; the check is that the mean ppr rises with gamma for `accept` and falls
for `reject` (gamma 1 = the unweighted run). A variant can only move ppr where the unweighted run
leaves it room: at 1/8 positives the unweighted model already predicts no positives (nothing for
`reject` to lower), at 1/4 it is near-perfect (little for `accept` to raise).

The sweep values come from ftlab.results() (the registry), not from run names. The spec's own
report.checks judge the same trend at the valid-selected checkpoint with seed intervals
(runs/bench_weighted_loss/report/index.html); this table keeps the final checkpoint, as before.
"""

from __future__ import annotations

import sys
from fractions import Fraction
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from machine import machine_line  # noqa: E402

import ftlab  # noqa: E402


def main(out_dir: Path) -> int:
    df = ftlab.results(out_dir)
    valid = df[(df["split"] == "valid") & (df["evaluator"] == "logits") & (df["kind"] == "trained")]
    final = valid[valid["step"] == valid.groupby("run_id")["step"].transform("max")]
    wide = final.pivot_table(index=["frac", "variant", "gamma", "seed"], columns="metric", values="value").reset_index()
    lines = ["| train positives | variant | gamma | mean ppr (valid) | ppr per seed | mean accuracy (valid) |", "|---|---|---|---|---|---|"]
    verdicts = []
    for frac in sorted(wide["frac"].unique(), key=lambda f: -Fraction(str(f))):
        for variant, sign in (("accept", 1), ("reject", -1)):
            at = wide[wide["frac"] == frac]
            series = [at[at["variant"] == "none"]] + [g for _, g in at[at["variant"] == variant].groupby("gamma", sort=True)]
            pprs = []
            for g in series:
                ppr, acc = g["predicted_positive_rate"].mean(), g["accuracy"].mean()
                pprs.append(ppr)
                per_seed = " ".join(f"{p:.3f}" for p in g.sort_values("seed")["predicted_positive_rate"])
                lines.append(f"| {frac} | {variant} | {float(g['gamma'].iloc[0]):g} | {ppr:.3f} | {per_seed} | {acc:.3f} |")
            ok = all(sign * (b - a) >= 0 for a, b in zip(pprs, pprs[1:])) and pprs[0] != pprs[-1]
            verdicts.append(f"{frac} positives, {variant}: mean ppr {'rises' if sign > 0 else 'falls'} monotonically with gamma: {'yes' if ok else 'NO'}")
    text = "\n".join(["", "## Weighted loss: predicted positive rate vs gamma (bench/weighted_loss)", "", machine_line(), "",
                      "Command: `bench/weighted_loss/run.sh`. Train set resampled to the given positive fraction (2,000 examples), "
                      "one epoch, 3 seeds per setting; valid is balanced.", "", *lines, "", *[f"- {v}" for v in verdicts], ""])
    with open(Path(__file__).resolve().parents[2] / "BENCHMARKS.md", "a") as f:
        f.write(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
