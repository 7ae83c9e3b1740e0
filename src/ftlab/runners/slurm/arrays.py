"""Fit the submission's arrays to the cluster: MaxArraySize, MaxJobCount and the profile's throttles.

    jobs = fit_arrays(build_jobs(...), ArrayLimits(max_array_size=4, max_job_count=10000, ...))

- MaxArraySize bounds every array index (`--array=0-1000` needs MaxArraySize >= 1001, the default).
  An array with more tasks is split into arrays of at most that many, named `<group>.1`, `<group>.2`
  ..., each indexed from 0 over its own slice of the task keys. Dependencies follow: `aftercorr`
  pairs slice k with slice k (train and eval arrays of a group hold the same runs in the same order,
  so their slices match index for index); `afterok`/`afterany` on a split array wait for every slice.
- MaxJobCount bounds the jobs the controller holds; every array task becomes a job record when it
  starts. A submission with more tasks than that is refused before anything is queued.
- Throttles (`--array=0-7%2`): the profile's `limits.gpus_in_flight` (GPUs of one array running at
  once) and `limits.tasks_in_flight`. A split array shares its throttle among its slices, so the
  total in flight stays within the limit (at least 1 per slice).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from ftlab.errors import SlurmError
from ftlab.runners.slurm.render import Dependency, Job


@dataclass(frozen=True)
class ArrayLimits:
    max_array_size: int | None = None  # the cluster's MaxArraySize (largest index + 1)
    max_job_count: int | None = None  # the cluster's MaxJobCount
    gpus_in_flight: int | None = None
    tasks_in_flight: int | None = None


def fit_arrays(jobs: list[Job], limits: ArrayLimits) -> list[Job]:
    tasks = sum(len(j.keys) if j.array else 1 for j in jobs)
    if limits.max_job_count and tasks > limits.max_job_count:
        raise SlurmError(f"this submission makes {tasks} SLURM jobs (array tasks count one each) and the cluster holds "
                         f"at most {limits.max_job_count} (MaxJobCount): submit part of the sweep at a time "
                         "(fewer sweep points or seeds in the spec), or ask the administrators")
    size = limits.max_array_size
    slices: dict[str, list[str]] = {}  # group -> the groups of its slices
    out: list[Job] = []
    for job in jobs:
        if not job.array or not size or len(job.keys) <= size:
            slices[job.group] = [job.group]
            out.append(job)
            continue
        n = math.ceil(len(job.keys) / size)
        parts = [replace(job, group=f"{job.group}.{k + 1}", keys=job.keys[k * size:(k + 1) * size], depends=list(job.depends))
                 for k in range(n)]
        slices[job.group] = [p.group for p in parts]
        out += parts
    for job in out:
        job.depends = _rewired(job, slices)
        job.arguments = tuple(g for a in job.arguments for g in slices.get(a, [a]))
        if job.releases:
            job.releases = ", ".join(slices.get(job.releases, [job.releases]))
        job.throttle = _throttle(job, limits, len(slices.get(_whole(job.group, slices), [job.group])))
    return out


def _whole(group: str, slices: dict[str, list[str]]) -> str:
    return next((g for g, parts in slices.items() if group in parts), group)


def _rewired(job: Job, slices: dict[str, list[str]]) -> list[Dependency]:
    deps = []
    for dep in job.depends:
        parts = slices.get(dep.group, [dep.group]) if dep.group else [None]
        if dep.group is None or len(parts) == 1:
            deps.append(dep)
        elif dep.kind == "aftercorr":  # slice k waits for the same slice of the array it pairs with
            mine = slices[_whole(job.group, slices)]
            if len(mine) != len(parts):
                raise SlurmError(f"{job.group} pairs its tasks with {dep.group} (aftercorr) but they were split differently")
            deps.append(Dependency("aftercorr", group=parts[mine.index(job.group)]))
        else:
            deps += [Dependency(dep.kind, group=p) for p in parts]
    return deps


def _throttle(job: Job, limits: ArrayLimits, n_slices: int) -> int | None:
    if not job.array:
        return None
    caps = []
    if limits.tasks_in_flight:
        caps.append(limits.tasks_in_flight)
    if limits.gpus_in_flight and job.resources.gpus:
        caps.append(max(1, limits.gpus_in_flight // job.resources.gpus))
    if not caps:
        return None
    cap = max(1, min(caps) // n_slices)
    return cap if cap < len(job.keys) else None
