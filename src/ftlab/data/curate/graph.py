"""The curate task of a dataset with `curate:`: depends on the dataset's data task and, when a
filter consults a model (difficulty), on that model's task: a data task that needs a model."""

from __future__ import annotations

from ftlab.spec.identity import stable_hash


def curate_task(plan, exp, ds, raw, base_model, graph, identity):
    """The (shared) curate Task for `ds`, added to graph.tasks on first use."""
    from ftlab.pipeline import Task

    specs = [{"name": f.name, **f.options} for f in ds.curate]
    model_path, model_identity, deps = None, None, [raw]
    wanted = [s.get("model", "base") for s in specs if s["name"] == "difficulty"]
    if wanted:
        if wanted[0] == "base":
            model_path, model_identity, model_task = base_model(exp)
            deps += [model_task] if model_task else []
        else:
            local = plan.base_dir / wanted[0]
            model_path = str(local.resolve()) if local.exists() else wanted[0]
            model_identity = stable_hash({"model": wanted[0]})
    hashed = {"curate": specs, "model": model_identity, "data": raw.identity, "labels": exp.task.labels}
    ident = identity("curate", hashed, deps)
    for t in graph.tasks:
        if t.stage == "curate" and t.identity == ident:
            return t
    inputs = {"curate": specs, "data": str(raw.out_dir), "model": model_path, "dataset": ds.name, "labels": exp.task.labels}
    key = f"curate/{ds.name}-{ident[:8]}"
    task = Task("curate", key, ident, plan.output_dir / "data" / f"{ds.name}-curated-{ident[:8]}", tuple(t.key for t in deps), inputs)
    graph.tasks.append(task)
    return task
