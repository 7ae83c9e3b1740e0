"""Train stage: TRL SFTTrainer, full or LoRA, completion-only loss, seeded, resumable.

Inputs (ftlab.contract.inputs.TrainInputs): base model dir, normalised train data, method and
training settings, seed, and the run kind (`random_init` trains a fresh copy of the base's
architecture). Outputs: checkpoints/ (see checkpoints.py), checkpoints.json, log_history.json.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from ftlab import atomic
from ftlab.data.encode import encode_for_training
from ftlab.data.stage import load_split
from ftlab.models.load import load_model, load_tokenizer
from ftlab.spec.identity import stable_hash
from ftlab.spec.schema import Method, Quantization
from ftlab.contract.task import StageContext, StageResult
from ftlab.contract.inputs import TrainInputs
from ftlab.contract import layout
from ftlab.train.checkpoints import CheckpointNamer, complete_checkpoints, drop_dangling_links, drop_resume_only, last_complete_checkpoint
from ftlab.train import lora_kernel, memory, padding_mask, rms_norm, shared_prefix
from ftlab.train.device import probe, resolve
from ftlab.train.interrupt import StopOnRequest
from ftlab.train.loss import WEIGHT, sample_weight
from ftlab.train.trainer import TrainerSetup, build_trainer


def run_train(inputs: TrainInputs, ctx: StageContext) -> StageResult:
    from transformers import set_seed

    out = Path(ctx.out_dir)
    seed = inputs.seed
    hp = inputs.train
    settings = resolve(hp, probe())  # first: a setting this machine cannot honour fails before any loading
    dtype = settings.dtype
    base = inputs.base_dir
    if inputs.kind == "random_init":
        base = str(fresh_copy(base, out / layout.INIT, seed, dtype))
    if ctx.on_checkpoint is not None:  # the untrained model is there already
        ctx.on_checkpoint({"name": "step_0", "step": 0, "epoch": 0.0, "path": base})
    tokenizer = load_tokenizer(base)

    set_seed(seed)  # before LoRA init: the adapter's A matrices are drawn from torch's RNG
    model = load_model(base, dtype=dtype, quantization=quantization_of(inputs.method), attn_implementation=settings.attention)
    model = apply_method(model, inputs.method)

    loss = hp.loss
    weighted = loss.variant in ("accept", "reject")
    rows = []
    truncated = 0
    for e in load_split(inputs.data_dir):
        ids, mask, cut = encode_for_training(tokenizer, e, hp.max_length)
        truncated += cut > 0
        row = {"input_ids": ids, "completion_mask": mask}
        if weighted:
            row[WEIGHT] = sample_weight(e.label, positive=inputs.positive, variant=loss.variant, gamma=loss.gamma)
        rows.append(row)
    warnings = truncation_warning(truncated, len(rows), hp.max_length)
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr, flush=True)
    plan, checkpoint_every = checkpointing(model, rows, hp, settings)
    ckpt_dir = out / layout.CHECKPOINTS_DIR
    # keep_last is CheckpointNamer's: it rotates after marking the new checkpoint complete (HF's
    # save_total_limit would delete old checkpoints before the new one is marked).
    namer = CheckpointNamer(out, keep_last=hp.keep_last, on_checkpoint=ctx.on_checkpoint)
    stopper = StopOnRequest(ctx.stop_requested)  # after the namer: it sees the namer's save decisions
    trainer = build_trainer(model, tokenizer, rows, hp.model_copy(update={"keep_last": None}),
                            TrainerSetup(ckpt_dir, seed, weighted, [namer, stopper], settings, checkpoint_every))
    resume = last_complete_checkpoint(ckpt_dir)
    started = time.time()
    meter = memory.PeakMeter(settings.device)
    with memory.bounded_heap(settings.device) as bounded:
        meter.reset()
        trainer.train(resume_from_checkpoint=resume)
    stopper.check(trainer, ckpt_dir)  # asked to stop (time limit near, preempted): Interrupted, to resume later
    if trainer.is_world_process_zero():
        drop_resume_only(ckpt_dir)  # the run is whole: what it resumed from is not one of its checkpoints
    manifest = [{"name": "step_0", "step": 0, "epoch": 0.0, "path": base}] + complete_checkpoints(ckpt_dir)
    if trainer.is_world_process_zero():
        drop_dangling_links(out)  # keep_last may have removed an epoch checkpoint
        atomic.write_json(out / layout.MANIFEST, manifest)
        atomic.write_json(out / layout.LOG_HISTORY, trainer.state.log_history)
    return StageResult({
        "checkpoints": [c["name"] for c in manifest],
        "global_step": trainer.state.global_step,
        "train_loss": whole_run_loss(trainer.state.log_history),
        "resumed_from": resume,
        "seconds": round(time.time() - started, 2),
        "n_examples": len(rows),
        "n_truncated": truncated,
        "warnings": warnings,
        "device": settings.record(),  # what `auto` resolved to on this machine
        "memory": plan | {"measured_peak": meter.record(), "allocator": memory.allocator_record(bounded)},
    })


def checkpointing(model, rows, hp, settings) -> tuple[dict, int | None]:
    """(the memory record, every_n_layers or None): the estimate and the choice made from it
    (memory.py). With several GPUs each rank holds a shard or a replica the estimate does not
    model: there the spec's choice holds and `auto` keeps checkpointing off."""
    if hp.gpus > 1:
        every = 1 if hp.activation_checkpointing is True else None
        return {"activation_checkpointing": every is not None, "every_n_layers": every, "estimate": None,
                "reason": f"train.gpus={hp.gpus}: not estimated per rank"}, every
    plan = memory.plan_training(model, rows, hp, settings)
    if "does not fit" in plan.reason:
        print(f"warning: memory: {plan.reason}", file=sys.stderr, flush=True)
    return plan.record(), plan.every_n_layers


