"""The experiment summary: best valid checkpoint per run and its metrics on every split.

    rows = summary_rows(eval_dirs)      # from each run's eval/summary.json
    print(render_table(rows, splits))
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ftlab import atomic

COLUMNS = ("accuracy", "f1", "auroc")


def summary_rows(evals: dict[str, str]) -> list[dict[str, Any]]:
    """One row per run (in plan order) from its eval/summary.json; runs not evaluated yet are marked."""
    rows = []
    for name, eval_dir in evals.items():
        path = Path(eval_dir) / "summary.json"
        if not path.is_file():
            rows.append({"run": name, "status": "not evaluated"})
            continue
        s = atomic.read_json(path)
        rows.append({"run": name, "status": "done", "best_checkpoint": s["best_checkpoint"], "at_best": s["at_best"]})
    return rows


def render_table(rows: list[dict[str, Any]], splits: list[str]) -> str:
    """Plain-text table; undefined metrics print as 'undef', never as 0."""
    header = ["run", "best ckpt"] + [f"{s} {c}" for s in splits for c in COLUMNS]
    body = []
    for r in rows:
        if r["status"] != "done":
            body.append([r["run"], r["status"]] + [""] * (len(header) - 2))
            continue
        cells = [r["run"], str(r["best_checkpoint"])]
        for s in splits:
            values = r["at_best"].get(s, {})
            cells += [_fmt(values.get(c, "missing")) for c in COLUMNS]
        body.append(cells)
    return table(header, body)


def table(header: list[str], body: list[list[Any]]) -> str:
    """Left-aligned plain-text columns with a rule under the header."""
    widths = [max(len(str(x)) for x in col) for col in zip(header, *body)]

    def line(cells: list[Any]) -> str:
        return "  ".join(str(c).ljust(w) for c, w in zip(cells, widths)).rstrip()

    return "\n".join([line(header), line(["-" * w for w in widths])] + [line(b) for b in body])


def _fmt(value: Any) -> str:
    if value is None:
        return "undef"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)
