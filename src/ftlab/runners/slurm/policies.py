"""Resource policies: plain tables from model size to SLURM resources, registered by name.

    from ftlab.runners.slurm.policies import policies
    table = policies.get("seed004")

A cluster profile picks one by name (`policy: seed004`) and may override any row field
(`resources: {8B: {gpus: 2}}`). Add a policy with `policies.register("name")(table)`.

`seed004` is seed 004's evaluation table (1B/3B/8B/70B -> memory, GPUs, constraint, CPUs, 30 min),
unchanged, plus what that table lacks and training needs:
- `max_params`: the row covers models up to this many parameters (the seed matched names instead);
- `time.train`: a time limit for training (48 h for 8B: seed 002's 7B runs asked for 48 h);
- `time.curate`: a time limit for curation that asks a model (seed 003's difficulty filter
  generates up to 1,024 tokens for each of 25,000 questions: at batch 16 and ~40 s a batch for an
  8B model with HF generate, ~17 h, hence 24 h; an eval's 30 min would cut it off);
- `bytes_per_param`: GPU memory training needs per parameter by method, used to add GPUs when one
  is not enough. Full fine-tuning with AdamW in mixed precision holds bf16 weights and gradients
  (2 + 2), fp32 master weights (4) and two fp32 moments (8): 16 bytes. LoRA keeps the frozen base
  in bf16 (2) plus a small adapter; QLoRA the base in 4 bits (~0.55 with quantization constants).
  `activation_overhead` (1.5) covers activations, buffers and fragmentation on top.
"""

from __future__ import annotations

from typing import Any

from ftlab.plugins import Plugins

policies: Plugins[dict[str, Any]] = Plugins("resource policy")

SEED004: dict[str, Any] = {
    "default_size": "1B",  # seed 004: "Default to 1B settings if model size cannot be determined"
    "sizes": {
        "1B": {"max_params": 2.0e9, "mem": "32G", "gpus": 1, "constraint": None, "cpus": 4,
               "time": {"eval": "0:30:00", "train": "8:00:00", "curate": "8:00:00"}},
        "3B": {"max_params": 5.0e9, "mem": "64G", "gpus": 1, "constraint": "gpu80", "cpus": 4,
               "time": {"eval": "0:30:00", "train": "24:00:00", "curate": "12:00:00"}},
        "8B": {"max_params": 20.0e9, "mem": "96G", "gpus": 1, "constraint": "gpu80", "cpus": 8,
               "time": {"eval": "0:30:00", "train": "48:00:00", "curate": "24:00:00"}},
        "70B": {"max_params": None, "mem": "256G", "gpus": 4, "constraint": "gpu80", "cpus": 8,
                "time": {"eval": "0:30:00", "train": "48:00:00", "curate": "48:00:00"}},
    },
    # Memory of one GPU by constraint: "" is whatever the partition gives when none is asked (A100 40G
    # is the common floor on the seeds' clusters).
    "gpu_memory_gb": {"": 40, "gpu80": 80},
    "bytes_per_param": {"full": 16.0, "lora": 2.0, "qlora": 0.55},
    "activation_overhead": 1.5,
    # When training needs more GPUs than the row gives, the host side grows with them (each rank
    # loads its shard and runs a dataloader): seed 002's 4-GPU 7B jobs asked 256G, i.e. 64G per GPU.
    "per_extra_gpu": {"mem": "64G", "cpus": 4},
    # Jobs that touch no model weights: data preparation, the tiny-model build, the report.
    "cpu_job": {"mem": "8G", "cpus": 2, "gpus": 0, "constraint": None, "time": "1:00:00"},
    # Bytes per parameter of one saved checkpoint, by method (for `ftlab plan --cost`): a full
    # checkpoint is bf16 weights (2) plus the fp32 AdamW state (4 master + 8 moments) that exact
    # resume needs; a LoRA checkpoint is the adapter and its optimizer state, ~1% of the parameters
    # at r=8..16. `final_weights` is what seed 002 counted: one bf16 copy per run (7.6B -> 15 GB).
    "checkpoint_bytes_per_param": {"full": 14.0, "lora": 0.14, "qlora": 0.14},
    "final_weights_bytes_per_param": 2.0,
}

policies.register("seed004")(SEED004)
