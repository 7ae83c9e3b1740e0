"""The one place that turns `train:`'s device-dependent keys into what this machine runs.

    settings = resolve(hp, probe())        # hp: spec.schema.Train; raises TrainDeviceError early

`auto` (every key's default) picks per device:

    key            CPU (measured, BENCHMARKS.md)        CUDA (not yet measured: bench/gpu_check)
    precision      fp32 (bf16 matmul ~100x slower)      bf16 where supported, else fp16
    attention      sdpa (transformers' default)         flash_attention_2 if flash_attn imports, else sdpa
    padding_free   no (length grouping won on CPU)      yes with flash_attention_2 (a varlen kernel), else no
    liger          no (Triton kernels: CUDA only)       no unless `liger: true` (pip install 'ftlab[liger]')

Why padding-free follows the kernel: flash_attention_2 reads the sequence boundaries (cu_seq_lens)
and does attention per sequence, so a flattened batch costs sum(len_i^2); sdpa and eager get a dense
block-diagonal mask from the position ids (transformers masking_utils.find_packed_sequence_indices),
correct but (sum len_i)^2, i.e. B times the attention work of a padded batch. `padding_free: true`
is honoured with any kernel (same loss, tests/train/test_device.py); `auto` only turns it on where
it pays.

Weights: bf16 loads the weights in bf16 (as ftlab did before these keys), fp16 keeps fp32 weights
under fp16 autocast (HF's grad scaler refuses fp16 parameters), fp32 is fp32 throughout.

An explicit choice the device cannot honour (flash_attention_2 without flash_attn, fp16 on a CPU,
liger without liger_kernel) fails at the start of the train stage with every problem in one message.
"""

from __future__ import annotations

import importlib.util
from dataclasses import asdict, dataclass
from typing import Literal

from ftlab.errors import StageError

Precision = Literal["bf16", "fp16", "fp32"]
Attention = Literal["eager", "sdpa", "flash_attention_2"]


class TrainDeviceError(StageError):
    """A `train:` device setting (precision, attention, liger) that this machine cannot honour."""


@dataclass(frozen=True)
class Device:
    """What resolve() needs to know about the machine (probe() reads it; tests build it)."""

    type: Literal["cpu", "cuda"]
    bf16: bool = False  # CUDA bf16 support (Ampere and newer)
    flash_attn: bool = False  # the flash_attn package imports
    liger: bool = False  # the liger_kernel package imports


@dataclass(frozen=True)
class DeviceSettings:
    device: Literal["cpu", "cuda"]
    precision: Precision
    attention: Attention
    padding_free: bool
    liger: bool

    @property
    def dtype(self):
        """The dtype the weights are loaded in (fp16: fp32 master weights under autocast)."""
        import torch

        return torch.bfloat16 if self.precision == "bf16" else torch.float32

    def record(self) -> dict:
        """What ran, for the train stage's result (`auto` is resolved per device: the evidence says which)."""
        return asdict(self)


def _importable(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


def probe() -> Device:
    import torch

    if not torch.cuda.is_available():
        return Device("cpu", liger=_importable("liger_kernel"))
    return Device("cuda", bf16=torch.cuda.is_bf16_supported(), flash_attn=_importable("flash_attn"), liger=_importable("liger_kernel"))


def resolve(hp, device: Device) -> DeviceSettings:
    """The table above for `hp` (spec.schema.Train) on `device`; TrainDeviceError lists every explicit
    choice the device cannot honour."""
    cuda = device.type == "cuda"
    problems = []

    precision = hp.precision
    if precision == "auto":
        precision = ("bf16" if device.bf16 else "fp16") if cuda else "fp32"
    elif precision == "fp16" and not cuda:
        problems.append("train.precision: fp16 needs a CUDA GPU (torch's CPU autocast has no fp16 grad scaling); use fp32 or bf16")
    elif precision == "bf16" and cuda and not device.bf16:
        problems.append("train.precision: this GPU has no bf16 support (pre-Ampere); use fp16 or auto")

    attention = hp.attention
    if attention == "auto":
        attention = "flash_attention_2" if cuda and device.flash_attn else "sdpa"
    elif attention == "flash_attention_2":
        if not cuda:
            problems.append("train.attention: flash_attention_2 needs a CUDA GPU; use sdpa or auto")
        elif not device.flash_attn:
            problems.append("train.attention: flash_attention_2 needs the flash_attn package: pip install flash-attn (or use sdpa)")
        elif precision == "fp32":
            problems.append("train.attention: flash_attention_2 runs in bf16 or fp16 only; set train.precision or use sdpa")

    padding_free = hp.padding_free
    if padding_free == "auto":
        padding_free = attention == "flash_attention_2"

    if hp.liger:
        if not cuda:
            problems.append("train.liger: Liger kernels are Triton kernels and need a CUDA GPU; set liger: false")
        elif not device.liger:
            problems.append("train.liger: needs the liger_kernel package: pip install 'ftlab[liger]' (or liger-kernel)")

    if problems:
        where = "a CUDA GPU" if cuda else "a CPU (no CUDA GPU visible)"
        raise TrainDeviceError(f"the train settings cannot run on this machine, {where}:\n  - " + "\n  - ".join(problems))
    return DeviceSettings(device.type, precision, attention, bool(padding_free), bool(hp.liger))
