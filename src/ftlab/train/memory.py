"""Training memory budgeted before the first step: estimate the peak, pick activation checkpointing.

    plan = plan_training(model, rows, hp, settings)   # probe_activations + estimate_peak + budget + choose
    plan.every_n_layers                                # None: off; 1: every layer (TrainerSetup.checkpoint_every)
    meter = PeakMeter(device); meter.reset(); ...train...; meter.peak()

Tests: tests/train/test_memory.py (the estimate against measured peaks, the choice against budgets).

Why it is measured, not assumed: at 2 layers the output layer sets the memory and checkpointing
buys nothing; at a real model's depth the activations do. SmolLM2-135M (30 layers, hidden 576),
LoRA, batch 8 of ~1,000-token prompts: 30 layers x 8,000 positions x ~41.5 KB saved per position
per layer is ~10 GB of activations against 0.5 GB of weights (issue 23 measured a 17.1 GiB peak
with checkpointing off, 10.3 GiB for TRL with it on).

The estimate, in bytes:
- resident: what is held when the estimate is made (CPU: the process's RSS, weights, Python and
  libraries included; GPU: torch.cuda.memory_allocated(), the weights);
- gradients of the trainable parameters, and the optimizer's state (AdamW: two moments each);
- saved activations: per position per decoder layer, and per position outside the layers, both
  measured by `probe_activations` on this very model (its kernels, LoRA or not, dtype): a forward
  of 2 padded rows at two lengths with `saved_tensors_hooks` counting every tensor autograd keeps,
  fitted as a + b * length per position, so anything kept per (position x position), such as
  attention weights or the mask, shows in b. With checkpointing a checkpointed layer keeps only
  its input (positions x hidden) and one layer is recomputed at a time in the backward;
- the backward's working set: one layer's saved activations again (its gradients);
- the output layer's slice: ftlab's completion head (head.py) projects only completion positions,
  in tiles of at most 4,096 rows x 32,768 vocabulary columns (logits, their softmax and gradient).
- CPU: the heap's holes. Saved blocks under the bounded heap's mmap threshold (bounded_heap) come
  from glibc's heap, whose freed holes beside them stay resident: counted once more (HEAP_HOLES).

The longest batch is the sampler's worst: batch_size rows padded to the longest example (length
grouping puts the longest example's batch first, so an overrun shows at step 1), or, padding-free,
one row of the batch_size longest examples.

Budget: the GPU's memory, else the allocation (SLURM_MEM_PER_NODE, the cgroup's memory.max), else
RAM_SHARE of the machine's RAM. Checkpointing stays off when the estimate without it is within
MARGIN of the budget; otherwise every layer is checkpointed (`choose` says why not fewer).
"""

from __future__ import annotations

import math
import os
import resource
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import torch

from ftlab.train import shared_prefix

GIB = 2**30
# CPU without an allocation: the machine's RAM is shared with the OS, the page cache of the data and
# model files, and other jobs (our development machines: three engineers on 24 GiB, a quarter each
# once the OS and the page cache have theirs). At half, SmolLM2 LoRA at 8 x 1,000 tokens (9.1 GiB
# estimated) ran without checkpointing at TRL's peak memory; at a quarter it checkpoints: 2.1 GiB.
RAM_SHARE = 0.25
# Off only with this much headroom: the estimate is within +-15% of measured peaks
# (tests/train/test_memory.py) and the CPU allocator's fragmentation adds to it.
MARGIN = 0.8
PROBE_LENGTHS = (32, 64)
HEAD_ROWS, HEAD_COLS = 4096, 32768  # the completion head's tile (head.VOCAB_CHUNK); TRL's kernel's rows
OPTIMIZER_STATES = {"adamw_torch": 2, "adamw_torch_fused": 2, "sgd": 0, "adafactor": 0}


