"""SLURM runner: render sbatch arrays per stage group, submit, follow, cancel, resubmit.

    ftlab plan spec.yaml --cost              # resources per stage (and why), GPU-hours, storage
    ftlab submit spec.yaml --dry-run         # write <output_dir>/slurm/scripts/*.sbatch, submit nothing
    ftlab submit spec.yaml                   # sbatch: prepare -> train array (+ held eval per checkpoint) -> eval -> report
    ftlab status spec.yaml                   # registry + squeue/sacct (or the job-completion log)
    ftlab submit spec.yaml --resubmit-failed
    ftlab cancel spec.yaml

Modules: profile (cluster profile file), policies + resources (size -> request), render (jobs and
scripts), arrays (split at MaxArraySize, MaxJobCount, %N throttles), checkpoints (each checkpoint's
eval in its own held job, released by the train task), requeue (in the job: a warning before the
time limit or SIGTERM -> checkpoint, record, requeue), submit (sbatch, idempotency, cancel), follow
(squeue/sacct/jobcomp, status), explain (what happened to a task, what to do), estimate (plan output).
Jobs run `ftlab stage run SPEC KEY`: the local runner's stage code.
"""
