"""Every checkpoint evaluated in its own SLURM array task, each starting once its checkpoint exists.

    names, why = planned_checkpoints(graph, train_task)   # ["step_0", "step_10", "epoch_0"] or (None, why not)
    ckpt = locate(graph, eval_task, "epoch_0")             # its manifest entry, or None while it is not written
    with releasing(graph, train_task, registry): ...       # in the train job: release each element as it lands

How it runs (render.py builds the jobs, submit.py submits them in this order):
- eval-ckpt: one array over (run, checkpoint), step_0 once per base (every run of a base starts
  from the same model; ftlab.evaluate.shared), submitted `--hold`. The train task releases element k
  (`scontrol release JOB_k`) right after checkpoint k's completion marker is written, through the
  train stage's checkpoint hook (ftlab.train.checkpoints.HOOKS), and releases whatever of its run is
  still held when training ends in any way (finally, and on SIGTERM: a time limit or scancel).
- release: a one-line CPU job, `afterany` on the train array, that releases the whole eval-ckpt
  array. It covers what the train task cannot: a train task cancelled before it started (its
  prepare failed, someone ran scancel) or killed without a signal it can catch (node failure).
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

import math
import os
import signal
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ftlab import atomic
from ftlab.evaluate.prepare import checkpoints_to_score
from ftlab.contract import STARTED, done_outputs, eval_key, is_done, split_checkpoint_key


def planned_checkpoints(graph, train_task) -> tuple[list[str] | None, str]:
    """The checkpoints the run's eval will score, as the train task will name them; or (None, why not)."""
    hp = train_task.inputs.train
    if hp.keep_last is not None:
        return None, f"train.keep_last={hp.keep_last} deletes checkpoints while training goes on"
    whole_epochs = float(hp.epochs).is_integer()
    if not hp.save_steps and not hp.max_steps and whole_epochs:
        names = [f"epoch_{k}" for k in range(int(hp.epochs))]  # whatever the step count (and the GPU count)
    elif hp.gpus > 1:
        return None, f"train.gpus={hp.gpus} with step-based saving: steps per epoch depend on how the ranks split the data"
    else:
        data = next((graph.task(d) for d in train_task.deps if str(graph.task(d).out_dir) == train_task.inputs.data_dir), None)
        if data is None or not is_done(data):
            what = "train.save_steps" if hp.save_steps else ("train.max_steps" if hp.max_steps else f"train.epochs={hp.epochs}")
            return None, f"with {what} the checkpoints depend on the number of train examples, and {data.key if data else 'the train data'} is not prepared yet"
        n = done_outputs(data).get("n")  # what the data (or curate) task wrote, and the train task reads
        if not isinstance(n, int):
            return None, f"{data.key} does not record how many examples it wrote"
        names = step_checkpoints(n, hp)
        if names is None:
            return None, "the train data is empty"
    manifest = [{"name": name} for name in ["step_0", *names]]
    return [c["name"] for c in checkpoints_to_score(manifest, train_task.run.config.eval.exclude_final)], ""


def without_repeated_step_0(names: list[str], eval_task, train_task, seen: set[str]) -> list[str]:
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


def step_checkpoints(n_examples: int, hp) -> list[str] | None:
    """Checkpoint names in save order, as ftlab.train.checkpoints.CheckpointNamer names them under
    transformers' Trainer (one process): update steps per epoch are ceil(ceil(n / batch) / grad_accum);
    a save every save_steps, every epoch end (epoch_<k>), and the last step (step_<N> mid-epoch)."""
    if n_examples <= 0:
        return None
    batches = math.ceil(n_examples / hp.batch_size)
    per_epoch = max(math.ceil(batches / hp.grad_accum), 1)
    total = hp.max_steps or math.ceil(hp.epochs * per_epoch)
    names = []
    for step in range(1, total + 1):
        if step % per_epoch == 0:
            names.append(f"epoch_{step // per_epoch - 1}")
        elif step == total or (hp.save_steps and step % hp.save_steps == 0):
            names.append(f"step_{step}")
    return names


