"""Cluster profiles: where and how jobs run on one cluster (a small YAML file, one per cluster).

    # cluster.yaml, named by the spec (`cluster: cluster.yaml`) or by `ftlab submit --cluster FILE`
    partition: gpu
    account: mylab
    qos: normal
    constraint: null              # added to every GPU job, on top of the policy's (e.g. gpu80)
    modules: [cuda/12.1]          # `module load` each, in order
    venv: /path/to/ftlab/.venv    # or conda: ftlab-env; or setup: [raw shell lines]
    env: {HF_HOME: /scratch/hf}   # exported in every job
    extra_sbatch: ["--mail-type=FAIL"]
    policy: seed004               # a named resource policy (ftlab.runners.slurm.resources)
    resources: {8B: {time: {train: "24:00:00"}}}   # override rows of that policy
    limits: {gpus_per_node: 4, mem_per_node: 512G, cpus_per_node: 64}

    profile = load_profile(path)  # -> ClusterProfile; SlurmError on any problem

Values that name things (partition, account, module...) are checked against a plain charset and
every value is shell-quoted where it is rendered; `setup` lines are shell code on purpose.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ftlab.errors import SlurmError

# Partition, account, QOS, constraint and module names on real clusters fit this; anything else
# (spaces, quotes, `$`) is far more likely an accident than a name.
NAME = re.compile(r"^[A-Za-z0-9_.,:/@+=&|\[\]*-]+$")


class Limits(BaseModel):
    """What one node of this cluster offers; requests above it are capped (and the plan says so)."""

    model_config = ConfigDict(extra="forbid")
    gpus_per_node: int | None = Field(None, ge=0, description="0: a CPU-only cluster")
    mem_per_node: str | None = Field(None, description="e.g. 512G")
    cpus_per_node: int | None = Field(None, ge=1)
    max_time: str | None = Field(None, description="partition time limit, e.g. 48:00:00")


class ClusterProfile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    constraint: str | None = None
    modules: list[str] = Field(default_factory=list)
    venv: str | None = Field(None, description="virtualenv directory to activate")
    conda: str | None = Field(None, description="conda environment to activate")
    setup: list[str] = Field(default_factory=list, description="raw shell lines run before ftlab")
    env: dict[str, str] = Field(default_factory=dict)
    ftlab: str | None = Field(None, description="the ftlab executable (default: the one submitting)")
    extra_sbatch: list[str] = Field(default_factory=list, description="extra sbatch options, e.g. --mail-type=END")
    policy: str = "seed004"
    resources: dict[str, dict[str, Any]] = Field(default_factory=dict, description="per-size overrides of the policy")
    limits: Limits = Limits()
    source: str | None = Field(None, description="the file this profile came from")

    @field_validator("partition", "account", "qos", "constraint")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        if value is not None and not NAME.match(value):
            raise ValueError(f"{value!r} has characters SLURM names do not use")
        return value

    @field_validator("modules")
    @classmethod
    def _modules(cls, values: list[str]) -> list[str]:
        for value in values:
            if not NAME.match(value):
                raise ValueError(f"module {value!r} has characters module names do not use")
        return values

    @field_validator("env")
    @classmethod
    def _env(cls, values: dict[str, str]) -> dict[str, str]:
        for key in values:
            if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", key):
                raise ValueError(f"{key!r} is not an environment variable name")
        return {k: str(v) for k, v in values.items()}

    @field_validator("extra_sbatch", "setup")
    @classmethod
    def _one_line(cls, values: list[str]) -> list[str]:
        for value in values:
            if "\n" in value or "\r" in value:
                raise ValueError(f"{value!r} spans several lines; give one item per line")
        return values


def load_profile(path: str | Path | None) -> ClusterProfile:
    """Read a profile file; None gives the default profile (no partition: the cluster's default)."""
    if path is None:
        return ClusterProfile()
    path = Path(path)
    if not path.is_file():
        raise SlurmError(f"cluster profile {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise SlurmError(f"cluster profile {path} is not valid YAML: {err}") from err
    if not isinstance(data, dict):
        raise SlurmError(f"cluster profile {path} must be a YAML mapping")
    try:
        return ClusterProfile.model_validate({**data, "source": str(path.resolve())})
    except ValidationError as err:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in err.errors())
        raise SlurmError(f"cluster profile {path}: {problems}") from err


def profile_for(plan, override: str | Path | None = None) -> ClusterProfile:
    """The profile a command uses: --cluster FILE, else the spec's `cluster:` (relative to the spec)."""
    if override is not None:
        return load_profile(override)
    if plan.experiment.cluster:
        return load_profile(plan.base_dir / plan.experiment.cluster)
    return load_profile(None)
