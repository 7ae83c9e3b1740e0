"""Checkpoint naming, manifest and resume.

HF Trainer writes `checkpoints/checkpoint-<step>/` (weights or adapter, optimizer, scheduler, RNG
state: enough for exact resume). ftlab adds `ftlab_checkpoint.json` to each one as the LAST write,
so a checkpoint without it was cut off (kill -9 mid-save) and is removed before resuming.
Epoch-end checkpoints are 0-indexed (`epoch_0` is the end of the first epoch; seed 004's convention)
and also get a symlink `<train dir>/epoch_<k>` for people and scripts that look for that name.
"""

from __future__ import annotations

import math
import os
import shutil
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from ftlab import atomic

MARKER = "ftlab_checkpoint.json"


class CheckpointNamer(TrainerCallback):
    """Save at every epoch end and at the last step; name each checkpoint and mark it complete."""

    def __init__(self, train_dir: Path):
        self.train_dir = Path(train_dir)
        self.epoch_end = False

    def on_epoch_end(self, args, state, control, **kwargs):
        control.should_save = True
        self.epoch_end = True
        return control

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step >= state.max_steps:
            control.should_save = True  # the final weights are always a checkpoint
        return control

    def on_save(self, args, state, control, **kwargs):
        if not state.is_world_process_zero:  # under accelerate launch only rank 0 saved the checkpoint
            self.epoch_end = False
            return control
        path = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        if self.epoch_end:
            name = f"epoch_{math.ceil(state.epoch - 1e-9) - 1}"
        else:
            name = f"step_{state.global_step}"
        atomic.write_json(path / MARKER, {"name": name, "step": state.global_step, "epoch": state.epoch})
        if self.epoch_end:
            link = self.train_dir / name
            if link.is_symlink() or link.exists():
                link.unlink()
            os.symlink(os.path.relpath(path, self.train_dir), link)
        self.epoch_end = False
        return control


def complete_checkpoints(ckpt_dir: Path) -> list[dict[str, Any]]:
    """Manifest of finished checkpoints, by step: [{name, step, epoch, path}]."""
    found = []
    for path in Path(ckpt_dir).glob("checkpoint-*"):
        marker = path / MARKER
        if marker.is_file():
            found.append(atomic.read_json(marker) | {"path": str(path)})
    return sorted(found, key=lambda c: c["step"])


def last_complete_checkpoint(ckpt_dir: Path) -> str | None:
    """Remove checkpoints cut off mid-save; return the newest complete one to resume from."""
    for path in Path(ckpt_dir).glob("checkpoint-*"):
        if not (path / MARKER).is_file():
            shutil.rmtree(path)
    done = complete_checkpoints(ckpt_dir)
    return done[-1]["path"] if done else None


def drop_dangling_links(train_dir: Path) -> None:
    """Remove epoch_<k> links whose checkpoint was rotated away by keep_last."""
    for link in Path(train_dir).glob("epoch_*"):
        if link.is_symlink() and not link.exists():
            link.unlink()
