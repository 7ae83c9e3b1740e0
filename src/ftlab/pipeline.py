"""The stage graph of an experiment: which stage tasks exist, their identities and dependencies.

    data/<dataset>  ->  model/tiny  ->  train/<run>  ->  eval/<run>  ->  report

Every task is a pure function of its inputs (`Task.inputs`, all JSON-able) and writes only into
`Task.out_dir`. Its identity hashes those inputs plus its dependencies' identities, so a task whose
identity and outputs already exist is skipped, and any change upstream re-runs what depends on it.
Runners (ftlab.runners) decide only where a task runs; `STAGES` says what it does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ftlab.data.curate.graph import curate_task
from ftlab.spec.identity import IDENTITY_VERSION, effective_config, stable_hash
from ftlab.spec.plan import Plan, Run
from ftlab.spec.schema import RUNTIME_FIELDS, Dataset, Experiment

STAGE_ORDER = ("data", "model", "curate", "baseline", "train", "eval", "report")
# Bump a stage's version when its code changes what it produces: old outputs then re-run.
STAGE_VERSIONS = {"data": 1, "model": 1, "curate": 1, "baseline": 1, "train": 3, "eval": 2, "report": 1}
# Stages that keep their outputs when their identity changes: they validate each cached piece
# themselves (eval: per checkpoint, evaluator and split), so adding an evaluator runs only it.
KEEPS_OUTPUTS = {"eval"}


@dataclass(frozen=True)
class Task:
    stage: str
    key: str  # unique within the experiment, e.g. "train/lr0.001_s0"
    identity: str
    out_dir: Path
    deps: tuple[str, ...]
    inputs: dict[str, Any]
    run: Run | None = None


@dataclass
class Graph:
    plan: Plan
    tasks: list[Task] = field(default_factory=list)  # in dependency order

    def task(self, key: str) -> Task:
        for t in self.tasks:
            if t.key == key:
                return t
        from ftlab.errors import StageError
        from ftlab.plugins import did_you_mean

        raise StageError(f"no stage task '{key}' in this experiment.{did_you_mean(key, [t.key for t in self.tasks])}")


def build_graph(plan: Plan) -> Graph:
    graph = Graph(plan)
    out = plan.output_dir
    data_tasks: dict[str, Task] = {}

    def data_task(exp: Experiment, ds: Dataset) -> Task:
        """The task whose out_dir holds this dataset's examples: its curate task when it has `curate:`."""
        raw = raw_data_task(exp, ds)
        return raw if not ds.curate else curate_task(plan, exp, ds, raw, base_model, graph, _identity)

    def raw_data_task(exp: Experiment, ds: Dataset) -> Task:
        inputs = _data_inputs(plan, exp, ds)
        identity = _identity("data", inputs, ())
        if identity not in data_tasks:
            key = f"data/{ds.name}-{identity[:8]}"
            data_tasks[identity] = Task("data", key, identity, out / "data" / key.split("/")[1], (), inputs)
            graph.tasks.append(data_tasks[identity])
        return data_tasks[identity]

    model_tasks: dict[str, Task] = {}

    def base_model(exp: Experiment) -> tuple[str, str, Task | None]:
        """(model dir or HF id, identity, building task or None)."""
        if exp.model.tiny is None:
            local = plan.base_dir / exp.model.path
            path = str(local.resolve()) if local.exists() else exp.model.path
            return path, stable_hash({"model": exp.model.path}), None
        corpus = [raw_data_task(exp, exp.dataset(name)) for name in exp.model.tiny.tokenizer_corpus]
        inputs = {"tiny": exp.model.tiny.model_dump(mode="json"), "corpus": [str(t.out_dir) for t in corpus]}
        identity = _identity("model", {"tiny": inputs["tiny"]}, corpus)
        if identity not in model_tasks:
            key = f"model/tiny-{identity[:8]}"
            task = Task("model", key, identity, out / "models" / key.split("/")[1], tuple(t.key for t in corpus), inputs)
            model_tasks[identity] = task
            graph.tasks.append(task)
        task = model_tasks[identity]
        return str(task.out_dir), identity, task

    evals: list[Task] = []
    for run in plan.runs:
        exp = run.config
        base_path, base_identity, base_task = base_model(exp)
        base_deps = (base_task.key,) if base_task else ()
        run_dir = out / "runs" / run.name
        train_task = None
        if run.trains:
            train_data = data_task(exp, exp.datasets_with_role("train")[0])
            config = effective_config(exp)
            inputs = {
                "run_id": run.run_id,
                "kind": run.kind,
                "seed": run.seed,
                "positive": exp.task.positive_label,
                "base": base_path,
                "data": str(train_data.out_dir),
                "method": config["method"],
                "train": exp.train.model_dump(mode="json"),
            }
            # Paths are where things live, not what they are: hash the base and data identities instead.
            # The run id is left out too: it also covers eval settings, which must not retrain.
            hashed = {k: v for k, v in inputs.items() if k not in ("base", "data", "run_id")} | {"base": base_identity}
            # Runtime-only train fields (logging_steps, report_to) change no weights: not in the identity.
            hashed["train"] = {k: v for k, v in hashed["train"].items() if ("train", k) not in RUNTIME_FIELDS}
            identity = _identity("train", hashed, [train_data] + ([base_task] if base_task else []))
            train_task = Task("train", f"train/{run.name}", identity, run_dir / "train", base_deps + (train_data.key,), inputs, run)
            graph.tasks.append(train_task)
        evaluator_list = _evaluators(plan, exp)
        train_pool = data_task(exp, exp.datasets_with_role("train")[0])  # holds the few-shot pool
        split_names = list(dict.fromkeys(exp.eval_splits() + [s for e in evaluator_list for s in e["splits"]]))
        splits = {name: data_task(exp, exp.dataset(name)) for name in split_names}
        inputs = {
            "run_id": run.run_id,
            "base": base_path,
            "train": str(train_task.out_dir) if train_task else None,
            "splits": {name: str(t.out_dir) for name, t in splits.items()},
            "task": exp.task.model_dump(mode="json"),
            "select": selection(exp),
            "batch_size": exp.eval.batch_size,
            # QLoRA checkpoints are scored on the same 4-bit base they were trained on.
            "quantization": exp.method.quantization.model_dump(mode="json") if exp.method.name == "qlora" and run.trains else None,
            "evaluators": evaluator_list,
            "eval": exp.eval.model_dump(mode="json", include={"exclude_final", "test_fraction", "test_seed", "group_by", "expected"}),
            "roles": {name: exp.dataset(name).role for name in splits},
            "fewshot": {"k": exp.fewshot.k, "pool": str(train_pool.out_dir), "pool_id": train_pool.identity,
                        "splits": exp.fewshot.splits} if exp.fewshot else None,
            # The train answers give a classification task's answer shape (\boxed{Accept}: data/answers.py).
            "train_data": str(train_pool.out_dir),
            # What a cached (checkpoint, evaluator, split) result was computed from: see evaluate/stage.py.
            "source": train_task.identity if train_task else base_identity,
            "split_ids": {name: t.identity for name, t in splits.items()},
        }
        upstream = [train_task] if train_task else ([base_task] if base_task else [])
        upstream += [train_pool] if not train_task else []  # a trained run reaches it through train
        hashed = {
            "run_id": run.run_id, "base": base_identity, "task": inputs["task"], "select": inputs["select"],
            "splits": sorted(splits), "quantization": inputs["quantization"], "evaluators": evaluator_list,
            "eval": inputs["eval"], "fewshot_k": exp.fewshot.k if exp.fewshot else None, "fewshot_splits": exp.fewshot.splits if exp.fewshot else None,
        }
        identity = _identity("eval", hashed, upstream + list(splits.values()))
        deps = tuple(t.key for t in upstream) + tuple(t.key for t in splits.values())
        eval_task = Task("eval", f"eval/{run.name}", identity, run_dir / "eval", deps, inputs, run)
        graph.tasks.append(eval_task)
        evals.append(eval_task)

    from ftlab.baselines.graph import baseline_tasks  # classical baselines (seed 000): runs of their own

    baselines = baseline_tasks(plan, data_task, _identity, selection(plan.experiment), Task)
    graph.tasks += baselines
    roles = {d.name: d.role for d in plan.experiment.datasets}
    splits = sorted(plan.experiment.eval_splits(), key=lambda s: roles[s] != "valid")  # valid chose; test reports
    report_inputs = {
        "evals": {t.run.name: str(t.out_dir) for t in evals} | {t.inputs["name"]: str(t.out_dir) for t in baselines},
        "splits": splits,
        # What the report judges and draws, how checkpoints were chosen, and the spec it prints.
        "report": plan.experiment.report.model_dump(mode="json"),
        "select": selection(plan.experiment),
        "spec": str(plan.spec_path),
        "name": plan.experiment.name,
        # the plan's runs, not every run the registry remembers
        "run_ids": [t.run.run_id for t in evals] + [t.inputs["run_id"] for t in baselines],
        "variables": list(dict.fromkeys(k for r in plan.runs for k in r.values)),  # sweep order, for tables
    }
    curations = {t.key: str(t.out_dir) for t in graph.tasks if t.stage == "curate"}
    if curations:  # only then: an experiment without curation keeps its report identity
        report_inputs["curations"] = curations
    graph.tasks.append(
        Task("report", "report", _identity("report", report_inputs, evals + baselines), out / "report",
             tuple(t.key for t in evals + baselines), report_inputs)
    )
    graph.tasks.sort(key=lambda t: STAGE_ORDER.index(t.stage))  # stable: keeps plan order within a stage
    return graph


