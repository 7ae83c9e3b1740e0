"""The baseline tasks of an experiment: one per listed model, each depending on the data tasks only."""

from __future__ import annotations

from collections.abc import Callable

from ftlab.spec.identity import stable_hash


def baseline_tasks(plan, data_task: Callable, identity: Callable, selection: dict, task_cls) -> list:
    """Task objects (stage "baseline") for plan.experiment.baselines; [] when it has none."""
    exp = plan.experiment
    spec = exp.baselines
    if spec is None:
        return []
    train = data_task(exp, exp.datasets_with_role("train")[0])
    splits = {name: data_task(exp, exp.dataset(name)) for name in (spec.splits or exp.eval_splits())}
    tasks = []
    for i, model in enumerate(spec.models):
        name = f"baseline_{model}"
        hashed = {"model": model, "featurizer": spec.featurizer.model_dump(mode="json"), "seed": spec.seed,
                  "select": selection, "labels": exp.task.labels, "positive": exp.task.positive_label, "splits": sorted(splits)}
        ident = identity("baseline", hashed, [train] + list(splits.values()))
        inputs = hashed | {
            "run_id": f"b1-{stable_hash(hashed | {'data': ident})[:12]}", "name": name, "index": len(plan.runs) + i,
            "task": exp.task.model_dump(mode="json"), "train": str(train.out_dir),
            "splits": {n: str(t.out_dir) for n, t in splits.items()},
        }
        deps = tuple(dict.fromkeys([train.key] + [t.key for t in splits.values()]))
        tasks.append(task_cls("baseline", f"baseline/{model}", ident, plan.output_dir / "runs" / name / "eval", deps, inputs))
    return tasks
