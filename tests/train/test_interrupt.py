"""A run asked to stop (SLURM's warning before a time limit, SIGTERM) saves the step it reached and
resumes from it to the same weights, checkpoints and loss as an uninterrupted run."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback

from ftlab.errors import Interrupted
from ftlab.spec.schema import Train
from ftlab.train.checkpoints import CheckpointNamer, complete_checkpoints, last_complete_checkpoint
from ftlab.train.interrupt import StopOnRequest
from ftlab.train.stage import whole_run_loss
from ftlab.train.trainer import TrainerSetup, build_trainer
from tests.train.test_checkpoints import SaveCounter, hem_rows


class AskAt(TrainerCallback):
    """The runner's side: a stop is asked once the trainer finished `step` (a signal arriving then)."""

    def __init__(self, step: int):
        self.step, self.seen = step, 0

    def on_step_end(self, args, state, control, **kwargs):
        self.seen = state.global_step
        return control

    def __call__(self) -> str | None:
        return "test: time limit near" if self.seen >= self.step else None


def _run(model_dir: Path, out: Path, extra: list, resume=None):
    """As tests/train/test_checkpoints.py's _train (2 epochs of 5 steps, a save every 3), with the
    stage's callback order: the namer, then the stopper."""
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    rows = hem_rows(tok)
    hp = Train(epochs=2, batch_size=8, save_steps=3, logging_steps=1)
    trainer = build_trainer(model, tok, rows, hp, TrainerSetup(out / "checkpoints", 0, False, [CheckpointNamer(out), *extra]))
    trainer.train(resume_from_checkpoint=resume)
    return trainer


def _weights(ckpt: str) -> dict:
    return load_file(str(Path(ckpt) / "model.safetensors"))


@pytest.fixture(scope="module")
def clean(tmp_path_factory, tiny_model_dir: Path):
    """The uninterrupted run, once for both cases."""
    out = tmp_path_factory.mktemp("clean")
    return _run(tiny_model_dir, out, []), out


@pytest.mark.parametrize("stop_at", [7, 9], ids=["mid-epoch", "on-a-save-step"])
def test_a_stopped_run_resumes_to_the_uninterrupted_weights(tmp_path: Path, tiny_model_dir: Path, clean, stop_at: int):
    # step 7 is no save of an uninterrupted run; step 9 is (save_steps 3)
    clean, clean_out = clean
    out = tmp_path / "stopped"
    ask, counter = AskAt(stop_at), SaveCounter()
    stopper = StopOnRequest(ask)
    first = _run(tiny_model_dir, out, [counter, ask, stopper])
    assert first.state.global_step == stop_at and set(counter.saves.values()) == {1}  # every step saved once
    with pytest.raises(Interrupted) as info:
        stopper.check(first, out / "checkpoints")
    assert info.value.step == stop_at and info.value.checkpoint == f"step_{stop_at}"
    resume = last_complete_checkpoint(out / "checkpoints")
    assert resume.endswith(f"checkpoint-{stop_at}")
    listed = [c["name"] for c in complete_checkpoints(out / "checkpoints")]
    assert (f"step_{stop_at}" in listed) == (stop_at % 3 == 0)  # a resume-only checkpoint is never listed

    resumed = _run(tiny_model_dir, out, [], resume=resume)
    ours, theirs = complete_checkpoints(out / "checkpoints"), complete_checkpoints(clean_out / "checkpoints")
    assert [c["name"] for c in ours] == [c["name"] for c in theirs]
    assert not (out / "checkpoints" / "checkpoint-7").exists()  # dropped once a later checkpoint was complete
    for a, b in zip(ours, theirs):
        wa, wb = _weights(a["path"]), _weights(b["path"])
        assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wb), a["name"]
    assert whole_run_loss(resumed.state.log_history) == pytest.approx(whole_run_loss(clean.state.log_history), rel=1e-9)