@dataclass(frozen=True)
class ActivationProfile:
    """Bytes autograd keeps per computed position, measured on the model (probe_activations).
    Per decoder layer: layer + layer_pair * length; outside the layers (embeddings, final norm, the
    mask and rotary tables shared by all layers): outside + outside_pair * length."""

    layers: int
    hidden: int
    elem: int  # bytes per activation element (the hidden state's dtype)
    layer: float
    layer_pair: float
    outside: float
    outside_pair: float
    # CPU only: bytes per position of each block the middle layer keeps (a block's size at a shape is
    # this x positions), to tell which come from glibc's heap (heap_bytes). Empty on a GPU.
    layer_blocks: tuple[float, ...] = ()
    # Bytes per row per key position of the keys and values a shared-prefix layout copies for each
    # row's remainder, in one layer (shared_prefix.attention; 0 where it is not installed).
    row_keys: float = 0.0

    def per_layer(self, shape: MemoryShape) -> float:
        return shape.positions * self.layer + shape.pairs * self.layer_pair + self.copied_keys(shape)

    def shared(self, shape: MemoryShape) -> float:
        return shape.positions * self.outside + shape.pairs * self.outside_pair

    def layer_input(self, shape: MemoryShape) -> float:
        """What a checkpointed layer keeps: its input hidden states."""
        return shape.positions * self.hidden * self.elem

    def copied_keys(self, shape: MemoryShape) -> float:
        return shape.rows * shape.length * self.row_keys if shape.prefix else 0.0

    def heap_bytes(self, shape: MemoryShape) -> float:
        """Of one layer's saved bytes at this shape, those in blocks under the mmap threshold (glibc's
        heap serves them, and its freed holes stay resident: HEAP_HOLES)."""
        blocks = [b * shape.positions for b in self.layer_blocks]
        if shape.prefix:
            blocks += [self.copied_keys(shape) / 2] * 2
        return sum(b for b in blocks if b < MMAP_THRESHOLD)


@dataclass(frozen=True)
class MemoryShape:
    """The longest batch the sampler will form, and what is trained."""

    rows: int
    length: int
    completion_rows: int  # positions the output layer projects (completion tokens of the batch)
    optimizer: str = "adamw_torch_fused"
    prefix: int = 0  # leading positions every row shares, computed once (shared_prefix.py)

    @property
    def positions(self) -> int:
        """Positions the decoder computes: rows x length, or the prefix once and each row's rest."""
        return self.prefix + self.rows * (self.length - self.prefix)

    @property
    def pairs(self) -> int:
        """(query, key) position pairs: each row's remainder attends to the prefix as well."""
        return self.prefix * self.prefix + self.rows * (self.length - self.prefix) * self.length


@dataclass(frozen=True)
class Estimate:
    resident: int
    gradients: int
    optimizer: int
    activations: int
    backward: int
    head: int
    every_n_layers: int | None  # None: no checkpointing
    heap: int = 0  # CPU: heap holes beside activation blocks under the mmap threshold (HEAP_HOLES)

    @property
    def peak(self) -> int:
        return self.resident + self.gradients + self.optimizer + self.activations + self.backward + self.head + self.heap

    def record(self) -> dict:
        return asdict(self) | {"peak": self.peak}


@dataclass(frozen=True)
class Budget:
    bytes: int
    source: str


@dataclass(frozen=True)
class Plan:
    """The checkpointing choice and its evidence (the train stage records it)."""

    activation_checkpointing: bool
    every_n_layers: int | None
    forced: bool
    reason: str
    budget: Budget
    estimate: Estimate  # for the choice made
    estimate_off: Estimate  # without checkpointing, the figure the choice was made from

    def record(self) -> dict:
        return {"activation_checkpointing": self.activation_checkpointing, "every_n_layers": self.every_n_layers,
                "forced": self.forced, "reason": self.reason, "budget": asdict(self.budget),
                "estimate": self.estimate.record(), "estimate_without_checkpointing": self.estimate_off.record()}


def longest_batch(lengths: list[int], completions: list[int], batch_size: int, padding_free: bool) -> tuple[int, int, int]:
    """(rows, length, completion positions) of the largest batch the sampler can form."""
    top = sorted(range(len(lengths)), key=lambda i: -lengths[i])[:batch_size]
    completion = sum(sorted(completions, reverse=True)[:batch_size])
    if padding_free:
        return 1, sum(lengths[i] for i in top), completion
    return len(top), max(lengths, default=0), completion


def decoder_layers(model) -> torch.nn.ModuleList:
    """The model's repeated decoder blocks: the longest ModuleList of same-class modules."""
    best = None
    for module in model.modules():
        if isinstance(module, torch.nn.ModuleList) and len({type(m) for m in module}) == 1:
            if best is None or len(module) > len(best):
                best = module
    if best is None:
        raise ValueError(f"{type(model).__name__}: no list of decoder layers found")
    return best


