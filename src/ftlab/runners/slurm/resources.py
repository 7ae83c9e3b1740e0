"""Choose SLURM resources for a stage task from the model's parameter count and the method.

    size = model_size(plan, exp)          # ModelSize(params=7.6e9, source="config.json in HF cache", bucket="8B")
    res = choose(policy, size, stage="train", method="full", limits=profile.limits)
    res.sbatch_lines()  -> ["--gres=gpu:4", "--mem=128G", ...];  res.why -> "8B row; full needs ..."

The size comes from the model's config (no weights are read), in this order: the spec's tiny
config; config.json in a local model dir; config.json in the Hugging Face cache; a size in the
name ("Qwen2.5-7B-Instruct" -> 7B); else the policy's default row (seed 004: 1B).
"""

from __future__ import annotations

import glob
import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ftlab.errors import SlurmError
from ftlab.runners.slurm.policies import policies


@dataclass(frozen=True)
class ModelSize:
    params: float | None  # None: unknown
    source: str  # how it was found, for people reading `ftlab plan`


@dataclass
class Resources:
    cpus: int
    mem: str
    gpus: int
    time: str
    constraint: str | None = None
    why: list[str] = field(default_factory=list)

    def sbatch_options(self) -> list[str]:
        options = [f"--cpus-per-task={self.cpus}", f"--mem={self.mem}", f"--time={self.time}"]
        if self.gpus:
            options.append(f"--gres=gpu:{self.gpus}")
        if self.constraint:
            options.append(f"--constraint={self.constraint}")
        return options

    def hours(self) -> float:
        return time_hours(self.time)


def policy_table(profile) -> dict[str, Any]:
    """The profile's named policy with its per-size overrides merged in (a fresh copy)."""
    base = json.loads(json.dumps(policies.get(profile.policy)))
    for size, override in profile.resources.items():
        if size == "cpu_job":
            base["cpu_job"].update(override)
            continue
        if size not in base["sizes"]:
            raise SlurmError(f"cluster profile overrides size '{size}', which policy '{profile.policy}' does not have (sizes: {', '.join(base['sizes'])}, cpu_job)")
        row = base["sizes"][size]
        for key, value in override.items():
            if key == "time" and isinstance(value, dict):
                row["time"].update(value)
            elif key == "time":
                row["time"] = {"eval": value, "train": value, "curate": value}
            else:
                row[key] = value
    return base


def model_size(plan, exp) -> ModelSize:
    model = exp.model
    if model.tiny is not None:
        t = model.tiny
        config = {"hidden_size": t.hidden_size, "num_hidden_layers": t.num_layers, "num_attention_heads": t.num_heads,
                  "num_key_value_heads": t.num_kv_heads, "intermediate_size": t.intermediate_size, "vocab_size": t.vocab_size,
                  "tie_word_embeddings": True}
        return ModelSize(count_params(config), "the spec's tiny model config")
    if model.gguf is not None:
        return _gguf_size(plan, model.gguf)
    local = plan.base_dir / model.path
    if (local / "config.json").is_file():
        return _from_config(local / "config.json", f"config.json in {model.path}")
    cached = _hf_cache_config(model.path)
    if cached:
        return _from_config(cached, "config.json in the Hugging Face cache")
    from_name = params_from_name(model.path)
    if from_name:
        return ModelSize(from_name, f"the size in the name '{model.path}' (no config.json on disk)")
    return ModelSize(None, f"unknown: no config.json for '{model.path}' on disk and no size in its name")


def _gguf_size(plan, ref: str) -> ModelSize:
    """The converted folder's config when it exists, else the size in the file's name."""
    from ftlab.errors import ModelError
    from ftlab.models import gguf

    try:
        path = gguf.resolve(ref, plan.base_dir)
    except ModelError as err:
        return ModelSize(None, f"unknown: {err}")
    sha = gguf.digest(path)
    if gguf.is_converted(sha):
        return _from_config(gguf.converted_dir(sha) / "config.json", f"config.json of the converted {path.name}")
    from_name = params_from_name(path.name)
    if from_name:
        return ModelSize(from_name, f"the size in the name '{path.name}' (not converted yet)")
    return ModelSize(None, f"unknown: {path.name} is not converted yet and has no size in its name")


