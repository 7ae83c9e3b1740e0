"""ftlab's SFTTrainer setup: the training settings chosen by measurement (bench/train_throughput).

    trainer = build_trainer(model, tokenizer, rows, hp, TrainerSetup(out_dir, seed, weighted=False))  # hp: spec.schema.Train

Versus TRL's SFTConfig defaults: activation checkpointing only where the memory estimate says the
step would not fit (memory.py; TRL always turns it on: it recomputes the forward pass, ~8N instead
of 6N FLOPs per token, and buys nothing for models that fit), batches
grouped by length with a seeded sampler (pads far less on length-varied data; exact on resume),
fused AdamW (one kernel per parameter group instead of a dozen per tensor), fp32 on CPU (TRL
defaults to bf16, ~100x slower on CPUs without bf16 matmul units). `compile` (off by default)
torch.compiles each transformer block in place: blocks share code, so one compilation serves all
of them (15-40 s on CPU), and dynamic shapes keep varying batch lengths from recompiling.
The output layer runs over completion positions only (head.py); TRL on CPU runs it over every
position, which at a 152k vocabulary costs several times the body of a small model. A tied
embedding's gradient is built in one buffer instead of two (tied.py).
Device-dependent settings (precision, attention kernel, padding-free batches, Liger) come from
ftlab.train.device; sft_config_kwargs() is a plain dict so a CUDA configuration can be checked
without a GPU (tests/train/test_device.py).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ftlab.spec.schema import Train
from ftlab.train.device import DeviceSettings, probe, resolve
from ftlab.train.head import add_completion_head, head_owner
from ftlab.train.loss import WeightedSFTTrainer
from ftlab.train.sampler import LengthGroupingMixin
from ftlab.train.tied import write_tied_grad_in_place


@dataclass
class TrainerSetup:
    out_dir: Path
    seed: int
    weighted: bool = False
    callbacks: list = field(default_factory=list)
    settings: DeviceSettings | None = None  # None: resolved for this machine (device.resolve)
    # Activation checkpointing: None off, n every n-th decoder layer (1: all); memory.choose decides.
    checkpoint_every: int | None = None

    def device_settings(self, hp: Train) -> DeviceSettings:
        return self.settings or resolve(hp, probe())


# Liger's layer kernels only: its fused linear cross-entropy would replace the forward that carries
# the completion-only head (head.py), which already skips prompt logits. TRL 1.16 forces it off too.
LIGER_KERNELS = {"rope": True, "rms_norm": True, "swiglu": True, "cross_entropy": False, "fused_linear_cross_entropy": False}


def sft_config_kwargs(hp: Train, setup: TrainerSetup, settings: DeviceSettings) -> dict[str, Any]:
    """SFTConfig's arguments for `hp` on a machine with `settings` (pure: no device is touched)."""
    kwargs = dict(
        output_dir=str(setup.out_dir),
        per_device_train_batch_size=hp.batch_size,
        gradient_accumulation_steps=hp.grad_accum,
        learning_rate=hp.learning_rate,
        num_train_epochs=hp.epochs,
        max_steps=hp.max_steps or -1,
        lr_scheduler_type=hp.scheduler,
        warmup_steps=hp.warmup_ratio,  # transformers 5: a float < 1 is a ratio of total steps
        weight_decay=hp.weight_decay,
        optim=hp.optimizer,
        save_strategy="steps" if hp.save_steps else "epoch",
        save_steps=hp.save_steps or 500,
        logging_steps=hp.logging_steps,
        seed=setup.seed,
        data_seed=setup.seed,
        # Padding-free: TRL refuses max_length without packing, and rows arrive cut to max_length
        # already (ftlab.data.encode), so nothing is lost.
        max_length=None if settings.padding_free else hp.max_length,
        padding_free=settings.padding_free,
        completion_only_loss=True,
        # Chosen from the memory estimate (memory.py), not assumed: off where the step fits (it
        # recomputes the forward, ~8N instead of 6N FLOPs per token), on where it does not.
        activation_checkpointing=setup.checkpoint_every is not None,
        activation_checkpointing_kwargs={"every_n_layers": setup.checkpoint_every, "use_reentrant": False} if setup.checkpoint_every else None,
        use_cpu=settings.device == "cpu",
        bf16=settings.precision == "bf16",
        fp16=settings.precision == "fp16",
        # train.report_to (RUNTIME): trackers log beside the checkpoints (tensorboard: checkpoints/runs/).
        report_to=[r for r in hp.report_to if r != "none"] or "none",
        dataloader_num_workers=0,
        save_only_model=False,  # optimizer + RNG state are what make resume exact
        save_total_limit=hp.keep_last,
    )
    if settings.liger:
        kwargs |= {"use_liger_kernel": True, "liger_kernel_config": dict(LIGER_KERNELS)}
    return kwargs


def sft_config(hp: Train, setup: TrainerSetup, settings: DeviceSettings | None = None):
    from trl import SFTConfig

    if "wandb" in hp.report_to:
        os.environ.setdefault("WANDB_MODE", "offline")  # offline unless the user chose a mode
    return SFTConfig(**sft_config_kwargs(hp, setup, settings or setup.device_settings(hp)))


def trainer_class(weighted: bool):
    from trl import SFTTrainer

    base = WeightedSFTTrainer if weighted else SFTTrainer
    return type(f"Ftlab{base.__name__}", (LengthGroupingMixin, base), {})


def build_trainer(model, tokenizer, rows: list[dict[str, Any]], hp: Train, setup: TrainerSetup):
    """An SFTTrainer over pre-tokenized rows (input_ids, completion_mask[, sample_weight])."""
    from datasets import Dataset

    trainer = trainer_class(setup.weighted)(
        model=model,
        args=sft_config(hp, setup, setup.device_settings(hp)),
        train_dataset=Dataset.from_list(rows),
        processing_class=tokenizer,
        callbacks=setup.callbacks,
    )
    trainer.group_by_length = hp.group_by_length
    # lm_head over completion positions only (head.py); on a config it cannot serve, TRL's stays.
    trainer.completion_head_blocker = add_completion_head(trainer.model)
    # A tied embedding's gradient in one buffer (tied.py); it needs the completion head to route it.
    trainer.tied_grad_blocker = trainer.completion_head_blocker or write_tied_grad_in_place(head_owner(trainer.model))
    if hp.compile:
        compile_blocks(trainer.model)
    return trainer


def compile_blocks(module) -> int:
    """torch.compile, in place, every block of each list of same-class blocks (the decoder layers),
    not descending into compiled blocks. In place keeps parameter names, so checkpoints and state
    dicts are unchanged. Returns how many blocks were compiled."""
    import torch

    compiled = 0
    for child in module.children():
        if isinstance(child, torch.nn.ModuleList) and len(child) > 1 and len({type(m) for m in child}) == 1:
            for block in child:
                block.compile(dynamic=True)
            compiled += len(child)
        else:
            compiled += compile_blocks(child)
    return compiled
