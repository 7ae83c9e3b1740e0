"""Read the weighted-loss sweep's results and append a table to BENCHMARKS.md.

    .venv/bin/python bench/weighted_loss/report.py runs/bench_weighted_loss

Predicted positive rate (ppr) on the balanced valid split at each run's final checkpoint; the check
is that ppr rises with gamma for `accept` and falls for `reject` (gamma 1 = the unweighted run).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from machine import machine_line  # noqa: E402


def main(out_dir: Path) -> int:
    rows = {}
    for summary in sorted(out_dir.glob("runs/*/eval/summary.json")):
        data = json.loads(summary.read_text())
        final = data["per_checkpoint"]["valid"][-1]
        variant, gamma = summary.parts[-3].rsplit("_g", 1)
        rows[(variant, float(gamma))] = (final["predicted_positive_rate"], final["accuracy"])
    base = rows[("none", 1.0)]
    lines = ["| variant | gamma | ppr (valid) | accuracy (valid) |", "|---|---|---|---|"]
    verdicts = []
    for variant, sign in (("accept", 1), ("reject", -1)):
        series = [(1.0, base)] + sorted((g, v) for (name, g), v in rows.items() if name == variant)
        lines += [f"| {variant} | {g:g} | {p:.3f} | {a:.3f} |" for g, (p, a) in series]
        pprs = [p for _, (p, _) in series]
        ok = all(sign * (b - a) >= 0 for a, b in zip(pprs, pprs[1:])) and pprs[0] != pprs[-1]
        verdicts.append(f"{variant}: ppr {'rises' if sign > 0 else 'falls'} monotonically with gamma: {'yes' if ok else 'NO'}")
    text = "\n".join(["", "## Weighted loss: predicted positive rate vs gamma (bench/weighted_loss)", "", machine_line(), "", *lines, "", *[f"- {v}" for v in verdicts], ""])
    with open(Path(__file__).resolve().parents[2] / "BENCHMARKS.md", "a") as f:
        f.write(text)
    print(text)
    return 0 if all(v.endswith("yes") for v in verdicts) else 1


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
