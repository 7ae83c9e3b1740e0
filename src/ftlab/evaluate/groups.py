"""Per-group metrics (by year, specialty, source...) and the check that an eval saw every example.

    from ftlab.evaluate.groups import by_group, check_denominators

    # records from ftlab.evaluate.logits.classify carry "index" but not the example's meta:
    metrics = by_group(records, "year", positive="P", meta_of=lambda r: examples[r["index"]].meta)
    metrics["2019"]["recall"]       # Metric(0.8) ; metrics["(missing)"] holds rows without a year

    problems = check_denominators({"gsm8k": 1318, "ailuminate": 240}, {"gsm8k": 1319, "ailuminate": 240})
    # ["gsm8k: expected 1319 examples, got 1318"] -> the caller fails the eval (StageError)

Why denominators are checked: a dropped example (a crashed batch, a filtered empty prompt) raises
accuracy silently when it was a wrong answer, so a run scored on 1318 of 1319 GSM8K questions is
not comparable to the declared baselines; seed 001 declares its totals (1319/263 GSM8K, 240
AILuminate) for exactly this reason.

Run the tests: `.venv/bin/pytest tests/evaluate/test_groups.py -q`
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ftlab.evaluate.metrics import Metric, classification_metrics

MISSING = "(missing)"


def record_meta(record: Mapping[str, Any]) -> Mapping[str, Any]:
    """Default `meta_of`: the record's own "meta" dict (empty when it has none)."""
    return record.get("meta") or {}


def group_key(value: Any) -> str:
    """The group name of a column value: its text, or "(missing)" for an absent/None/blank value.

    Text because JSON object keys are strings: year 2019 and "2019" must be one group after a
    metrics file is written and read back.
    """
    if value is None:
        return MISSING
    text = str(value).strip()
    return text or MISSING


def by_group(
    records: list[dict[str, Any]],
    column: str,
    *,
    positive: str,
    meta_of: Callable[[Mapping[str, Any]], Mapping[str, Any]] = record_meta,
) -> dict[str, dict[str, Metric]]:
    """classification_metrics for each value of meta column `column`, groups sorted by name.

    Each record needs "label" and "pred" (None = unparsed); "probs" ({label: p}) gives AUROC its
    scores, from probs[positive]. If any record of a group lacks probs, that group's AUROC is
    undefined ("no scores") rather than computed on a subset. A group with a single class gets
    undefined AUROC/recall/precision with reasons, as on any split (seed 000: a split with no
    negatives measures recall only).
    """
    grouped: dict[str, list[Mapping[str, Any]]] = {}
    for record in records:
        grouped.setdefault(group_key(meta_of(record).get(column)), []).append(record)
    result = {}
    for name in sorted(grouped):
        rows = grouped[name]
        scores = None
        if all(isinstance(r.get("probs"), Mapping) and positive in r["probs"] for r in rows):
            scores = [float(r["probs"][positive]) for r in rows]
        result[name] = classification_metrics(
            [r["label"] for r in rows], [r["pred"] for r in rows], positive=positive, scores=scores
        )
    return result


def check_denominators(counts: Mapping[str, int], expected: Mapping[str, int]) -> list[str]:
    """One line per declared split whose example count differs from `expected`; [] when all agree.

    Only declared splits are checked: a split without a declared total has nothing to agree with.
    A declared split missing from `counts` is reported, since scoring none of it is the largest
    possible mismatch.
    """
    problems = []
    for name, want in expected.items():
        if name not in counts:
            problems.append(f"{name}: expected {want} examples, got none (the split was not evaluated)")
        elif counts[name] != want:
            problems.append(f"{name}: expected {want} examples, got {counts[name]}")
    return problems
