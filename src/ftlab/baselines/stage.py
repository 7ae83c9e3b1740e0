"""Baseline stage: fit one scikit-learn model on train features, choose its grid point on the
selection split (role valid), then score every eval split with ftlab's own metrics.

Inputs (ftlab.contract.inputs.BaselineInputs): the model's name, the featuriser, the selection, the
label set and the train and split data dirs.

Writes in the task's out_dir (runs/baseline_<model>/eval/, where the report looks for a run's
eval): summary.json (the shape the eval stage writes, plus every grid point's selection score),
<split>.jsonl evidence (index, label, pred, probs) and records the run (kind "baseline") and its
metrics (checkpoint "fit", evaluator "sklearn") in the registry.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ftlab import atomic
from ftlab.contract import layout
from ftlab.baselines.features import featurizers
from ftlab.baselines.models import models
from ftlab.data.stage import load_split
from ftlab.errors import DataError
from ftlab.evaluate.calibration import top_label_calibration
from ftlab.evaluate.metrics import EMPTY_SPLIT, Metric, classification_metrics, metric_values
from ftlab.contract.task import StageContext, StageResult
from ftlab.contract.inputs import BaselineInputs

EVALUATOR = "sklearn"
CHECKPOINT = "fit"


def run_baseline(inputs: BaselineInputs, ctx: StageContext) -> StageResult:
    out = Path(ctx.out_dir)
    featurize = featurizers.get(inputs.featurizer.name)
    options = dict(inputs.featurizer.model_extra or {})
    labels, positive = inputs.labels, inputs.positive
    data = {name: load_split(path) for name, path in inputs.split_dirs.items()}
    train = load_split(inputs.train_dir)
    X, feature_names = featurize(train, options)
    y = [e.label for e in train]
    if len(set(y)) < 2:
        raise DataError(f"baseline {inputs.model}: the train split has one label only ({sorted(set(y))}); nothing to fit")
    features = {name: featurize(examples, options)[0] for name, examples in data.items()}
    select = inputs.select
    spec = models.get(inputs.model)
    tried = []
    best = None
    for point in spec.grid:  # chosen on the selection split only: the test split is never looked at here
        model = spec.make(seed=inputs.seed, **point).fit(X, y)
        scored = _score(model, features[select.split], data[select.split], labels, positive)
        value = scored[0][select.metric]
        tried.append({"point": point, select.metric: value})
        better = value is not None and (best is None or (value > best[1] if select.higher_is_better else value < best[1]))
        if better:
            best = (point, value, model)
    if best is None:
        raise DataError(f"baseline {inputs.model}: {select.metric} on {select.split} is undefined at every grid point")
    point, _, model = best
    at_best: dict[str, dict[str, Any]] = {}
    for split, examples in data.items():
        values, undefined, records = _score(model, features[split], examples, labels, positive)
        evidence = out / f"{split}.jsonl"
        atomic.write_jsonl(evidence, records)
        ctx.registry.record_metrics(inputs.run_id, checkpoint=CHECKPOINT, step=0, split=split, evaluator=EVALUATOR,
                                    values=values, undefined=undefined, evidence=str(evidence.relative_to(ctx.experiment_dir)))
        at_best[split] = {"checkpoint": CHECKPOINT, "step": 0, **values}
    featurizer = inputs.featurizer.model_dump(mode="json")
    ctx.registry.upsert_run(inputs.run_id, index=inputs.index, name=inputs.name, kind="baseline", seed=inputs.seed,
                            sweep={}, config={"method": {"name": inputs.model}, "task": inputs.task.model_dump(mode="json"),
                                              "featurizer": featurizer, "chosen": point, "features": feature_names})
    summary = {
        "selected_on": select.model_dump(mode="json"), "best_checkpoint": CHECKPOINT, "best_step": 0, "chosen": point, "grid": tried,
        "at_best": at_best, "at_best_by_evaluator": {EVALUATOR: at_best},
        "per_checkpoint": {s: [row] for s, row in at_best.items()},
        "features": feature_names,
    }
    atomic.write_json(out / layout.SUMMARY, summary)  # the shape the eval stage writes
    return StageResult({"model": inputs.model, "chosen": point, "features": len(feature_names)})


def _score(model, X, examples, labels, positive):
    """(values, undefined reasons, evidence records) of a fitted model on one split."""
    classes = list(model.classes_)
    probs = model.predict_proba(X) if len(X) else []
    preds = [classes[int(p.argmax())] for p in probs]
    scores = [float(p[classes.index(positive)]) if positive in classes else 0.0 for p in probs]
    truth = [e.label for e in examples]
    records = [{"index": i, "label": t, "pred": p, "probs": {c: float(v) for c, v in zip(classes, prob)}, "label_mass": 1.0}
               for i, (t, p, prob) in enumerate(zip(truth, preds, probs))]
    metrics = classification_metrics(truth, preds, positive=positive, scores=scores)
    # The logits evaluator's extras, so every metric name compares: top-label ECE on the same 10
    # bins, and label_mass (1.0: a classifier puts all its probability on the label set).
    metrics["ece"] = top_label_calibration(truth, [r["probs"] for r in records], 10).metric()
    metrics["label_mass"] = Metric(1.0) if records else Metric(None, EMPTY_SPLIT)
    values, undefined = metric_values(metrics)
    return values, undefined, records
