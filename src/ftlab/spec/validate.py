"""Turn pydantic errors and cross-field checks into YAML-path problems with did-you-mean hints."""

from __future__ import annotations

import types
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from ftlab.plugins import did_you_mean
from ftlab.spec.checks import owner
from ftlab.spec.schema import Experiment
from ftlab.spec.source import clip, clip_text, safe_exists, safe_is_file
from ftlab.spec.sweep import Problems

# Top-level fields cross_checks never reads: ftlab.spec.points runs it once per combination of the
# other fields, so a 10,000-point sweep over train/method is cross-checked once, not 10,000 times.
# A check that starts reading one of these must remove it from here.
NOT_CROSS_CHECKED = ("train", "method", "description", "run_name", "output_dir", "name", "cluster")

def model_problems(err: ValidationError, problems: Problems, skip: set[tuple]) -> None:
    """Add each pydantic error to `problems` at its YAML path (paths in `skip` were already reported)."""
    for e in err.errors():
        loc = tuple(e["loc"])
        if any(loc[: len(s)] == s for s in skip):
            continue
        kind = e["type"]
        if kind == "extra_forbidden":
            key = clip_text(loc[-1], 60)
            allowed = _fields_at(Experiment, loc[:-1])
            hint = did_you_mean(key, allowed)
            listing = f" Allowed: {', '.join(allowed)}." if allowed else ""
            problems.add(loc, f"unknown key '{key}'.{hint}{listing}")
        elif kind == "missing":
            problems.add(loc, "required key is missing")
        elif kind == "finite_number":
            problems.add(loc, f"must be a finite number, not {clip(e.get('input'))}")
        else:
            problems.add(loc, f"{clip_text(e['msg'], 200)} (got {clip(e.get('input'))})")


