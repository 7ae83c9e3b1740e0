"""ftlab's SFTTrainer setup: the training settings chosen by measurement (bench/train_throughput).

    trainer = build_trainer(model, tokenizer, rows, hp, TrainerSetup(out_dir, seed, weighted=False))  # hp: spec.schema.Train

Versus TRL's SFTConfig defaults: no activation checkpointing (TRL turns it on; it recomputes the
forward pass, ~8N instead of 6N FLOPs per token, and buys nothing for models that fit), batches
grouped by length with a seeded sampler (pads far less on length-varied data; exact on resume),
fused AdamW (one kernel per parameter group instead of a dozen per tensor), fp32 on CPU (TRL
defaults to bf16, ~100x slower on CPUs without bf16 matmul units). `compile` (off by default)
torch.compiles each transformer block in place: blocks share code, so one compilation serves all
of them (15-40 s on CPU), and dynamic shapes keep varying batch lengths from recompiling.
The output layer runs over completion positions only (head.py); TRL on CPU runs it over every
position, which at a 152k vocabulary costs several times the body of a small model.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ftlab.models.load import device_and_dtype
from ftlab.spec.schema import Train
from ftlab.train.head import add_completion_head
from ftlab.train.loss import WeightedSFTTrainer
from ftlab.train.sampler import LengthGroupingMixin


@dataclass
class TrainerSetup:
    out_dir: Path
    seed: int
    weighted: bool = False
    callbacks: list = field(default_factory=list)


def sft_config(hp: Train, setup: TrainerSetup):
    import torch
    from trl import SFTConfig

    device, dtype = device_and_dtype()
    if "wandb" in hp.report_to:
        os.environ.setdefault("WANDB_MODE", "offline")  # offline unless the user chose a mode
    return SFTConfig(
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
        max_length=hp.max_length,
        completion_only_loss=True,
        activation_checkpointing=False,
        use_cpu=device.type == "cpu",
        bf16=dtype == torch.bfloat16,
        fp16=dtype == torch.float16,
        # train.report_to (RUNTIME): trackers log beside the checkpoints (tensorboard: checkpoints/runs/).
        report_to=[r for r in hp.report_to if r != "none"] or "none",
        dataloader_num_workers=0,
        save_only_model=False,  # optimizer + RNG state are what make resume exact
        save_total_limit=hp.keep_last,
    )


def trainer_class(weighted: bool):
    from trl import SFTTrainer

    base = WeightedSFTTrainer if weighted else SFTTrainer
    return type(f"Ftlab{base.__name__}", (LengthGroupingMixin, base), {})


def build_trainer(model, tokenizer, rows: list[dict[str, Any]], hp: Train, setup: TrainerSetup):
    """An SFTTrainer over pre-tokenized rows (input_ids, completion_mask[, sample_weight])."""
    from datasets import Dataset

    trainer = trainer_class(setup.weighted)(
        model=model,
        args=sft_config(hp, setup),
        train_dataset=Dataset.from_list(rows),
        processing_class=tokenizer,
        callbacks=setup.callbacks,
    )
    trainer.group_by_length = hp.group_by_length
    # lm_head over completion positions only (head.py); on a config it cannot serve, TRL's stays.
    trainer.completion_head_blocker = add_completion_head(trainer.model)
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