def locate(graph, eval_task, name: str) -> dict[str, Any] | None:
    """The manifest entry {name, step, epoch, path} of one checkpoint of a trained run, once it is
    complete; None while it is not, or when what is there was written by a train task of other inputs."""
    from ftlab.train.checkpoints import complete_checkpoints

    train = graph.task(eval_task.deps[0])
    if name == "step_0" and train.inputs.kind != "random_init":
        return {"name": name, "step": 0, "epoch": 0.0, "path": eval_task.inputs.base_dir}  # the base, as checkpoints.json has it
    train_dir = Path(eval_task.inputs.train_dir)
    started = train_dir / STARTED
    if not (started.is_file() and atomic.read_json(started).get("identity") == train.identity):
        return None  # not started, or stale outputs its train task will move aside: never score those
    manifest = train_dir / "checkpoints.json"
    if manifest.is_file():  # training finished: what the run-level eval reads
        return next((c for c in atomic.read_json(manifest) if c["name"] == name), None)
    if name == "step_0":  # random_init: the fresh copy the train task writes first
        init = train_dir / "init"
        return {"name": name, "step": 0, "epoch": 0.0, "path": str(init)} if (init / "ftlab_init.json").is_file() else None
    return next((c for c in complete_checkpoints(train_dir / "checkpoints") if c["name"] == name), None)


def run_checkpoint(graph, key: str, registry) -> str:
    """`ftlab stage run SPEC eval/<run>@<checkpoint>`: score one checkpoint into the run's eval cache."""
    from ftlab.errors import StageError
    from ftlab.evaluate.stage import run_eval_checkpoint
    from ftlab.contract import context

    task_key, name = split_checkpoint_key(key)
    task = graph.task(task_key)
    if task.stage != "eval" or task.inputs.train_dir is None:
        raise StageError(f"{key}: only a trained run's eval has checkpoints of its own to score")
    if is_done(task):
        return f"{key}: {task_key} is done already"
    missing = [d for d in task.deps if graph.task(d).stage != "train" and not is_done(graph.task(d))]
    if missing:
        raise StageError(f"{key} needs {', '.join(missing)} to be done first")
    ckpt = locate(graph, task, name)
    if ckpt is None:
        train = graph.task(task.deps[0])
        if is_done(train):  # the plan made at submit time named a checkpoint training did not write
            wrote = [c["name"] for c in atomic.read_json(train.out_dir / "checkpoints.json")]
            raise StageError(f"{train.key} finished without writing checkpoint {name} (it wrote {', '.join(wrote)}); "
                             f"{task_key} scores the checkpoints it wrote")
        raise StageError(f"checkpoint {name} of {train.key} was never written: training stopped before it (see {train.key}'s "
                         f"log and {train.out_dir / 'error.txt'}); the run's eval scores the checkpoints that exist")
    ctx = context(task, graph.plan.output_dir, registry, graph.plan.spec_path, graph.plan.experiment.threads)
    Path(ctx.out_dir).mkdir(parents=True, exist_ok=True)
    from ftlab import threads

    threads.apply(ctx.threads)  # this side door skips execute(), which sets them for every other stage
    rows = run_eval_checkpoint(task.inputs, ctx, ckpt)
    return f"{key}: scored {len(rows)} evaluator x split results"


def held_elements(registry, run_name: str) -> dict[str, str]:
    """{checkpoint name: "JOB_INDEX"} of the run's checkpoint evals in its latest submission."""
    from ftlab.runners.slurm.jobs import JobTable

    prefix = eval_key(run_name) + "@"
    rows = [j for key, j in JobTable(registry).latest().items() if key.startswith(prefix)]
    return {split_checkpoint_key(j["task_key"])[1]: f"{j['job_id']}_{j['array_index']}" for j in rows}


@contextmanager
def releasing(graph, train_task, registry):
    """Release each of the run's held checkpoint evals as its checkpoint is written; on the way out
    (done, failed, SIGTERM) release what is left, so nothing downstream waits on a held job."""
    from ftlab.runners.slurm.follow import slurm_command
    from ftlab.train import checkpoints

    elements = held_elements(registry, train_task.run.name)
    if not elements:
        yield
        return
    eval_task = graph.task(eval_key(train_task.run.name))
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

    def on_term(signum, frame) -> None:
        release(list(elements))
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)

    release([n for n in elements if locate(graph, eval_task, n) is not None])  # the base; after a resume, what exists
    checkpoints.HOOKS.append(on_checkpoint)
    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        yield
    finally:
        checkpoints.HOOKS.remove(on_checkpoint)
        signal.signal(signal.SIGTERM, previous)
        release(list(elements))