def _fields_at(model: type[BaseModel], loc: tuple) -> list[str]:
    """Field names of the model found at `loc` inside `model` (empty if not a model)."""
    current: Any = model
    for part in loc:
        current = _unwrap(current)
        if isinstance(part, int):
            args = typing.get_args(current)
            current = args[0] if args else None
        elif isinstance(current, type) and issubclass(current, BaseModel) and part in current.model_fields:
            current = current.model_fields[part].annotation
        else:
            return []
    current = _unwrap(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return []


def _unwrap(annotation: Any) -> Any:
    """Optional[X] / X | None -> X."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        models = [a for a in args if isinstance(a, type) and issubclass(a, BaseModel)]
        return models[0] if models else (args[0] if len(args) == 1 else annotation)
    return annotation


def _check_gguf(ref: str, base_dir: Path, problems: Problems) -> None:
    """The GGUF file exists (or its wheel is installed) and the gguf reader is importable."""
    from ftlab.errors import ModelError

    try:
        owner("models.gguf_resolve")(ref, base_dir)
    except ModelError as err:
        problems.add(("model", "gguf"), str(err))
        return
    hint = owner("models.gguf_missing_package")()
    if hint:
        problems.add(("model", "gguf"), hint)


def cross_checks(exp: Experiment, base_dir: Path, problems: Problems) -> None:
    """Checks that span fields: exactly-one choices, names that must exist, split discipline."""
    generators = owner("data.generators")
    m = exp.model
    if [m.path, m.tiny, m.gguf].count(None) != 2:
        problems.add(("model",), "give exactly one of 'path' (HF id or local dir), 'gguf' (a .gguf file or a "
                     "named one: smollm2) or 'tiny' (built by ftlab)")
    elif m.gguf is not None:
        _check_gguf(m.gguf, base_dir, problems)
    elif m.path is not None and not safe_exists(base_dir / m.path) and m.path.startswith((".", "/", "~")):
        problems.add(("model", "path"), f"local model directory not found: {clip_text(base_dir / m.path, 200)}")
    if m.tiny is not None:
        _check_shape(m.tiny, problems)

    _check_task(exp, problems)

    names = [d.name for d in exp.datasets]
    for i, d in enumerate(exp.datasets):
        at = ("datasets", i)
        if names.count(d.name) > 1 and names.index(d.name) != i:
            problems.add(at + ("name",), f"dataset name '{d.name}' is used twice")
        for j, label in enumerate(d.only_labels or []):
            if exp.task.labels is None or label not in exp.task.labels:
                problems.add(at + ("only_labels", j), f"{clip(label)} is not in task.labels {clip(exp.task.labels)}")
        if d.resample is not None and d.role != "train":  # seed 002: the test set is never modified
            problems.add(at + ("resample",), f"dataset '{d.name}' has role {d.role}; only the train dataset may be "
                         "resampled (scores on a resampled valid/test set do not measure the real distribution)")
        if d.curate and d.role != "train":  # a filter that consults a model would choose the test set by that model
            problems.add(at + ("curate",), f"dataset '{d.name}' has role {d.role}; only the train dataset may be curated")
        for column in sorted({c for c in (d.columns or {}).values() if isinstance(c, str)}):
            # One column per key (label may share the answer's column, the label is read from it):
            # prompt and completion from one column trains the model to echo its input.
            keys = [k for k, c in (d.columns or {}).items() if c == column]
            others = [k for k in keys if k != "label"]
            if len(others) > 1 or (len(keys) > len(others) and others and others[0] not in ("completion", "output")):
                problems.add(at + ("columns",), f"maps {' and '.join(keys)} to the same column {clip(column)}; "
                             "give each its own column")
        for j, f in enumerate(d.curate or []):  # filter names and options, at their YAML path
            for loc, message in owner("curate.filter_problems")(f.name, f.options):
                problems.add(at + ("curate", j) + loc, message)
        if (d.path is None) == (d.generate is None):
            problems.add(at, "give exactly one of 'path' (a JSONL/JSON file) or 'generate' (a built-in generator)")
        elif d.path is not None and not safe_exists(base_dir / d.path):  # a dir: HF save_to_disk
            problems.add(at + ("path",), f"file not found: {clip_text(base_dir / d.path, 200)}")
        elif d.generate is not None and d.generate.name not in generators:
            hint = did_you_mean(clip_text(d.generate.name, 60), generators.names())
            problems.add(
                at + ("generate", "name"),
                f"unknown data generator {clip(d.generate.name)}.{hint} Available: {', '.join(generators.names())}",
            )
    if len(exp.datasets_with_role("train")) != 1:
        problems.add(("datasets",), "needs exactly one dataset with role: train")

    if m.tiny is not None:
        for j, name in enumerate(m.tiny.tokenizer_corpus):
            if name not in names:
                problems.add(("model", "tiny", "tokenizer_corpus", j), f"no dataset named '{name}'{_hint(name, names)}")

    for j, name in enumerate(exp.eval.splits or []):
        if name not in names:
            problems.add(("eval", "splits", j), f"no dataset named {clip(name)}{_hint(name, names)}")
    for at, items in ((("eval", "splits"), exp.eval.splits or []), (("eval", "group_by"), exp.eval.group_by),
                      (("model", "tiny", "tokenizer_corpus"), m.tiny.tokenizer_corpus if m.tiny else [])):
        twice = next((x for i, x in enumerate(items) if x in items[:i]), None)
        if twice is not None:
            problems.add(at, f"lists {clip(twice)} twice")
    _check_evaluators(exp, names, base_dir, problems)
    for split in exp.eval.expected:
        if split not in names:
            problems.add(("eval", "expected", split), f"no dataset named '{split}'{_hint(split, names)}")
    if exp.fewshot is not None and exp.fewshot.k > exp.fewshot.pool:
        problems.add(("fewshot", "k"), f"k={exp.fewshot.k} is larger than the pool ({exp.fewshot.pool})")
    for j, name in enumerate((exp.fewshot.splits if exp.fewshot else None) or []):
        if name not in names:
            problems.add(("fewshot", "splits", j), f"no dataset named {clip(name)}{_hint(name, names)}")
    _check_test_fraction(exp, names, problems)
    _check_select(exp, names, base_dir, problems)
    owner("baselines.problems")(exp, names, problems)

    owner("reporting.problems")(exp, problems)  # report.checks: kinds, options, split names


def _check_task(exp: Experiment, problems: Problems) -> None:
    """A classification task has a label set; a generation task has none (its rows carry references)."""
    task = exp.task
    if not task.classification:
        for key in ("labels", "positive", "label_field", "answer_template"):
            if getattr(task, key) is not None:
                problems.add(("task", key), f"a generation task has no label set, so no '{key}'; remove it or use type: classification")
        return
    labels = task.labels
    if labels is None or len(labels) < 2:
        problems.add(("task", "labels"), "a classification task needs at least 2 labels, e.g. [P, N] "
                     "(for free-form answers such as GSM8K's, use task.type: generation)")
        return
    for j, label in enumerate(labels):
        if not label.strip():
            problems.add(("task", "labels", j), f"label {clip(label)} is empty; every label needs a visible name")
    if len(set(labels)) != len(labels):
        problems.add(("task", "labels"), "lists a label twice")
    if task.positive is not None and task.positive not in labels:
        problems.add(("task", "positive"), f"{clip(task.positive)} is not in task.labels {clip(labels)}")
    template = task.answer_template
    if template is not None and template.count("{label}") != 1:
        problems.add(("task", "answer_template"), f"must contain '{{label}}' exactly once (got {template[:80]!r}), e.g. '\\boxed{{label}}'")


def _check_shape(tiny, problems: Problems) -> None:
    """Attention shapes transformers would only refuse when building the model (after the data stage)."""
    at = ("model", "tiny")
    if tiny.hidden_size % tiny.num_heads:
        problems.add(at + ("num_heads",), f"hidden_size {tiny.hidden_size} is not divisible by num_heads {tiny.num_heads}")
    elif (tiny.hidden_size // tiny.num_heads) % 2:
        # Rotary embeddings rotate pairs of dimensions: an odd head size (e.g. 30 / 2 = 15) fails in the forward pass.
        problems.add(at + ("num_heads",), f"head size hidden_size/num_heads = {tiny.hidden_size // tiny.num_heads} must be even (rotary embeddings)")
    if tiny.num_heads % tiny.num_kv_heads:
        problems.add(at + ("num_kv_heads",), f"num_heads {tiny.num_heads} is not divisible by num_kv_heads {tiny.num_kv_heads}")


def _check_test_fraction(exp: Experiment, names: list[str], problems: Problems) -> None:
    """A fraction in (0, 1], for test splits only: valid and train data are never downsampled here."""
    setting = exp.eval.test_fraction
    items = setting.items() if isinstance(setting, dict) else [(None, setting)]
    for split, fraction in items:
        at = ("eval", "test_fraction") + ((split,) if split is not None else ())
        if fraction is not None and not (0 < fraction <= 1):
            problems.add(at, f"must be a fraction in (0, 1], got {clip(fraction)}")
        if split is None:
            continue
        ds = exp.dataset(split)
        if ds is None:
            problems.add(at, f"no dataset named {clip(split)}{_hint(split, names)}")
        elif ds.role != "test":
            problems.add(at, f"'{split}' has role {ds.role}; only test splits are downsampled")


def _check_evaluators(exp: Experiment, names: list[str], base_dir: Path, problems: Problems) -> None:
    """Names, splits and each evaluator's own options (its resolve/check members: ftlab.evaluate.base)."""
    evaluators, reads, resolve_options = (owner(f"evaluate.{n}") for n in ("evaluators", "reads", "resolve_options"))

    seen: list[str] = []
    for i, ev in enumerate(exp.eval.evaluators):
        at = ("eval", "evaluators", i)
        if ev.name not in evaluators:
            problems.add(at + ("name",), f"unknown evaluator '{ev.name}'{_hint(ev.name, evaluators.names())}")
            continue
        if ev.name in seen:
            problems.add(at + ("name",), f"evaluator '{ev.name}' is listed twice")
        seen.append(ev.name)
        for j, split in enumerate(ev.splits or []):
            if split not in names:
                problems.add(at + ("splits", j), f"no dataset named '{split}'{_hint(split, names)}")
        options, found = resolve_options(ev.name, ev.options, base_dir, exp.task)
        for loc, message in found:
            problems.add(at + tuple(loc), message)
        for earlier in reads(ev.name, options):
            if earlier not in seen[:-1]:
                problems.add(at, f"{ev.name} reads the records of {clip(earlier)}: list that evaluator before it")


def _check_select(exp: Experiment, names: list[str], base_dir: Path, problems: Problems) -> None:
    select = exp.eval.select
    ds = exp.dataset(select.split)
    if ds is None:
        valid = [d.name for d in exp.datasets_with_role("valid")]
        if not valid:
            problems.add(("datasets",), "needs a dataset with role: valid to choose checkpoints (never the test split)")
        else:
            problems.add(("eval", "select", "split"), f"no dataset named '{select.split}'{_hint(select.split, valid)}")
    elif ds.role != "valid":
        problems.add(
            ("eval", "select", "split"),
            f"'{select.split}' has role {ds.role}; checkpoints are chosen on a valid dataset only "
            "(the test split never chooses a checkpoint)",
        )
    elif select.split not in exp.eval_splits() and not any(
        e.name == exp.eval.select_evaluator() and e.splits and select.split in e.splits for e in exp.eval.evaluators
    ):
        problems.add(("eval", "splits"), f"must include the selection split '{select.split}'")
    name = exp.eval.select_evaluator()
    chosen = next((e for e in exp.eval.evaluators if e.name == name), None)
    if chosen is None:
        listed = [e.name for e in exp.eval.evaluators]
        problems.add(("eval", "select", "evaluator"), f"'{name}' is not among eval.evaluators{_hint(name, listed)}")
        return
    if chosen.splits is not None and select.split not in chosen.splits:
        problems.add(("eval", "select", "split"), f"evaluator '{name}' does not run on '{select.split}' (its splits: {chosen.splits})")
    _check_select_metric(exp, chosen, base_dir, problems)


def _check_select_metric(exp: Experiment, chosen, base_dir: Path, problems: Problems) -> None:
    """The selection metric must be one the evaluator records with these options (when it says up front)."""
    evaluators, produced_metrics, resolve_options = (owner(f"evaluate.{n}") for n in ("evaluators", "produced_metrics", "resolve_options"))

    if chosen.name not in evaluators:
        return
    options, found = resolve_options(chosen.name, chosen.options, base_dir, exp.task)
    if found:
        return  # reported with the evaluator
    metrics = produced_metrics(chosen.name, options, exp.task)
    metric = exp.eval.select.metric
    if metrics is not None and metric not in metrics:
        shown = sorted(metrics)
        problems.add(
            ("eval", "select", "metric"),
            f"evaluator '{chosen.name}' does not record '{metric}'.{did_you_mean(metric, shown)} It records: {', '.join(shown)}",
        )


def _hint(name: str, choices: list[str]) -> str:
    return f".{did_you_mean(clip_text(name, 60), choices)} Available: {clip_text(', '.join(choices), 200)}"