def probe_activations(model, lengths: tuple[int, int] = PROBE_LENGTHS) -> ActivationProfile:
    """Count what autograd keeps in a training forward of 2 rows (the second one right-padded by a
    quarter, as TRL's collator pads, so the mask is built, or dropped, as in training:
    padding_mask.py) at two lengths; parameters excluded."""
    from ftlab.train.head import head_owner

    owner = head_owner(model)
    body = owner.base_model  # the decoder without the output layer (the head is estimated apart)
    layers = decoder_layers(body)
    middle = len(layers) // 2  # layer 0 may hold tensors every layer shares
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    device = next(model.parameters()).device
    was_training = model.training
    model.train()
    per_layer, outside, hidden_elem = [], [], None
    try:
        for length in lengths:
            seen: dict[int, tuple[str, int]] = {}
            where = ["outside"]

            def pack(t):
                storage = t.untyped_storage()
                key = storage.data_ptr()
                if key not in params and key not in seen and t.device.type != "meta":
                    seen[key] = (where[0], storage.nbytes())
                return t

            hooks = []
            for i, layer in enumerate(layers):
                hooks.append(layer.register_forward_pre_hook(lambda m, a, i=i: where.__setitem__(0, i)))
                hooks.append(layer.register_forward_hook(lambda m, a, o: where.__setitem__(0, "outside")))
            ids = torch.randint(0, min(owner.config.get_text_config().vocab_size, 1000), (2, length), device=device)
            mask = torch.ones_like(ids)
            mask[1, -(length // 4):] = 0
            try:
                with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t), torch.enable_grad():
                    out = body(input_ids=ids, attention_mask=mask, use_cache=False).last_hidden_state
                    hidden_elem = out.element_size()
            finally:
                for h in hooks:
                    h.remove()
            blocks = [n for w, n in seen.values() if w == middle]
            layer_bytes = sum(blocks)
            total = sum(n for _, n in seen.values())
            per_layer.append(layer_bytes / (2 * length))
            outside.append((total - len(layers) * layer_bytes) / (2 * length))
            del out, seen
    finally:
        model.train(was_training)
    (l1, l2), span = lengths, lengths[1] - lengths[0]
    on_cpu = device.type == "cpu"
    layer_pair = max(0.0, (per_layer[1] - per_layer[0]) / span)
    outside_pair = max(0.0, (outside[1] - outside[0]) / span)
    return ActivationProfile(
        layers=len(layers), hidden=owner.config.get_text_config().hidden_size, elem=hidden_elem,
        layer=per_layer[1] - layer_pair * l2, layer_pair=layer_pair,
        outside=max(0.0, outside[1] - outside_pair * l2), outside_pair=outside_pair,
        layer_blocks=tuple(b / (2 * l2) for b in blocks) if on_cpu else (),
        row_keys=shared_prefix.row_key_bytes(model, device, hidden_elem) if shared_prefix.installed(model) else 0.0,
    )


def resident_bytes(model, device: str) -> int:
    """What is held before the first step: on CPU the process's live memory (weights, Python,
    libraries), its RSS once the freed heap is handed back (release_freed); on a GPU the weights and
    buffers, which the trainer moves there (torch.cuda.memory_allocated() counts nothing else of ours)."""
    if device == "cuda":
        return sum(t.numel() * t.element_size() for t in (*model.parameters(), *model.buffers()))
    release_freed()
    return _status_kib("VmRSS") * 1024


def release_freed() -> bool:
    """Hand the heap that Python and torch freed back to the OS (gc, then glibc's malloc_trim), so RSS
    is what is live. Without it, a process that trained before (the local runner runs every stage
    of a sweep in one process; a notebook) counts its freed heap as held: in one pytest worker the
    RSS before SmolLM2 runs grew 1.5, 3.0, 3.5, 4.2, 5.1, 5.9 GiB over six runs, and from the
    fourth on the plan turned checkpointing on for runs that fit. False where libc is not glibc."""
    import gc

    gc.collect()
    libc = _glibc()
    if libc is None:
        return False
    libc.malloc_trim(0)
    return True


def estimate_peak(model, profile: ActivationProfile, shape: MemoryShape, every_n_layers: int | None,
                  resident: int | None = None) -> Estimate:
    """The peak of a training step on `shape`, with every n-th layer checkpointed (None: none)."""
    trainable = sum(p.numel() * p.element_size() for p in model.parameters() if p.requires_grad)
    if resident is None:
        resident = resident_bytes(model, "cpu")
    layer, kept = profile.per_layer(shape), profile.layer_input(shape)
    small = profile.heap_bytes(shape)
    if every_n_layers is None:
        activations = profile.layers * layer
        heap = profile.layers * small
    else:
        checkpointed = math.ceil(profile.layers / every_n_layers)
        # checkpointed layers keep their input; one of them is recomputed, whole, in the backward
        activations = (profile.layers - checkpointed) * layer + checkpointed * kept + layer
        heap = (profile.layers - checkpointed + 1) * small + (checkpointed * kept if profile.layer_blocks and kept < MMAP_THRESHOLD else 0)
    activations += profile.shared(shape)
    head_rows = min(shape.completion_rows, HEAD_ROWS)
    head = 3 * head_rows * min(_vocab(model), HEAD_COLS) * 4  # fp32 tile: logits, softmax, gradient
    return Estimate(
        resident=int(resident), gradients=trainable, optimizer=OPTIMIZER_STATES.get(shape.optimizer, 2) * trainable,
        activations=int(activations), backward=int(layer), head=int(head), every_n_layers=every_n_layers,
        heap=int(HEAP_HOLES * heap),
    )


def _vocab(model) -> int:
    from ftlab.train.head import head_owner

    return head_owner(model).config.get_text_config().vocab_size


def budget(device: str = "cpu") -> Budget:
    """The memory this run may use: GPU memory, else the allocation, else RAM_SHARE of RAM."""
    if device == "cuda":
        return Budget(torch.cuda.get_device_properties(torch.cuda.current_device()).total_memory, "GPU memory")
    slurm = os.environ.get("SLURM_MEM_PER_NODE")
    if slurm and slurm.isdigit() and int(slurm) > 0:
        return Budget(int(slurm) * 2**20, "SLURM_MEM_PER_NODE")  # SLURM gives MiB
    limit = cgroup_limit()
    ram = _meminfo_kib("MemTotal") * 1024
    if limit is not None and limit < ram:
        return Budget(limit, "cgroup memory limit")
    return Budget(int(RAM_SHARE * ram), f"{RAM_SHARE:.0%} of RAM")


def cgroup_limit(root: Path = Path("/sys/fs/cgroup")) -> int | None:
    """cgroup v2 memory.max, or v1 memory.limit_in_bytes; None when unlimited or absent."""
    for path in (root / "memory.max", root / "memory" / "memory.limit_in_bytes"):
        try:
            text = path.read_text().strip()
        except OSError:
            continue
        if text.isdigit() and int(text) < 2**60:  # v1 writes 'unlimited' as a huge number
            return int(text)
    return None


def choose(forced: Literal["auto"] | bool, model, profile: ActivationProfile, shape: MemoryShape, limit: Budget,
           resident: int | None = None) -> Plan:
    """Activation checkpointing for `shape` within `limit`: off when the estimate fits with MARGIN,
    else on for every layer. `forced` (the spec's choice) wins.

    Not the fewest layers that fit (transformers' every_n_layers): checkpointing every 2nd layer
    saves an eighth of the step (7N instead of 8N FLOPs per token) and keeps half the activations,
    on SmolLM2 at 8 x 1,000 tokens ~7.5 GiB instead of ~2.5 GiB; on a shared machine or a GPU
    the memory is worth more than the eighth."""
    if resident is None:
        resident = resident_bytes(model, "cpu")
    off = estimate_peak(model, profile, shape, None, resident)
    allowed = MARGIN * limit.bytes
    if forced != "auto":
        n = 1 if forced else None
        chosen = estimate_peak(model, profile, shape, n, resident) if forced else off
        return Plan(bool(forced), n, True, "set by train.activation_checkpointing", limit, chosen, off)
    if off.peak <= allowed:
        return Plan(False, None, False, f"fits: {off.peak / GIB:.2f} GiB <= {MARGIN:.0%} of {limit.bytes / GIB:.2f} GiB",
                    limit, off, off)
    on = estimate_peak(model, profile, shape, 1, resident)
    fits = "" if on.peak <= allowed else "; does not fit even so"
    return Plan(True, 1, False, f"without: {off.peak / GIB:.2f} GiB > {MARGIN:.0%} of {limit.bytes / GIB:.2f} GiB; "
                f"with: {on.peak / GIB:.2f} GiB{fits}", limit, on, off)


class PeakMeter:
    """Peak memory since reset(): GPU torch.cuda.max_memory_allocated; CPU the peak RSS (VmHWM, reset
    through /proc/self/clear_refs where the kernel allows it, else the process's lifetime peak)."""

    def __init__(self, device: str):
        self.device = device
        self.how = "torch.cuda.max_memory_allocated" if device == "cuda" else "peak RSS since the train step began"

    def reset(self) -> None:
        if self.device == "cuda":
            torch.cuda.reset_peak_memory_stats()
            return
        try:
            Path("/proc/self/clear_refs").write_text("5")  # 5: reset the peak RSS (Linux >= 4.0)
        except OSError:
            self.how = "peak RSS of the process (ru_maxrss)"

    def peak(self) -> int:
        if self.device == "cuda":
            return torch.cuda.max_memory_allocated()
        try:
            return _status_kib("VmHWM") * 1024
        except (OSError, StopIteration):
            return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB

    def record(self) -> dict:
        return {"bytes": self.peak(), "how": self.how}


def _status_kib(key: str) -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(key + ":"))


