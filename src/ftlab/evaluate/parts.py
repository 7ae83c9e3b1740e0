"""One checkpoint of a run scored on its own, as a part of the run's eval task (eval/<run>@<checkpoint>).

    names, why = planned_checkpoints(eval_task, train_task, data_task, seen)   # known at submit time?
    run_checkpoint(inputs, ctx, "epoch_0", run)                                 # `execute` of the part

The eval row of the stage table (ftlab.stages) names both: a runner asks the table which parts a
task has and `execute` runs one, with the markers, registry row and error record of any task. A
part fills the same per-checkpoint cache `run_eval` reads (ftlab.evaluate.stage), so the run's eval
task afterwards only selects and summarises. The SLURM runner runs each part in its own job as its
checkpoint is written (ftlab.runners.slurm.checkpoints says how and why).

Which checkpoints a run writes must be known at submit time. It is, from the train settings alone,
for epoch saving; with save_steps or max_steps it needs the train data's size, so it is known only
when that data is prepared. Where it is not known (or keep_last may rotate a checkpoint away before
its eval starts, or several GPUs split the data in ways not mirrored here) the run keeps one eval
task scoring all of its checkpoints, and `why` says so.
"""

from __future__ import annotations

from typing import Any

from ftlab.contract import StageContext, StageResult, Task, done_outputs, is_done, layout
from ftlab.contract.inputs import EvalInputs
from ftlab.errors import StageError
from ftlab.evaluate.prepare import checkpoints_to_score


def planned_checkpoints(eval_task: Task, train_task: Task, data_task: Task | None,
                        seen: set[str] | None = None) -> tuple[list[str] | None, str]:
    """The checkpoints the run's eval will score, as the train task will name them; or (None, why not).
    With `seen` (the step-0 results planned so far), step_0 is left out where a run of the same base
    scores it already (ftlab.evaluate.shared)."""
    hp = train_task.inputs.train
    if hp.keep_last is not None:
        return None, f"train.keep_last={hp.keep_last} deletes checkpoints while training goes on"
    whole_epochs = float(hp.epochs).is_integer()
    if not hp.save_steps and not hp.max_steps and whole_epochs:
        names = [layout.epoch_name(k) for k in range(int(hp.epochs))]  # whatever the step count (and the GPU count)
    elif hp.gpus > 1:
        return None, f"train.gpus={hp.gpus} with step-based saving: steps per epoch depend on how the ranks split the data"
    else:
        if data_task is None or not is_done(data_task):
            what = "train.save_steps" if hp.save_steps else ("train.max_steps" if hp.max_steps else f"train.epochs={hp.epochs}")
            return None, f"with {what} the checkpoints depend on the number of train examples, and {data_task.key if data_task else 'the train data'} is not prepared yet"
        n = done_outputs(data_task).get("n")  # what the data (or curate) task wrote, and the train task reads
        if not isinstance(n, int):
            return None, f"{data_task.key} does not record how many examples it wrote"
        names = layout.step_checkpoints(n, hp)
        if names is None:
            return None, "the train data is empty"
    manifest = [{"name": name} for name in ["step_0", *names]]
    names = [c["name"] for c in checkpoints_to_score(manifest, train_task.run.config.eval.exclude_final)]
    return (names if seen is None else _without_repeated_step_0(names, eval_task, train_task, seen)), ""


def _without_repeated_step_0(names: list[str], eval_task: Task, train_task: Task, seen: set[str]) -> list[str]:
    """`names` less step_0 when a run already in `seen` scores the same base's step 0: one task
    scores it for every run of that base (ftlab.evaluate.shared), and the other runs' run-level
    tasks, which wait for the whole eval-ckpt array, copy it (or score it themselves if it failed)."""
    from ftlab.evaluate.shared import step_0_key

    if "step_0" not in names or train_task.inputs.kind == "random_init":  # a seeded model of its own
        return names
    group = step_0_key(eval_task.inputs, {"name": "step_0", "path": eval_task.inputs.base_dir})
    if group is None or group not in seen:
        seen.add(group)
        return names
    return [n for n in names if n != "step_0"]


def locate(inputs: EvalInputs, name: str, run: Any) -> dict[str, Any] | None:
    """The manifest entry of checkpoint `name` of a trained run once it is complete, else None."""
    random_init = run is not None and run.kind == "random_init"
    return layout.locate_checkpoint(inputs.train_dir, inputs.source, inputs.base_dir, name, random_init=random_init)


def run_checkpoint(inputs: EvalInputs, ctx: StageContext, name: str, run: Any) -> StageResult:
    """Score checkpoint `name` into the run's eval cache (the eval row's part entry)."""
    from ftlab import atomic
    from ftlab.evaluate.stage import run_eval_checkpoint

    if inputs.train_dir is None:
        raise StageError(f"{ctx.key}: only a trained run's eval has checkpoints of its own to score")
    ckpt = locate(inputs, name, run)
    if ckpt is None:
        train_dir = layout.train_dir(ctx.experiment_dir, run.name) if run is not None else None
        train_key = f"train/{run.name}" if run is not None else "the train task"
        manifest = (train_dir / layout.MANIFEST) if train_dir else None
        if manifest is not None and manifest.is_file() and _finished(train_dir, inputs.source):
            wrote = [c["name"] for c in atomic.read_json(manifest)]  # the plan made at submit time named a checkpoint training did not write
            raise StageError(f"{train_key} finished without writing checkpoint {name} (it wrote {', '.join(wrote)}); "
                             f"{ctx.key.rpartition('@')[0]} scores the checkpoints it wrote")
        raise StageError(f"checkpoint {name} of {train_key} was never written: training stopped before it (see {train_key}'s "
                         f"log and {train_dir / 'error.txt' if train_dir else 'its error.txt'}); the run's eval scores the checkpoints that exist")
    rows = run_eval_checkpoint(inputs, ctx, ckpt)
    return StageResult({"checkpoint": name, "results": len(rows)})


def _finished(train_dir, identity: str) -> bool:
    from ftlab import atomic
    from ftlab.contract import DONE

    done = train_dir / DONE
    return done.is_file() and atomic.read_json(done).get("identity") == identity
