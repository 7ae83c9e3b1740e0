"""The stage graph of an experiment: which stage tasks exist, their typed inputs, identities, deps.

    data/<dataset>  ->  model/tiny  ->  train/<run>  ->  eval/<run>  ->  report
    data/<dataset>  ->  curate/<dataset>  ->  train/<run>     (a dataset with `curate:`; difficulty also reads a model)
    data/<dataset>  ->  baseline/<model>  ->  report           (`baselines:`, runs of kind baseline)

Every task is a pure function of its inputs (a frozen model of ftlab.contract.inputs) and writes only
into `Task.out_dir`. Its identity hashes those inputs plus its dependencies' identities
(ftlab.contract.hashing), so a task whose identity and outputs already exist is skipped, and any
change upstream re-runs what depends on it. Runners (ftlab.runners) decide only where a task runs.

Speed: sweep points share the field objects they did not change (ftlab.spec.points), so the data,
model and eval inputs that 100,000 runs share are built and hashed once per distinct object, and
only what a run changes (its train settings, its id) is hashed per run (bench/plan_scale).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from ftlab.errors import DataError
from ftlab.gcpause import gc_paused
from ftlab.spec.identity import stable_hash
from ftlab.spec.plan import Plan
from ftlab.spec.schema import Dataset, Experiment
from ftlab.contract import (
    REPORT_KEY, Memo, StageContext, Task, baseline_key, curate_key, data_key, eval_key, identity, model_key,
    split_checkpoint_key, train_key,
)
from ftlab.contract import layout
from ftlab.contract.hashing import inputs_json
from ftlab.contract.inputs import (
    BaselineInputs, CurateInputs, DataInputs, EvalInputs, EvalSettings, EvaluatorRun, FewshotDraw, ModelInputs,
    ReportInputs, Selection, TrainInputs,
)

from ftlab.stages import ORDER, STAGES

__all__ = ["Graph", "StageContext", "Task", "build_graph", "selection"]


@dataclass
class Graph:
    plan: Plan
    tasks: list[Task] = field(default_factory=list)  # in dependency order
    _by_key: dict[str, Task] = field(default_factory=dict, repr=False)

    def task(self, key: str) -> Task:
        """The task of `key`; `<key>@<part>` is one part of a task run on its own (eval/<run>@<checkpoint>),
        which waits for its task's dependencies except the producer of its part (a checkpoint is
        scored while its run still trains)."""
        if len(self._by_key) != len(self.tasks):
            self._by_key = {t.key: t for t in self.tasks}
        found = self._by_key.get(key)
        if found is not None:
            return found
        whole, part = split_checkpoint_key(key)
        if part is not None and whole in self._by_key:
            task = self._by_key[whole]
            return task.part_of(part, tuple(d for d in task.deps if self._by_key[d].stage != "train"))
        from ftlab.errors import StageError
        from ftlab.plugins import did_you_mean

        raise StageError(f"no stage task '{key}' in this experiment.{did_you_mean(key, [t.key for t in self.tasks])}")


class _Shared:
    """Inputs and tasks keyed by the spec objects they come from (`is`, not equality: equal
    objects are rare and comparing them costs what hashing does)."""

    def __init__(self) -> None:
        self.hits: dict[tuple[int, ...], tuple[tuple, Any]] = {}

    def get(self, *objects, make):
        key = tuple(map(id, objects))
        hit = self.hits.get(key)
        if hit is None:
            # Holding the objects keeps their ids from being reused, so equal ids mean the same objects.
            hit = self.hits[key] = (objects, make())
        return hit[1]


def build_graph(plan: Plan) -> Graph:
    with gc_paused():  # ftlab.gcpause: ~45% of a 100,000-run graph
        return _build_graph(plan)


def _build_graph(plan: Plan) -> Graph:
    graph = Graph(plan)
    out = plan.output_dir
    memo, shared = Memo(), _Shared()
    tasks_by_identity: dict[str, Task] = {}

    def add(task: Task) -> Task:
        if task.identity not in tasks_by_identity:
            tasks_by_identity[task.identity] = task
            graph.tasks.append(task)
        return tasks_by_identity[task.identity]

    def data_task(exp: Experiment, ds: Dataset) -> Task:
        """The task whose out_dir holds this dataset's examples: its curate task when it has `curate:`."""
        raw = raw_data_task(exp, ds)
        return curate_task(exp, ds, raw) if ds.curate else raw

    def raw_data_task(exp: Experiment, ds: Dataset) -> Task:
        def make() -> Task:
            inputs = _data_inputs(plan, exp, ds)
            ident = identity(STAGES["data"], inputs, memo=memo)
            key = data_key(ds.name, ident)
            return add(Task(STAGES["data"], key, ident, out / "data" / key.split("/")[1], (), inputs))

        return shared.get(ds, exp.task, exp.fewshot, make=make)

    def base_model(exp: Experiment) -> tuple[str, str, Task | None]:
        """(model dir or HF id, identity, building task or None)."""
        def make():
            if exp.model.gguf is not None:
                return gguf_model(exp)
            if exp.model.tiny is None:
                local = plan.base_dir / exp.model.path
                path = str(local.resolve()) if local.exists() else exp.model.path
                return path, stable_hash({"model": exp.model.path}), None
            # Raw data: a difficulty filter asks this model, so its tokenizer cannot read the curated
            # set; and not resampled: runs that differ only in class proportion share one base.
            corpus = [raw_data_task(exp, _unresampled(exp.dataset(name))) for name in exp.model.tiny.tokenizer_corpus]
            inputs = ModelInputs(tiny=exp.model.tiny, corpus=[str(t.out_dir) for t in corpus])
            ident = identity(STAGES["model"], inputs, [t.identity for t in corpus], memo=memo)
            key = model_key(ident)
            task = add(Task(STAGES["model"], key, ident, out / "models" / key.split("/")[1], tuple(t.key for t in corpus), inputs))
            return str(task.out_dir), ident, task

        return shared.get(exp.model, exp.datasets, exp.task, exp.fewshot, make=make)

    def gguf_model(exp: Experiment) -> tuple[str, str, Task]:
        """The cached HF folder of a GGUF file, and the task that converts it (done once per file content).
        The task's markers live in the cache beside the folder, shared by every experiment: deleting
        the cache deletes them too, so a done marker never points at a missing folder."""
        from ftlab.models import gguf

        path = gguf.resolve(exp.model.gguf, plan.base_dir)
        sha = gguf.digest(path)
        inputs = ModelInputs(gguf_sha256=sha, gguf_file=str(path))
        ident = identity(STAGES["model"], inputs, memo=memo)
        key = model_key(ident, "gguf")
        folder = gguf.converted_dir(sha)
        task = add(Task(STAGES["model"], key, ident, folder.with_name(f"{folder.name}.task"), (), inputs))
        return str(folder), ident, task

    def curate_task(exp: Experiment, ds: Dataset, raw: Task) -> Task:
        """A data task that may need a model: the difficulty filter asks the base or a named model."""
        def make() -> Task:
            model_dir = model_id = None
            deps = [raw]
            wanted = [f.options.get("model", "base") for f in ds.curate if f.name == "difficulty"]
            if wanted and wanted[0] == "base":
                model_dir, model_id, model_task = base_model(exp)
                deps += [model_task] if model_task else []
            elif wanted:
                local = plan.base_dir / wanted[0]
                model_dir = str(local.resolve()) if local.exists() else wanted[0]
                model_id = stable_hash({"model": wanted[0]})
            inputs = CurateInputs(filters=ds.curate, model_id=model_id, data_id=raw.identity, labels=exp.task.labels,
                                  dataset=ds.name, data_dir=str(raw.out_dir), model_dir=model_dir)
            ident = identity(STAGES["curate"], inputs, [t.identity for t in deps], memo=memo)
            key = curate_key(ds.name, ident)
            out_dir = out / "data" / f"{ds.name}-curated-{ident[:8]}"
            return add(Task(STAGES["curate"], key, ident, out_dir, tuple(t.key for t in deps), inputs))

        return shared.get(ds, exp.task, exp.fewshot, exp.model, exp.datasets, make=make)

    def group(exp: Experiment, trains: bool) -> _Group:
        """What runs sharing these spec objects share: base model, train data, input prototypes."""
        base_path, base_identity, base_task = base_model(exp)
        train_ds = exp.datasets_with_role("train")[0]
        train_pool = data_task(exp, train_ds)  # trains (curated, when it has `curate:`)
        fewshot_pool = raw_data_task(exp, train_ds)  # holds the few-shot pool (fewshot.jsonl; curation keeps none)
        base_deps = (base_task,) if base_task else ()
        train = TrainInputs(
            run_id="", kind="sweep", seed=0, positive=exp.task.positive_label, base_id=base_identity,
            base_dir=base_path, data_dir=str(train_pool.out_dir), method=exp.method, train=exp.train,
        ) if trains else None
        evaluation, splits = _eval_prototype(plan, exp, trains, data_task, train_pool, fewshot_pool)
        evaluation = evaluation.model_copy(update={"base_dir": base_path, "source": base_identity, "base_source": base_identity})
        return _Group(
            base_identity, train, (train_pool, *base_deps), tuple(t.key for t in (*base_deps, train_pool)),
            evaluation, splits, [] if trains else [*base_deps, train_pool],
        )

    evals: list[Task] = []
    for run in plan.runs:
        exp = run.config
        # One lookup per run: sweep points share the spec objects their values do not reach.
        g = shared.get(exp.model, exp.datasets, exp.task, exp.fewshot, exp.eval, exp.method, run.trains,
                       make=lambda: group(exp, run.trains))
        train_task = None
        if g.train is not None:
            # Copies of the group's validated prototypes share its field objects, whose JSON the
            # memo then holds (validating per run would copy lists and dicts to be dumped anew).
            inputs = g.train.model_copy(update={"run_id": run.run_id, "kind": run.kind, "seed": run.seed, "train": exp.train})
            ident = identity(STAGES["train"], inputs, [t.identity for t in g.train_upstream], memo=memo)
            train_task = Task(STAGES["train"], train_key(run.name), ident, layout.train_dir(out, run.name), g.train_deps, inputs, run)
            graph.tasks.append(train_task)
            inputs = g.evaluation.model_copy(update={"run_id": run.run_id, "source": ident, "train_dir": str(train_task.out_dir)})
            upstream = [train_task, *g.splits]  # a trained run reaches the train data (and the pool) through it
        else:
            inputs = g.evaluation.model_copy(update={"run_id": run.run_id})
            upstream = g.untrained_upstream + g.splits
        ident = identity(STAGES["eval"], inputs, [t.identity for t in upstream], memo=memo)
        eval_task = Task(STAGES["eval"], eval_key(run.name), ident, layout.eval_dir(out, run.name), tuple(t.key for t in upstream), inputs, run)
        graph.tasks.append(eval_task)
        evals.append(eval_task)

    baselines = [add(t) for t in _baseline_tasks(plan, data_task, memo)]
    roles = {d.name: d.role for d in plan.experiment.datasets}
    curations = {t.key: str(t.out_dir) for t in graph.tasks if t.stage == "curate"}
    report_inputs = ReportInputs(
        evals={t.run.name: str(t.out_dir) for t in evals} | {t.inputs.name: str(t.out_dir) for t in baselines},
        splits=sorted(plan.experiment.eval_splits(), key=lambda s: roles[s] != "valid"),  # valid chose; test reports
        report=plan.experiment.report, select=selection(plan.experiment), spec=str(plan.spec_path),
        name=plan.experiment.name, run_ids=[t.run.run_id for t in evals] + [t.inputs.run_id for t in baselines],
        variables=list(dict.fromkeys(k for r in plan.runs for k in r.values)),
        curations=curations or None,  # None: not hashed, so an experiment without curation keeps its report identity
        one_vs_rest=plan.experiment.task.positive_label if len(plan.experiment.task.labels or ()) > 2 else None,
    )
    upstream = evals + baselines
    graph.tasks.append(Task(STAGES["report"], REPORT_KEY, identity(STAGES["report"], report_inputs, [t.identity for t in upstream], memo=memo),
                            out / "report", tuple(t.key for t in upstream), report_inputs))
    graph.tasks.sort(key=lambda t: ORDER.index(t.stage))  # stable: keeps plan order within a stage
    return graph


