"""Torch threads follow the allocation (SLURM's CPUs per task, the CPU affinity), never the machine."""

from __future__ import annotations

import os

import pytest
import torch

import ftlab
from ftlab import threads
from ftlab.errors import FtlabError


@pytest.fixture
def clean_env(monkeypatch):
    monkeypatch.delenv("FTLAB_THREADS", raising=False)
    monkeypatch.delenv("SLURM_CPUS_PER_TASK", raising=False)
    before = torch.get_num_threads()
    yield monkeypatch
    torch.set_num_threads(before)


def test_the_affinity_decides_by_default(clean_env):
    clean_env.setattr(os, "sched_getaffinity", lambda pid: {0, 3, 5})
    assert threads.choose() == (3, "CPU affinity")


def test_slurm_cpus_per_task_wins_over_the_affinity(clean_env):
    clean_env.setattr(os, "sched_getaffinity", lambda pid: set(range(64)))  # the whole node is visible
    clean_env.setenv("SLURM_CPUS_PER_TASK", "4")
    assert threads.choose() == (4, "SLURM_CPUS_PER_TASK")


def test_the_spec_overrides_the_allocation_and_the_environment_overrides_the_spec(clean_env):
    clean_env.setenv("SLURM_CPUS_PER_TASK", "4")
    assert threads.choose(2) == (2, "the spec's threads")
    clean_env.setenv("FTLAB_THREADS", "1")
    assert threads.choose(2) == (1, "FTLAB_THREADS")


def test_a_bad_override_is_one_clear_error(clean_env):
    clean_env.setenv("FTLAB_THREADS", "two")
    with pytest.raises(FtlabError, match="FTLAB_THREADS='two'"):
        threads.choose()


def test_apply_sets_torch(clean_env):
    clean_env.setenv("FTLAB_THREADS", "2")
    assert threads.apply() == 2 and torch.get_num_threads() == 2


def test_a_stage_runs_with_the_spec_threads(clean_env, tmp_path):
    """End to end: the spec's `threads: 1` reaches the train stage (it records torch's count)."""
    from tests.conftest import write_spec

    
    torch.set_num_threads(2)
    spec = write_spec(tmp_path)
    spec.write_text("threads: 1\n" + spec.read_text())
    assert ftlab.run(spec, only=["data", "model", "train"]).ok
    assert torch.get_num_threads() == 1
