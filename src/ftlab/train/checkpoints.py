"""Checkpoint naming, manifest and resume.

HF Trainer writes `checkpoints/checkpoint-<step>/` (weights or adapter, optimizer, scheduler, RNG
state: enough for exact resume). ftlab adds `ftlab_checkpoint.json` to each one as the LAST write,
so a checkpoint without it was cut off (kill -9 mid-save) and is removed before resuming. Hence
two rules: each step is saved once (a second save of a marked checkpoint would rewrite it after
its marker, and a kill then leaves a torn checkpoint that looks complete), and `keep_last`
rotation happens here, after the new checkpoint is marked (HF's save_total_limit deletes old
checkpoints before that: a kill in between could leave no complete checkpoint at all).
A run asked to stop (ftlab.train.interrupt: a SLURM warning before the time limit, SIGTERM) saves
the step it reached; where an uninterrupted run saves no checkpoint, that one is marked
`resume_only`: resume reads it, the manifest, rotation and the runner's callback never see it, and
it is deleted once a later checkpoint is complete, so the run's checkpoints (and what is scored)
are the uninterrupted run's.
Epoch-end checkpoints are 0-indexed (`epoch_0` is the end of the first epoch; seed 004's convention)
and also get a symlink `<train dir>/epoch_<k>` for people and scripts that look for that name.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from ftlab import atomic
from ftlab.contract.layout import CHECKPOINT_MARKER as MARKER
from ftlab.contract.layout import checkpoint_path, complete_checkpoints, epoch_name, step_name

__all__ = ["MARKER", "CheckpointNamer", "complete_checkpoints", "drop_dangling_links", "drop_resume_only", "last_complete_checkpoint", "rotate"]


def _whole(epoch: float | None) -> bool:
    """Is the trainer's fractional epoch counter at an epoch boundary (epoch + (step+1)/steps_in_epoch)?"""
    return epoch is not None and abs(epoch - round(epoch)) < 1e-9


class CheckpointNamer(TrainerCallback):
    """Save at every epoch end and at the last step, each step once; name each checkpoint, mark it
    complete, then rotate to the newest `keep_last` (None: keep all)."""

    def __init__(self, train_dir: Path, keep_last: int | None = None,
                 on_checkpoint: Callable[[dict[str, Any]], None] | None = None):
        self.train_dir = Path(train_dir)
        self.keep_last = keep_last
        self.epoch_end = False
        # the stage context's callback (StageContext.on_checkpoint): a runner starts work on each
        # checkpoint while training goes on (the SLURM runner releases its held eval job)
        self.on_checkpoint = on_checkpoint

    # Every save is also a logging step (the trainer logs before it saves), so each checkpoint's
    # log_history accounts for every step up to it and a resumed run's history covers the whole
    # run: ftlab.train.stage.whole_run_loss reads train_loss from it.

    def on_epoch_end(self, args, state, control, **kwargs):
        control.should_save = True  # also after the last step: on_epoch_end follows it, even mid-epoch
        control.should_log = True
        self.epoch_end = _whole(state.epoch)  # a max_steps stop mid-epoch is named by its step
        return control

    def on_step_end(self, args, state, control, **kwargs):
        if _whole(state.epoch) or state.global_step >= state.max_steps:
            # on_epoch_end comes next and saves this same step: saving here too (save_steps or HF's
            # save-at-the-end) would write the checkpoint twice, the second time after its marker.
            control.should_save = False
        if control.should_save:
            control.should_log = True
        return control

    def on_save(self, args, state, control, **kwargs):
        if not state.is_world_process_zero:  # under accelerate launch only rank 0 saved the checkpoint
            self.epoch_end = False
            return control
        path = checkpoint_path(Path(args.output_dir), state.global_step)
        if self.epoch_end:
            name = epoch_name(round(state.epoch) - 1)
        else:
            name = step_name(state.global_step)
        entry = {"name": name, "step": state.global_step, "epoch": state.epoch}
        if not self._planned(args, state):
            atomic.write_json(path / MARKER, entry | {"resume_only": True})  # last write, as for any checkpoint
            return control
        atomic.write_json(path / MARKER, entry)
        drop_resume_only(Path(args.output_dir), before=state.global_step)
        if self.epoch_end:
            link = self.train_dir / name
            if link.is_symlink() or link.exists():
                link.unlink()
            os.symlink(os.path.relpath(path, self.train_dir), link)
        self.epoch_end = False
        if self.keep_last is not None:
            rotate(Path(args.output_dir), self.keep_last)
        if self.on_checkpoint is not None:
            self.on_checkpoint(entry | {"path": str(path)})
        return control

    def _planned(self, args, state) -> bool:
        """Would an uninterrupted run save this step? Epoch ends, the last step, every save_steps."""
        steps = str(getattr(args.save_strategy, "value", args.save_strategy)) == "steps"
        return self.epoch_end or state.global_step >= state.max_steps or (steps and state.global_step % args.save_steps == 0)


def drop_resume_only(ckpt_dir: Path, before: int | None = None) -> list[str]:
    """Delete checkpoints saved only to resume from (older than step `before`, or all): a complete
    one after them makes them useless, and a full fine-tuning checkpoint is ~14 bytes a parameter."""
    old = [c for c in complete_checkpoints(ckpt_dir, with_resume_only=True)
           if c.get("resume_only") and (before is None or c["step"] < before)]
    for c in old:
        (Path(c["path"]) / MARKER).unlink()  # first, as in rotate: a kill mid-delete leaves no torn "complete" one
        shutil.rmtree(c["path"])
    return [c["path"] for c in old]


def rotate(ckpt_dir: Path, keep_last: int) -> list[str]:
    """Delete complete checkpoints older than the newest `keep_last`; return the deleted paths.

    The marker goes first, so a kill mid-delete leaves an unmarked directory (removed at resume),
    never a half-deleted one that still looks complete. Unmarked ones are left to resume's cleanup.
    """
    done = complete_checkpoints(ckpt_dir)
    old = done[: max(0, len(done) - keep_last)]
    for c in old:
        (Path(c["path"]) / MARKER).unlink()
        shutil.rmtree(c["path"])
    return [c["path"] for c in old]



def last_complete_checkpoint(ckpt_dir: Path) -> str | None:
    """Remove checkpoints cut off mid-save; return the newest complete one to resume from."""
    for path in Path(ckpt_dir).glob("checkpoint-*"):
        if not (path / MARKER).is_file():
            shutil.rmtree(path)
    done = complete_checkpoints(ckpt_dir, with_resume_only=True)
    return done[-1]["path"] if done else None


def drop_dangling_links(train_dir: Path) -> None:
    """Remove epoch_<k> links whose checkpoint was rotated away by keep_last."""
    for link in Path(train_dir).glob("epoch_*"):
        if link.is_symlink() and not link.exists():
            link.unlink()