def selection(exp: Experiment) -> dict[str, Any]:
    """eval.select with its defaults resolved: the first evaluator, the metric's own direction (ece: lower)."""
    from ftlab.evaluate.metrics import LOWER_IS_BETTER

    select = exp.eval.select
    higher = select.higher_is_better if select.higher_is_better is not None else select.metric not in LOWER_IS_BETTER
    return select.model_dump(mode="json") | {"evaluator": exp.eval.select_evaluator(), "higher_is_better": higher}


def _evaluators(plan: Plan, exp: Experiment) -> list[dict[str, Any]]:
    """The run's evaluators with their splits filled in and options resolved (templates inlined)."""
    from ftlab.evaluate.evaluators import needs_model, resolve_options

    out = []
    for ev in exp.eval.evaluators:
        options, _ = resolve_options(ev.name, ev.options, plan.base_dir, exp.task)  # problems: reported by validate
        splits = list(ev.splits) if ev.splits is not None else exp.eval_splits()
        out.append({"name": ev.name, "splits": splits, "options": options, "needs_model": needs_model(ev.name, options)})
    return out


def _data_inputs(plan: Plan, exp: Experiment, ds: Dataset) -> dict[str, Any]:
    inputs: dict[str, Any] = {
        "dataset": ds.model_dump(mode="json", exclude={"curate"}),  # curation: its own task (data/curate)
        "labels": exp.task.labels,
        "positive": exp.task.positive_label,
        "label_field": exp.task.label_field,
        # The train set gives up the few-shot pool (seed 001: shots never trained on).
        "fewshot": exp.fewshot.model_dump(mode="json", exclude={"k", "splits"}) if exp.fewshot and ds.role == "train" else None,
    }
    if ds.path is not None:
        path = (plan.base_dir / ds.path).resolve()
        inputs["file"] = str(path)
        from ftlab.data.sources import data_digest

        # content, not path: an edited file (or a registry's data file, an HF dataset dir) re-runs its stages
        inputs["digest"] = data_digest(path, ds.name_in_registry)
    return inputs


