"""Stop training on request with a complete checkpoint to resume from (SLURM's warning before a time
limit, SIGTERM of a preemption or `scontrol requeue`).

    stopper = StopOnRequest(ctx.stop_requested)       # a TrainerCallback; the runner says why, or None
    trainer.train(...)
    stopper.check(trainer, ckpt_dir)                   # raises Interrupted when it stopped early

The runner's signal handlers only record why (ftlab.runners.slurm.requeue); this callback asks after
every optimizer step and, when asked to stop, ends training there. The trainer then runs its epoch
end (CheckpointNamer saves the step it reached, marked complete last, `resume_only` where an
uninterrupted run saves nothing), so the resumed run continues from exactly that step with its
optimizer, scheduler and RNG state. A step of a small model takes milliseconds; a full fine-tuning
checkpoint of an 8B model takes minutes to write, which is what the profile's warning must allow for.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from transformers import TrainerCallback

from ftlab.contract.layout import complete_checkpoints
from ftlab.errors import Interrupted


class StopOnRequest(TrainerCallback):
    """End training after the current step when `requested()` gives a reason."""

    def __init__(self, requested: Callable[[], str | None] | None):
        self.requested = requested
        self.reason: str | None = None
        self.saved_here = False  # the step it stopped at was saved in the step loop already (a save_steps step)

    def on_step_end(self, args, state, control, **kwargs):
        if self.reason is None and self.requested is not None:
            self.reason = self.requested()
            if self.reason is not None and state.global_step < state.max_steps:
                control.should_training_stop = True
                self.saved_here = bool(control.should_save)
        return control

    def on_epoch_end(self, args, state, control, **kwargs):
        # Runs after CheckpointNamer's, which asks for a save at every epoch end: a step saved in the
        # loop already must not be saved twice (the second save would rewrite it after its marker).
        if self.reason is not None and self.saved_here:
            control.should_save = False
        return control

    def check(self, trainer, ckpt_dir: Path) -> None:
        """Raise Interrupted when training ended before its last step because a stop was asked."""
        state = trainer.state
        if self.reason is None or state.global_step >= state.max_steps:
            return
        saved = [c for c in complete_checkpoints(ckpt_dir, with_resume_only=True) if c["step"] == state.global_step]
        where = f"checkpoint {saved[0]['name']} (step {state.global_step})" if saved else f"step {state.global_step}, but no checkpoint was completed there"
        raise Interrupted(f"stopped at step {state.global_step} of {state.max_steps} ({self.reason}); saved {where}; "
                          "it resumes from there when it runs again",
                          reason=self.reason, checkpoint=saved[0]["name"] if saved else None, step=state.global_step)
