"""The evaluator protocol and its registry; every evaluator module imports this one (no cycles).

    from ftlab.evaluate.base import EvalInput, Options, evaluators

    @evaluators.register("mine")
    class Mine:
        name, version = "mine", 1
        class Options(Options):
            threshold: float = 0.5
        def run(self, inp: EvalInput) -> list[dict]: ...          # one evidence record per example
        def metrics(self, records, inp) -> dict[str, Metric]: ...

Optional members, each used when present:
    resolve(options: dict, base_dir: Path, problems: list) -> dict
        at spec-load time, before the Options model: inline files the options name, make paths
        absolute, hash contents (identity follows content); append (key path, message) problems.
    check(options: Options, task: Task) -> list[(key path, message)]
        at spec-load time, after the Options model: semantic checks (parser names, regexes,
        template placeholders) that would otherwise fail only in the eval stage.
    produces(options: Options, task: Task) -> set[str] | None
        metric names it records (None: known only after running); `eval.select.metric` is
        checked against it.
    needs_model(options: dict) -> bool (default True)
        False when the evaluator loads the checkpoint itself (vLLM): the eval stage then does not
        load the HF model for it, and reading `inp.model` is an error.
    details(records, inp) -> dict
        extra evidence kept in the metrics file (calibration bins, log paths).
    reads(options: dict) -> list[str]
        evaluators whose records it reads from `inp.previous` (a judge reads `generate`'s): the
        spec must list them before it, checked at load.

Adding an evaluator is one new module in ftlab/evaluate/evaluators/ (found by import, no list).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, ValidationError

from ftlab.data.example import Example
from ftlab.evaluate.metrics import Metric
from ftlab.plugins import Plugins, did_you_mean

Problem = tuple[tuple, str]  # (key path inside the evaluator's spec entry, message)


class Options(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass
class EvalInput:
    checkpoint_model: Any  # a LoadedCheckpoint (see evaluate/stage.py): model and tokenizer load on first use
    examples: list[Example]
    options: dict[str, Any]
    batch_size: int
    labels: list[str] | None = None  # the classification task's label set; None for generation tasks
    positive: str | None = None
    answer_template: str = "{label}"  # how a trained answer writes a label (\boxed{{label}}: seed 002)
    previous: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    checkpoint: str | None = None  # the checkpoint directory, for backends that load it themselves
    out_dir: Any = None  # <eval>/<checkpoint>/<evaluator>: where an evaluator may keep extra artifacts (logs)

    uses_model: bool = True  # False: the evaluator declared needs_model False for these options

    @property
    def model(self):
        if not self.uses_model:
            from ftlab.errors import StageError

            raise StageError("this evaluator declared needs_model False but read the HF model")
        return self.checkpoint_model.model

    @property
    def tokenizer(self):
        return self.checkpoint_model.tokenizer


class Evaluator(Protocol):
    name: str
    version: int
    Options: type[BaseModel]

    def run(self, inp: EvalInput) -> list[dict[str, Any]]: ...

    def metrics(self, records: list[dict[str, Any]], inp: EvalInput) -> dict[str, Metric]: ...


evaluators: Plugins[Any] = Plugins("evaluator")


def resolve_options(name: str, raw: dict[str, Any], base_dir: Path, task) -> tuple[dict[str, Any], list[Problem]]:
    """An evaluator's options as the eval stage will use them (JSON-able), and every problem found."""
    cls = evaluators.get(name)
    problems: list[Problem] = []
    options = dict(raw)
    if hasattr(cls, "resolve"):
        options = cls.resolve(options, base_dir, problems)
    try:
        validated = cls.Options.model_validate(options)
    except ValidationError as err:
        allowed = list(cls.Options.model_fields)
        for e in err.errors():
            loc = tuple(e["loc"])
            if e["type"] == "extra_forbidden":
                hint = did_you_mean(str(loc[-1]), allowed)
                problems.append((loc, f"unknown option '{loc[-1]}' for evaluator {name}.{hint} Allowed: {', '.join(allowed)}."))
            else:
                problems.append((loc, "required key is missing" if e["type"] == "missing" else e["msg"]))
        return options, problems
    if hasattr(cls, "check"):
        problems += cls.check(validated, task)
    return validated.model_dump(mode="json"), problems


def produced_metrics(name: str, options: dict[str, Any], task) -> set[str] | None:
    """The metric names evaluator `name` records with these (resolved) options; None if not known up front."""
    cls = evaluators.get(name)
    if not hasattr(cls, "produces"):
        return None
    return cls.produces(cls.Options.model_validate(options), task)


def reads(name: str, options: dict[str, Any]) -> list[str]:
    """The evaluators whose records `name` reads with these (resolved) options."""
    cls = evaluators.get(name)
    return list(cls.reads(options)) if hasattr(cls, "reads") else []


def needs_model(name: str, options: dict[str, Any]) -> bool:
    cls = evaluators.get(name)
    return cls.needs_model(options) if hasattr(cls, "needs_model") else True
