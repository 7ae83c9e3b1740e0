"""Eval stage: run every evaluator on the untrained model (step 0) and every checkpoint.

Per checkpoint, evaluator and split it writes `<ckpt>/<evaluator>/<split>.jsonl` (one evidence
record per example) and `<split>.metrics.json`, and records the metrics in the registry. Each
metrics file carries a key hashing what the result was computed from (the checkpoint's training
identity, the evaluator, its version and options, the split's data), so a result is reused only
when all of those match: an interrupted eval resumes, and adding an evaluator to a finished
experiment runs just that evaluator. The best checkpoint is chosen on the selection split (role
valid only; the spec refuses test) and `summary.json` gives its metrics on every split.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from ftlab import atomic
from ftlab.data.stage import load_split
from ftlab.evaluate.evaluators import EvalInput, evaluators
from ftlab.evaluate.groups import by_group
from ftlab.evaluate.prepare import checkpoints_to_score, eval_splits
from ftlab.evaluate.shared import load_step_0, step_0_key, store_step_0
from ftlab.evaluate.metrics import metric_values, select_best
from ftlab.spec.schema import Quantization
from ftlab.contract import layout
from ftlab.contract.task import StageContext, StageResult
from ftlab.contract.hashing import result_key
from ftlab.contract.inputs import EvalInputs, EvaluatorRun


def checkpoints_of(inputs: EvalInputs) -> list[dict[str, Any]]:
    if inputs.train_dir is None:  # untuned control: the base model as it is
        return [{"name": "step_0", "step": 0, "epoch": 0.0, "path": inputs.base_dir}]
    return atomic.read_json(Path(inputs.train_dir) / layout.MANIFEST)


class LoadedCheckpoint:
    """A checkpoint's model and tokenizer, loaded on first use: a cached result, or an evaluator that
    loads the checkpoint itself (vLLM), never pays for the HF model."""

    def __init__(self, path: str, quantization: Quantization | None):
        self.path, self.quantization = path, quantization
        self._model = self._tokenizer = None

    @property
    def model(self):
        if self._model is None:
            from ftlab.models.load import load_model

            # a QLoRA run's step 0 is its 4-bit base too: that is where its zero-initialised adapter starts
            self._model = load_model(self.path, quantization=self.quantization)
        return self._model

    @property
    def tokenizer(self):
        if self._tokenizer is None:
            from ftlab.models.load import load_tokenizer

            self._tokenizer = load_tokenizer(self.path)
        return self._tokenizer


def task_answer_template(inp: EvalInputs) -> str:
    """The trained answer shape of a classification task (data/answers.py); "{label}" for generation."""
    if inp.task.type != "classification":
        return "{label}"
    from ftlab.data.answers import answer_template

    return answer_template(load_split(inp.train_data), given=inp.task.answer_template)


def run_eval(inp: EvalInputs, ctx: StageContext) -> StageResult:
    data = eval_splits(inp, {name: load_split(path) for name, path in inp.split_dirs.items()})
    template = task_answer_template(inp)
    rows: dict[str, dict[str, list[dict[str, Any]]]] = {e.name: {s: [] for s in e.splits} for e in inp.evaluators}
    for ckpt in checkpoints_to_score(checkpoints_of(inp), inp.eval.exclude_final):
        for (name, split), row in score_checkpoint(inp, ctx, ckpt, data, template).items():
            rows[name][split].append(row)
    select = inp.select
    chosen = rows[select.evaluator]
    best = select_best(
        chosen[select.split], metric=select.metric, higher_is_better=select.higher_is_better,
        include_step_0=select.include_step_0, checkpoint=select.checkpoint,
    )
    summary = {
        "selected_on": select.model_dump(mode="json"),
        "best_checkpoint": best["checkpoint"] if best else None,
        "best_step": best["step"] if best else None,
        "at_best": _rows_at(chosen, best["checkpoint"]) if best else {},
        "at_best_by_evaluator": {name: _rows_at(r, best["checkpoint"]) for name, r in rows.items()} if best else {},
        "per_checkpoint": chosen,
        "per_checkpoint_by_evaluator": rows,
    }
    atomic.write_json(Path(ctx.out_dir) / layout.SUMMARY, summary)
    return StageResult({"best_checkpoint": summary["best_checkpoint"], "checkpoints": len(chosen[select.split])})


def score_checkpoint(inp: EvalInputs, ctx: StageContext, ckpt: dict[str, Any], data, template: str) -> dict[tuple[str, str], dict[str, Any]]:
    """Every evaluator on every split of one checkpoint (cached results reused), metrics recorded:
    {(evaluator, split): its row for summary.json}."""
    loaded = LoadedCheckpoint(ckpt["path"], inp.quantization)
    previous: dict[str, dict[str, list[dict[str, Any]]]] = {split: {} for split in data}
    rows = {}
    for spec in inp.evaluators:
        evaluator = evaluators.get(spec.name)()
        for split in spec.splits:
            records, saved = _evaluate(inp, ctx, ckpt, evaluator, spec, template, split, data[split], previous[split], loaded)
            previous[split][spec.name] = records
            for name, result in [(split, saved)] + [(f"{split}[{g}]", r) for g, r in saved.get("groups", {}).items()]:
                ctx.registry.record_metrics(
                    inp.run_id, checkpoint=ckpt["name"], step=ckpt["step"], split=name, evaluator=spec.name,
                    values=result["values"], undefined=result["undefined"], evidence=saved["evidence"],
                )
            rows[(spec.name, split)] = {"checkpoint": ckpt["name"], "step": ckpt["step"], **saved["values"]}
    return rows


def run_eval_checkpoint(inp: EvalInputs, ctx: StageContext, ckpt: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    """Score one checkpoint of the run into the same per-checkpoint cache `run_eval` reads, so the
    run's eval task afterwards only selects and summarises. A runner calls this to score each
    checkpoint in its own job while training goes on (a part of the eval task: ftlab.evaluate.parts)."""
    data = eval_splits(inp, {name: load_split(path) for name, path in inp.split_dirs.items()})
    return score_checkpoint(inp, ctx, ckpt, data, task_answer_template(inp))


def _evaluate(inp: EvalInputs, ctx: StageContext, ckpt, evaluator, spec: EvaluatorRun, template, split, examples, previous, loaded):
    """(records, saved metrics) for one checkpoint, evaluator and split: cached or computed now."""
    labels = inp.task.labels
    options = spec.options
    base = Path(ctx.out_dir) / ckpt["name"] / evaluator.name
    # The eval inputs' identity fields, plus what is specific to this result: one function
    # (ftlab.contract.hashing) so the key cannot miss an input the stage reads.
    specific = dict(evaluator=evaluator.name, version=evaluator.version, options=options,
                    checkpoint=ckpt["name"], split=inp.split_ids[split], answer_template=template)
    key = result_key(inp, **specific)
    metrics_path, evidence = base / f"{split}.metrics.json", base / f"{split}.jsonl"
    if metrics_path.is_file() and atomic.read_json(metrics_path).get("key") == key:
        records = [json.loads(line) for line in evidence.read_text().splitlines()]
        return records, atomic.read_json(metrics_path)
    shared_key = step_0_key(inp, ckpt, **specific)  # the base's own score: another run may have it
    found = load_step_0(ctx.experiment_dir, shared_key) if shared_key else None
    if found:
        records, shared = found
        atomic.write_jsonl(evidence, records)
        saved = shared | {"key": key, "evidence": str(evidence.relative_to(ctx.experiment_dir)),
                          "scored_by": shared.get("scored_by", shared["evidence"])}
        atomic.write_json(metrics_path, saved)
        return records, saved
    positive = inp.task.positive_label if labels else None
    eval_input = EvalInput(
        checkpoint_model=loaded, examples=examples, options=options, batch_size=inp.batch_size, labels=labels,
        positive=positive, answer_template=template, previous=previous, checkpoint=ckpt["path"], out_dir=base,
        uses_model=spec.needs_model,
    )
    records = evaluator.run(eval_input)
    values, undefined = metric_values(evaluator.metrics(records, eval_input))
    groups = _groups(records, examples, inp.eval.group_by, positive) if labels else {}
    details = evaluator.details(records, eval_input) if hasattr(evaluator, "details") else {}
    if details.get("warning") and ckpt["step"]:
        print(f"warning: {ctx.key} {ckpt['name']} {split} ({evaluator.name}): {details['warning']}", file=sys.stderr)
    atomic.write_jsonl(evidence, records)
    saved = {
        "key": key,
        "values": values,
        "undefined": undefined,
        "evidence": str(evidence.relative_to(ctx.experiment_dir)),
        "evaluator": evaluator.name,
        "evaluator_version": evaluator.version,
        "options": options,
        "checkpoint": ckpt,
        "groups": groups,
        "details": details,
    }
    atomic.write_json(metrics_path, saved)  # written last: marks this (checkpoint, evaluator, split) done
    if shared_key:
        store_step_0(ctx.experiment_dir, shared_key, records, saved)
    return records, saved


def _groups(records, examples, columns: list[str], positive: str) -> dict[str, dict[str, Any]]:
    """Per-group metrics over data columns (e.g. year, specialty), keyed "column=value"."""
    if not columns or not records or "pred" not in records[0]:
        return {}
    out = {}
    for column in columns:
        for group, metrics in by_group(records, column, positive=positive, meta_of=lambda r: examples[r["index"]].meta).items():
            values, undefined = metric_values(metrics)
            out[f"{column}={group}"] = {"values": values, "undefined": undefined}
    return out


def _rows_at(rows: dict[str, list[dict[str, Any]]], checkpoint: str) -> dict[str, dict[str, Any]]:
    """Each split's metrics at one checkpoint."""
    return {split: next(r for r in split_rows if r["checkpoint"] == checkpoint) for split, split_rows in rows.items()}