def _meminfo_kib(key: str) -> int:
    with open("/proc/meminfo") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(key + ":"))


def plan_training(model, rows: list[dict], hp, settings) -> Plan:
    """The checkpointing plan for training `model` on pre-tokenized `rows` with `hp` (spec.schema.Train)
    on a machine with `settings` (device.DeviceSettings)."""
    lengths = [len(r["input_ids"]) for r in rows]
    completions = [int(sum(r["completion_mask"])) for r in rows]
    n_rows, length, completion = longest_batch(lengths, completions, hp.batch_size, settings.padding_free)
    # Every batch shares at least what all rows share; the layout applies to padded batches of 2 rows or more.
    prefix = shared_prefix.rows_prefix([r["input_ids"] for r in rows]) if shared_prefix.installed(model) and n_rows > 1 else 0
    if prefix and not shared_prefix.Layout(prefix, n_rows, length - prefix).worth_it(shared_prefix.position_to_pair(model)):
        prefix = 0
    shape = MemoryShape(n_rows, length, completion, hp.optimizer, prefix)
    profile = probe_activations(model)
    limit = budget(settings.device)
    return choose(hp.activation_checkpointing, model, profile, shape, limit, resident_bytes(model, settings.device))


# glibc's M_MMAP_THRESHOLD. By default it rises to the size of the largest freed block (up to
# 32 MiB), after which activation-sized blocks come from the heap, whose freed holes are kept: SmolLM2
# LoRA with checkpointing at 8 x ~1,000 tokens peaked at 5.4-5.7 GiB RSS for 2.1 GiB of live tensors.
# Fixed lower, every larger block is mapped anew and page-faulted each step: at 1 MiB 2.2 GiB but 81
# tokens/s instead of 145-163. torch's huge pages for blocks of 2 MiB and more (THP_MEM_ALLOC_ENABLE,
# which `import ftlab` sets before torch loads) make those faults cheap: at 2 MiB with them 143
# tokens/s and 2.07 GiB, at 4 MiB 145 and 2.11; at 1 MiB the 1-2 MiB blocks stay on 4 KiB pages (99
# tokens/s); 8 and 16 MiB let the heap grow again (2.5, 3.3 GiB). BENCHMARKS.md (issue 23).
MMAP_THRESHOLD = 2 * 2**20
# Blocks under the threshold still come from the heap, and at the peak its freed holes beside them are
# about as large again (the estimate counts them apart): SmolLM2 LoRA at 2 x 300 tokens (its
# hidden-sized blocks 1.4 MB) peaked 0.23 GiB higher at 2 MiB than at 1 MiB, where those blocks are
# mapped (BENCHMARKS.md, issue 23).
HEAP_HOLES = 1.0
GLIBC_MMAP_MAX = 32 * 2**20  # where glibc's own threshold ends up in a process that trained
M_MMAP_THRESHOLD = -3


