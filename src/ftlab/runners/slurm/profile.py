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
    limits: {gpus_per_node: 4, mem_per_node: 512G, cpus_per_node: 64, gpus_in_flight: 16}
    checkpoint_warning: 300       # s before the time limit: checkpoint and requeue (train), requeue (eval)

    profile = load_profile(path)  # -> ClusterProfile; SlurmError on any problem

Values that name things (partition, account, module...) are checked against a plain charset and
every value is shell-quoted where it is rendered; `setup` lines are shell code on purpose.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

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
    gpus_in_flight: int | None = Field(None, ge=1, description="at most this many GPUs running at once per array (a %N throttle)")
    tasks_in_flight: int | None = Field(None, ge=1, description="at most this many tasks of one array running at once (%N)")
    max_array_size: int | None = Field(None, ge=1, description="the cluster's MaxArraySize; default: asked of `scontrol show config`")


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
    checkpoint_warning: int = Field(300, ge=1, description=(
        "seconds before a train task's time limit at which SLURM warns it (--signal=B:USR1@N): it saves a "
        "checkpoint and requeues itself. Allow a whole checkpoint's save (minutes for a full fine-tuning of 8B)"))
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
    profile, problems = check_profile(Path(path))
    if problems:
        raise SlurmError(f"cluster profile {_shown(path)}: {len(problems)} problem{'s' if len(problems) != 1 else ''}:\n"
                         + "\n".join(f"  - {p}" for p in problems))
    return profile


def check_profile(path: Path) -> tuple[ClusterProfile | None, list[str]]:
    """(profile, []) or (None, problems), each problem "line N, yaml.path: what to do" (ftlab validate
    reports them under the spec's `cluster:` line; `ftlab submit --cluster FILE` raises them)."""
    from ftlab.errors import SpecError
    from ftlab.spec.source import line_of, read_yaml

    try:
        data, lines = read_yaml(path, what="cluster profile")
    except SpecError as err:
        return None, [p.removeprefix(f"{err.source}: ") for p in err.problems]
    if data is None:
        data = {}
    if not isinstance(data, dict):
        return None, ["line 1: a cluster profile must be a YAML mapping (key: value lines)"]
    found: list[tuple[tuple, str]] = []
    profile = None
    try:
        profile = ClusterProfile.model_validate({**data, "source": str(path.resolve())})
    except ValidationError as err:
        for e in err.errors():
            found.append((tuple(e["loc"]), _message(e)))
        # Without the keys that failed, to check `resources:` too: every problem in one message.
        bad = {e["loc"][0] for e in err.errors() if e["loc"]}
        try:
            partial = ClusterProfile.model_validate({k: v for k, v in data.items() if k not in bad})
            found += _resource_problems(partial)
        except ValidationError:
            pass
    except (OSError, RuntimeError) as err:
        found.append(((), f"cannot resolve the path: {_clip(err, 200)}"))
    if profile is not None:
        found += _resource_problems(profile)
    out = []
    for loc, message in found:
        line = line_of(loc, lines)
        where = ".".join(_clip(p, 40) for p in loc) or "(top level)"
        out.append(f"{f'line {line}, ' if line else ''}{where}: {message}")
    return (profile if not out else None), out


def _message(e: dict) -> str:
    from ftlab.plugins import did_you_mean

    loc = tuple(e["loc"])
    if e["type"] == "extra_forbidden":
        model = Limits if loc[:1] == ("limits",) else ClusterProfile
        allowed = [f for f in model.model_fields if f != "source"]
        key = _clip(loc[-1], 60)
        return f"unknown key '{key}'.{did_you_mean(key, allowed)} Allowed: {', '.join(allowed)}."
    return f"{_clip(e['msg'], 200)} (got {_clip(repr(e.get('input')), 80)})"


# Keys of a policy's size row and of its cpu_job row (ftlab.runners.slurm.policies).
ROW_KEYS = ("max_params", "mem", "gpus", "constraint", "cpus", "time")
CPU_JOB_KEYS = ("mem", "gpus", "constraint", "cpus", "time")
STAGE_TIMES = ("train", "eval", "curate")


def _resource_problems(profile: ClusterProfile) -> list[tuple[tuple, str]]:
    """`resources:` overrides checked against the policy's rows, so `tme:` fails here, not at submit."""
    from ftlab.plugins import did_you_mean
    from ftlab.runners.slurm.policies import policies
    from ftlab.runners.slurm.resources import mem_gb, time_hours

    if profile.policy not in policies:
        names = policies.names()
        return [(("policy",), f"unknown policy {_clip(repr(profile.policy), 60)}.{did_you_mean(_clip(profile.policy, 60), names)} Available: {', '.join(names)}")]
    sizes = list(policies.get(profile.policy)["sizes"])
    found: list[tuple[tuple, str]] = []

    def check_value(at: tuple, key: str, value: Any) -> None:
        try:
            if key == "mem":
                mem_gb(value)
            elif key == "time":
                time_hours(value)
        except SlurmError as err:
            found.append((at, str(err)))
            return
        if key in ("gpus", "cpus") and (not isinstance(value, int) or isinstance(value, bool) or value < (0 if key == "gpus" else 1)):
            found.append((at, f"must be a whole number {'>= 0' if key == 'gpus' else '>= 1'} (got {_clip(repr(value), 40)})"))
        elif key == "max_params" and value is not None and (not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 < value < float("inf")):
            found.append((at, f"must be a positive parameter count such as 2.0e9, or null (got {_clip(repr(value), 40)})"))
        elif key == "constraint" and value is not None and not (isinstance(value, str) and NAME.match(value)):
            found.append((at, f"{_clip(repr(value), 60)} is not a SLURM constraint name"))

    for size, row in profile.resources.items():
        allowed = CPU_JOB_KEYS if size == "cpu_job" else ROW_KEYS
        if size != "cpu_job" and size not in sizes:
            found.append((("resources", size), f"policy '{profile.policy}' has no size {_clip(repr(size), 40)}.{did_you_mean(_clip(size, 40), sizes)} Sizes: {', '.join(sizes)}, cpu_job"))
            continue
        for key, value in row.items():
            at = ("resources", size, key)
            if key not in allowed:
                found.append((at, f"unknown key '{_clip(key, 40)}'.{did_you_mean(_clip(key, 40), allowed)} Allowed: {', '.join(allowed)}."))
            elif key == "time" and isinstance(value, dict) and size != "cpu_job":
                for stage, limit in value.items():
                    if stage not in STAGE_TIMES:
                        found.append((at + (stage,), f"unknown stage '{_clip(stage, 40)}'.{did_you_mean(_clip(stage, 40), STAGE_TIMES)} Allowed: {', '.join(STAGE_TIMES)}."))
                    else:
                        check_value(at + (stage,), "time", limit)
            else:
                check_value(at, key, value)
    for key in ("mem_per_node", "max_time"):
        value = getattr(profile.limits, key)
        if value is not None:
            check_value(("limits", key), "mem" if key == "mem_per_node" else "time", value)
    return found


def _clip(value: Any, limit: int) -> str:
    from ftlab.spec.source import clip_text

    return clip_text(str(value), limit)


def _shown(path: str | Path) -> str:
    return _clip(path, 200)


def profile_for(plan, override: str | Path | None = None) -> ClusterProfile:
    """The profile a command uses: --cluster FILE, else the spec's `cluster:` (relative to the spec)."""
    if override is not None:
        return load_profile(override)
    if plan.experiment.cluster:
        return load_profile(plan.base_dir / plan.experiment.cluster)
    return load_profile(None)
