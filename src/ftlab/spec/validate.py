"""Turn pydantic errors and cross-field checks into YAML-path problems with did-you-mean hints."""

from __future__ import annotations

import types
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from ftlab.plugins import did_you_mean
from ftlab.spec.schema import Experiment
from ftlab.spec.sweep import Problems

METRICS = ("accuracy", "precision", "recall", "f1", "auroc", "predicted_positive_rate", "ece", "safety_rate")


def model_problems(err: ValidationError, problems: Problems, skip: set[tuple]) -> None:
    """Add each pydantic error to `problems` at its YAML path (paths in `skip` were already reported)."""
    for e in err.errors():
        loc = tuple(e["loc"])
        if any(loc[: len(s)] == s for s in skip):
            continue
        kind = e["type"]
        if kind == "extra_forbidden":
            key = str(loc[-1])
            allowed = _fields_at(Experiment, loc[:-1])
            hint = did_you_mean(key, allowed)
            listing = f" Allowed: {', '.join(allowed)}." if allowed else ""
            problems.add(loc, f"unknown key '{key}'.{hint}{listing}")
        elif kind == "missing":
            problems.add(loc, "required key is missing")
        else:
            got = repr(e.get("input"))
            got = got if len(got) <= 60 else got[:57] + "..."
            problems.add(loc, f"{e['msg']} (got {got})")


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


def cross_checks(exp: Experiment, base_dir: Path, problems: Problems) -> None:
    """Checks that span fields: exactly-one choices, names that must exist, split discipline."""
    from ftlab.data.generate import generators

    m = exp.model
    if (m.path is None) == (m.tiny is None):
        problems.add(("model",), "give exactly one of 'path' (HF id or local dir) or 'tiny' (built by ftlab)")
    elif m.path is not None and not (base_dir / m.path).exists() and m.path.startswith((".", "/", "~")):
        problems.add(("model", "path"), f"local model directory not found: {base_dir / m.path}")

    labels = exp.task.labels
    if len(set(labels)) != len(labels):
        problems.add(("task", "labels"), "lists a label twice")
    if exp.task.positive is not None and exp.task.positive not in labels:
        problems.add(("task", "positive"), f"'{exp.task.positive}' is not in task.labels {labels}")

    names = [d.name for d in exp.datasets]
    for i, d in enumerate(exp.datasets):
        at = ("datasets", i)
        if names.count(d.name) > 1 and names.index(d.name) != i:
            problems.add(at + ("name",), f"dataset name '{d.name}' is used twice")
        if (d.path is None) == (d.generate is None):
            problems.add(at, "give exactly one of 'path' (a JSONL/JSON file) or 'generate' (a built-in generator)")
        elif d.path is not None and not (base_dir / d.path).is_file():
            problems.add(at + ("path",), f"file not found: {base_dir / d.path}")
        elif d.generate is not None and d.generate.name not in generators:
            hint = did_you_mean(d.generate.name, generators.names())
            problems.add(
                at + ("generate", "name"),
                f"unknown data generator '{d.generate.name}'.{hint} Available: {', '.join(generators.names())}",
            )
    if len(exp.datasets_with_role("train")) != 1:
        problems.add(("datasets",), "needs exactly one dataset with role: train")

    if m.tiny is not None:
        for j, name in enumerate(m.tiny.tokenizer_corpus):
            if name not in names:
                problems.add(("model", "tiny", "tokenizer_corpus", j), f"no dataset named '{name}'{_hint(name, names)}")

    for j, name in enumerate(exp.eval.splits or []):
        if name not in names:
            problems.add(("eval", "splits", j), f"no dataset named '{name}'{_hint(name, names)}")
    _check_evaluators(exp, names, base_dir, problems)
    for split in exp.eval.expected:
        if split not in names:
            problems.add(("eval", "expected", split), f"no dataset named '{split}'{_hint(split, names)}")
    if exp.fewshot is not None and exp.fewshot.k > exp.fewshot.pool:
        problems.add(("fewshot", "k"), f"k={exp.fewshot.k} is larger than the pool ({exp.fewshot.pool})")
    _check_select(exp, names, problems)
    from ftlab.report.checks import report_problems  # report.checks: kinds, options, split names

    report_problems(exp, problems)