def forget_results(graph, names: list[str]) -> int:
    """Drop the cached results of these evaluators in every eval task (`ftlab run --rerun-evaluators`):
    the next eval stage scores them again and keeps every other evaluator's results. Returns how many."""
    from ftlab.errors import SpecError
    from ftlab.plugins import did_you_mean

    listed = {e.name for e in graph.plan.experiment.eval.evaluators}
    for name in names:
        if name not in listed:
            raise SpecError([f"--rerun-evaluators: '{name}' is not among eval.evaluators.{did_you_mean(name, listed)} Listed: {', '.join(sorted(listed))}"])
    from ftlab.evaluate.shared import forget_step_0
    import shutil

    from ftlab.contract.task import DONE, PARTS

    dropped = 0
    for task in graph.tasks:
        if task.stage not in ("eval", "report"):
            continue
        (Path(task.out_dir) / DONE).unlink(missing_ok=True)  # not done: the next run executes it
        shutil.rmtree(Path(task.out_dir) / PARTS, ignore_errors=True)  # nor is any checkpoint scored on its own
        for name in names:
            for path in Path(task.out_dir).glob(f"*/{name}/*.metrics.json"):
                path.unlink()  # the marker of a cached result; its evidence is rewritten beside it
                dropped += 1
    forget_step_0(graph.plan.output_dir, set(names))
    return dropped
