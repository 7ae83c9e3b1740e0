"""The experiment registry: one SQLite file of runs, stage executions and metrics, plus its
export to results.json. See store.py for usage and the concurrency rules."""

from ftlab.registry.export import export_results
from ftlab.registry.store import Registry

__all__ = ["Registry", "export_results"]
