"""The report's curation table: per curate task, how many examples each filter saw, dropped and why.

    print(render_curation({"curate/train-5410a40a": "runs/x/data/train-curated-5410a40a"}))
"""

from __future__ import annotations

from pathlib import Path

from ftlab import atomic


def curation_rows(curations: dict[str, str]) -> list[dict]:
    rows = []
    for key, out_dir in curations.items():
        path = Path(out_dir) / "stats.json"
        if not path.is_file():
            rows.append({"task": key, "filter": "(not run)", "in": None, "dropped": None, "kept": None, "reasons": {}})
            continue
        for f in atomic.read_json(path)["filters"]:
            rows.append({"task": key, **f})
    return rows


def curation_table(curations: dict[str, str]) -> tuple[list[str], list[list[str]]]:
    """Header and body: task, filter, in, dropped, kept, reasons (and, for a filter that consults a model, how many it asked)."""
    rows = curation_rows(curations)
    header = ["curate task", "filter", "in", "dropped", "kept", "why (count)"]
    body = []
    for r in rows:
        why = ", ".join(f"{k}: {v}" for k, v in r.get("reasons", {}).items())
        if "consulted" in r:  # evidence that the model was asked: data/<task>/difficulty.jsonl holds its answers
            why = "; ".join(x for x in (why, f"asked the model {r['consulted']} questions ({Path(str(r.get('model'))).name})") if x)
        why = why or "-"
        body.append([r["task"], r["filter"], *("" if r.get(c) is None else str(r[c]) for c in ("in", "dropped", "kept")), why])
    return header, body


def render_curation(curations: dict[str, str]) -> str:
    """curation_table as plain text."""
    header, body = curation_table(curations)
    widths = [max(len(str(x)) for x in col) for col in zip(header, *body)] if body else [len(h) for h in header]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip() for row in [header, ["-" * w for w in widths], *body]]
    return "\n".join(lines)