def _check_evaluators(exp: Experiment, names: list[str], base_dir: Path, problems: Problems) -> None:
    from ftlab.evaluate.evaluators import evaluators

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
        options = resolve_options(ev.name, ev.options, base_dir, problems, at)
        try:
            evaluators.get(ev.name).Options.model_validate(options)
        except ValidationError as err:
            for e in err.errors():
                loc = at + tuple(e["loc"])
                if e["type"] == "extra_forbidden":
                    allowed = list(evaluators.get(ev.name).Options.model_fields)
                    problems.add(loc, f"unknown option '{loc[-1]}' for evaluator {ev.name}.{did_you_mean(str(loc[-1]), allowed)} Allowed: {', '.join(allowed)}.")
                else:
                    problems.add(loc, "required key is missing" if e["type"] == "missing" else e["msg"])
        if ev.name == "judge" and options.get("of", "generate") not in seen[:-1]:
            problems.add(at, f"judge scores the responses of '{options.get('of', 'generate')}': list that evaluator before it")


def resolve_options(name: str, options: dict, base_dir: Path, problems: Problems, at: tuple) -> dict:
    """Inline a judge's template_file and make its local model path absolute (identity follows content);
    an inspect evaluator's task and data files likewise (see _resolve_inspect)."""
    options = dict(options)
    if "template_file" in options:
        path = base_dir / str(options.pop("template_file"))
        if not path.is_file():
            problems.add(at + ("template_file",), f"file not found: {path}")
            options["template"] = "{response}"
        else:
            options["template"] = path.read_text(encoding="utf-8")
    if name == "judge" and isinstance(options.get("model"), str) and (base_dir / options["model"]).exists():
        options["model"] = str((base_dir / options["model"]).resolve())
    if name == "inspect":
        _resolve_inspect(options, base_dir, problems, at)
    return options


def _resolve_inspect(options: dict, base_dir: Path, problems: Problems, at: tuple) -> None:
    """Task file, data_path and log_dir made absolute; task_hash follows the task and data files' content."""
    import hashlib
    import importlib.util

    from ftlab.evaluate.inspect_bridge import INSTALL_HINT, split_task

    if importlib.util.find_spec("inspect_ai") is None:
        problems.add(at + ("name",), f"the inspect evaluator needs inspect-ai, which is not installed: {INSTALL_HINT}")
    files = []
    if isinstance(options.get("task"), str):
        path, task_name = split_task(options["task"])
        path = (base_dir / path).resolve()
        options["task"] = str(path) + (f"@{task_name}" if task_name else "")
        files.append((("task",), path))
    args = options.get("task_args")
    if isinstance(args, dict) and isinstance(args.get("data_path"), str) and "://" not in args["data_path"]:  # not hf://, s3://
        args = options["task_args"] = dict(args)
        args["data_path"] = str((base_dir / args["data_path"]).resolve())
        files.append((("task_args", "data_path"), Path(args["data_path"])))
    if isinstance(options.get("log_dir"), str):
        options["log_dir"] = str((base_dir / options["log_dir"]).resolve())
    digest = hashlib.sha256()
    for key, path in files:
        if path.is_file():
            digest.update(path.read_bytes())
        elif not path.exists():
            problems.add(at + key, f"not found: {path}")
    options["task_hash"] = digest.hexdigest()[:16]


def _check_select(exp: Experiment, names: list[str], problems: Problems) -> None:
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
    elif select.split not in exp.eval_splits():
        problems.add(("eval", "splits"), f"must include the selection split '{select.split}'")
    if select.evaluator not in [e.name for e in exp.eval.evaluators]:
        problems.add(("eval", "select", "evaluator"), f"'{select.evaluator}' is not among eval.evaluators")
    if select.evaluator in ("logits", "generate") and select.metric not in METRICS:
        problems.add(
            ("eval", "select", "metric"),
            f"unknown metric '{select.metric}'.{did_you_mean(select.metric, METRICS)} Available: {', '.join(METRICS)}",
        )


def _hint(name: str, choices: list[str]) -> str:
    return f".{did_you_mean(name, choices)} Available: {', '.join(choices)}"
