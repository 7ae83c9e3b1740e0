"""The SLURM runner behind the Runner protocol (ftlab.runners.base).

    runner = SlurmRunner(registry, profile)
    runner.submit(graph, dry_run=False, resubmit_failed=False)   # -> submit.SubmitResult
    runner.status(graph)                                         # {task key: queued | running | done | failed | ...}
    runner.cancel(graph)                                         # job ids cancelled

Its state (job ids per task) is its own table (jobs.py); jobs run `ftlab stage run SPEC KEY`,
which executes the stage contract's `execute`, the same code the local runner calls.
"""

from __future__ import annotations

from ftlab.runners.slurm.follow import slurm_view
from ftlab.runners.slurm.profile import ClusterProfile
from ftlab.runners.slurm.submit import SubmitResult, cancel, submit


class SlurmRunner:
    name = "slurm"

    def __init__(self, registry, profile: ClusterProfile):
        self.registry, self.profile = registry, profile

    def submit(self, graph, *, dry_run: bool = False, resubmit_failed: bool = False) -> SubmitResult:
        if not dry_run:  # before any job starts: results() joins metrics with these rows
            from ftlab.runners.base import record_runs

            record_runs(graph, self.registry)
        return submit(graph, self.registry, self.profile, dry_run=dry_run, resubmit_failed=resubmit_failed)

    def status(self, graph) -> dict[str, str]:
        """Every task's state: SLURM's word on a submitted task that is not done, else the local view."""
        from ftlab.runners.status import task_state

        rows = {s["key"]: s for s in self.registry.stages()}
        states = {t.key: task_state(t, rows.get(t.key)) for t in graph.tasks}
        for key, view in slurm_view(graph, self.registry).items():
            if states.get(key) != "done":
                states[key] = view.state
        return states

    def cancel(self, graph) -> list[str]:
        return cancel(graph, self.registry)
