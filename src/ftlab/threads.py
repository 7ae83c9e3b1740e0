"""How many torch threads a stage uses: the CPUs this process was given, not the machine's.

torch's default is every core of the machine. On a shared node, or a 2-core machine where another
process holds a core, that oversubscribes: measured here, LoRA on SmolLM2-135M ran ~90 tokens/s
with 1 thread and 22 with 2 while another process held a core (bench/threads, BENCHMARKS.md).
The choice, first that applies:
  1. FTLAB_THREADS in the environment (a person's override on this machine);
  2. the spec's top-level `threads:`;
  3. SLURM_CPUS_PER_TASK, when SLURM set it;
  4. the process's CPU affinity (taskset, cgroups' cpusets, SLURM's task binding).
"""

from __future__ import annotations

import os

from ftlab.errors import FtlabError


def allocated_cpus() -> tuple[int, str]:
    """(CPUs this process may use, where that number comes from)."""
    slurm = os.environ.get("SLURM_CPUS_PER_TASK", "")
    if slurm.isdigit() and int(slurm) > 0:
        return int(slurm), "SLURM_CPUS_PER_TASK"
    try:
        return len(os.sched_getaffinity(0)), "CPU affinity"
    except (AttributeError, OSError):  # macOS has no sched_getaffinity
        return os.cpu_count() or 1, "cpu_count"


def choose(spec_threads: int | None = None) -> tuple[int, str]:
    """(thread count, why), by the order in the module docstring."""
    env = os.environ.get("FTLAB_THREADS", "").strip()
    if env:
        if not env.isdigit() or int(env) < 1:
            raise FtlabError(f"FTLAB_THREADS={env!r}: give a whole number of threads, at least 1 (or unset it)")
        return int(env), "FTLAB_THREADS"
    if spec_threads is not None:
        return spec_threads, "the spec's threads"
    return allocated_cpus()


def apply(spec_threads: int | None = None) -> int:
    """Set torch's intra-op threads by choose(); returns the count."""
    import torch

    n, _ = choose(spec_threads)
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return n