@contextmanager
def bounded_heap(device: str):
    """While training on CPU: blocks of MMAP_THRESHOLD bytes and more are mapped per allocation and
    returned to the OS when freed, so the peak RSS is the peak of live tensors (what the estimate
    predicts). Yields whether it is in effect (False on a GPU, or where libc is not glibc); glibc's
    maximum is put back afterwards, so the stages that follow in the process run as before."""
    if device != "cpu" or not _mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD):
        yield False
        return
    try:
        yield True
    finally:
        _mallopt(M_MMAP_THRESHOLD, GLIBC_MMAP_MAX)


def allocator_record(bounded: bool) -> dict:
    """How the CPU allocator ran, for the train stage's record: the peak RSS depends on it."""
    return {"mmap_threshold": MMAP_THRESHOLD if bounded else None,
            "torch_huge_pages": os.environ.get("THP_MEM_ALLOC_ENABLE") == "1"}


def _mallopt(param: int, value: int) -> bool:
    libc = _glibc()
    return libc is not None and bool(libc.mallopt(param, value))


def _glibc():
    """glibc through ctypes, or None (another libc: musl has no mallopt or malloc_trim)."""
    import ctypes

    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt, libc.malloc_trim  # noqa: B018  AttributeError where they are missing
        return libc
    except (OSError, AttributeError):
        return None
