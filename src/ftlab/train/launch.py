"""Multi-GPU training through `accelerate launch`, with a config rendered from the spec.

A run with `train.gpus > 1` does not train in the runner's process: the runner writes
`<train dir>/accelerate.yaml` and runs

    accelerate launch --config_file <train dir>/accelerate.yaml -m ftlab.cli stage exec SPEC train/<run>

so every rank runs the same train stage code (TRL/accelerate shard the work); rank 0 writes the
outputs, the runner keeps the bookkeeping (markers, registry). DDP replicates the model per GPU;
FSDP (v2) shards parameters, gradients and optimizer state, for models that do not fit one GPU, and
gathers a full state dict at save time so checkpoints stay loadable by from_pretrained / vLLM.
"""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path
from typing import Any

import yaml

from ftlab import atomic


def accelerate_config(gpus: int, distributed: str, mixed_precision: str = "bf16") -> dict[str, Any]:
    config: dict[str, Any] = {
        "compute_environment": "LOCAL_MACHINE",
        "debug": False,
        "distributed_type": "MULTI_GPU" if distributed == "ddp" else "FSDP",
        "downcast_bf16": "no",
        "gpu_ids": "all",
        "machine_rank": 0,
        "main_training_function": "main",
        "mixed_precision": mixed_precision,
        "num_machines": 1,
        "num_processes": gpus,
        "rdzv_backend": "static",
        "same_network": True,
        "tpu_env": [],
        "tpu_use_cluster": False,
        "tpu_use_sudo": False,
        "use_cpu": False,
    }
    if distributed == "fsdp":
        config["fsdp_config"] = {
            "fsdp_version": 2,
            "fsdp_auto_wrap_policy": "TRANSFORMER_BASED_WRAP",
            "fsdp_cpu_ram_efficient_loading": True,
            "fsdp_offload_params": False,
            "fsdp_reshard_after_forward": True,
            "fsdp_state_dict_type": "FULL_STATE_DICT",  # checkpoints in the plain HF layout
            "fsdp_activation_checkpointing": False,
        }
    return config


def render_config(path: Path, gpus: int, distributed: str) -> Path:
    atomic.write_text(path, yaml.safe_dump(accelerate_config(gpus, distributed), sort_keys=True))
    return path


def launch_command(config_path: Path, spec_path: Path, task_key: str) -> list[str]:
    """argv for `accelerate launch` running one stage task on every rank."""
    accelerate = Path(sys.executable).with_name("accelerate")
    return [
        str(accelerate) if accelerate.exists() else "accelerate",
        "launch",
        "--config_file",
        str(config_path),
        "-m",
        "ftlab.cli",
        "stage",
        "exec",
        str(spec_path),
        task_key,
    ]


def shell_line(argv: list[str]) -> str:
    return " ".join(shlex.quote(a) for a in argv)


def is_main_rank() -> bool:
    """True outside a distributed launch, and on global rank 0 inside one."""
    return int(os.environ.get("RANK", "0")) == 0


def launch(task, ctx):
    """The train row's launcher (ftlab.stages): with train.gpus > 1, run the task on every rank
    through `accelerate launch` and return rank 0's outputs; None: one process suffices."""
    gpus = task.inputs.train.gpus
    if gpus <= 1:
        return None
    import subprocess

    from ftlab.contract.task import launched_outputs
    from ftlab.errors import StageError

    config = render_config(task.out_dir / "accelerate.yaml", gpus, task.inputs.train.distributed)
    proc = subprocess.run(launch_command(config, ctx.spec_path, task.key))
    if proc.returncode != 0:
        raise StageError(f"{task.key}: accelerate launch exited with {proc.returncode}; see the log above")
    return launched_outputs(task)