def _identity(stage: str, inputs: dict[str, Any], deps: list[Task]) -> str:
    payload = {
        "v": IDENTITY_VERSION,
        "stage": stage,
        "stage_version": STAGE_VERSIONS[stage],
        "inputs": {k: v for k, v in inputs.items() if k != "file"},
        "deps": sorted(t.identity for t in deps),
    }
    return stable_hash(payload)


StageFn = Callable[[Task, "StageContext"], dict[str, Any]]


@dataclass
class StageContext:
    """What a stage may use besides its inputs: the experiment dir and the registry."""

    experiment_dir: Path
    registry: Any  # ftlab.registry.Registry (typed loosely to keep this module import-light)
    spec_path: Path | None = None  # what `accelerate launch` hands back to `ftlab stage exec`


def stage_function(stage: str) -> StageFn:
    """Import lazily: the skip path of `ftlab run` must not pay for importing torch."""
    if stage == "data":
        from ftlab.data.stage import run_data as fn
    elif stage == "model":
        from ftlab.models.stage import run_model as fn
    elif stage == "train":
        from ftlab.train.stage import run_train as fn
    elif stage == "eval":
        from ftlab.evaluate.stage import run_eval as fn
    elif stage == "curate":
        from ftlab.data.curate.stage import run_curate as fn
    elif stage == "baseline":
        from ftlab.baselines.stage import run_baseline as fn
    elif stage == "report":
        from ftlab.report.stage import run_report as fn
    else:
        raise KeyError(stage)
    return fn
