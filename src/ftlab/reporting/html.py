"""report/index.html: one self-contained page (plots inline as base64 PNG, no scripts, no network).

Sections: summary, checks, aggregated table, plots, per-run details (relative links to evidence
files under ../runs/), provenance (spec text, versions, run ids, data digests).
"""

from __future__ import annotations

import base64
import html
import platform
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from ftlab import atomic
from ftlab.contract import layout
from ftlab.reporting.summary import aggregated_table
from ftlab.contract.inputs import ReportInputs

LIBRARIES = ("torch", "transformers", "peft", "trl", "datasets", "accelerate", "pandas", "numpy", "scipy", "matplotlib")
STATUS_COLOURS = {"holds": "#1a7f37", "fails": "#cf222e", "inconclusive": "#9a6700"}
CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em auto;max-width:1200px;padding:0 1em;color:#1f2328;background:#fff}
h1{font-size:1.6em;margin-bottom:.2em} h2{border-bottom:1px solid #d0d7de;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;font-size:.85em;margin:.5em 0} th,td{border:1px solid #d0d7de;padding:.25em .5em;text-align:left;vertical-align:top}
th{background:#f6f8fa} td.num{text-align:right;white-space:nowrap;font-variant-numeric:tabular-nums}
.badge{display:inline-block;color:#fff;border-radius:.8em;padding:.05em .6em;font-size:.85em;font-weight:600}
figure{display:inline-block;margin:.5em;max-width:100%;vertical-align:top} figure img{max-width:100%;border:1px solid #d0d7de}
figcaption{font-size:.8em;color:#59636e;max-width:640px} pre{background:#f6f8fa;padding:.8em;overflow:auto;font-size:.8em}
.muted{color:#59636e;font-size:.85em} ul.details{margin:.2em 0;padding-left:1.2em;font-size:.85em}
"""


def write_html(path: Path, *, df, agg, checks: list[dict], plots: list[dict], rows: list[dict], inputs: ReportInputs,
               registry, experiment_dir: Path) -> None:
    e = html.escape
    spec_path = Path(inputs.spec)
    spec_text = spec_path.read_text(encoding="utf-8") if spec_path.is_file() else "(spec file not found)"
    wanted = set(inputs.run_ids)
    runs = [r for r in registry.runs() if not wanted or r["run_id"] in wanted]
    name = inputs.name or experiment_dir.name
    splits = inputs.splits
    body = [f"<h1>{e(name)}</h1>",
            f"<p class='muted'>Report built {datetime.now(timezone.utc).isoformat(timespec='seconds')} from "
            f"{e(str(experiment_dir))}: {len(runs)} runs, {sum(r.get('status') == 'done' for r in rows)} evaluated.</p>"]
    body += _summary(agg, checks, inputs, e)
    body += ["<h2 id='checks'>Checks</h2>", _checks(checks, e)]
    header, table_rows = aggregated_table(agg, splits)
    body += ["<h2 id='aggregated'>Aggregated results</h2>",
             "<p class='muted'>Mean ± sd over training seeds at each run's valid-selected checkpoint. n/m = not "
             "meaningful (a split without negatives: only recall says something); undef = undefined. Every metric, "
             "with n and 95% intervals: <a href='aggregated.csv'>aggregated.csv</a>; every row: "
             "<a href='results.csv'>results.csv</a>, <a href='../results.json'>results.json</a>.</p>",
             _table(header, table_rows, e)]
    if inputs.curations:  # seed 003: each curation filter's drops, per curate task
        from ftlab.reporting.curation import curation_table

        body += ["<h2 id='curation'>Curation</h2>", "<p class='muted'>Per-example decisions: "
                 "data/&lt;dataset&gt;-curated-&lt;id&gt;/filtered.parquet.</p>", _table(*curation_table(inputs.curations), e)]
    body += ["<h2 id='plots'>Plots</h2>"] + ([_figure(path.parent, p, e) for p in plots] or ["<p class='muted'>No plots.</p>"])
    body += ["<h2 id='runs'>Runs</h2>", _runs(df, runs, rows, experiment_dir, e)]
    body += ["<h2 id='provenance'>Provenance</h2>", _provenance(runs, registry, spec_path, spec_text, e, experiment_dir)]
    page = ("<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
            f"<meta name='viewport' content='width=device-width,initial-scale=1'><title>{e(name)}: ftlab report</title>"
            f"<style>{CSS}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")
    atomic.write_text(path, page)


def _summary(agg, checks: list[dict], inputs: ReportInputs, e) -> list[str]:
    select = inputs.select
    metric, split = select.metric, select.split
    counts = {s: sum(c["status"] == s for c in checks) for s in STATUS_COLOURS}
    lines = ["<h2 id='summary'>Summary</h2><ul>",
             f"<li>Checkpoints selected by {e(select.evaluator)} {e(metric)} on {e(split)}"
             f" ({'higher' if select.higher_is_better else 'lower'} is better).</li>"]
    if checks:
        lines.append("<li>Checks: " + ", ".join(f"{_badge(s)} {n}" for s, n in counts.items() if n) + "</li>")
    test = next((s for s in inputs.splits if s != split), None)
    rows = agg[(agg["metric"] == metric) & (agg["split"] == split) & (agg["kind"] == "trained")].sort_values(
        "mean", ascending=not select.higher_is_better)
    if len(rows):
        from ftlab.reporting.summary import mean_sd, point_label

        best = rows.iloc[0].to_dict()
        point = point_label(best, list(agg.attrs.get("sweep_variables", [])))
        on_test = agg[(agg["metric"] == metric) & (agg["split"] == test) & (agg["kind"] == "trained")
                      & agg["runs"].map(lambda r: r == best["runs"])]
        shown = f"; on {e(test)}: {e(mean_sd(on_test.iloc[0].to_dict()))}" if test and len(on_test) else ""
        lines.append(f"<li>Best sweep point on {e(split)}: <b>{e(point)}</b> ({e(metric)} {e(mean_sd(best))}{shown}).</li>")
    return lines + ["</ul>"]


def _badge(status: str) -> str:
    return f"<span class='badge' style='background:{STATUS_COLOURS.get(status, '#59636e')}'>{html.escape(status)}</span>"


def _checks(checks: list[dict], e) -> str:
    if not checks:
        return "<p class='muted'>No checks declared (add them under report.checks in the spec).</p>"
    family = next((c for c in checks if c.get("comparisons")), None)
    out = [] if not family else [
        f"<p class='muted'>Differences are paired over shared examples where possible (method named per line). "
        f"p-values are adjusted by {e(family['correction'])} over the {family['family_size']} comparisons with a "
        f"p-value; a comparison decides a check only when its adjusted p &lt; 0.05.</p>"]
    out += ["<table><tr><th>check</th><th>result</th><th>the numbers (mean [95% interval] sd n)</th></tr>"]
    for c in checks:
        details = "".join(f"<li>{e(d)}</li>" for d in c["details"])
        if c.get("comparisons"):
            from ftlab.reporting.summary import comparison_text

            details += "<li>comparisons (effect [95% interval] raw p, adjusted p, method):<ul>" + "".join(
                f"<li>{e(comparison_text(x))}</li>" for x in c["comparisons"]) + "</ul></li>"
        out.append(f"<tr><td>{e(c['name'])}<br><span class='muted'>{e(c['evaluator'])}</span></td>"
                   f"<td>{_badge(c['status'])}</td><td><ul class='details'>{details}</ul></td></tr>")
    return "".join(out) + "</table>"


def _table(header: list[str], body: list[list[Any]], e) -> str:
    head = "".join(f"<th>{e(str(h))}</th>" for h in header)
    rows = "".join("<tr>" + "".join(f"<td class='num'>{e(str(c))}</td>" if i else f"<td>{e(str(c))}</td>"
                                    for i, c in enumerate(r)) + "</tr>" for r in body)
    return f"<div style='overflow-x:auto'><table><tr>{head}</tr>{rows}</table></div>"


def _figure(report_dir: Path, plot: dict, e) -> str:
    if "error" in plot:
        return f"<p class='muted'>Plot {e(plot['name'])} could not be drawn: {e(plot['error'])}</p>"
    data = base64.b64encode((report_dir / plot["file"]).read_bytes()).decode("ascii")
    return (f"<figure><img alt='{e(plot['title'])}' src='data:image/png;base64,{data}'>"
            f"<figcaption><b>{e(plot['title'])}</b>. {e(plot['caption'])} "
            f"<a href='{e(plot['svg'])}'>SVG</a> · <a href='{e(plot['file'])}'>PNG</a></figcaption></figure>")


def _runs(df, runs: list[dict], rows: list[dict], experiment_dir: Path, e) -> str:
    best = {r["run"]: r.get("best_checkpoint") for r in rows}
    header = "<tr><th>#</th><th>run</th><th>run id</th><th>kind</th><th>seed</th><th>sweep</th><th>selected</th><th>evidence (selected checkpoint)</th></tr>"
    out = ["<table>", header]
    for r in runs:
        ckpt = best.get(r["name"])
        sel = df[(df["run_id"] == r["run_id"]) & df["selected"]]
        links = []
        for ev in sorted(sel["evidence"].dropna().unique()):
            if (experiment_dir / ev).is_file():
                links.append(f"<a href='../{e(ev)}'>{e('/'.join(Path(ev).parts[-2:]))}</a>")
                metrics_file = ev.replace(".jsonl", ".metrics.json")
                if (experiment_dir / metrics_file).is_file():
                    links.append(f"<a href='../{e(metrics_file)}'>metrics</a>")
        for extra in (f"{layout.TRAIN}/{layout.LOG_HISTORY}", f"{layout.EVAL}/{layout.SUMMARY}"):
            if (layout.run_dir(experiment_dir, r["name"]) / extra).is_file():
                links.append(f"<a href='../runs/{e(r['name'])}/{extra}'>{extra}</a>")
        sweep = " ".join(f"{k}={v}" for k, v in r["sweep"].items())
        out.append(f"<tr><td>{r['index']}</td><td>{e(r['name'])}</td><td><code>{e(r['run_id'])}</code></td><td>{e(r['kind'])}</td>"
                   f"<td>{r['seed']}</td><td>{e(sweep)}</td><td>{e(str(ckpt or 'not evaluated'))}</td><td>{' · '.join(links)}</td></tr>")
    return "".join(out) + "</table>"


def _versions() -> list[tuple[str, str]]:
    from ftlab.version import __version__

    found = [("ftlab", __version__), ("python", platform.python_version())]
    for lib in LIBRARIES:
        try:
            found.append((lib, metadata.version(lib)))
        except metadata.PackageNotFoundError:
            found.append((lib, "not installed"))
    return found


def _prepared_digest(experiment_dir: Path, stage: dict) -> str:
    """sha256 of the prepared examples file the runs trained and were scored on."""
    from ftlab.spec.identity import file_digest

    path = experiment_dir / "data" / stage["key"].split("/", 1)[-1] / str((stage["outputs"] or {}).get("examples", "examples.jsonl"))
    return file_digest(path) if path.is_file() else "(not prepared)"


def _shared_prompts(registry, experiment_dir: Path) -> list[str]:
    """validate's leakage warning for prompts equal once whitespace and case are ignored, from the
    digests each data task wrote (data/stage.py)."""
    from ftlab.data.stage import PROMPT_DIGESTS
    from ftlab.data.suspicious import shared_prompts

    splits = []
    for stage in registry.stages(stage="data"):
        path = experiment_dir / "data" / stage["key"].split("/", 1)[-1] / PROMPT_DIGESTS
        ds = stage["config"].get("dataset", {})
        if path.is_file() and stage["status"] == "done":
            splits.append((ds.get("name", stage["key"]), ds.get("role", ""), stage["config"].get("file") or "",
                           set(path.read_text().split())))
    order = {"train": 0, "valid": 1, "test": 2}  # the later split of a pair is the one whose results leak
    return shared_prompts(sorted(splits, key=lambda s: order.get(s[1], 3)))


def _provenance(runs: list[dict], registry, spec_path: Path, spec_text: str, e, experiment_dir: Path) -> str:
    versions = "".join(f"<tr><td>{e(k)}</td><td>{e(v)}</td></tr>" for k, v in _versions())
    data, warnings = [], []
    for stage in registry.stages(stage="data"):
        warnings += [w for w in (stage["outputs"] or {}).get("warnings", []) if w not in warnings]
        cfg = stage["config"]
        ds = cfg.get("dataset", {})
        gen = ds.get("generate") or {}
        source = cfg.get("file") or ("generated: " + " ".join(f"{k}={v}" for k, v in gen.items() if v is not None) if gen else "")
        digest = cfg.get("digest") or "(generated)"
        outputs = stage["outputs"] or {}
        labels = " ".join(f"{k}={v}" for k, v in (outputs.get("labels") or {}).items())
        data.append(f"<tr><td>{e(ds.get('name', stage['key']))}</td><td>{e(ds.get('role', ''))}</td><td>{e(str(source))}</td>"
                    f"<td><code>{e(digest)}</code></td><td><code>{e(_prepared_digest(experiment_dir, stage))}</code></td>"
                    f"<td class='num'>{e(str(outputs.get('n', '')))}</td><td>{e(labels)}</td><td>{e(stage['status'])}</td></tr>")
    warnings += [w for w in _shared_prompts(registry, experiment_dir) if w not in warnings]
    suspicious = ("<p>Legal but suspicious (ftlab validate says the same):</p><ul>"
                  + "".join(f"<li>{e(w)}</li>" for w in warnings) + "</ul>") if warnings else ""
    return ("<h3>Versions</h3><table>" + versions + "</table>"
            "<h3>Data</h3><table><tr><th>dataset</th><th>role</th><th>source</th><th>sha256 of source file</th>"
            "<th>sha256 of prepared examples</th><th>n</th><th>labels</th><th>status</th></tr>"
            + "".join(data) + "</table>" + suspicious +
            f"<h3>Spec</h3><p class='muted'>{e(str(spec_path))}</p><pre>{e(spec_text)}</pre>"
            "<h3>Run ids</h3><p class='muted'>A run id hashes the run's effective config, kind, seed and sweep values.</p><pre>"
            + e("\n".join(f"{r['run_id']}  {r['name']}" for r in runs)) + "</pre>")