@dataclass
class _Group:
    base_identity: str
    train: TrainInputs | None  # prototype: run id, kind, seed and train settings are the run's
    train_upstream: tuple[Task, ...]
    train_deps: tuple[str, ...]
    evaluation: EvalInputs  # prototype: run id, source and train dir are the run's
    splits: list[Task]
    untrained_upstream: list[Task]


def _eval_prototype(plan: Plan, exp: Experiment, trains: bool, data_task, train_pool: Task,
                    fewshot_pool: Task) -> tuple[EvalInputs, list[Task]]:
    """The eval inputs that runs sharing these spec objects share, and the split data tasks."""
    evaluators = _evaluators(plan, exp)
    split_names = list(dict.fromkeys(exp.eval_splits() + [s for e in evaluators for s in e.splits]))
    splits = {name: data_task(exp, exp.dataset(name)) for name in split_names}
    fewshot = exp.fewshot
    prototype = EvalInputs(
        run_id="", source="", base_dir="", train_dir=None,
        split_dirs={name: str(t.out_dir) for name, t in splits.items()},
        split_ids={name: t.identity for name, t in splits.items()},
        roles={name: exp.dataset(name).role for name in splits},
        task=exp.task, select=selection(exp), batch_size=exp.eval.batch_size,
        quantization=exp.method.quantization if exp.method.name == "qlora" and trains else None,
        evaluators=evaluators,
        eval=EvalSettings(**{k: getattr(exp.eval, k) for k in EvalSettings.model_fields}),
        fewshot_k=fewshot.k if fewshot else None, fewshot_splits=fewshot.splits if fewshot else None,
        fewshot_pool_id=fewshot_pool.identity if fewshot else None,
        fewshot_pool_dir=str(fewshot_pool.out_dir) if fewshot else None,
        train_data=str(train_pool.out_dir),
    )
    return prototype, list(splits.values())


