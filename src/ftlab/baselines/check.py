"""Spec checks for `baselines:` (called by ftlab.spec.validate): names, options, splits, task type."""

from __future__ import annotations

from ftlab.plugins import did_you_mean


def baseline_problems(exp, names: list[str], problems) -> None:
    spec = exp.baselines
    if spec is None:
        return
    from ftlab.baselines.features import FEATURIZER_OPTIONS, featurizers
    from ftlab.baselines.models import models
    from ftlab.evaluate.metrics import CLASSIFICATION_METRICS

    at = ("baselines",)
    if not exp.task.classification:
        problems.add(at, "classical baselines need a classification task (task.labels); remove 'baselines' or set task.labels")
    f = spec.featurizer
    if f.name not in featurizers:
        problems.add(at + ("featurizer", "name"), f"unknown featurizer '{f.name}'.{did_you_mean(f.name, featurizers.names())} "
                     f"Available: {', '.join(featurizers.names())}")
    else:
        allowed = FEATURIZER_OPTIONS.get(f.name, set())
        for key in (f.model_extra or {}):
            if key not in allowed:
                problems.add(at + ("featurizer", key), f"unknown option '{key}' of featurizer '{f.name}'.{did_you_mean(key, allowed)} "
                             f"Options: {', '.join(sorted(allowed)) or '(none)'}")
            elif not isinstance(f.model_extra[key], str):
                problems.add(at + ("featurizer", key), f"must be a string, got {type(f.model_extra[key]).__name__}")
    for j, model in enumerate(spec.models):
        if model not in models:
            problems.add(at + ("models", j), f"unknown baseline model '{model}'.{did_you_mean(model, models.names())} "
                         f"Available: {', '.join(models.names())}")
        if model in spec.models[:j]:
            problems.add(at + ("models", j), f"lists '{model}' twice")
    for j, split in enumerate(spec.splits or []):
        if split not in names:
            problems.add(at + ("splits", j), f"no dataset named '{split}'.{did_you_mean(split, names)}")
    metric = exp.eval.select.metric
    if metric not in CLASSIFICATION_METRICS:
        problems.add(("eval", "select", "metric"), f"the baselines are chosen on eval.select.metric, but '{metric}' is not a "
                     f"classification metric they record ({', '.join(CLASSIFICATION_METRICS[:6])})")
