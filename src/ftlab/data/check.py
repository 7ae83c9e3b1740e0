"""Read every dataset a spec names before anything runs: bad rows, labels outside the label set,
empty files, repeated rows, and splits that share examples. `ftlab validate` calls this.

    from ftlab.data.check import check_datasets, check_plan
    problems, counts = check_datasets(exp, base_dir)   # [] and {"train": {"n": 2000, ...}, ...}
    lines = check_plan(plan)                            # raises DataError listing every problem

Each dataset is read as its data stage will read it (same formats, columns, labels, and answers
required on train only), streaming, so a 10^6-row file costs its key digests and first-seen
sources (~250 MB above the interpreter: 315 MB peak RSS for 10^6 JSONL rows, bench/data), not
its rows. Generated datasets are generated (the built-in generators make 10^3 rows in well
under a second). Overlap is judged on the prompt text (every message's content): a test question seen in
training leaks whatever its answer. A repeated row is one with the same prompt and answer as an
earlier row of the same split.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path
from typing import Any

from ftlab.data.example import Example
from ftlab.data.formats import Problems, iter_examples
from ftlab.data.generate import generators
from ftlab.data.suspicious import Suspicious, normalised
from ftlab.errors import DataError, FtlabError

DIGEST_BYTES = 8  # 64-bit keys: P(any collision among 10^6 rows) ~ 10^12 / 2^65 ~ 3e-8


@dataclass
class SplitScan:
    """What one read of one dataset found."""

    where: str  # the file, or "generator 'hem'"
    n: int = 0
    labels: Counter = field(default_factory=Counter)
    unanswered: int = 0
    prompts: dict[bytes, str] = field(default_factory=dict)  # prompt digest -> first source
    repeats: Problems | None = None
    problems: list[str] = field(default_factory=list)
    answered: list[Example] = field(default_factory=list)  # the first SHAPE_SAMPLE labelled answers
    normal: dict[bytes, str] = field(default_factory=dict)  # normalised prompt digest -> first source
    suspicious: Suspicious | None = None


SHAPE_SAMPLE = 5000  # answers whose shape around the label is checked up front (the eval stage checks all)


def check_datasets(exp, base_dir: Path, cache: dict | None = None,
                   warnings: list[str] | None = None) -> tuple[list[str], dict[str, dict[str, Any]]]:
    """(problems, counts): every problem as one line with its file and line/row and what to do,
    and per split {"role", "n", "labels": {label: count}, "unanswered"}. `cache` (any dict) lets
    sweep points that read the same dataset share one read. Legal but suspicious data (suspicious.py,
    and prompts shared across splits once whitespace and case are normalised) is appended to
    `warnings`, each line once."""
    problems: list[str] = []
    scans: dict[str, SplitScan] = {}
    cache = {} if cache is None else cache
    for d in exp.datasets:
        # resample changes nothing read here (the data stage applies it), so it is not in the key.
        key = json.dumps([_labels(exp), exp.task.label_field, d.model_dump(mode="json", exclude={"resample", "name"})],
                         sort_keys=True)
        if key not in cache:
            cache[key] = scan_dataset(exp, d, Path(base_dir))
        scan = cache[key]
        problems += [p for p in scan.problems if p not in problems]
        scans[d.name] = scan
    problems += overlap_problems(exp, scans, Path(base_dir))
    problems += shape_problems(exp, scans)
    problems += selection_problems(exp, scans)
    if warnings is not None:
        found = [line for d in exp.datasets if scans[d.name].suspicious for line in scans[d.name].suspicious.lines()]
        found += normalised_overlaps(exp, scans)
        warnings += [w for w in found if w not in warnings]
    counts = {
        d.name: {"role": d.role, "n": scans[d.name].n, "labels": dict(sorted(scans[d.name].labels.items())),
                 "unanswered": scans[d.name].unanswered}
        for d in exp.datasets
    }
    return problems, counts


def shape_problems(exp, scans: dict[str, SplitScan]) -> list[str]:
    """A classification task scored by logits needs one answer shape around the label (data/answers.py)."""
    from ftlab.data.answers import answer_template

    if not exp.task.classification or not any(ev.name == "logits" for ev in exp.eval.evaluators):
        return []
    train = next((d for d in exp.datasets if d.role == "train"), None)
    if train is None or train.name not in scans:
        return []
    try:
        answer_template(scans[train.name].answered, given=exp.task.answer_template)
    except DataError as err:
        return [f"datasets '{train.name}': {err}"]
    return []


def selection_problems(exp, scans: dict[str, SplitScan]) -> list[str]:
    """eval.select picks the best checkpoint by a metric on its split; with no answers there is no
    metric, and every run would end with no checkpoint chosen after all its training."""
    select = exp.eval.select
    scan = scans.get(select.split)
    if select.checkpoint != "best" or scan is None or scan.n == 0 or scan.unanswered < scan.n:
        return []
    return [f"{scan.where}: datasets '{select.split}' chooses checkpoints (eval.select.split) but none of its "
            f"{scan.n} rows has an answer; add the answers, or set eval.select.checkpoint: final"]


def normalised_overlaps(exp, scans: dict[str, SplitScan]) -> list[str]:
    """Prompts two splits share once whitespace and case are normalised, but not as written (those
    are problems, overlap_problems): "What is X?" in train and "what  is x?" in test still leak."""
    out = []
    by_name = {d.name: d for d in exp.datasets}
    for a, b in combinations([d.name for d in exp.datasets], 2):
        da, db = by_name[a], by_name[b]
        if da.role == db.role == "test" or (da.path is not None and da.path == db.path):
            continue
        sa, sb = scans[a], scans[b]
        if any(k in sa.prompts for k in sb.prompts):
            continue  # shares prompts as written: a problem already (overlap_problems); fix that first
        pairs = [(sb.normal[k], sa.normal[k]) for k in sb.normal if k in sa.normal]
        if not pairs:
            continue
        shown = ", ".join(f"{x} ~ {y}" for x, y in pairs[:3])
        out.append(f"datasets '{a}' ({da.role}) and '{b}' ({db.role}) share {len(pairs)} prompt"
                   f"{'s' if len(pairs) != 1 else ''} once whitespace and case are ignored ({shown}"
                   f"{', ...' if len(pairs) > 3 else ''}); remove them from one split so {db.role} results are not inflated")
    return out


def check_plan(plan, warnings: list[str] | None = None) -> list[str]:
    """Check the datasets of every distinct sweep point; return the counts as printable lines,
    or raise one DataError listing every problem. Warnings (legal but suspicious data) are
    appended to `warnings`."""
    seen: set[str] = set()
    cache: dict = {}
    problems: list[str] = []
    lines: list[str] = []
    for run in plan.runs or []:
        exp = run.config
        key = json.dumps([exp.task.model_dump(mode="json"), [d.model_dump(mode="json") for d in exp.datasets]],
                         sort_keys=True)
        if key in seen:
            continue
        seen.add(key)
        found, counts = check_datasets(exp, plan.base_dir, cache, warnings)
        problems += [p for p in found if p not in problems]
        lines += [line for line in count_lines(counts) if line not in lines]
    if problems:
        count = len(problems)
        raise DataError(f"{count} problem{'s' if count != 1 else ''} in the data:\n" + "\n".join(f"  - {p}" for p in problems))
    return lines


def count_lines(counts: dict[str, dict[str, Any]]) -> list[str]:
    """ "  train (train): 2000 rows; P 1000, N 1000" per split."""
    out = []
    for name, c in counts.items():
        labels = ", ".join(f"{k} {v}" for k, v in c["labels"].items() if k != "null")
        extra = f"; {c['unanswered']} without an answer" if c["unanswered"] else ""
        out.append(f"  {name} ({c['role']}): {c['n']} rows" + (f"; {labels}" if labels else "") + extra)
    return out


def scan_dataset(exp, d, base_dir: Path) -> SplitScan:
    labels = _labels(exp)
    if d.generate is not None:
        if d.generate.name not in generators:
            return SplitScan(where=f"generator '{d.generate.name}'")  # cross_checks names it
        scan = SplitScan(where=f"generator '{d.generate.name}'")
        scan.suspicious = _suspicious(exp, d, scan.where)
        try:
            examples = generators.get(d.generate.name)(n=d.generate.n, split=d.generate.split or d.role,
                                                       seed=d.generate.seed)
        except FtlabError as e:
            scan.problems.append(f"datasets '{d.name}': {e}")
            return scan
        if d.only_labels:
            examples = [e for e in examples if e.label in set(d.only_labels)]
        for e in examples[: d.limit]:
            if labels is not None and e.label not in labels:
                scan.problems.append(f"datasets '{d.name}': generator made label {e.label!r}, not in task.labels {labels}")
                break
            _add(scan, e)
        return scan
    path = base_dir / d.path
    scan = SplitScan(where=str(path))
    scan.suspicious = _suspicious(exp, d, path)
    if not path.exists():
        return scan  # cross_checks already says "file not found"
    rows = Problems(path)
    scan.repeats = Problems(path)
    exact: set[bytes] = set()
    try:
        for e in iter_examples(path, format=d.format, labels=labels, label_field=exp.task.label_field,
                               require_answer=d.role == "train", columns=d.columns,
                               name_in_registry=d.name_in_registry, problems=rows):
            if d.only_labels and e.label not in d.only_labels:
                continue
            if d.limit is None or scan.n < d.limit:
                _add(scan, e, exact)
    except DataError as e:  # the file itself is unreadable: one problem, no rows
        scan.problems.append(str(e))
        return scan
    scan.where = scan.suspicious.where = str(rows.path)
    scan.repeats.path, scan.repeats.unit = rows.path, rows.unit
    if rows.count:
        scan.problems += _grouped(rows, "bad row", "fix or drop each row")
    elif scan.n == 0:
        scan.problems.append(f"{rows.path}: the file has no rows; add examples or point datasets '{d.name}' at another file")
    if scan.repeats.count:
        scan.problems += _grouped(scan.repeats, "repeated row", "drop the repeats (or dedupe the file)")
    return scan


def _suspicious(exp, d, where) -> Suspicious:
    # A split cut to some labels on purpose (seed 000's positives-only valid_hem_only) is one class by design.
    return Suspicious(d.name, "train" if d.only_labels else d.role, where, classification=_labels(exp) is not None)


def _add(scan: SplitScan, e: Example, exact: set[bytes] | None = None) -> None:
    scan.n += 1
    if scan.suspicious is not None:
        scan.suspicious.add(e)
    if e.label is not None and e.completion is not None and len(scan.answered) < SHAPE_SAMPLE:
        scan.answered.append(e)
    scan.labels["null" if e.label is None else e.label] += 1
    scan.unanswered += e.completion is None
    prompt = "\x1f".join(m["content"] for m in e.prompt)
    key = _digest(prompt)
    source = str(e.meta.get("source", "?"))
    if exact is not None:
        full = _digest(prompt + "\x1e" + (e.completion or ""))
        if full in exact:
            scan.repeats.add(_position(source), f"repeats {scan.prompts.get(key, 'an earlier row')} (same prompt and answer)")
        exact.add(full)
    scan.prompts.setdefault(key, source)
    scan.normal.setdefault(_digest(normalised(e.prompt)), source)


def overlap_problems(exp, scans: dict[str, SplitScan], base_dir: Path) -> list[str]:
    """One problem per pair of splits that share prompts (train/valid/test must be disjoint)."""
    out = []
    by_name = {d.name: d for d in exp.datasets}
    for a, b in combinations([d.name for d in exp.datasets], 2):
        if by_name[a].role == by_name[b].role == "test":
            continue  # two report-only splits may share examples (seed 000's valid_hem_only): nothing is chosen on either
        sa, sb = scans[a], scans[b]
        shared = [k for k in sb.prompts if k in sa.prompts] if len(sb.prompts) <= len(sa.prompts) else \
            [k for k in sa.prompts if k in sb.prompts]
        if not shared:
            continue
        da, db = by_name[a], by_name[b]
        same = da.path is not None and da.path == db.path and da.name_in_registry == db.name_in_registry
        pairs = ", ".join(f"{sb.prompts[k]} = {sa.prompts[k]}" for k in shared[:3])
        if same:
            out.append(
                f"datasets '{a}' ({da.role}) and '{b}' ({db.role}) read the same file {sa.where}, so all "
                f"{len(shared)} prompts are in both; give each role its own file (split it once, seeded)"
            )
        else:
            out.append(
                f"datasets '{a}' ({da.role}) and '{b}' ({db.role}) share {len(shared)} prompt"
                f"{'s' if len(shared) != 1 else ''} ({pairs}{', ...' if len(shared) > 3 else ''}); "
                f"remove them from one split so {db.role} results are not inflated"
            )
    return out


def _grouped(problems: Problems, what: str, todo: str) -> list[str]:
    """One problem per file: a head line, then each located row on its own indented line."""
    head = f"{problems.path}: {problems.count} {what}{'s' if problems.count != 1 else ''}; {todo}"
    return ["\n    ".join([head] + problems.lines())]


def _labels(exp) -> list[str] | None:
    # A generation task (task.type: generation) has no label set; its answers are free text.
    if getattr(exp.task, "type", "classification") != "classification":
        return None
    return exp.task.labels or None


def _digest(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8"), digest_size=DIGEST_BYTES).digest()


def _position(source: str) -> int:
    """The line or row number in an Example's "file:line" / "file#row" source."""
    tail = source.rsplit("#", 1)[-1].rsplit(":", 1)[-1]
    return int(tail) if tail.isdigit() else 0