def selection(exp: Experiment) -> Selection:
    """eval.select with its defaults resolved: the first evaluator, the metric's own direction (ece: lower)."""
    from ftlab.evaluate.metrics import LOWER_IS_BETTER

    select = exp.eval.select
    higher = select.higher_is_better if select.higher_is_better is not None else select.metric not in LOWER_IS_BETTER
    return Selection(split=select.split, metric=select.metric, evaluator=exp.eval.select_evaluator(),
                     higher_is_better=higher, include_step_0=select.include_step_0,
                     checkpoint=None if select.checkpoint == "best" else select.checkpoint)


def _evaluators(plan: Plan, exp: Experiment) -> list[EvaluatorRun]:
    """The run's evaluators with their splits filled in and options resolved (templates inlined)."""
    from ftlab.evaluate.evaluators import needs_model, resolve_options

    out = []
    for ev in exp.eval.evaluators:
        options, _ = resolve_options(ev.name, ev.options, plan.base_dir, exp.task)  # problems: reported by validate
        splits = list(ev.splits) if ev.splits is not None else exp.eval_splits()
        out.append(EvaluatorRun(name=ev.name, splits=splits, options=options, needs_model=needs_model(ev.name, options)))
    return out


def _baseline_tasks(plan: Plan, data_task, memo: Memo) -> list[Task]:
    """One task per model of `baselines:` ([] without it), depending on the data tasks only; the
    plan's experiment (not a sweep point's) chooses their data: a baseline does not vary with the sweep."""
    exp = plan.experiment
    spec = exp.baselines
    if spec is None:
        return []
    train = data_task(exp, exp.datasets_with_role("train")[0])
    splits = {name: data_task(exp, exp.dataset(name)) for name in (spec.splits or exp.eval_splits())}
    upstream = list({t.key: t for t in [train, *splits.values()]}.values())
    select = selection(exp)
    tasks = []
    for i, model in enumerate(spec.models):
        inputs = BaselineInputs(
            model=model, featurizer=spec.featurizer, seed=spec.seed, select=select, labels=exp.task.labels,
            positive=exp.task.positive_label, splits=sorted(splits), run_id="", name=f"baseline_{model}",
            index=len(plan.runs) + i, task=exp.task, train_dir=str(train.out_dir),
            split_dirs={n: str(t.out_dir) for n, t in splits.items()},
        )
        ident = identity(STAGES["baseline"], inputs, [t.identity for t in upstream], memo=memo)
        # The run id hashes the identity's inputs plus the identity, as before the typed contract:
        # baseline runs recorded then keep their ids.
        hashed = json.loads(inputs_json(inputs, memo=memo)) | {"data": ident}
        inputs = inputs.model_copy(update={"run_id": f"b1-{stable_hash(hashed)[:12]}"})
        tasks.append(Task(STAGES["baseline"], baseline_key(model), ident, layout.eval_dir(plan.output_dir, inputs.name),
                          tuple(t.key for t in upstream), inputs))
    return tasks


def _unresampled(ds: Dataset) -> Dataset:
    return ds.model_copy(update={"resample": None}) if ds.resample is not None else ds


def _data_inputs(plan: Plan, exp: Experiment, ds: Dataset) -> DataInputs:
    fewshot = FewshotDraw(pool=exp.fewshot.pool, seed=exp.fewshot.seed) if exp.fewshot and ds.role == "train" else None
    if ds.curate:  # curation is its own task (curate/<dataset>): a new filter does not regenerate the data
        ds = ds.model_copy(update={"curate": None})
    file = digest = None
    if ds.path is not None:
        from ftlab.data.sources import data_digest

        path = (plan.base_dir / ds.path).resolve()
        try:
            file, digest = str(path), data_digest(path, ds.name_in_registry)
        except DataError as err:  # name the dataset too: the resolved path may not be the one the spec wrote
            raise DataError(f"datasets '{ds.name}' (path: {ds.path}): {err}") from None
    return DataInputs(dataset=ds, labels=exp.task.labels, positive=exp.task.positive_label,
                      label_field=exp.task.label_field, fewshot=fewshot, file=file, digest=digest, system=exp.task.system)
