"""Eval stage: score the untrained model (step 0) and every checkpoint on every eval split.

Per checkpoint and split it writes `<ckpt>/<split>.jsonl` (one evidence record per example) and
`<ckpt>/<split>.metrics.json`, and records the metrics in the registry. A checkpoint whose metrics
file exists is not scored again, so an interrupted eval resumes where it stopped. Finally the best
checkpoint is chosen on the selection split (role valid only; the spec refuses test) and
`summary.json` gives its metrics on every split.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ftlab import atomic
from ftlab.data.stage import load_split
from ftlab.evaluate.logits import classify
from ftlab.evaluate.metrics import classification_metrics, metric_values, select_best

EVALUATOR = "logits"
EVALUATOR_VERSION = 1


def checkpoints_of(inputs: dict[str, Any]) -> list[dict[str, Any]]:
    if inputs["train"] is None:  # untuned control: the base model as it is
        return [{"name": "step_0", "step": 0, "epoch": 0.0, "path": inputs["base"]}]
    return atomic.read_json(Path(inputs["train"]) / "checkpoints.json")


def run_eval(task, ctx) -> dict[str, Any]:
    from ftlab.models.load import load_model, load_tokenizer

    inp = task.inputs
    out = Path(task.out_dir)
    labels = inp["task"]["labels"]
    positive = inp["task"]["positive"] or labels[0]
    splits = {name: load_split(path) for name, path in inp["splits"].items()}
    rows: dict[str, list[dict[str, Any]]] = {name: [] for name in splits}
    for ckpt in checkpoints_of(inp):
        todo = [s for s in splits if not (out / ckpt["name"] / f"{s}.metrics.json").is_file()]
        if todo:
            # a QLoRA run's step 0 is its 4-bit base too: that is where its zero-initialised adapter starts
            model, tokenizer = load_model(ckpt["path"], quantization=inp["quantization"]), load_tokenizer(ckpt["path"])
            for split in todo:
                records = classify(model, tokenizer, splits[split], labels, inp["batch_size"])
                _save(ctx, out, task.inputs["run_id"], ckpt, split, records, positive)
            del model
        for split in splits:
            saved = atomic.read_json(out / ckpt["name"] / f"{split}.metrics.json")
            rows[split].append({"checkpoint": ckpt["name"], "step": ckpt["step"], **saved["values"]})
            ctx.registry.record_metrics(
                inp["run_id"], checkpoint=ckpt["name"], step=ckpt["step"], split=split, evaluator=EVALUATOR,
                values=saved["values"], undefined=saved["undefined"], evidence=saved["evidence"],
            )
    select = inp["select"]
    best = select_best(rows[select["split"]], metric=select["metric"], higher_is_better=select["higher_is_better"])
    summary = {
        "selected_on": select,
        "best_checkpoint": best["checkpoint"] if best else None,
        "best_step": best["step"] if best else None,
        "at_best": _rows_at(rows, best["checkpoint"]) if best else {},
        "per_checkpoint": rows,
    }
    atomic.write_json(out / "summary.json", summary)
    return {"best_checkpoint": summary["best_checkpoint"], "checkpoints": len(rows[select["split"]])}


def _rows_at(rows: dict[str, list[dict[str, Any]]], checkpoint: str) -> dict[str, dict[str, Any]]:
    """Each split's metrics at one checkpoint."""
    return {split: next(r for r in split_rows if r["checkpoint"] == checkpoint) for split, split_rows in rows.items()}


def _save(ctx, out: Path, run_id: str, ckpt: dict, split: str, records: list[dict], positive: str) -> None:
    metrics = classification_metrics(
        [r["label"] for r in records],
        [r["pred"] for r in records],
        positive=positive,
        scores=[r["probs"][positive] for r in records],
    )
    values, undefined = metric_values(metrics)
    evidence = out / ckpt["name"] / f"{split}.jsonl"
    atomic.write_jsonl(evidence, records)
    atomic.write_json(
        out / ckpt["name"] / f"{split}.metrics.json",  # written last: marks this (checkpoint, split) done
        {
            "values": values,
            "undefined": undefined,
            "evidence": str(evidence.relative_to(ctx.experiment_dir)),
            "evaluator": EVALUATOR,
            "evaluator_version": EVALUATOR_VERSION,
            "checkpoint": ckpt,
        },
    )