def _from_config(path: Path, source: str) -> ModelSize:
    try:
        config = json.loads(path.read_text())
        return ModelSize(count_params(config), source)
    except (OSError, ValueError, KeyError, TypeError) as err:
        return ModelSize(None, f"unknown: cannot read {path}: {err}")


def count_params(config: dict[str, Any]) -> float:
    """Parameters of a decoder-only transformer from its HF config (Llama/Qwen/Mistral shape).

    Embeddings (+ an untied LM head) + per layer: attention projections with grouped KV heads,
    a gated MLP (3 matrices; times the experts of a MoE) and two norms. Biases are left out
    (<0.1%). Qwen2.5-7B gives 7.62e9, its published count.
    """
    config = config.get("text_config", config)
    h, layers, vocab = config["hidden_size"], config["num_hidden_layers"], config["vocab_size"]
    heads = config.get("num_attention_heads", 1)
    kv = config.get("num_key_value_heads") or heads
    head_dim = config.get("head_dim") or h // heads
    inter = config.get("intermediate_size") or 4 * h
    experts = config.get("num_local_experts") or config.get("num_experts") or 1
    attention = h * heads * head_dim * 2 + h * kv * head_dim * 2
    mlp = 3 * h * inter * experts
    embed = vocab * h * (1 if config.get("tie_word_embeddings", False) else 2)
    return float(embed + layers * (attention + mlp + 2 * h) + h)


def params_from_name(name: str) -> float | None:
    """'Llama-3.1-8B-Instruct' -> 8e9, 'Qwen2.5-0.5B' -> 5e8, 'SmolLM-135M' -> 1.35e8; None if no size."""
    found = re.findall(r"(?<![\d.])(\d+(?:\.\d+)?)\s*([BbMm])(?![A-Za-z])", name.split("/")[-1])
    if not found:
        return None
    number, unit = found[-1]
    return float(number) * (1e9 if unit in "Bb" else 1e6)


def _hf_cache_config(model_id: str) -> Path | None:
    if "/" not in model_id:
        return None
    hub = os.environ.get("HF_HUB_CACHE") or os.path.join(os.environ.get("HF_HOME", os.path.expanduser("~/.cache/huggingface")), "hub")
    pattern = os.path.join(hub, "models--" + model_id.replace("/", "--"), "snapshots", "*", "config.json")
    hits = sorted(glob.glob(pattern))
    return Path(hits[-1]) if hits else None


def size_row(table: dict[str, Any], size: ModelSize) -> tuple[str, dict[str, Any]]:
    if size.params is None:
        name = table["default_size"]
        return name, table["sizes"][name]
    for name, row in table["sizes"].items():  # rows are in increasing size
        if row["max_params"] is None or size.params <= row["max_params"]:
            return name, row
    name = list(table["sizes"])[-1]
    return name, table["sizes"][name]


def choose(table: dict[str, Any], size: ModelSize, *, stage: str, method: str, limits) -> Resources:
    """Resources for one stage task. `stage` is train, eval, curate, or cpu (data/model/report)."""
    if stage == "cpu":
        job = table["cpu_job"]
        res = Resources(cpus=job["cpus"], mem=job["mem"], gpus=job["gpus"], time=job["time"], constraint=job["constraint"],
                        why=["no model weights: the policy's cpu_job row"])
        return _capped(res, limits)
    name, row = size_row(table, size)
    res = Resources(cpus=row["cpus"], mem=row["mem"], gpus=row["gpus"], time=row["time"][stage], constraint=row["constraint"])
    res.why.append(f"{format_params(size.params)} params from {size.source} -> row {name}")
    if stage == "train" and size.params is not None:
        per_param = table["bytes_per_param"].get(method)
        if per_param is None:
            raise SlurmError(f"policy has no bytes_per_param for method '{method}' (has: {', '.join(table['bytes_per_param'])})")
        gpu_gb = table["gpu_memory_gb"].get(res.constraint or "", table["gpu_memory_gb"][""])
        need_gb = size.params * per_param * table["activation_overhead"] / 1e9
        # FSDP shards evenly over a power-of-two group; 3 GPUs buy nothing over 4 on 4-GPU nodes.
        gpus = 2 ** math.ceil(math.log2(max(1.0, need_gb / gpu_gb)))
        if gpus > res.gpus:
            res.why.append(f"{method}: ~{need_gb:.0f} GB of GPU memory ({per_param:g} B/param x {table['activation_overhead']:g}) -> {gpus} x {gpu_gb} GB GPUs")
            scale = table["per_extra_gpu"]
            res.mem = format_mem(max(mem_gb(res.mem), mem_gb(scale["mem"]) * gpus))
            res.cpus = max(res.cpus, scale["cpus"] * gpus)
            res.gpus = gpus
        else:
            res.why.append(f"{method}: ~{need_gb:.1f} GB of GPU memory fits {res.gpus} x {gpu_gb} GB")
    return _capped(res, limits)