def truncation_warning(truncated: int, n: int, max_length: int) -> list[str]:
    """Training on cut prompts is silent otherwise, and evaluation scores the full prompt: the model
    is then asked about text (and positions) it never trained on. Measured: the weighted-loss
    example at max_length 256 cut every one of its 290-490-token prompts and learned nothing."""
    if not truncated:
        return []
    return [f"{truncated} of {n} train examples ({truncated / n:.0%}) are longer than train.max_length={max_length}: "
            "their prompts were cut from the left for training, while evaluation reads them whole; raise train.max_length"]


def whole_run_loss(log_history: list[dict[str, Any]]) -> float | None:
    """Mean training loss over every step of the run, resumed or not, from the trainer's logs.

    Each log entry's "loss" is the mean over the steps since the previous entry, so the run's mean
    is their step-weighted average. The trainer's own training_loss only covers the steps of the
    last train() call (after a resume: 0.134 instead of the whole run's 0.796). The logs cover
    every step because CheckpointNamer logs at each save and at the end, and a resumed trainer
    restores the history saved with its checkpoint. None when nothing was logged.
    """
    total, steps, last = 0.0, 0, 0
    for entry in log_history:
        if "loss" in entry:
            window = entry["step"] - last
            total += entry["loss"] * window
            steps += window
            last = entry["step"]
    return total / steps if steps else None


def quantization_of(method: Method) -> Quantization | None:
    return method.quantization if method.name == "qlora" else None


def apply_method(model, method: Method):
    """The model as training runs it. Full fine-tuning trains every weight; LoRA and QLoRA freeze the
    base and train adapters only, and LoRA layers over a plain linear base take the fused forward
    (lora_kernel.py: same arithmetic). Right-padded batches attend without their padding mask
    (padding_mask.py: same loss); RMSNorms run torch's fused kernel (rms_norm.py: same outputs); rows
    that start alike compute their shared prefix once (shared_prefix.py: same loss).
    Before the memory plan: its probe measures the model as trained."""
    padding_mask.install(model)
    rms_norm.install(model)
    shared_prefix.install(model)
    if method.name == "full":
        return model
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

    if method.name == "qlora":
        # Casts norms to fp32 and enables input grads, as QLoRA needs; no activation checkpointing here.
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)

    lora = method.lora
    config = LoraConfig(
        r=lora.r,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=lora.target_modules,
        task_type="CAUSAL_LM",
    )
    model = get_peft_model(model, config)
    lora_kernel.install(model)
    return model


def fresh_copy(base: str, out: Path, seed: int, dtype) -> Path:
    """Same architecture and tokenizer as `base`, new weights drawn with `seed` (random-init control)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    if (out / layout.INIT_MARKER).is_file():
        return out
    config = AutoConfig.from_pretrained(base)
    # Derived, not `seed` itself: a tiny base built with init seed 0 must not equal the control of seed 0.
    torch.manual_seed(int(stable_hash({"random_init": seed})[:8], 16))
    model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    model.save_pretrained(out)
    load_tokenizer(base).save_pretrained(out)
    atomic.write_json(out / layout.INIT_MARKER, {"from": base, "seed": seed})  # last write: marks complete
    return out
