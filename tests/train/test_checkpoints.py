"""Checkpoint integrity: each step saved once (never rewritten after its completion marker), and
keep_last deleting old checkpoints only after the new one is marked complete."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback

from ftlab.data.encode import example_ids
from ftlab.data.generate import generators
from ftlab.spec.schema import Train
from ftlab.train.checkpoints import MARKER, CheckpointNamer, complete_checkpoints, last_complete_checkpoint
from ftlab.train.trainer import TrainerSetup, build_trainer


class SaveCounter(TrainerCallback):
    """Counts trainer saves per global step (called before CheckpointNamer, so before the marker)."""

    def __init__(self):
        self.saves: Counter[int] = Counter()

    def on_save(self, args, state, control, **kwargs):
        self.saves[state.global_step] += 1
        return control


class CrashAtSave(TrainerCallback):
    """kill -9 stand-in: fails after the trainer wrote checkpoint-<step>, before it is marked."""

    def __init__(self, step: int):
        self.step = step

    def on_save(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            raise KeyboardInterrupt(f"killed after saving checkpoint-{self.step}")
        return control


def hem_rows(tok) -> list[dict]:
    """40 hem examples, tokenized as the train stage does (shared with tests/train/test_interrupt.py)."""
    rows = []
    for e in generators.get("hem")(n=40, split="train", seed=0):
        ids, mask = example_ids(tok, e, 128)
        rows.append({"input_ids": ids, "completion_mask": mask})
    return rows


def _train(model_dir: Path, out: Path, callbacks: list, *, epochs: float = 2, save_steps: int = 5, keep_last: int | None = None, resume=None, logging_steps: int = 1):
    """40 examples, batch 8: 5 steps per epoch. Mirrors ftlab.train.stage.run_train's wiring."""
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    rows = hem_rows(tok)
    hp = Train(epochs=epochs, batch_size=8, save_steps=save_steps, logging_steps=logging_steps, keep_last=keep_last)
    namer = CheckpointNamer(out, keep_last=hp.keep_last)
    trainer = build_trainer(model, tok, rows, hp.model_copy(update={"keep_last": None}), TrainerSetup(out / "checkpoints", 0, False, [*callbacks, namer]))
    trainer.result = trainer.train(resume_from_checkpoint=resume)
    return trainer


def test_every_checkpoint_is_saved_once_and_named(tmp_path: Path, tiny_model_dir: Path):
    # save_steps 3 with 5 steps per epoch: steps 3, 5 (epoch end), 6, 9, 10 (epoch end and final)
    counter = SaveCounter()
    _train(tiny_model_dir, tmp_path, [counter], save_steps=3)
    assert counter.saves == {3: 1, 5: 1, 6: 1, 9: 1, 10: 1}
    names = [c["name"] for c in complete_checkpoints(tmp_path / "checkpoints")]
    assert names == ["step_3", "epoch_0", "step_6", "step_9", "epoch_1"]


def test_save_steps_on_every_epoch_end_still_saves_once(tmp_path: Path, tiny_model_dir: Path):
    counter = SaveCounter()
    _train(tiny_model_dir, tmp_path, [counter], save_steps=5)
    assert counter.saves == {5: 1, 10: 1}


def test_max_steps_mid_epoch_is_named_by_its_step(tmp_path: Path, tiny_model_dir: Path):
    counter = SaveCounter()
    _train(tiny_model_dir, tmp_path, [counter], epochs=0.5, save_steps=100)  # 3 steps of a 5-step epoch
    assert counter.saves == {3: 1}
    assert [c["name"] for c in complete_checkpoints(tmp_path / "checkpoints")] == ["step_3"]


@pytest.mark.parametrize("keep_last", [1, 2])
def test_keep_last_deletes_only_after_the_new_checkpoint_is_marked(tmp_path: Path, tiny_model_dir: Path, keep_last: int):
    ckpt = tmp_path / "checkpoints"
    with pytest.raises(KeyboardInterrupt):
        _train(tiny_model_dir, tmp_path, [CrashAtSave(9)], save_steps=3, keep_last=keep_last)
    assert (ckpt / "checkpoint-9").is_dir() and not (ckpt / "checkpoint-9" / MARKER).exists()  # written, not marked
    # the keep_last newest complete checkpoints before the crash are all still there
    kept = [c["step"] for c in complete_checkpoints(ckpt)]
    assert kept == [3, 5, 6][-keep_last:]
    resume = last_complete_checkpoint(ckpt)  # removes the unmarked checkpoint-9
    assert resume == str(ckpt / "checkpoint-6") and not (ckpt / "checkpoint-9").exists()
    counter = SaveCounter()
    _train(tiny_model_dir, tmp_path, [counter], save_steps=3, keep_last=keep_last, resume=resume)
    assert counter.saves == {9: 1, 10: 1}
    assert [c["step"] for c in complete_checkpoints(ckpt)] == [9, 10][-keep_last:]
    assert sorted(int(p.name.split("-")[1]) for p in ckpt.glob("checkpoint-*")) == [9, 10][-keep_last:]


def test_train_loss_after_a_resume_is_the_whole_runs(tmp_path: Path, tiny_model_dir: Path):
    """Logging every 4 steps, saving every 3: the saves add log points, so the history after a
    resume still accounts for every step; the whole run's mean equals an uninterrupted run's."""
    from ftlab.train.stage import whole_run_loss

    clean = _train(tiny_model_dir, tmp_path / "clean", [], save_steps=3, logging_steps=4, epochs=3)
    clean_loss = whole_run_loss(clean.state.log_history)
    assert clean_loss == pytest.approx(clean.result.training_loss, rel=1e-6)  # the trainer's own number, unresumed

    out = tmp_path / "resumed"
    with pytest.raises(KeyboardInterrupt):
        _train(tiny_model_dir, out, [CrashAtSave(9)], save_steps=3, logging_steps=4, epochs=3)
    resumed = _train(tiny_model_dir, out, [], save_steps=3, logging_steps=4, epochs=3, resume=last_complete_checkpoint(out / "checkpoints"))
    assert resumed.result.training_loss != pytest.approx(clean_loss, rel=1e-3)  # the trainer counts steps 7-15 only
    assert whole_run_loss(resumed.state.log_history) == pytest.approx(clean_loss, rel=1e-9)
    assert [h["step"] for h in resumed.state.log_history if "loss" in h] == [3, 4, 5, 6, 8, 9, 10, 12, 15]
