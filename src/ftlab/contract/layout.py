"""The run-directory layout: the one module that spells out where a run's files live.

    <output_dir>/runs/<run>/train/checkpoints/checkpoint-<step>/ftlab_checkpoint.json
    <output_dir>/runs/<run>/train/checkpoints.json      the manifest, written when training ends
    <output_dir>/runs/<run>/train/log_history.json
    <output_dir>/runs/<run>/train/init/ftlab_init.json  a random-init run's fresh model (its step_0)
    <output_dir>/runs/<run>/eval/summary.json           best checkpoint and per-checkpoint metrics

The graph puts tasks there, the train stage writes there, the eval stage and the report read there,
and the SLURM runner plans which checkpoints a run will write; all of them ask this module. Checkpoint
names are 0-indexed epoch ends (`epoch_0`), else the step (`step_15`); step_0 is the untrained model.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from ftlab import atomic
from ftlab.contract.task import STARTED

RUNS = "runs"
TRAIN = "train"
EVAL = "eval"
CHECKPOINTS_DIR = "checkpoints"
MANIFEST = "checkpoints.json"
SUMMARY = "summary.json"
LOG_HISTORY = "log_history.json"
INIT = "init"
INIT_MARKER = "ftlab_init.json"
# The last write into a checkpoint directory: a checkpoint without it was cut off mid-save.
CHECKPOINT_MARKER = "ftlab_checkpoint.json"


def run_dir(experiment_dir: Path, run_name: str) -> Path:
    return Path(experiment_dir) / RUNS / run_name


def train_dir(experiment_dir: Path, run_name: str) -> Path:
    return run_dir(experiment_dir, run_name) / TRAIN


def eval_dir(experiment_dir: Path, run_name: str) -> Path:
    return run_dir(experiment_dir, run_name) / EVAL


def checkpoint_path(ckpt_dir: Path, step: int) -> Path:
    """Where HF Trainer saves the checkpoint of update step `step`."""
    return Path(ckpt_dir) / f"checkpoint-{step}"


def epoch_name(epoch: int) -> str:
    return f"epoch_{epoch}"


def step_name(step: int) -> str:
    return f"step_{step}"


def complete_checkpoints(ckpt_dir: Path, *, with_resume_only: bool = False) -> list[dict[str, Any]]:
    """Manifest of finished checkpoints, by step: [{name, step, epoch, path}]. A checkpoint saved
    only because the run was asked to stop (marked `resume_only`, not a save an uninterrupted run
    makes) is left out unless `with_resume_only`: it is for resuming, never scored or listed."""
    found = []
    for path in Path(ckpt_dir).glob("checkpoint-*"):
        marker = path / CHECKPOINT_MARKER
        if marker.is_file():
            entry = atomic.read_json(marker)
            if with_resume_only or not entry.get("resume_only"):
                found.append(entry | {"path": str(path)})
    return sorted(found, key=lambda c: c["step"])


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
            names.append(epoch_name(step // per_epoch - 1))
        elif step == total or (hp.save_steps and step % hp.save_steps == 0):
            names.append(step_name(step))
    return names


def locate_checkpoint(train_dir_: Path, train_identity: str, base_dir: str, name: str, *,
                      random_init: bool) -> dict[str, Any] | None:
    """The manifest entry {name, step, epoch, path} of one checkpoint of a trained run, once it is
    complete; None while it is not, or when what is there was written by a train task of other inputs."""
    if name == "step_0" and not random_init:
        return {"name": name, "step": 0, "epoch": 0.0, "path": base_dir}  # the base, as checkpoints.json has it
    train_dir_ = Path(train_dir_)
    started = train_dir_ / STARTED
    if not (started.is_file() and atomic.read_json(started).get("identity") == train_identity):
        return None  # not started, or stale outputs its train task will move aside: never score those
    manifest = train_dir_ / MANIFEST
    if manifest.is_file():  # training finished: what the run-level eval reads
        return next((c for c in atomic.read_json(manifest) if c["name"] == name), None)
    if name == "step_0":  # random_init: the fresh copy the train task writes first
        init = train_dir_ / INIT
        return {"name": name, "step": 0, "epoch": 0.0, "path": str(init)} if (init / INIT_MARKER).is_file() else None
    return next((c for c in complete_checkpoints(train_dir_ / CHECKPOINTS_DIR) if c["name"] == name), None)
