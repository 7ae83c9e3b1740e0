"""Step 0 scored once per base model, not once per run.

    key = step_0_key(inp, ckpt, **specific)        # None: this checkpoint is the run's own
    found = load_step_0(experiment_dir, key)        # (records, saved) another run of this base scored
    store_step_0(experiment_dir, key, records, saved)

Every trained run of a sweep starts from the same base, so its untrained score (step_0) is the same
number for every run: seed 002's 19-run weighted-loss sweep scored one 7B base 19 times. Its
result key hashes the base's identity in place of the run's train identity (with the evaluator,
its options, the split's data and the answer template, as every result key does), and the result
lives once under `<output_dir>/shared/step_0/<key>/`. Each run still gets its own copy of the
records and metrics (its evidence and registry rows stay its own), marked `scored_by` with the
evidence it was copied from. A random-init run's step 0 is its own seeded model: never shared.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ftlab import atomic
from ftlab.contract.hashing import result_key

SHARED = Path("shared") / "step_0"


def step_0_key(inp, ckpt: dict[str, Any], **specific: Any) -> str | None:
    """The key of this result for every run of the base, or None where it is not the base's."""
    if ckpt["name"] != "step_0" or not inp.base_source or str(ckpt["path"]) != str(inp.base_dir):
        return None
    return result_key(inp.model_copy(update={"source": inp.base_source}), **specific)


def _dir(experiment_dir: Path, key: str) -> Path:
    return Path(experiment_dir) / SHARED / key[:32]


def load_step_0(experiment_dir: Path, key: str) -> tuple[list[dict[str, Any]], dict[str, Any]] | None:
    where = _dir(experiment_dir, key)
    metrics = where / "metrics.json"
    saved = atomic.read_json(metrics) if metrics.is_file() else {}
    if saved.get("key") != key:
        return None
    return [json.loads(line) for line in (where / "records.jsonl").read_text().splitlines()], saved


def store_step_0(experiment_dir: Path, key: str, records: list[dict[str, Any]], saved: dict[str, Any]) -> None:
    where = _dir(experiment_dir, key)
    atomic.write_jsonl(where / "records.jsonl", records)
    atomic.write_json(where / "metrics.json", saved | {"key": key})  # last: marks the entry complete


def forget_step_0(experiment_dir: Path, evaluators: set[str]) -> int:
    """Drop the shared step-0 results of these evaluators (`ftlab run --rerun-evaluators`)."""
    dropped = 0
    for metrics in (Path(experiment_dir) / SHARED).glob("*/metrics.json"):
        if atomic.read_json(metrics).get("evaluator") in evaluators:
            metrics.unlink()
            dropped += 1
    return dropped
