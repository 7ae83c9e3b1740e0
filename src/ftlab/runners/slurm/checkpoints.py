"""Every checkpoint evaluated in its own SLURM array task, each starting once its checkpoint exists.

    names, why = plan_parts(graph, train_task, seen)       # ["step_0", "step_10", "epoch_0"] or (None, why not)
    with releasing(graph, train_task, registry) as on_checkpoint:   # in the train job: release each element
        execute(task, context(..., on_checkpoint=on_checkpoint))    # as it lands

How it runs (render.py builds the jobs, submit.py submits them in this order):
- eval-ckpt: one array over (run, checkpoint), step_0 once per base (every run of a base starts
  from the same model; ftlab.evaluate.shared), submitted `--hold`. The train task releases element k
  (`scontrol release JOB_k`) right after checkpoint k's completion marker is written, through the
  stage context's checkpoint callback (StageContext.on_checkpoint, which `releasing` yields), and releases whatever of its run is
  still held when training ends, unless it stopped to resume (ftlab.runners.slurm.requeue): a time
  limit warning, preemption or `scontrol requeue` leaves the rest held for the resumed task.
- release: a one-line CPU job, `afterany` on the train array, that releases the whole eval-ckpt
  array. It covers what the train task cannot: a train task cancelled before it started (its
  prepare failed, someone ran scancel) or killed without a signal it can catch (node failure), and a
  train task cancelled while stopped to resume.
  A released element whose checkpoint never appeared fails at once, saying so.
- eval: the run-level task per run, `aftercorr` on its train task and `afterany` on the eval-ckpt
  array; every score is cached by then (ftlab.evaluate.stage caches each checkpoint, evaluator and
  split), so it only selects and summarises, and scores whatever the plan below missed.
- report: `afterany` on every eval job, as before.

Why held jobs and not something else: SLURM has no dependency on a file, and an eval job that
waits for a checkpoint inside its allocation would hold a GPU for a whole training run. A train
task that submits its eval jobs itself would leave the report nothing to depend on at submit time.
Held jobs exist from the start (the report and `ftlab cancel` see them), cost nothing while held,
and `scontrol release` of one array element works in Slurm 22.05 (tests/runners/slurm).

Why the run-level task waits for the whole eval-ckpt array and not just its run's elements: a
per-run dependency needs one sbatch (or one `scontrol update`) per run, and sites cap submission
rates; selection is seconds of work, so waiting for the other runs' checkpoints costs little.

Which checkpoints a run writes must be known at submit time. It is, from the train settings alone,
for epoch saving; with save_steps or max_steps it needs the train data's size, so it is known only
when that data is prepared. Where it is not known (or keep_last may rotate a checkpoint away before
its eval starts, or several GPUs split the data in ways not mirrored here) the run keeps one eval
task scoring all of its checkpoints, and `ftlab submit --dry-run` says why. The plan mirrors
CheckpointNamer and transformers' Trainer step counting; a test trains real runs and compares.
Under `accelerate launch` (train.gpus > 1) rank 0 saves the checkpoints, so it releases them.
"""

from __future__ import annotations

import sys
from contextlib import contextmanager

from ftlab.contract import eval_key, load_entry, split_checkpoint_key
from ftlab.contract.layout import step_checkpoints

__all__ = ["held_elements", "plan_parts", "planned_checkpoints", "releasing", "step_checkpoints", "train_data_task"]


def train_data_task(graph, train_task):
    """The data (or curate) task whose examples the train task reads, or None."""
    return next((graph.task(d) for d in train_task.deps if str(graph.task(d).out_dir) == train_task.inputs.data_dir), None)


def plan_parts(graph, train_task, seen: set[str] | None = None) -> tuple[list[str] | None, str]:
    """The checkpoints of the run's eval task known at submit time, each an eval/<run>@<ckpt> part;
    or (None, why not). Asks the eval row of the stage table (its parts planner); with `seen`, a
    base's step 0 is planned once (see the module docstring)."""
    eval_task = graph.task(eval_key(train_task.run.name))
    planner = eval_task.definition.parts_planner
    if planner is None:
        return None, f"{eval_task.stage} tasks have no parts"
    return load_entry(planner)(eval_task, train_task, train_data_task(graph, train_task), seen)


def planned_checkpoints(graph, train_task) -> tuple[list[str] | None, str]:
    """The checkpoints the run's eval will score, as the train task will name them; or (None, why not)."""
    return plan_parts(graph, train_task)


def held_elements(registry, run_name: str) -> dict[str, str]:
    """{checkpoint name: "JOB_INDEX"} of the run's checkpoint evals in its latest submission."""
    from ftlab.runners.slurm.jobs import JobTable

    prefix = eval_key(run_name) + "@"
    rows = [j for key, j in JobTable(registry).latest().items() if key.startswith(prefix)]
    return {split_checkpoint_key(j["task_key"])[1]: f"{j['job_id']}_{j['array_index']}" for j in rows}


@contextmanager
def releasing(graph, train_task, registry):
    """Release each of the run's held checkpoint evals as its checkpoint is written; on the way out
    (done, failed) release what is left, so nothing downstream waits on a held job. Not when it
    stopped to resume (Interrupted: time limit near, preempted, requeued): the resumed task releases
    the rest as it writes them, and the release job after the train array whatever it never does."""
    from ftlab.errors import Interrupted
    from ftlab.contract.layout import locate_checkpoint
    from ftlab.runners.slurm.follow import slurm_command

    elements = held_elements(registry, train_task.run.name)
    if not elements:
        yield None
        return
    released: set[str] = set()

    def release(names) -> None:
        refs = [elements[n] for n in names if n in elements and n not in released]
        if not refs:
            return
        released.update(n for n in names if n in elements)
        try:
            proc = slurm_command(["scontrol", "release", *refs], check=False)
        except Exception as err:  # never stop training over this: the release job frees them when it ends
            print(f"ftlab: warning: could not release {' '.join(refs)}: {err}", file=sys.stderr, flush=True)
            return
        if proc.returncode != 0:  # already released or finished (a resubmission): nothing waits on them
            print(f"ftlab: scontrol release {' '.join(refs)}: {(proc.stderr or proc.stdout).strip()}", file=sys.stderr, flush=True)
        else:
            print(f"ftlab: released checkpoint evals {' '.join(refs)}", flush=True)

    def on_checkpoint(ckpt) -> None:
        release([ckpt["name"]])

    def written(name: str) -> bool:
        inputs = train_task.inputs
        return locate_checkpoint(train_task.out_dir, train_task.identity, inputs.base_dir, name,
                                 random_init=inputs.kind == "random_init") is not None

    release([n for n in elements if written(n)])  # the base; after a resume, what exists
    try:
        yield on_checkpoint  # the train stage calls it with each checkpoint (StageContext.on_checkpoint)
    except Interrupted:
        raise  # held ones stay held: their checkpoints come when it resumes
    except BaseException:
        release(list(elements))
        raise
    release(list(elements))
