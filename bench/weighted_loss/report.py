"""Read the weighted-loss sweep's results and append a table to BENCHMARKS.md.

    .venv/bin/python bench/weighted_loss/report.py runs/bench_weighted_loss

Predicted positive rate (ppr) on the balanced valid split at each run's final checkpoint, averaged
over the spec's seeds (one run's ppr moves by a few hundredths with the seed alone), for each
train positive fraction; the check is that the mean ppr rises with gamma for `accept` and falls
for `reject` (gamma 1 = the unweighted run). A variant can only move ppr where the unweighted run
leaves it room: at 1/8 positives the unweighted model already predicts no positives (nothing for
`reject` to lower), at 1/4 it is near-perfect (little for `accept` to raise).
"""

from __future__ import annotations

import json
import re
import statistics
import sys
from fractions import Fraction
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from machine import machine_line  # noqa: E402

RUN = re.compile(r"^(?P<variant>.+)_g(?P<gamma>[\d.]+)_p(?P<frac>.+?)(_s\d+)?$")


def main(out_dir: Path) -> int:
    per_seed: dict[tuple[str, str, float], list[tuple[float, float]]] = {}
    for summary in sorted(out_dir.glob("runs/*/eval/summary.json")):
        final = json.loads(summary.read_text())["per_checkpoint"]["valid"][-1]
        m = RUN.match(summary.parts[-3])
        key = (m["frac"].replace("_", "/"), m["variant"], float(m["gamma"]))
        per_seed.setdefault(key, []).append((final["predicted_positive_rate"], final["accuracy"]))
    lines = ["| train positives | variant | gamma | mean ppr (valid) | ppr per seed | mean accuracy (valid) |", "|---|---|---|---|---|---|"]
    verdicts = []
    for frac in sorted({k[0] for k in per_seed}, key=lambda f: -Fraction(f)):
        for variant, sign in (("accept", 1), ("reject", -1)):
            keys = [(frac, "none", 1.0)] + sorted(k for k in per_seed if k[0] == frac and k[1] == variant)
            pprs = []
            for key in keys:
                runs = per_seed[key]
                ppr, acc = statistics.mean(p for p, _ in runs), statistics.mean(a for _, a in runs)
                pprs.append(ppr)
                lines.append(f"| {frac} | {variant} | {key[2]:g} | {ppr:.3f} | {' '.join(f'{p:.3f}' for p, _ in runs)} | {acc:.3f} |")
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