def choose_for_run(table: dict[str, Any], size: ModelSize, *, stage: str, exp, limits) -> Resources:
    """`choose` for one run's config: its method, and the GPUs its spec asks for (train.gpus) if more."""
    res = choose(table, size, stage=stage, method=exp.method.name, limits=limits)
    asked = getattr(exp.train, "gpus", 1)
    if stage == "train" and asked > res.gpus and not (limits.gpus_per_node is not None and asked > limits.gpus_per_node):
        res.why.append(f"the spec asks train.gpus={asked}")
        res.gpus = asked
    return res


def _capped(res: Resources, limits) -> Resources:
    if limits.gpus_per_node is not None and res.gpus > limits.gpus_per_node:
        res.why.append(f"capped at the profile's gpus_per_node={limits.gpus_per_node}" + (" (CPU only)" if limits.gpus_per_node == 0 else ""))
        res.gpus = limits.gpus_per_node
    if res.gpus == 0:
        res.constraint = None  # GPU constraints (gpu80) make no sense on a CPU job
    if limits.mem_per_node is not None and mem_gb(res.mem) > mem_gb(limits.mem_per_node):
        res.why.append(f"mem capped at the profile's mem_per_node={limits.mem_per_node}")
        res.mem = limits.mem_per_node
    if limits.cpus_per_node is not None and res.cpus > limits.cpus_per_node:
        res.why.append(f"cpus capped at the profile's cpus_per_node={limits.cpus_per_node}")
        res.cpus = limits.cpus_per_node
    if limits.max_time is not None and time_hours(res.time) > time_hours(limits.max_time):
        res.why.append(f"time capped at the profile's max_time={limits.max_time}")
        res.time = limits.max_time
    return res


def mem_gb(text: str) -> float:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([KMGT]?)B?", str(text).strip().upper())
    if not match:
        raise SlurmError(f"memory '{text}' is not like 32G or 512M")
    scale = {"K": 1 / 1024**2, "M": 1 / 1024, "": 1 / 1024, "G": 1, "T": 1024}[match.group(2)]  # SLURM: bare numbers are MB
    return float(match.group(1)) * scale


def format_mem(gb: float) -> str:
    return f"{math.ceil(gb)}G" if gb >= 1 else f"{math.ceil(gb * 1024)}M"


def time_hours(text: str) -> float:
    """A SLURM time limit in hours: minutes, minutes:seconds, hours:minutes:seconds, days-hours[:minutes[:seconds]]."""
    text, days = str(text).strip(), 0.0
    try:
        if "-" in text:
            day_text, text = text.split("-", 1)
            days = float(day_text)
            parts = [float(p) for p in text.split(":")] + [0.0, 0.0]
            h, m, s = parts[:3]
        else:
            parts = [float(p) for p in text.split(":")]
            h, m, s = {1: (0.0, parts[0], 0.0), 2: (0.0, *parts), 3: tuple(parts)}[len(parts)]
    except (ValueError, KeyError):
        raise SlurmError(f"time '{text}' is not a SLURM time limit like 48:00:00 or 2-00:00:00") from None
    return days * 24 + h + m / 60 + s / 3600


def format_params(params: float | None) -> str:
    if params is None:
        return "unknown"
    for scale, unit in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if params >= scale:
            return f"{params / scale:.3g}{unit}"
    return f"{params:.0f}"
