"""ftlab: run LLM fine-tuning research experiments end to end from one spec.

Pipeline: spec -> plan (runs) -> data -> train -> eval (every checkpoint) -> report,
executed by a runner (local today) and recorded in one SQLite registry.
"""

__version__ = "0.1.0"


def results(spec_or_dir):
    """The experiment's metrics as a pandas DataFrame; see ftlab.reporting.results (pandas loads only here)."""
    from ftlab.reporting.results import results as _results

    return _results(spec_or_dir)
