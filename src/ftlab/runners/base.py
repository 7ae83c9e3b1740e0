"""The Runner protocol: where stage tasks run. Both runners call the same stage code (ftlab.contract).

    runner.submit(graph)   # local: runs every task not done, in order; slurm: sbatch arrays
    runner.status(graph)   # {task key: state word} for every task the runner knows
    runner.cancel(graph)   # stop what is queued or running; returns what was cancelled

A runner keeps its own state in its own table (the SLURM runner: job ids in
ftlab.runners.slurm.jobs); the registry records only runs, stage executions and metrics.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class Runner(Protocol):
    name: str

    def submit(self, graph, **options: Any) -> Any: ...

    def status(self, graph) -> dict[str, str]: ...

    def cancel(self, graph) -> list[str]: ...


def record_runs(graph, registry) -> None:
    """Every run of the plan in the registry (its index, name, sweep values, effective config).
    results() joins metrics with these rows, so a runner records them before any stage runs:
    metrics of a run not recorded would be silently left out."""
    from ftlab.spec.identity import effective_config

    for r in graph.plan.runs:
        registry.upsert_run(r.run_id, index=r.index, name=r.name, kind=r.kind, seed=r.seed, sweep=r.values,
                            config=effective_config(r.config))
