"""The checks of a spec that only the code running it can judge, reached by name, not by import.

    problems = owner("baselines.problems")(exp, names, problems)

The spec layer sits below every stage (layers: ARCHITECTURE.md), yet validating a spec asks the
stages: is this generator, filter, evaluator, baseline or report check known, are its options
valid, is the cluster profile readable? Each such check is named here with the "module:name" of
the code that owns it, imported only when a spec is validated (the way the stage table names
stage entry points), so the spec package imports nothing above it and each check lives beside
the code whose names and options it knows. tests/architecture/test_layers.py checks both.
"""

from __future__ import annotations

from typing import Any

from ftlab.plugins import load_entry

OWNERS: dict[str, str] = {
    "models.gguf_resolve": "ftlab.models.gguf:resolve",
    "models.gguf_missing_package": "ftlab.models.gguf:missing_gguf_package",
    "data.generators": "ftlab.data.generate:generators",
    "curate.filter_problems": "ftlab.curate.filters:filter_problems",
    "evaluate.evaluators": "ftlab.evaluate.evaluators:evaluators",
    "evaluate.reads": "ftlab.evaluate.evaluators:reads",
    "evaluate.resolve_options": "ftlab.evaluate.evaluators:resolve_options",
    "evaluate.produced_metrics": "ftlab.evaluate.evaluators:produced_metrics",
    "baselines.problems": "ftlab.baselines.check:baseline_problems",
    "reporting.problems": "ftlab.reporting.checks:report_problems",
    "reporting.variable_problems": "ftlab.reporting.checks:report_variable_problems",
    "runners.check_profile": "ftlab.runners.slurm.profile:check_profile",
}


def owner(name: str) -> Any:
    """The check (or registry) `name` of OWNERS, imported now."""
    return load_entry(OWNERS[name])
